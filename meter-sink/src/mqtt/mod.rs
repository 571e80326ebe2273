//! MQTT with Home Assistant discovery.
//!
//! Topics (`<prefix>` is [`MqttSpec::topic_prefix`], `meter-reader` by default):
//! - `<prefix>/<meter>/state`: one retained JSON [`StateMessage`] per
//!   reading: `value` is always the last *stored* value (an unsure or
//!   rejected reading keeps it and shows its own digits in `raw`), so Home
//!   Assistant's `total_increasing` statistics never see a decrease;
//! - `<prefix>/status`: `online` / `offline`, retained, `offline` as the
//!   last will;
//! - `homeassistant/device/<id>/config`: retained discovery, one per meter
//!   (or one per entity with [`DiscoverySpec::per_entity`]), published at
//!   each connect and again when Home Assistant announces `online` on
//!   `homeassistant/status`;
//! - `<prefix>/<meter>/set_value`, `<prefix>/<meter>/read_now`: commands,
//!   only when enabled, handed to the service as [`MqttCommand`]s.
//!
//! Delivery: QoS 1. [`MqttSink::write`] returns `Ok` only once the broker
//! acknowledged every message (PUBACK), so behind a
//! [`SpoolingSink`](crate::SpoolingSink) a reading leaves the spool only
//! after the broker has it; while the broker is away readings wait there and
//! go out in order when it is back. A reading the broker confirmed is never
//! published again: the sink remembers the newest confirmed reading per
//! meter (in its spool folder), and at each connect it first reads back its
//! own retained state messages, so a reading whose PUBACK was lost, or that
//! a crash left in the spool, is skipped when the broker has it. What QoS 1
//! cannot tell apart remains: a broker that dies after forwarding a message
//! but before its PUBACK got out and before it saved the message gets it
//! again. Such a re-sent older reading never carries a `value` below one
//! already sent, so Home Assistant sees no decrease.

mod ha;
mod link;
mod spec;
mod state;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use time::OffsetDateTime;

pub use ha::{ha_unit, DeviceClass};
pub use spec::{CommandsSpec, DiscoverySpec, MeterInfo, MqttSpec};
pub use state::StateMessage;

use self::link::{Link, Out, Starter};
use self::state::Memory;
use crate::error::SinkError;
use crate::record::{Record, RecordKind};
use crate::spooling::SpoolingSink;
use crate::Sink;

/// How long a write waits for a connection being made before the readings
/// go to the spool.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// A command received over MQTT (only those enabled in
/// [`MqttSpec::commands`]), for the service to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum MqttCommand {
    /// `<prefix>/<meter>/set_value` with a number (or `{"value": n}`): what
    /// `meter set-value` does.
    SetValue {
        /// The meter.
        meter: String,
        /// The new value.
        value: f64,
    },
    /// `<prefix>/<meter>/read_now` (any payload; Home Assistant's button
    /// sends `PRESS`): take a reading now.
    ReadNow {
        /// The meter.
        meter: String,
    },
}

type Models = Arc<Mutex<HashMap<String, String>>>;

/// Publishes readings to an MQTT broker (see the [module](self) docs).
/// Build it with [`open`], which puts it behind the durable spool.
pub struct MqttSink {
    spec: MqttSpec,
    link: Link,
    memory: Memory,
    models: Models,
    known: HashSet<String>,
    warned_unknown: HashSet<String>,
    /// Per meter, the capture time of the newest reading handed to the
    /// broker in this run and the highest `value` sent.
    sent: HashMap<String, (OffsetDateTime, f64)>,
    handle: MqttHandle,
}

impl std::fmt::Debug for MqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSink")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// The service's side of an [`MqttSink`]: commands received, the model
/// version shown in the state messages, and starting the connection.
#[derive(Clone)]
pub struct MqttHandle {
    starter: Arc<Mutex<Option<(Starter, SinkHooks)>>>,
    commands: Receiver<MqttCommand>,
    models: Models,
}

impl std::fmt::Debug for MqttHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttHandle").finish_non_exhaustive()
    }
}

impl MqttHandle {
    /// Starts the connection thread (once; later calls do nothing).
    /// [`open`] calls it after taking the spool's lock, so that a second
    /// process on the same spool fails before it throws the first one's
    /// client (same client id) off the broker.
    pub fn start(&self) {
        let taken = self
            .starter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((starter, hooks)) = taken {
            starter.start(hooks);
        }
    }

    /// Commands received over MQTT, in arrival order (none unless enabled).
    pub fn commands(&self) -> &Receiver<MqttCommand> {
        &self.commands
    }

    /// The model version reading `meter` (from now on in its state messages).
    pub fn set_model_version(&self, meter: &str, version: impl Into<String>) {
        self.models
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(meter.to_owned(), version.into());
    }
}

/// The MQTT sink behind a durable spool in `spool_dir` (which also keeps the
/// sink's memory, `mqtt-memory.json`), connected, with its handle.
///
/// Checks the spec ([`MqttSpec::validate`]) and every meter
/// ([`MqttSpec::check_meter`]) first.
pub fn open(
    spec: &MqttSpec,
    spool_dir: impl Into<PathBuf>,
    meters: &[MeterInfo],
) -> Result<(SpoolingSink, MqttHandle), SinkError> {
    let dir = spool_dir.into();
    let sink = MqttSink::new(spec, &dir, meters)?;
    let handle = sink.handle();
    let sink = SpoolingSink::builder(sink, dir).build()?;
    handle.start();
    Ok((sink, handle))
}

impl MqttSink {
    /// The sink, not connected yet ([`MqttHandle::start`] connects); `dir`
    /// keeps its memory (the spool folder). Most callers want [`open`].
    pub fn new(spec: &MqttSpec, dir: &Path, meters: &[MeterInfo]) -> Result<Self, SinkError> {
        spec.validate()?;
        let mut ids: HashMap<String, &str> = HashMap::new();
        for m in meters {
            spec.check_meter(&m.name, m.unit.as_deref())?;
            let id = ha::device_id(spec, &m.name);
            if let Some(other) = ids.insert(id.clone(), &m.name) {
                return Err(SinkError::HomeAssistant {
                    meter: m.name.clone(),
                    unit: m.unit.clone(),
                    problem: format!(
                        "its MQTT id {id:?} is the same as meter {other:?}'s; rename one of them"
                    ),
                });
            }
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| SinkError::io("cannot create spool directory", dir, e))?;
        let mut memory = Memory::load(dir)?;
        for m in meters {
            if let Some((value, at)) = m.last_stored {
                let mem = memory.meters.entry(m.name.clone()).or_default();
                if mem.last_stored.is_none_or(|s| s.at < at) {
                    mem.last_stored = Some(state::StoredMark { value, at });
                }
            }
        }
        let models: Models = Arc::new(Mutex::new(
            meters
                .iter()
                .filter_map(|m| Some((m.name.clone(), m.model_version.clone()?)))
                .collect(),
        ));
        let (link, starter) = Link::new(spec)?;
        let (commands_tx, commands) = crossbeam_channel::bounded(64);
        let hooks = SinkHooks::new(spec, meters, commands_tx);
        Ok(Self {
            spec: spec.clone(),
            link,
            memory,
            models: models.clone(),
            known: meters.iter().map(|m| m.name.clone()).collect(),
            warned_unknown: HashSet::new(),
            sent: HashMap::new(),
            handle: MqttHandle {
                starter: Arc::new(Mutex::new(Some((starter, hooks)))),
                commands,
                models,
            },
        })
    }

    /// The handle (start, commands, model version).
    pub fn handle(&self) -> MqttHandle {
        self.handle.clone()
    }

    /// The state message each reading gets, and per reading whether it is
    /// published (`Some` with the `value` sent) or skipped (`None`: the
    /// broker already has it).
    fn plan(
        &self,
        records: &[Record],
        broker: &HashMap<String, OffsetDateTime>,
    ) -> (Vec<Out>, Vec<Option<Option<f64>>>) {
        let models = self
            .models
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut scratch: HashMap<&str, state::MeterMemory> = HashMap::new();
        let mut out = Vec::new();
        let mut plan = Vec::with_capacity(records.len());
        for r in records {
            let mem = scratch.entry(&r.meter).or_insert_with(|| {
                self.memory
                    .meters
                    .get(&r.meter)
                    .cloned()
                    .unwrap_or_default()
            });
            let known = mem.published.max(broker.get(&r.meter).copied());
            if known.is_none_or(|t| r.captured_at > t) {
                let mut message = mem.message(r, models.get(&r.meter).map(String::as_str));
                // A replay of readings sent before without an answer: some
                // subscribers may have seen later values, and Home Assistant
                // takes any decrease for a meter reset.
                if let Some(&(newest, floor)) = self.sent.get(&r.meter) {
                    if r.captured_at <= newest && message.value.is_some_and(|v| v < floor) {
                        message.value = Some(floor);
                    }
                }
                out.push(Out {
                    topic: self.spec.meter_topic(&r.meter, "state"),
                    payload: serde_json::to_vec(&message).expect("state messages encode"),
                    retain: self.spec.retain,
                });
                plan.push(Some(message.value));
            } else {
                plan.push(None);
            }
            mem.apply(r);
        }
        (out, plan)
    }
}

impl Sink for MqttSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        records.iter().try_for_each(Record::validate)?;
        // Health points are for the time-series database's alert rules;
        // Home Assistant sees the readings' status instead.
        let readings: Vec<Record>;
        let records = if records
            .iter()
            .any(|r| matches!(r.kind, RecordKind::Health(_)))
        {
            readings = records
                .iter()
                .filter(|r| !matches!(r.kind, RecordKind::Health(_)))
                .cloned()
                .collect();
            &readings[..]
        } else {
            records
        };
        if records.is_empty() {
            return Ok(());
        }
        for r in records {
            if !self.known.contains(&r.meter) && self.warned_unknown.insert(r.meter.clone()) {
                log::warn!(
                    "MQTT: meter {:?} was not given to the sink at start; its state is published without Home Assistant discovery",
                    r.meter
                );
            }
        }
        let mut plan = Vec::new();
        let sent = self.link.send(CONNECT_WAIT, |broker| {
            let (out, p) = self.plan(records, broker);
            plan = p;
            out
        })?;
        // Handed to the broker: whatever the answer, subscribers may see it.
        for (r, value) in records.iter().zip(&plan) {
            if let Some(value) = value {
                let entry = self
                    .sent
                    .entry(r.meter.clone())
                    .or_insert((r.captured_at, f64::NEG_INFINITY));
                entry.0 = entry.0.max(r.captured_at);
                entry.1 = entry.1.max(value.unwrap_or(f64::NEG_INFINITY));
            }
        }
        let (acked, result) = match self.link.confirm(sent) {
            Ok(()) => (usize::MAX, Ok(())),
            Err((acked, e)) => (acked, Err(e)),
        };
        let mut left = acked;
        let mut changed = false;
        let mut committing = true;
        for (r, value) in records.iter().zip(&plan) {
            if value.is_some() {
                let confirmed = left > 0;
                left = left.saturating_sub(1);
                log::trace!(
                    "MQTT {}: sent {} {} {}",
                    self.spec.url,
                    r.meter,
                    r.captured_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    if confirmed {
                        "confirmed"
                    } else {
                        "unconfirmed"
                    }
                );
                // Remember, in order, what the broker has: stop at the
                // first reading it did not confirm.
                committing &= confirmed;
            }
            if committing {
                self.memory
                    .meters
                    .entry(r.meter.clone())
                    .or_default()
                    .apply(r);
                changed = true;
            }
        }
        let skipped = plan.iter().filter(|p| p.is_none()).count();
        if skipped > 0 {
            log::info!(
                "MQTT: {skipped} readings were already on the broker (replayed after a lost acknowledgement or a restart); not published again"
            );
        }
        if changed {
            self.memory.save()?;
        }
        result
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn batch_size(&self) -> usize {
        100
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.link.shutdown(
            Out {
                topic: self.spec.status_topic(),
                payload: b"offline".to_vec(),
                retain: true,
            },
            Duration::from_secs(1),
        );
    }
}

/// The sink's side of the connection thread: discovery and commands.
struct SinkHooks {
    ha_status: Option<String>,
    command_filters: Vec<String>,
    prefix: String,
    discovery: Vec<Out>,
    stale: Vec<Out>,
    spec: CommandsSpec,
    known: HashSet<String>,
    commands: Sender<MqttCommand>,
}

impl SinkHooks {
    fn new(spec: &MqttSpec, meters: &[MeterInfo], commands: Sender<MqttCommand>) -> Self {
        let mut discovery = Vec::new();
        let mut stale = Vec::new();
        if spec.discovery.enabled {
            for m in meters {
                if let Some((messages, clear)) = ha::discovery(spec, m) {
                    discovery.extend(messages.into_iter().map(|(topic, payload)| Out {
                        topic,
                        payload,
                        retain: true,
                    }));
                    stale.extend(clear.into_iter().map(|topic| Out {
                        topic,
                        payload: Vec::new(),
                        retain: true,
                    }));
                }
            }
        }
        let mut command_filters = Vec::new();
        if spec.commands.set_value {
            command_filters.push(spec.meter_topic("+", "set_value"));
        }
        if spec.commands.read_now {
            command_filters.push(spec.meter_topic("+", "read_now"));
        }
        Self {
            ha_status: spec
                .discovery
                .enabled
                .then(|| format!("{}/status", spec.discovery.prefix)),
            command_filters,
            prefix: format!("{}/", spec.topic_prefix),
            discovery,
            stale,
            spec: spec.commands.clone(),
            known: meters.iter().map(|m| m.name.clone()).collect(),
            commands,
        }
    }

    fn command(&self, topic: &str, payload: &[u8], retained: bool) -> Option<MqttCommand> {
        let (meter, leaf) = topic.strip_prefix(&self.prefix)?.split_once('/')?;
        if !self.known.contains(meter) {
            log::warn!("MQTT: command on {topic} for an unknown meter ignored");
            return None;
        }
        if retained {
            // It would run again at every connect.
            log::warn!(
                "MQTT: retained command on {topic} ignored; publish commands without retain"
            );
            return None;
        }
        let meter = meter.to_owned();
        match leaf {
            "read_now" if self.spec.read_now => Some(MqttCommand::ReadNow { meter }),
            "set_value" if self.spec.set_value => match parse_value(payload) {
                Some(value) => Some(MqttCommand::SetValue { meter, value }),
                None => {
                    log::warn!(
                        "MQTT: {topic}: {:?} is not a number (send e.g. 12345.6 or {{\"value\": 12345.6}})",
                        String::from_utf8_lossy(&payload[..payload.len().min(64)])
                    );
                    None
                }
            },
            _ => None,
        }
    }
}

/// `12345.6` or `{"value": 12345.6}`, finite.
fn parse_value(payload: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    let value = match text.parse::<f64>() {
        Ok(v) => v,
        Err(_) => serde_json::from_str::<serde_json::Value>(text)
            .ok()?
            .get("value")?
            .as_f64()?,
    };
    value.is_finite().then_some(value)
}

impl link::Hooks for SinkHooks {
    fn subscriptions(&self) -> Vec<String> {
        self.ha_status
            .iter()
            .chain(&self.command_filters)
            .cloned()
            .collect()
    }

    fn on_ready(&self) -> Vec<Out> {
        self.stale.iter().chain(&self.discovery).cloned().collect()
    }

    fn on_message(&self, topic: &str, payload: &[u8], retained: bool) -> Vec<Out> {
        if self.ha_status.as_deref() == Some(topic) {
            // A retained `online` arrives at every connect, which publishes
            // discovery anyway.
            if payload == b"online" && !retained {
                log::info!("MQTT: Home Assistant is online; publishing discovery again");
                return self.discovery.clone();
            }
            return Vec::new();
        }
        if let Some(command) = self.command(topic, payload, retained) {
            if self.commands.try_send(command).is_err() {
                log::warn!("MQTT: command on {topic} dropped: 64 commands wait unhandled");
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::link::Hooks;
    use super::*;

    #[test]
    fn set_value_payloads() {
        assert_eq!(parse_value(b"12345.6"), Some(12345.6));
        assert_eq!(parse_value(b" 7 \n"), Some(7.0));
        assert_eq!(parse_value(br#"{"value": 1.5}"#), Some(1.5));
        assert_eq!(parse_value(b"NaN"), None);
        assert_eq!(parse_value(b"inf"), None);
        assert_eq!(parse_value(b"twelve"), None);
        assert_eq!(parse_value(br#"{"v": 1}"#), None);
    }

    #[test]
    fn commands_only_when_enabled_and_for_known_meters() {
        let mut spec = MqttSpec::new("mqtt://x");
        spec.commands.read_now = true;
        let (tx, _rx) = crossbeam_channel::bounded(4);
        let hooks = SinkHooks::new(&spec, &[MeterInfo::new("house", Some("kWh"))], tx);
        assert_eq!(
            hooks.command("meter-reader/house/read_now", b"PRESS", false),
            Some(MqttCommand::ReadNow {
                meter: "house".into()
            })
        );
        assert_eq!(
            hooks.command("meter-reader/house/set_value", b"1", false),
            None
        );
        assert_eq!(
            hooks.command("meter-reader/garage/read_now", b"", false),
            None
        );
        assert_eq!(
            hooks.command("meter-reader/house/read_now", b"", true),
            None
        );
        assert_eq!(
            hooks.subscriptions(),
            ["homeassistant/status", "meter-reader/+/read_now"]
        );
    }
}
