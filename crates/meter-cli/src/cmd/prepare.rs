//! `meter prepare` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter prepare`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter prepare` is not implemented yet")
}
