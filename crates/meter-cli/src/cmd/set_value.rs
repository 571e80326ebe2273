//! `meter set-value` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter set-value`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter set-value` is not implemented yet")
}
