//! meter-sink integration tests, against real servers (see
//! [`testkit::servers`] and [`testkit::mosquitto`]).

mod faults;
mod files;
mod grafana;
mod hardening;
mod influx;
mod mqtt;
mod spool;
mod throughput;

use meter_sink::{DigitValue, EventStatus, NotStored, Record, StoredValue};
use time::OffsetDateTime;

/// A stored reading at Unix second `ts` whose value encodes `ts`, so a
/// test can tell every reading apart.
pub fn reading(meter: &str, ts: i64, value: f64) -> Record {
    Record::stored(
        meter,
        OffsetDateTime::from_unix_timestamp(ts).unwrap(),
        StoredValue {
            value,
            raw: value,
            rate_per_hour: Some(0.5),
            confidence_min: 0.93,
            digits: (0..6)
                .map(|i| DigitValue {
                    tenths: meter_core::Tenths::wrapping(ts / 10 + i),
                    confidence: 0.93,
                })
                .collect(),
        },
    )
    .with_unit("kWh")
}

/// A rejected reading.
pub fn rejected(meter: &str, ts: i64, raw: f64, reason: &str) -> Record {
    Record::event(
        meter,
        OffsetDateTime::from_unix_timestamp(ts).unwrap(),
        NotStored {
            status: EventStatus::Rejected,
            raw: Some(raw),
            reason: reason.into(),
        },
    )
    .with_unit("kWh")
}

/// 2026-03-02 00:00:00 UTC, a Monday.
pub const WEEK_START: i64 = 1_772_409_600;
