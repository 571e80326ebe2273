//! The glue the service runs: the engine, one outbox and delivery thread
//! per `[[notify]]`, and the Telegram bot.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo(alerts: &meter_alert::AlertsConfig, notify: &[meter_alert::NotifyConfig],
//! #         backend: Arc<dyn meter_alert::BotBackend>, obs: meter_alert::Observation)
//! #         -> Result<(), meter_alert::AlertError> {
//! let meters = backend.meters();
//! let mut alerting = meter_alert::Alerting::start(
//!     alerts, notify, &meters, "state".as_ref(), backend, Default::default())?;
//! // For every event of the reader, and a Tick every minute:
//! alerting.observe(&obs)?;
//! // At shutdown:
//! alerting.stop();
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::bot::{BotBackend, BotHandle, Commands, Firing};
use crate::config::{AlertsConfig, NotifyConfig};
use crate::engine::{Engine, EngineState};
use crate::event::{Alert, Notification, Observation};
use crate::outbox::{Backoff, Delivery, Notifier, Outbox};
use crate::telegram::TelegramNotifier;
use crate::webhook::WebhookNotifier;
use crate::AlertError;

/// Settings that are not in the config file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Waits between delivery attempts and polls.
    pub backoff: Backoff,
}

/// Where a notifier's notifications go, and which it wants.
#[derive(Debug)]
struct Route {
    outbox: Arc<Outbox>,
    alerts: bool,
    readings: bool,
    photos: bool,
}

/// The engine and the notifiers, running.
pub struct Alerting {
    engine: Engine,
    state_dir: PathBuf,
    routes: Vec<Route>,
    backend: Arc<dyn BotBackend>,
    firing: Firing,
    deliveries: Vec<Delivery>,
    bots: Vec<BotHandle>,
}

impl Alerting {
    /// Loads the engine's state from `state_dir`, opens the outboxes
    /// (`state_dir/outbox/<notifier>/`) and starts a delivery thread per
    /// notifier and a bot per Telegram notifier with `commands`. A corrupt
    /// state file is logged and replaced.
    pub fn start(
        alerts: &AlertsConfig,
        notify: &[NotifyConfig],
        meters: &[String],
        state_dir: &Path,
        backend: Arc<dyn BotBackend>,
        options: Options,
    ) -> Result<Self, AlertError> {
        let tz = alerts.time_zone()?;
        let state = EngineState::load(state_dir).unwrap_or_else(|e| {
            log::error!("{}; starting with an empty alert state", crate::chain(&e));
            EngineState::default()
        });
        let engine = Engine::new(alerts, meters, state)?;
        let firing: Firing = Arc::new(Mutex::new(engine.firing()));
        let mut names = Vec::new();
        let mut made: Vec<(Route, Box<dyn Notifier>)> = Vec::new();
        let mut bots = Vec::new();
        for n in notify {
            let (name, route_of): (String, _) = match n {
                NotifyConfig::Telegram(t) => (t.name().to_owned(), (true, false, t.photos)),
                NotifyConfig::Webhook(w) => (w.name(), (w.alerts, w.sends_readings(), false)),
            };
            if names.contains(&name)
                || name.is_empty()
                || name.contains(['/', '\\'])
                || name.starts_with('.')
            {
                return Err(AlertError::config(
                    format!("notify {name}.name"),
                    "notifier names must be unique and usable as a folder name",
                ));
            }
            names.push(name.clone());
            let notifier: Box<dyn Notifier> = match n {
                NotifyConfig::Telegram(t) => Box::new(TelegramNotifier::new(t)?),
                NotifyConfig::Webhook(w) => Box::new(WebhookNotifier::new(w, tz.clone())?),
            };
            let outbox = Outbox::open(state_dir.join("outbox").join(&name))?;
            if !outbox.is_empty() {
                log::info!(
                    "notifier {name}: {} notifications queued from before",
                    outbox.len()
                );
            }
            let (alerts, readings, photos) = route_of;
            made.push((
                Route {
                    outbox,
                    alerts,
                    readings,
                    photos,
                },
                notifier,
            ));
        }
        // Bots only once every notifier is valid: nothing half-started.
        for n in notify {
            if let NotifyConfig::Telegram(t) = n {
                if t.commands {
                    let commands = Commands::new(backend.clone(), tz.clone(), firing.clone());
                    bots.push(BotHandle::spawn(t, commands, state_dir, options.backoff)?);
                }
            }
        }
        let mut routes = Vec::new();
        let mut deliveries = Vec::new();
        for (route, notifier) in made {
            deliveries.push(Delivery::spawn(
                route.outbox.clone(),
                notifier,
                options.backoff,
            ));
            routes.push(route);
        }
        Ok(Self {
            engine,
            state_dir: state_dir.to_owned(),
            routes,
            backend,
            firing,
            deliveries,
            bots,
        })
    }

    /// Feeds the engine, queues what it sends (and readings for the
    /// webhooks that want them) and saves its state. Quick: no network.
    pub fn observe(&mut self, obs: &Observation) -> Result<Vec<Alert>, AlertError> {
        let previous = match obs {
            Observation::Reading(r) => self
                .engine
                .state()
                .meters
                .get(&r.meter)
                .and_then(|m| m.last_stored)
                .map(|(_, v)| v),
            _ => None,
        };
        let alerts = self.engine.observe(obs);
        let mut first_error = None;
        let mut push = |route: &Route, n: &Notification, photo: Option<&[u8]>| {
            if let Err(e) = route.outbox.push(n, photo) {
                log::error!("{}: notification lost", crate::chain(&e));
                first_error.get_or_insert(e);
            }
        };
        if let Observation::Reading(r) = obs {
            let n = Notification::Reading {
                reading: r.clone(),
                previous,
            };
            for route in self.routes.iter().filter(|r| r.readings) {
                push(route, &n, None);
            }
        }
        for alert in &alerts {
            log::info!("alert {}: {}", alert.title(), alert.message);
            let wants_photo = alert.with_frame && self.routes.iter().any(|r| r.alerts && r.photos);
            let photo = wants_photo
                .then(|| self.backend.last_frame(&alert.meter))
                .flatten();
            let n = Notification::Alert(alert.clone());
            for route in self.routes.iter().filter(|r| r.alerts) {
                push(route, &n, photo.as_deref().filter(|_| route.photos));
            }
        }
        if !alerts.is_empty() {
            *self.firing.lock().unwrap_or_else(|e| e.into_inner()) = self.engine.firing();
        }
        // After queueing: a crash in between sends an alert twice rather
        // than never.
        self.engine.state().save(&self.state_dir)?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(alerts),
        }
    }

    /// The rules firing now: (meter, rule).
    pub fn firing(&self) -> Vec<(String, crate::AlertRule)> {
        self.engine.firing()
    }

    /// Notifications waiting per notifier: (outbox folder, count).
    pub fn queued(&self) -> Vec<(PathBuf, usize)> {
        self.routes
            .iter()
            .map(|r| (r.outbox.dir().to_owned(), r.outbox.len()))
            .collect()
    }

    /// Stops the bots and delivery threads; queued notifications stay on
    /// disk for the next start.
    pub fn stop(self) {
        for b in self.bots {
            b.stop();
        }
        for d in self.deliveries {
            d.stop();
        }
    }
}
