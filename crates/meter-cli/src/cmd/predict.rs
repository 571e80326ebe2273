//! `meter predict` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter predict`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter predict` is not implemented yet")
}
