//! `meter predict`: reads each meter once (cron-friendly). Exit code 0 when
//! every reading was stored, 2 when one was unsure or rejected, 1 on error.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use meter_service::config::ResolvedConfig;
use meter_service::events::Bus;
use meter_service::{OneShot, Status};

use crate::Outcome;

/// Arguments of `meter predict`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file.
    #[arg(long, default_value = "meter.toml")]
    pub config: PathBuf,
    /// Only this meter.
    #[arg(long)]
    pub meter: Option<String>,
    /// Read this JPEG instead of the meter's source (needs --meter when the
    /// config has several meters).
    #[arg(long)]
    pub frame: Option<PathBuf>,
    /// Print one JSON object per meter.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cfg = ResolvedConfig::load(&args.config)?;
    let meters: Vec<_> = match &args.meter {
        Some(name) => vec![cfg.meter(name)?.clone()],
        None => cfg.meters.clone(),
    };
    if args.frame.is_some() && meters.len() > 1 {
        bail!(
            "--frame needs --meter NAME: the config has {} meters",
            meters.len()
        );
    }
    let refs: Vec<&_> = meters.iter().collect();
    let reader = OneShot::new(cfg.clone(), &refs, Arc::new(Bus::new()))?;
    let mut all_stored = true;
    let mut first_error = None;
    for meter in &meters {
        match reader.read(meter, args.frame.as_deref()) {
            Ok(report) => {
                if args.json {
                    outln!("{}", report.to_json());
                } else {
                    outln!("{}", report.log_line());
                }
                all_stored &= report.status == Status::Stored;
            }
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(e) => eprintln!("error: {e:#}"),
        }
    }
    // A database that is away keeps the readings in its spool; the next run
    // delivers them. That is a warning, not a failed reading.
    reader.close();
    match first_error {
        Some(e) => Err(e),
        None if all_stored => Ok(Outcome::Done),
        None => Ok(Outcome::NotStored),
    }
}
