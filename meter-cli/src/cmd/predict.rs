//! `meter predict`: reads each meter once (cron-friendly). Exit code 0 when
//! every reading was stored, 2 when one was unsure or rejected, 1 on error.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use meter_vision::{FileSource, FrameSource};
use time::OffsetDateTime;

use crate::config::{ResolvedConfig, SourceConfig};
use crate::reader::{capture_time, open_sinks, open_source, ImageFiler, MeterReader};
use crate::registry::load_current_model;
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
    let model = load_current_model(&cfg)?;
    let mut sinks = open_sinks(&cfg)?;
    let dataset = Arc::new(ImageFiler::new(cfg.dataset_dir.clone(), cfg.dataset_cap));
    let unsure = Arc::new(ImageFiler::new(
        cfg.unsure_dir.clone(),
        cfg.dataset_cap * 10,
    ));
    let mut all_stored = true;
    let mut first_error = None;
    for meter in &meters {
        let result = (|| -> anyhow::Result<bool> {
            let mut reader =
                MeterReader::new(&cfg, meter, model.clone(), dataset.clone(), unsure.clone())?;
            let (frame, time) = match &args.frame {
                Some(p) => {
                    let frame = FileSource::new(p, Some(cfg.rejected_dir.clone()))
                        .next_frame()?
                        .with_context(|| format!("{}: no frame", p.display()))?;
                    // A frame handed in by hand is read now, whatever its file time.
                    (frame, OffsetDateTime::now_utc())
                }
                // One shot from a folder: its newest frame (a camera that
                // uploads into a folder, read from cron).
                None if matches!(meter.source, SourceConfig::Folder(_)) => {
                    let SourceConfig::Folder(dir) = &meter.source else {
                        unreachable!("matched above")
                    };
                    let newest = newest_jpeg(dir).with_context(|| {
                        format!("meter {}: source {}", meter.name, dir.display())
                    })?;
                    let frame = FileSource::new(&newest, Some(cfg.rejected_dir.clone()))
                        .next_frame()?
                        .with_context(|| format!("{}: no frame", newest.display()))?;
                    let t = capture_time(&frame);
                    (frame, t)
                }
                None => {
                    let mut source = open_source(meter, &cfg.rejected_dir)?;
                    let frame = source
                        .next_frame()
                        .with_context(|| format!("meter {}", meter.name))?
                        .with_context(|| {
                            format!(
                                "meter {}: source {} gave no frame",
                                meter.name, meter.source
                            )
                        })?;
                    let t = capture_time(&frame);
                    (frame, t)
                }
            };
            let (report, reading, next) = reader.read(frame, time)?;
            let record = report.record(&reading);
            for (label, sink) in &mut sinks {
                sink.write(std::slice::from_ref(&record))
                    .with_context(|| format!("sink {label}"))?;
            }
            reader.commit(next)?;
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string(&report).expect("report serialises")
                );
            } else {
                outln!("{}", report.log_line());
            }
            Ok(report.value.is_some())
        })();
        match result {
            Ok(stored) => all_stored &= stored,
            Err(e) => {
                if first_error.is_some() {
                    eprintln!("error: {e:#}");
                } else {
                    first_error = Some(e);
                }
            }
        }
    }
    for (label, sink) in &mut sinks {
        // A database that is away keeps the readings in its spool; the next
        // run delivers them. That is a warning, not a failed reading.
        if let Err(e) = sink.flush() {
            log::warn!("sink {label}: {e:#} (kept for the next run)");
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if all_stored => Ok(Outcome::Done),
        None => Ok(Outcome::NotStored),
    }
}

/// The most recently modified `.jpg`/`.jpeg` file of `dir` (by name among
/// equals).
fn newest_jpeg(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_jpeg = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
        if !is_jpeg || !path.is_file() {
            continue;
        }
        let t = std::fs::metadata(&path)?.modified()?;
        if best.as_ref().is_none_or(|(bt, bp)| (t, &path) > (*bt, bp)) {
            best = Some((t, path));
        }
    }
    best.map(|(_, p)| p)
        .with_context(|| format!("no .jpg frame in {}", dir.display()))
}
