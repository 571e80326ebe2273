//! The run loop behind `meter run`: every meter read on its own interval by
//! a bounded pool of workers, until stopped.
//!
//! - **Scheduling**: one scheduler thread keeps each meter's next due time
//!   and hands due meters to the workers; a meter is read by one worker at a
//!   time, at a fixed rate (a reading that overran its interval is not made
//!   up for). A slow or dead camera holds one worker, never the others.
//! - **Stopping**: [`StopSignal::stop`] (a signal, `--duration`) ends
//!   scheduling and abandons camera requests in flight; each worker
//!   finishes the reading in hand; the sinks get [`CLOSE_GRACE`] to deliver,
//!   and what they could not stays in their spools for the next start. A
//!   stop takes well under two seconds whatever cameras and databases do.
//! - **MQTT commands**: `set_value` corrects a stored value, `read_now`
//!   reads a meter at once.
//! - **Model hot swap**: a promoted retrain replaces the [`SharedModel`];
//!   each meter reads with it from its next frame on.
//! - **Retraining** (`[retrain] in_run = true`): a background thread asks
//!   every `check_every` whether a retrain is due and runs it. A stop does
//!   not wait for a retrain in progress (its files are written whole, so
//!   nothing is left half written); when the meters stop by themselves
//!   (`count`, no more frames) the run waits for it to decide.
//! - **Panics**: a reading that panics (a bug) is reported with its meter's
//!   name and stops the service, which returns an error: better a service
//!   manager's restart than a meter silently dead.
//! - **Sharding**: [`Shard`] splits a config's meters among processes by a
//!   hash of their names.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use crossbeam_channel::{Receiver, Sender};
use meter_sink::mqtt::{MqttCommand, MqttHandle};
use meter_vision::{FrameSource, SourceOptions, StopSignal};

mod model;
mod retrain;
mod schedule;
mod shard;

pub use model::SharedModel;
pub use shard::Shard;

use crate::config::{MeterConfig, ResolvedConfig};
use crate::events::{Bus, Subscriber};
use crate::live::Live;
use crate::reader::{Filers, MeterReader};
use crate::registry::load_current_model;
use crate::store::Store;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this many readings of each meter.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Read only this shard's meters.
    pub shard: Option<Shard>,
    /// Worker threads; default: one per meter up to [`DEFAULT_WORKERS`].
    pub workers: Option<usize>,
    /// [`Service::live`] keeps no frames (see [`Live::without_frames`]):
    /// for a process that serves no web page. Telegram notifications still
    /// get theirs.
    pub live_without_frames: bool,
}

/// The most worker threads used by default. Readings wait on cameras more
/// than on the CPU, so more workers than cores pay; each costs a stack and
/// an allocator heap, so not one per meter of a thousand.
pub const DEFAULT_WORKERS: usize = 16;

/// How long the sinks get to deliver after a stop; what is left stays in
/// their spools for the next start.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Readings attempted (errors included).
    pub readings: u64,
    /// Stored.
    pub stored: u64,
    /// Unsure.
    pub unsure: u64,
    /// Rejected.
    pub rejected: u64,
    /// Failed (camera, frame, sink, state).
    pub errors: u64,
    /// Whether every sink delivered everything at the end (otherwise the
    /// rest waits in their spools).
    pub flushed: bool,
}

#[derive(Default)]
struct Counters {
    readings: AtomicU64,
    stored: AtomicU64,
    unsure: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
}

/// One meter as the workers see it.
struct Slot {
    reader: MeterReader,
    source: Box<dyn FrameSource + Send>,
    generation: u64,
}

/// New settings for running meters (the web page's box editor and model
/// versions): each meter takes them before its next frame.
#[derive(Debug)]
pub struct Reconfigure {
    pending: Mutex<std::collections::HashMap<String, MeterConfig>>,
    model: Arc<SharedModel>,
}

impl Reconfigure {
    /// Every meter reads with `model` from its next frame (a version made
    /// current in the registry).
    pub fn use_model(&self, model: meter_model::DigitModel) {
        let generation = self.model.replace(model);
        log::info!("model generation {generation} handed to the meters");
    }

    /// Meter `meter.name` reads with `meter`'s geometry from its next frame.
    pub fn set_meter(&self, meter: MeterConfig) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(meter.name.clone(), meter);
    }

    fn take(&self, name: &str) -> Option<MeterConfig> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
    }
}

/// The service: the meters of a config, their sinks and the event stream.
pub struct Service {
    cfg: ResolvedConfig,
    opts: RunOptions,
    store: Arc<Store>,
    model: Arc<SharedModel>,
    slots: Vec<(String, std::time::Duration, Mutex<Slot>)>,
    mqtt: Vec<MqttHandle>,
    live: Arc<Live>,
    stop: StopSignal,
    reconfigure: Arc<Reconfigure>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("config", &self.cfg.path)
            .field("meters", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Loads the model, opens every meter's source and every sink: all
    /// that can fail on a bad config fails here, before any thread starts.
    pub fn new(cfg: ResolvedConfig, opts: RunOptions) -> anyhow::Result<Self> {
        let model = load_current_model(&cfg)?;
        let filers = Filers::new(&cfg);
        let meters: Vec<&MeterConfig> = cfg
            .meters
            .iter()
            .filter(|m| opts.shard.is_none_or(|s| s.has(&m.name)))
            .collect();
        if meters.is_empty() {
            bail!(
                "config {}: no meter in shard {}",
                cfg.path.display(),
                opts.shard.map(|s| s.to_string()).unwrap_or_default()
            );
        }
        let stop = StopSignal::new();
        let options = crate::open::source_options(&cfg, &stop);
        let mut slots = Vec::with_capacity(meters.len());
        for m in &meters {
            let reader = MeterReader::new(&cfg, m, model.clone(), &filers)?;
            // A meter read less often than a camera connection idles gets
            // a fresh one per frame rather than holding a dead one.
            let options = SourceOptions {
                frame_interval: Some(m.interval),
                ..options.clone()
            };
            let source = m
                .source
                .open(&options)
                .with_context(|| format!("meter {}: source", m.name))?;
            slots.push((
                m.name.clone(),
                m.interval,
                Mutex::new(Slot {
                    reader,
                    source,
                    generation: 0,
                }),
            ));
        }
        let sinks = crate::open::open_sinks(&cfg, &meters, opts.shard)?;
        let bus = Arc::new(Bus::new());
        // A frame a meter is about 60 KB, 120 MB for 2,000 meters: kept only
        // where something may show it.
        let telegram = cfg
            .notify
            .iter()
            .any(|n| matches!(n, meter_alert::NotifyConfig::Telegram(_)));
        let names = meters.iter().map(|m| m.name.as_str());
        let live = Arc::new(if opts.live_without_frames && !telegram {
            Live::without_frames(names)
        } else {
            Live::new(names)
        });
        bus.subscribe(live.subscriber())
            .context("starting a subscriber thread")?;
        // One process per bot token answers commands: the first shard.
        let bot_commands = Shard::is_first(opts.shard);
        if let Some(alerts) = crate::alerting::start(&cfg, &meters, live.clone(), bot_commands)? {
            bus.subscribe(alerts)
                .context("starting a subscriber thread")?;
        }
        let model = Arc::new(SharedModel::new(model));
        Ok(Self {
            store: Arc::new(Store::new(sinks.sinks, bus)),
            reconfigure: Arc::new(Reconfigure {
                pending: Mutex::default(),
                model: model.clone(),
            }),
            model,
            live,
            mqtt: sinks.mqtt,
            cfg,
            opts,
            slots,
            stop,
        })
    }

    /// Adds a listener to the event stream.
    pub fn subscribe(&self, subscriber: Box<dyn Subscriber>) -> anyhow::Result<()> {
        self.store
            .bus()
            .subscribe(subscriber)
            .context("starting a subscriber thread")
    }

    /// Reads meter `name`'s frames from `source` instead of its configured
    /// one (a camera of an embedding program's own).
    pub fn replace_source(
        &mut self,
        name: &str,
        source: Box<dyn FrameSource + Send>,
    ) -> anyhow::Result<()> {
        let (_, _, slot) = self
            .slots
            .iter_mut()
            .find(|(n, _, _)| n == name)
            .with_context(|| format!("no meter named {name:?} in this service"))?;
        slot.get_mut().unwrap_or_else(|e| e.into_inner()).source = source;
        Ok(())
    }

    /// What the service last saw of each meter (kept up to date while it
    /// runs).
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Where new meter settings are handed to the running meters.
    pub fn reconfigure(&self) -> &Arc<Reconfigure> {
        &self.reconfigure
    }

    /// The signal that stops [`run`](Self::run) (for signal handlers).
    pub fn stop_handle(&self) -> StopSignal {
        self.stop.clone()
    }

    /// The path every reading takes (for callers that read by themselves).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Reads every meter on its interval until stopped, `count` readings
    /// each, or every source is used up.
    pub fn run(self) -> anyhow::Result<RunSummary> {
        let stop = self.stop.clone();
        // Fires with the caller's stop and at the end of --duration: nobody
        // waits for a retrain then. Meters that end by themselves do.
        let retrain_stop = StopSignal::new();
        let counters = Counters::default();
        let panicked = Mutex::new(None::<String>);
        let (now_tx, now_rx) = crossbeam_channel::unbounded::<String>();
        let retrainer = self.retrainer(&retrain_stop);
        let this = &self;
        let stopped_by_caller = std::thread::scope(|scope| {
            if let Some(d) = self.opts.duration {
                let stop = stop.clone();
                // Woken early by the end of the run as well.
                scope.spawn(move || {
                    stop.sleep(d);
                    stop.stop();
                });
            }
            for handle in &this.mqtt {
                let (commands, now_tx, stop) =
                    (handle.commands().clone(), now_tx.clone(), stop.clone());
                scope.spawn(move || this.mqtt_commands(&commands, &now_tx, &stop));
            }
            let stopped = this.schedule(scope, &counters, &panicked, &now_rx);
            stop.stop();
            stopped
        });
        // A retrain started during the run is waited for only when the
        // meters ended by themselves.
        if let Some(h) = retrainer {
            retrain_stop.stop();
            if stopped_by_caller {
                if !h.is_finished() {
                    log::info!("retrain: abandoned (interrupted)");
                }
            } else if h.join().is_err() {
                log::error!("the retrain thread panicked");
            }
        }
        let flushed = self.store.close(Instant::now() + CLOSE_GRACE);
        self.store.bus().close();
        if let Some(name) = panicked.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bail!(
                "meter {name}: a reading panicked (a bug; please report it); the service stopped"
            );
        }
        let c = &counters;
        Ok(RunSummary {
            readings: c.readings.load(Ordering::Relaxed),
            stored: c.stored.load(Ordering::Relaxed),
            unsure: c.unsure.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            flushed,
        })
    }

    /// The retrain thread of `[retrain] in_run = true`; it runs until
    /// `stop`.
    fn retrainer(&self, stop: &StopSignal) -> Option<std::thread::JoinHandle<()>> {
        let schedule = self.cfg.retrain.as_ref().filter(|s| s.in_run)?;
        let (cfg, model, store) = (self.cfg.clone(), self.model.clone(), self.store.clone());
        let (every, stop) = (schedule.check_every, stop.clone());
        let mqtt = self.mqtt.clone();
        let meters: Vec<String> = self.slots.iter().map(|(n, _, _)| n.clone()).collect();
        let spawned = std::thread::Builder::new()
            .name("retrain".into())
            .spawn(move || {
                retrain::retrain_loop(&cfg, every, &model, &store, &stop, &|version| {
                    for h in &mqtt {
                        for m in &meters {
                            h.set_model_version(m, format!("v{version}"));
                        }
                    }
                })
            });
        match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                log::error!("starting the retrain thread: {e}; no retraining in this run");
                None
            }
        }
    }

    /// Carries out an MQTT sink's commands until `stop`.
    fn mqtt_commands(
        &self,
        commands: &Receiver<MqttCommand>,
        now: &Sender<String>,
        stop: &StopSignal,
    ) {
        while !stop.is_stopped() {
            let Ok(cmd) = commands.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            match cmd {
                MqttCommand::SetValue { meter, value } => {
                    let result = self.cfg.meter(&meter).and_then(|m| {
                        let text = format!("{value:.*}", usize::from(m.counter.decimals()) + 1);
                        crate::state::set_value(&self.cfg.state_dir, m, &text)
                    });
                    match result {
                        Ok(set) => log::info!(
                            "meter {meter}: stored value set to {} over MQTT{}",
                            set.value,
                            set.previous
                                .map(|p| format!(" (was {p})"))
                                .unwrap_or_default()
                        ),
                        Err(e) => log::error!("MQTT set_value for meter {meter}: {e:#}"),
                    }
                }
                MqttCommand::ReadNow { meter } => {
                    let _ = now.send(meter);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meter_model::DigitModel;

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
        let filers = Filers::new(&cfg);
        let mut reader = MeterReader::new(&cfg, &cfg.meters[0], base.clone(), &filers).unwrap();
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
