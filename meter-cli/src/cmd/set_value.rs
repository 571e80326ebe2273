//! `meter set-value`: corrects a meter's stored value by hand (after a meter
//! swap, or when the stored value is wrong). The value becomes the reference
//! for the next reading's plausibility check, with the current time.

use std::path::PathBuf;

use meter_service::config::ResolvedConfig;

use crate::Outcome;

/// Arguments of `meter set-value`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file.
    #[arg(long, default_value = "meter.toml")]
    pub config: PathBuf,
    /// The meter to correct.
    #[arg(long)]
    pub meter: String,
    /// The value as the counter shows it, e.g. `12345.6`.
    #[arg(allow_hyphen_values = true)]
    pub value: String,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cfg = ResolvedConfig::load(&args.config)?;
    let meter = cfg.meter(&args.meter)?;
    let set = meter_service::state::set_value(&cfg.state_dir, meter, &args.value)?;
    outln!(
        "{}: stored value set to {}{}",
        meter.name,
        set.value,
        set.previous
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default()
    );
    Ok(Outcome::Done)
}
