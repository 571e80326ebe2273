//! `meter eval` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter eval`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter eval` is not implemented yet")
}
