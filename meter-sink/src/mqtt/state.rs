//! The per-meter state message, and what the sink remembers between runs
//! to fill it: the last stored value (an unsure or rejected reading carries
//! it, never its own raw value) and the newest reading the broker confirmed
//! (a replay after a crash skips what was already published).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::SinkError;
use crate::record::{Record, RecordKind};

/// File in the spool folder.
const MEMORY_FILE: &str = "mqtt-memory.json";

/// The JSON at `<prefix>/<meter>/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMessage {
    /// The last stored value (never a refused reading); `null` only before
    /// the first value was ever stored.
    pub value: Option<f64>,
    /// The value read from the digits this time, if any.
    pub raw: Option<f64>,
    /// `stored`, `unsure` or `rejected`.
    pub status: String,
    /// Why the reading was not stored (`null` when stored).
    pub reason: Option<String>,
    /// When the frame was captured (RFC 3339, UTC).
    pub time: String,
    /// The meter's unit as configured.
    pub unit: Option<String>,
    /// Consumption per hour since the previous stored value.
    pub rate_per_hour: Option<f64>,
    /// The lowest digit confidence (0..1) of a stored reading.
    pub confidence_min: Option<f32>,
    /// The model version reading this meter.
    pub model: Option<String>,
}

/// A stored value and when it was captured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredMark {
    pub value: f64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// What the sink knows of one meter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct MeterMemory {
    pub last_stored: Option<StoredMark>,
    /// Capture time of the newest reading the broker confirmed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub published: Option<OffsetDateTime>,
}

impl MeterMemory {
    /// Takes in a reading that reached the broker (or was found there).
    pub fn apply(&mut self, r: &Record) {
        if let RecordKind::Stored(s) = &r.kind {
            if self.last_stored.is_none_or(|m| m.at <= r.captured_at) {
                self.last_stored = Some(StoredMark {
                    value: s.value,
                    at: r.captured_at,
                });
            }
        }
        self.published = self.published.max(Some(r.captured_at));
    }

    /// The state message of `r`, given what was stored before it.
    pub fn message(&self, r: &Record, model: Option<&str>) -> StateMessage {
        let time = r
            .captured_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| r.captured_at.unix_timestamp().to_string());
        let mut m = StateMessage {
            value: self.last_stored.map(|s| s.value),
            raw: None,
            status: String::new(),
            reason: None,
            time,
            unit: r.unit.clone(),
            rate_per_hour: None,
            confidence_min: None,
            model: model.map(str::to_owned),
        };
        match &r.kind {
            RecordKind::Stored(s) => {
                m.value = Some(s.value);
                m.raw = Some(s.raw);
                m.status = "stored".into();
                m.rate_per_hour = s.rate_per_hour;
                m.confidence_min = Some(s.confidence_min);
            }
            RecordKind::Event(e) => {
                m.raw = e.raw;
                m.status = e.status.as_str().into();
                m.reason = Some(e.reason.clone());
            }
            // Never published (the sink leaves them out).
            RecordKind::Health(_) => {}
        }
        m
    }
}

/// Per-meter memory, kept in the spool folder.
#[derive(Debug)]
pub(crate) struct Memory {
    path: PathBuf,
    pub meters: BTreeMap<String, MeterMemory>,
}

#[derive(Serialize, Deserialize)]
struct MemoryFile {
    meters: BTreeMap<String, MeterMemory>,
}

impl Memory {
    /// Reads `dir`'s memory file (none yet: empty). A damaged file is
    /// reported, not ignored: values in it might otherwise be published
    /// again or a refused reading shown without the stored value.
    pub fn load(dir: &Path) -> Result<Self, SinkError> {
        let path = dir.join(MEMORY_FILE);
        let meters = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<MemoryFile>(&bytes)
                    .map_err(|e| SinkError::SpoolCorrupt {
                        path: path.clone(),
                        offset: e.column() as u64,
                        problem: format!(
                            "not the MQTT sink's memory ({e}); delete it to start afresh"
                        ),
                    })?
                    .meters
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(SinkError::io("cannot read", &path, e)),
        };
        Ok(Self { path, meters })
    }

    /// Replaces the file atomically (write, fsync, rename).
    pub fn save(&self) -> Result<(), SinkError> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&MemoryFile {
            meters: self.meters.clone(),
        })
        .map_err(|e| SinkError::io("cannot encode", &self.path, e.into()))?;
        File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.sync_all()))
            .map_err(|e| SinkError::io("cannot write", &tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| SinkError::io("cannot replace", &self.path, e))
    }
}

/// The capture time in a state message found on the broker.
pub(crate) fn message_time(payload: &[u8]) -> Option<OffsetDateTime> {
    #[derive(Deserialize)]
    struct Time {
        time: String,
    }
    let t: Time = serde_json::from_slice(payload).ok()?;
    OffsetDateTime::parse(&t.time, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests_support::sample;
    use crate::record::{EventStatus, NotStored};

    fn event(at: OffsetDateTime) -> Record {
        Record::event(
            "house",
            at,
            NotStored {
                status: EventStatus::Rejected,
                raw: Some(10.0),
                reason: "value decreased by 12335.6".into(),
            },
        )
    }

    #[test]
    fn refused_reading_carries_the_stored_value() {
        let mut mem = MeterMemory::default();
        let r = sample();
        let later = r.captured_at + time::Duration::minutes(1);
        assert_eq!(mem.message(&event(later), None).value, None);
        mem.apply(&r);
        let m = mem.message(&event(later), Some("v3"));
        assert_eq!(m.value, Some(12345.6));
        assert_eq!(m.raw, Some(10.0));
        assert_eq!(m.status, "rejected");
        assert_eq!(m.model.as_deref(), Some("v3"));
        assert_eq!(message_time(&serde_json::to_vec(&m).unwrap()), Some(later));
        mem.apply(&event(later));
        assert_eq!(mem.last_stored.unwrap().value, 12345.6);
        assert_eq!(mem.published, Some(later));
    }

    #[test]
    fn memory_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = Memory::load(dir.path()).unwrap();
        assert!(mem.meters.is_empty());
        mem.meters
            .entry("house".into())
            .or_default()
            .apply(&sample());
        mem.save().unwrap();
        let back = Memory::load(dir.path()).unwrap();
        assert_eq!(back.meters, mem.meters);
        fs::write(dir.path().join(MEMORY_FILE), b"{\"meters\": [").unwrap();
        let err = Memory::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(MEMORY_FILE), "{err}");
    }
}
