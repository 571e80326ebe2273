//! `meter retrain` (not implemented yet).

use crate::Outcome;

/// Arguments of `meter retrain`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter retrain` is not implemented yet")
}
