//! `meter model list|use` (not implemented yet).

use crate::Outcome;

/// Model version management.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List the model versions with their metrics.
    List,
}

/// Runs the command.
pub fn run(_cmd: Command) -> anyhow::Result<Outcome> {
    anyhow::bail!("`meter model` is not implemented yet")
}
