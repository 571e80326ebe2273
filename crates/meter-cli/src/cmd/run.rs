//! `meter run` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter run`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter run` is not implemented yet")
}
