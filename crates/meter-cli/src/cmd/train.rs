//! `meter train` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter train`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter train` is not implemented yet")
}
