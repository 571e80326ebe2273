//! `meter run`: reads every meter on its own interval until stopped.
//!
//! One thread per meter, so a slow or dead camera delays only its own
//! meter; one sink thread writes every record (a database that is away
//! delays nobody: its spool keeps the records). SIGINT/SIGTERM: each meter
//! finishes the reading in hand, the sink thread writes what is queued and
//! flushes; a second signal exits at once.
//!
//! With `[retrain] in_run = true`, a background thread asks every
//! `check_every` (and once at the start) whether a retrain is due and runs
//! it; a promoted version is read by each meter from its next frame on (a
//! reading in progress finishes with the old model). A signal or the end of
//! `--duration` does not wait for a retrain in progress: it is abandoned
//! (its files are written whole then renamed, so nothing is left half
//! written). When the meters stop by themselves (`--count`, no more
//! frames), `meter run` waits for a retrain in progress to decide.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use meter_model::DigitModel;
use meter_sink::{Record, Sink};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::cmd::retrain::{retrain, Decision, Settings};
use crate::config::{parse_interval, RawInterval, ResolvedConfig};
use crate::reader::{capture_time, open_sinks, open_source, ImageFiler, MeterReader};
use crate::registry::load_current_model;
use crate::Outcome;

/// Arguments of `meter run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file.
    #[arg(long, default_value = "meter.toml")]
    pub config: PathBuf,
    /// Print each reading as a JSON object instead of a log line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many readings of each meter.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long (`90s`, `5m`).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
}

/// A stop flag threads can sleep on.
#[derive(Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    /// Asks every thread to stop.
    pub fn set(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until `deadline` or a stop; returns whether stopped.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *stopped {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self
                .cv
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The model the meters read with. A promoted retrain replaces it; each
/// meter notices the new generation before its next frame.
pub struct SharedModel {
    generation: AtomicU64,
    model: RwLock<DigitModel>,
}

impl SharedModel {
    /// Starts at generation 0 with `model`.
    pub fn new(model: DigitModel) -> Self {
        Self {
            generation: AtomicU64::new(0),
            model: RwLock::new(model),
        }
    }

    /// Bumped by every [`SharedModel::replace`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current model and its generation.
    pub fn get(&self) -> (u64, DigitModel) {
        let model = self.model.read().unwrap_or_else(|e| e.into_inner());
        (self.generation(), model.clone())
    }

    /// Makes `model` current; returns its generation.
    pub fn replace(&self, model: DigitModel) -> u64 {
        let mut slot = self.model.write().unwrap_or_else(|e| e.into_inner());
        *slot = model;
        // Bumped under the write lock: whoever sees the new generation and
        // then reads the model gets the new one.
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Gives `reader` the current model when it changed since generation
    /// `seen`; returns the generation the reader now has.
    pub fn refresh(&self, reader: &mut MeterReader, seen: u64) -> u64 {
        if self.generation() == seen {
            return seen;
        }
        let (generation, model) = self.get();
        let name = reader.meter().name.clone();
        match reader.set_model(model) {
            Ok(()) => log::info!("meter {name}: reading with model generation {generation}"),
            Err(e) => log::error!("{e:#}; keeping the previous model"),
        }
        generation
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cfg = ResolvedConfig::load(&args.config)?;
    let duration = args
        .duration
        .as_ref()
        .map(|d| parse_interval(&RawInterval::Text(d.clone())).context("--duration"))
        .transpose()?;
    let model = load_current_model(&cfg)?;
    let shared = Arc::new(SharedModel::new(model.clone()));
    let dataset = Arc::new(ImageFiler::new(cfg.dataset_dir.clone(), cfg.dataset_cap));
    let unsure = Arc::new(ImageFiler::new(
        cfg.unsure_dir.clone(),
        cfg.dataset_cap * 10,
    ));
    // Everything that can fail on a bad config fails here, before any thread.
    let mut readers = Vec::new();
    for m in &cfg.meters {
        let reader = MeterReader::new(&cfg, m, model.clone(), dataset.clone(), unsure.clone())?;
        let source = open_source(m, &cfg.rejected_dir)?;
        readers.push((reader, source));
    }
    let sinks = open_sinks(&cfg)?;

    let stop = Arc::new(Stop::default());
    // Set by the signal handler and --duration: nobody waits for a retrain.
    let interrupted = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let signal_handle = signals.handle();
    {
        let (stop, interrupted) = (stop.clone(), interrupted.clone());
        std::thread::spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen > 1 {
                    eprintln!("second signal: exiting now");
                    std::process::exit(130);
                }
                log::info!("signal {sig}: finishing the readings in hand, then flushing");
                interrupted.store(true, Ordering::Release);
                stop.set();
            }
        });
    }
    if let Some(d) = duration {
        let (stop, interrupted) = (stop.clone(), interrupted.clone());
        std::thread::spawn(move || {
            if !stop.wait_until(Instant::now() + d) {
                interrupted.store(true, Ordering::Release);
                stop.set();
            }
        });
    }

    let retrainer = match &cfg.retrain {
        Some(schedule) if schedule.in_run => {
            let (cfg, stop, shared) = (cfg.clone(), stop.clone(), shared.clone());
            let every = schedule.check_every;
            Some(
                std::thread::Builder::new()
                    .name("retrain".into())
                    .spawn(move || retrain_loop(&cfg, every, &shared, &stop))
                    .context("starting the retrain thread")?,
            )
        }
        _ => None,
    };

    let (tx, rx) = crossbeam_channel::bounded::<Record>(10_000);
    let sink_thread = std::thread::Builder::new()
        .name("sinks".into())
        .spawn(move || sink_loop(sinks, rx))
        .context("starting the sink thread")?;
    let out = Arc::new(Mutex::new(()));
    let mut meters = Vec::new();
    for (reader, source) in readers {
        let (stop, tx, out) = (stop.clone(), tx.clone(), out.clone());
        let shared = shared.clone();
        let (json, count) = (args.json, args.count);
        let name = reader.meter().name.clone();
        let h = std::thread::Builder::new()
            .name(format!("meter-{name}"))
            .spawn(move || {
                let sink = (&tx, &*out);
                meter_loop(reader, source, &stop, &shared, sink, json, count)
            })
            .with_context(|| format!("starting meter {name}"))?;
        meters.push(h);
    }
    drop(tx);
    let mut stats = Stats::default();
    for h in meters {
        match h.join() {
            Ok(s) => stats.add(&s),
            Err(_) => log::error!("a meter thread panicked"),
        }
    }
    let flushed = sink_thread.join().unwrap_or(false);
    if let Some(h) = retrainer {
        stop.set();
        if interrupted.load(Ordering::Acquire) {
            if !h.is_finished() {
                log::info!("retrain: abandoned (interrupted)");
            }
        } else if h.join().is_err() {
            log::error!("the retrain thread panicked");
        }
    }
    signal_handle.close();
    log::info!(
        "stopped: {} readings, {} stored, {} unsure, {} rejected, {} errors{}",
        stats.readings,
        stats.stored,
        stats.unsure,
        stats.rejected,
        stats.errors,
        if flushed {
            ""
        } else {
            "; some sink could not flush (spooled records are kept)"
        }
    );
    Ok(Outcome::Done)
}

#[derive(Default)]
struct Stats {
    readings: u64,
    stored: u64,
    unsure: u64,
    rejected: u64,
    errors: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.readings += o.readings;
        self.stored += o.stored;
        self.unsure += o.unsure;
        self.rejected += o.rejected;
        self.errors += o.errors;
    }
}

/// Checks whether a retrain is due now and every `every`, runs it when it
/// is, and hands a promoted version to the meters. Stops between retrains.
fn retrain_loop(cfg: &ResolvedConfig, every: Duration, shared: &SharedModel, stop: &Stop) {
    while !stop.is_set() {
        match retrain(cfg, &Settings::default(), true) {
            // Checked every few minutes: not worth a line at info level.
            Ok(Decision::NotDue(why)) => log::debug!("retrain decision=not_due why={why:?}"),
            Ok(Decision::Refused {
                parent,
                current,
                candidate,
                ..
            }) => log::info!(
                "retrain decision=refused kept=v{parent} current_exact={:.4} candidate_exact={:.4} n={}",
                current.exact,
                candidate.exact,
                candidate.n
            ),
            Ok(Decision::Promoted {
                version,
                path,
                parent,
                current,
                candidate,
                ..
            }) => {
                log::info!(
                    "retrain decision=promoted version=v{version} parent=v{parent} current_exact={:.4} candidate_exact={:.4} n={}",
                    current.exact,
                    candidate.exact,
                    candidate.n
                );
                match DigitModel::load(&path) {
                    Ok(m) => {
                        shared.replace(m);
                    }
                    Err(e) => log::error!(
                        "retrain: model {} unreadable, the meters keep the previous one: {e}",
                        path.display()
                    ),
                }
            }
            Err(e) => log::error!("retrain decision=failed error={:?}", format!("{e:#}")),
        }
        if stop.wait_until(Instant::now() + every) {
            break;
        }
    }
}

fn meter_loop(
    mut reader: MeterReader,
    mut source: Box<dyn meter_vision::FrameSource + Send>,
    stop: &Stop,
    shared: &SharedModel,
    (tx, out): (&Sender<Record>, &Mutex<()>),
    json: bool,
    count: Option<u64>,
) -> Stats {
    let interval = reader.meter().interval;
    let name = reader.meter().name.clone();
    let mut stats = Stats::default();
    let mut next = Instant::now();
    let mut generation = 0;
    while !stop.is_set() && count.is_none_or(|c| stats.readings < c) {
        generation = shared.refresh(&mut reader, generation);
        let result = source
            .next_frame()
            .with_context(|| format!("meter {name}"))
            .and_then(|f| match f {
                Some(frame) => {
                    let t = capture_time(&frame);
                    reader.read(frame, t).map(Some)
                }
                None => Ok(None),
            });
        match result {
            Ok(Some((report, reading, next_state))) => {
                stats.readings += 1;
                match report.status {
                    "stored" => stats.stored += 1,
                    "unsure" => stats.unsure += 1,
                    _ => stats.rejected += 1,
                }
                {
                    let _guard = out.lock().unwrap_or_else(|e| e.into_inner());
                    if json {
                        outln!(
                            "{}",
                            serde_json::to_string(&report).expect("report serialises")
                        );
                    } else {
                        outln!("{}", report.log_line());
                    }
                }
                if tx.send(report.record(&reading)).is_err() {
                    log::error!("meter {name}: the sink thread is gone");
                    break;
                }
                if let Err(e) = reader.commit(next_state) {
                    stats.errors += 1;
                    log::error!("{e:#}");
                }
            }
            Ok(None) => {
                log::info!(
                    "meter {name}: source {} has no more frames",
                    reader.meter().source
                );
                break;
            }
            Err(e) => {
                stats.readings += 1;
                stats.errors += 1;
                log::error!("{e:#}");
            }
        }
        // Fixed rate; a reading that overran its interval is not made up for.
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        if stop.wait_until(next) {
            break;
        }
    }
    stats
}

/// Writes records as they come, in batches; flushes about once a second and
/// at the end. Returns whether the final flush succeeded everywhere.
fn sink_loop(mut sinks: Vec<(String, Box<dyn Sink + Send>)>, rx: Receiver<Record>) -> bool {
    let mut last_flush = Instant::now();
    let mut batch = Vec::new();
    loop {
        let first = rx.recv_timeout(Duration::from_secs(1));
        let done = matches!(
            first,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        );
        if let Ok(r) = first {
            batch.push(r);
            batch.extend(rx.try_iter().take(999));
        }
        if !batch.is_empty() {
            for (label, sink) in &mut sinks {
                if let Err(e) = sink.write(&batch) {
                    log::error!("sink {label}: {e:#}");
                }
            }
            batch.clear();
        }
        if done || last_flush.elapsed() >= Duration::from_secs(1) {
            let mut ok = true;
            for (label, sink) in &mut sinks {
                if let Err(e) = sink.flush() {
                    ok = false;
                    log::warn!("sink {label}: {e:#}");
                }
            }
            last_flush = Instant::now();
            if done {
                return ok;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_switch_to_a_replaced_model_on_their_next_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("meter.toml");
        std::fs::write(
            &config,
            "[[meter]]\nname = \"house\"\nsource = \"frames\"\ndigits = [[0, 0, 20, 32]]\n",
        )
        .unwrap();
        let cfg = ResolvedConfig::load_with_env(&config, &Default::default()).unwrap();
        let base = DigitModel::shipped();
        let filer = |d: &str| Arc::new(ImageFiler::new(dir.path().join(d), 10));
        let mut reader =
            MeterReader::new(&cfg, &cfg.meters[0], base.clone(), filer("d"), filer("u")).unwrap();
        let shared = SharedModel::new(base.clone());
        assert_eq!(shared.refresh(&mut reader, 0), 0, "nothing new");

        // A model that differs from the base one only in its metadata.
        let mut meta = base.metadata().clone();
        meta.temperature = 7.0;
        let newer = base.with_metadata(meta).unwrap();
        assert_eq!(shared.replace(newer), 1);
        assert_eq!(
            reader.model().metadata().temperature,
            base.metadata().temperature
        );
        assert_eq!(shared.refresh(&mut reader, 0), 1);
        assert_eq!(reader.model().metadata().temperature, 7.0);
        // Already up to date: left alone.
        assert_eq!(shared.refresh(&mut reader, 1), 1);
    }
}
