//! Alerts and notifications ([`meter_alert`]) fed by the event stream:
//! readings and capture failures become observations, a clock thread adds
//! a tick every minute, and the Telegram bot answers from what the service
//! last saw ([`Live`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meter_alert::{
    Alerting, BotBackend, Digit, MeterHealth, NotifyConfig, Observation, ObservedReading,
    ReadingStatus,
};
use meter_vision::{MeterGeometry, StopSignal};
use time::OffsetDateTime;

use crate::config::{MeterConfig, ResolvedConfig};
use crate::events::{ErrorKind, Event, ReadingEvent, Subscriber};
use crate::live::Live;
use crate::report::Status;

/// How often the rules that depend on time alone (silence, midnight) are
/// evaluated.
pub const TICK: Duration = Duration::from_secs(60);

/// Starts alerting for `meters` when the config has `[alerts]` or
/// `[[notify]]`: the subscriber to add to the event stream. `bot_commands`
/// says whether Telegram bots answer commands here (one process per token).
pub fn start(
    cfg: &ResolvedConfig,
    meters: &[&MeterConfig],
    live: Arc<Live>,
    bot_commands: bool,
) -> anyhow::Result<Option<Box<dyn Subscriber>>> {
    if cfg.alerts.is_none() && cfg.notify.is_empty() {
        return Ok(None);
    }
    let alerts = cfg.alerts.clone().unwrap_or_default();
    let notify: Vec<NotifyConfig> = cfg
        .notify
        .iter()
        .cloned()
        .map(|n| match n {
            NotifyConfig::Telegram(mut t) if !bot_commands => {
                t.commands = false;
                NotifyConfig::Telegram(t)
            }
            other => other,
        })
        .collect();
    let names: Vec<String> = meters.iter().map(|m| m.name.clone()).collect();
    let backend = Arc::new(Backend {
        cfg: cfg.clone(),
        meters: meters.iter().map(|m| (*m).clone()).collect(),
        live,
    });
    let alerting = Alerting::start(
        &alerts,
        &notify,
        &names,
        &cfg.state_dir,
        backend,
        meter_alert::Options::default(),
    )
    .map_err(|e| anyhow::anyhow!("config {}: {}", cfg.path.display(), meter_alert::chain(&e)))?;
    let alerting = Arc::new(Mutex::new(Some(alerting)));
    let stop = StopSignal::new();
    let ticker = {
        let (alerting, stop) = (alerting.clone(), stop.clone());
        std::thread::Builder::new()
            .name("alert-clock".into())
            .spawn(move || {
                while !stop.sleep(TICK) {
                    observe(
                        &alerting,
                        &Observation::Tick {
                            time: OffsetDateTime::now_utc(),
                        },
                    );
                }
            })?
    };
    Ok(Some(Box::new(AlertSubscriber {
        alerting,
        stop,
        ticker: Some(ticker),
    })))
}

type Shared = Arc<Mutex<Option<Alerting>>>;

fn observe(alerting: &Shared, obs: &Observation) {
    let mut guard = alerting.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = guard.as_mut() {
        if let Err(e) = a.observe(obs) {
            log::error!("alerts: {}", meter_alert::chain(&e));
        }
    }
}

struct AlertSubscriber {
    alerting: Shared,
    stop: StopSignal,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber for AlertSubscriber {
    fn name(&self) -> String {
        "alerts".into()
    }

    fn handle(&mut self, event: &Event) -> anyhow::Result<()> {
        let obs = match event {
            Event::Reading(r) => Observation::Reading(observed(r)),
            Event::Error(e) if e.kind == ErrorKind::Camera || e.kind == ErrorKind::Frame => {
                let Some(meter) = e.meter.clone() else {
                    return Ok(());
                };
                Observation::CaptureFailed {
                    meter,
                    time: e.time,
                    error: e.message.clone(),
                }
            }
            _ => return Ok(()),
        };
        observe(&self.alerting, &obs);
        Ok(())
    }

    fn finish(&mut self) {
        self.stop.stop();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        let taken = self
            .alerting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(a) = taken {
            a.stop();
        }
    }
}

/// A reading as the alert engine and the webhooks see it.
pub fn observed(r: &ReadingEvent) -> ObservedReading {
    let rep = &r.report;
    ObservedReading {
        meter: rep.meter.clone(),
        time: rep.time,
        value: rep.value,
        raw: Some(rep.raw),
        digits: rep
            .digits
            .iter()
            .map(|d| Digit {
                value: d.value,
                confidence: d.confidence,
            })
            .collect(),
        status: match rep.status {
            Status::Stored => ReadingStatus::Stored,
            Status::Unsure => ReadingStatus::Unsure,
            Status::Rejected => ReadingStatus::Rejected,
        },
        reason: rep.reason.clone(),
        unit: rep.unit.clone(),
        rate_per_hour: rep.rate_per_hour,
    }
}

/// What the bot asks of the service.
struct Backend {
    cfg: ResolvedConfig,
    meters: Vec<MeterConfig>,
    live: Arc<Live>,
}

impl Backend {
    fn geometry(&self, meter: &str) -> Option<&MeterGeometry> {
        self.meters
            .iter()
            .find(|m| m.name == meter)
            .map(|m| &m.geometry)
    }
}

impl BotBackend for Backend {
    fn meters(&self) -> Vec<String> {
        self.meters.iter().map(|m| m.name.clone()).collect()
    }

    fn last_reading(&self, meter: &str) -> Option<ObservedReading> {
        self.live.get(meter)?.last.map(|r| observed(&r))
    }

    fn last_frame(&self, meter: &str) -> Option<Vec<u8>> {
        let last = self.live.get(meter)?.last.filter(|r| !r.jpeg.is_empty())?;
        let g = self.geometry(meter)?;
        let drawn = crate::overlay::of_reading(&last, g).and_then(|img| crate::overlay::jpeg(&img));
        match drawn {
            Ok(jpeg) => Some(jpeg),
            Err(e) => {
                log::warn!("meter {meter}: drawing the last frame: {e:#}");
                None
            }
        }
    }

    fn health(&self) -> Vec<MeterHealth> {
        self.meters
            .iter()
            .map(|m| {
                let live = self.live.get(&m.name).unwrap_or_default();
                MeterHealth {
                    meter: m.name.clone(),
                    last_frame: live.last_frame,
                    last_stored: live.last_stored.map(|(t, _)| t),
                    not_stored_in_a_row: live.not_stored_in_a_row,
                    last_error: live.last_error.map(|e| e.message.clone()),
                }
            })
            .collect()
    }

    fn set_value(&self, meter: &str, value: &str) -> Result<String, String> {
        let m = self
            .meters
            .iter()
            .find(|m| m.name == meter)
            .ok_or_else(|| format!("no meter named {meter:?}"))?;
        let set =
            crate::state::set_value(&self.cfg.state_dir, m, value).map_err(|e| format!("{e:#}"))?;
        Ok(format!(
            "{meter}: stored value set to {}{}",
            set.value,
            set.previous
                .map(|p| format!(" (was {p})"))
                .unwrap_or_default()
        ))
    }
}
