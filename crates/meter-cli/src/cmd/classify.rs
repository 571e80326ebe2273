//! `meter classify` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter classify`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter classify` is not implemented yet")
}
