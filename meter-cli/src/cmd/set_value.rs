//! `meter set-value`: corrects a meter's stored value by hand (after a meter
//! swap, or when the stored value is wrong). The value becomes the reference
//! for the next reading's plausibility check, with the current time.

use std::path::PathBuf;

use anyhow::Context;
use time::OffsetDateTime;

use crate::config::ResolvedConfig;
use crate::{state, Outcome};

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
    let ticks = meter
        .counter
        .parse(&args.value)
        .with_context(|| format!("meter {}", meter.name))?;
    // The old state may be unreadable or of another counter shape: that is
    // exactly when a hand correction is needed, so it is reported, not fatal.
    let previous = match state::load(&cfg.state_dir, &meter.name, meter.counter) {
        Ok(s) => s.stored.map(|t| meter.counter.format_units(t.ticks)),
        Err(e) => {
            log::warn!("replacing unreadable state: {e:#}");
            None
        }
    };
    let new = meter_core::State::with_value(meter.counter, ticks, OffsetDateTime::now_utc());
    state::save(&cfg.state_dir, &meter.name, &new)?;
    outln!(
        "{}: stored value set to {}{}",
        meter.name,
        meter.counter.format_units(ticks),
        previous.map(|p| format!(" (was {p})")).unwrap_or_default()
    );
    Ok(Outcome::Done)
}
