//! `meter roi` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter roi`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter roi` is not implemented yet")
}
