//! The InfluxDB schema, written as line protocol.
//!
//! - `meter_reading,meter=<name>[,unit=<unit>] value=..,raw=..[,rate_per_hour=..],confidence_min=..,digit_0=..,digit_1=.. <milliseconds>`
//! - `meter_event,meter=<name>,status=unsure|rejected[,unit=<unit>] reason="..."[,raw=..] <milliseconds>`
//! - `meter_health,meter=<name> up=1,not_stored_in_a_row=..[,seconds_since_frame=..][,seconds_since_stored=..] <milliseconds>`
//!
//! Timestamps are the capture time in milliseconds (`precision=ms`), so
//! readings less than a second apart never overwrite each other.
//!
//! All numbers are floats (InfluxDB fixes a field's type on first write, so
//! an integer-looking value must never become an integer field). Digit
//! values are in steps (`3.7`), `digit_0` the most significant.

use influxdb_line_protocol::LineProtocolBuilder;

use crate::record::{Record, RecordKind};

/// Measurement of stored values.
pub const READING_MEASUREMENT: &str = "meter_reading";
/// Measurement of unsure and rejected readings.
pub const EVENT_MEASUREMENT: &str = "meter_event";
/// Measurement of each meter's health, one point per cycle.
pub const HEALTH_MEASUREMENT: &str = "meter_health";

const DIGIT_KEYS: [&str; 16] = [
    "digit_0", "digit_1", "digit_2", "digit_3", "digit_4", "digit_5", "digit_6", "digit_7",
    "digit_8", "digit_9", "digit_10", "digit_11", "digit_12", "digit_13", "digit_14", "digit_15",
];

/// Appends the records' lines (timestamps in milliseconds, so write with
/// `precision=ms`) to `buf` and returns it. Records are assumed valid
/// ([`Record::validate`]); the sinks check before encoding.
pub fn encode(records: &[Record], buf: Vec<u8>) -> Vec<u8> {
    let mut lp = LineProtocolBuilder::new_with(buf);
    for r in records {
        let ts = r.timestamp_ms();
        match &r.kind {
            RecordKind::Stored(s) => {
                let line = lp.measurement(READING_MEASUREMENT).tag("meter", &r.meter);
                let line = match &r.unit {
                    Some(unit) => line.tag("unit", unit),
                    None => line,
                };
                let mut line = line.field("value", s.value).field("raw", s.raw);
                if let Some(rate) = s.rate_per_hour {
                    line = line.field("rate_per_hour", rate);
                }
                line = line.field("confidence_min", round6(s.confidence_min));
                for (i, d) in s.digits.iter().enumerate() {
                    let value = f64::from(d.tenths.index()) / 10.0;
                    line = match DIGIT_KEYS.get(i) {
                        Some(key) => line.field(key, value),
                        None => line.field(&format!("digit_{i}"), value),
                    };
                }
                lp = line.timestamp(ts).close_line();
            }
            RecordKind::Event(e) => {
                let line = lp
                    .measurement(EVENT_MEASUREMENT)
                    .tag("meter", &r.meter)
                    .tag("status", e.status.as_str());
                let line = match &r.unit {
                    Some(unit) => line.tag("unit", unit),
                    None => line,
                };
                // Line protocol cannot carry a raw newline, even quoted.
                let reason;
                let reason_text = if e.reason.contains(['\n', '\r']) {
                    reason = e.reason.replace(['\n', '\r'], " ");
                    reason.as_str()
                } else {
                    e.reason.as_str()
                };
                let mut line = line.field("reason", reason_text);
                if let Some(raw) = e.raw {
                    line = line.field("raw", raw);
                }
                lp = line.timestamp(ts).close_line();
            }
            RecordKind::Health(h) => {
                let mut line = lp
                    .measurement(HEALTH_MEASUREMENT)
                    .tag("meter", &r.meter)
                    .field("up", 1.0)
                    .field("not_stored_in_a_row", f64::from(h.not_stored_in_a_row));
                if let Some(s) = h.seconds_since_frame {
                    line = line.field("seconds_since_frame", s);
                }
                if let Some(s) = h.seconds_since_stored {
                    line = line.field("seconds_since_stored", s);
                }
                lp = line.timestamp(ts).close_line();
            }
        }
    }
    lp.build()
}

/// An f32 confidence as the short decimal people expect (`0.9`, not
/// `0.8999999761581421`).
fn round6(x: f32) -> f64 {
    (f64::from(x) * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{DigitValue, EventStatus, NotStored, StoredValue};
    use time::macros::datetime;

    #[test]
    fn reading_line() {
        let r = Record::stored(
            "house main",
            datetime!(2026-03-01 12:00:07 +01:00),
            StoredValue {
                value: 12345.0,
                raw: 12345.6,
                rate_per_hour: Some(0.42),
                confidence_min: 0.9,
                digits: ["1", "2.5", "9.9"]
                    .iter()
                    .map(|t| DigitValue {
                        tenths: t.parse().unwrap(),
                        confidence: 0.9,
                    })
                    .collect(),
            },
        )
        .with_unit("kWh");
        let text = String::from_utf8(encode(&[r], Vec::new())).unwrap();
        assert_eq!(
            text,
            "meter_reading,meter=house\\ main,unit=kWh value=12345,raw=12345.6,rate_per_hour=0.42,confidence_min=0.9,digit_0=1,digit_1=2.5,digit_2=9.9 1772362807000\n"
        );
    }

    #[test]
    fn health_line() {
        use crate::record::Health;
        let r = Record::health(
            "gas",
            datetime!(2026-03-01 11:00:07 UTC),
            Health {
                seconds_since_frame: Some(60.0),
                seconds_since_stored: None,
                not_stored_in_a_row: 3,
            },
        );
        r.validate().unwrap();
        let text = String::from_utf8(encode(&[r], Vec::new())).unwrap();
        assert_eq!(
            text,
            "meter_health,meter=gas up=1,not_stored_in_a_row=3,seconds_since_frame=60 1772362807000\n"
        );
    }

    #[test]
    fn event_line_escapes_reason() {
        let r = Record::event(
            "gas",
            datetime!(2026-03-01 11:00:07 UTC),
            NotStored {
                status: EventStatus::Rejected,
                raw: None,
                reason: "value \"decreased\"\nby 3".into(),
            },
        );
        let text = String::from_utf8(encode(&[r], Vec::new())).unwrap();
        assert_eq!(
            text,
            "meter_event,meter=gas,status=rejected reason=\"value \\\"decreased\\\" by 3\" 1772362807000\n"
        );
    }
}
