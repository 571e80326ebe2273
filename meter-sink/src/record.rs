//! What the sinks store: one record per frame read.

use meter_core::{Decision, DigitPrediction, Reading, Tenths};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};

use crate::error::{RecordProblem, SinkError};

/// One reading of one meter, as handed to a [`Sink`](crate::Sink).
///
/// The CLI maps the assembled value (or the reason it was not accepted) into
/// this; the sink owns the storage schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The meter's name (InfluxDB tag `meter`).
    pub meter: String,
    /// The meter's unit, e.g. `kWh` (InfluxDB tag `unit`).
    pub unit: Option<String>,
    /// When the frame was captured. Stored in UTC with millisecond
    /// precision: readings less than a second apart are separate points,
    /// and a replayed record is the same point (same series and
    /// timestamp: InfluxDB keeps one), which makes replays idempotent.
    #[serde(with = "utc_rfc3339")]
    pub captured_at: OffsetDateTime,
    /// A stored value or an event.
    pub kind: RecordKind,
}

/// A stored value, or why the frame gave none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordKind {
    /// A plausible value (measurement `meter_reading`).
    Stored(StoredValue),
    /// An unsure or rejected reading (measurement `meter_event`).
    Event(NotStored),
    /// The meter's health, written every cycle (measurement
    /// `meter_health`): a meter whose camera or reader goes silent keeps a
    /// series that alert rules can fire on.
    Health(Health),
}

/// A meter's health at the end of a reading cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Seconds since the last frame was read (`None`: none yet).
    pub seconds_since_frame: Option<f64>,
    /// Seconds since the last stored reading (`None`: none yet).
    pub seconds_since_stored: Option<f64>,
    /// Unsure or rejected readings since the last stored one.
    pub not_stored_in_a_row: u32,
}

/// A plausible meter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredValue {
    /// The meter value after rolling-digit resolution and plausibility checks.
    pub value: f64,
    /// The value as read from the digits, before plausibility corrections.
    pub raw: f64,
    /// Consumption per hour since the previous stored value; `None` for the
    /// first value.
    pub rate_per_hour: Option<f64>,
    /// The lowest digit confidence of this frame, in 0..=1.
    pub confidence_min: f32,
    /// The digits, most significant first (`digit_0` is the leftmost).
    pub digits: Vec<DigitValue>,
}

/// One digit's reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitValue {
    /// The roller position.
    pub tenths: Tenths,
    /// The model's confidence, in 0..=1.
    pub confidence: f32,
}

impl From<&DigitPrediction> for DigitValue {
    fn from(p: &DigitPrediction) -> Self {
        Self {
            tenths: p.tenths,
            confidence: p.confidence,
        }
    }
}

/// A frame that gave no stored value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotStored {
    /// Unsure or rejected.
    pub status: EventStatus,
    /// The value read, if the digits gave one.
    pub raw: Option<f64>,
    /// Why it was not stored, for people (e.g. "value decreased by 3.2").
    pub reason: String,
}

/// Why a reading was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// A digit's confidence was too low.
    Unsure,
    /// The value failed a plausibility rule.
    Rejected,
}

impl EventStatus {
    /// The tag value written (`unsure`, `rejected`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsure => "unsure",
            Self::Rejected => "rejected",
        }
    }
}

impl Record {
    /// A stored value.
    pub fn stored(
        meter: impl Into<String>,
        captured_at: OffsetDateTime,
        value: StoredValue,
    ) -> Self {
        Self {
            meter: meter.into(),
            unit: None,
            captured_at: captured_at.to_offset(UtcOffset::UTC),
            kind: RecordKind::Stored(value),
        }
    }

    /// An unsure or rejected reading.
    pub fn event(meter: impl Into<String>, captured_at: OffsetDateTime, event: NotStored) -> Self {
        Self {
            meter: meter.into(),
            unit: None,
            captured_at: captured_at.to_offset(UtcOffset::UTC),
            kind: RecordKind::Event(event),
        }
    }

    /// A meter's health.
    pub fn health(meter: impl Into<String>, at: OffsetDateTime, health: Health) -> Self {
        Self {
            meter: meter.into(),
            unit: None,
            captured_at: at.to_offset(UtcOffset::UTC),
            kind: RecordKind::Health(health),
        }
    }

    /// Maps meter-core's verdict on one frame: a stored value (the decided
    /// value, which can differ from the `reading`'s raw one) or an event with
    /// the decision's reason. `rate_per_hour` is the caller's (it knows the
    /// previous stored value).
    pub fn from_decision(
        meter: impl Into<String>,
        captured_at: OffsetDateTime,
        reading: &Reading,
        decision: &Decision,
        rate_per_hour: Option<f64>,
    ) -> Self {
        let raw = reading.value();
        match decision {
            Decision::Stored { ticks, .. } => Self::stored(
                meter,
                captured_at,
                StoredValue {
                    value: reading.counter.to_units(*ticks),
                    raw,
                    rate_per_hour,
                    // A counter has at least one roller (Counter::new).
                    confidence_min: reading.min_confidence().map_or(0.0, |(_, c)| c),
                    digits: reading
                        .digits
                        .iter()
                        .map(|d| DigitValue {
                            tenths: d.observed,
                            confidence: d.confidence,
                        })
                        .collect(),
                },
            ),
            Decision::Rejected(reason) | Decision::Unsure(reason) => Self::event(
                meter,
                captured_at,
                NotStored {
                    status: if matches!(decision, Decision::Rejected(_)) {
                        EventStatus::Rejected
                    } else {
                        EventStatus::Unsure
                    },
                    raw: Some(raw),
                    reason: reason.to_string(),
                },
            ),
        }
    }

    /// Sets the unit.
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// Capture time in whole seconds since the Unix epoch (UTC).
    pub fn timestamp_s(&self) -> i64 {
        self.captured_at.unix_timestamp()
    }

    /// Capture time in whole milliseconds since the Unix epoch (UTC),
    /// rounded down: the timestamp written to InfluxDB.
    pub fn timestamp_ms(&self) -> i64 {
        let ms = self
            .captured_at
            .unix_timestamp_nanos()
            .div_euclid(1_000_000);
        // An OffsetDateTime spans years -9999..=9999: always fits.
        i64::try_from(ms).unwrap_or(i64::MAX)
    }

    /// Checks what every sink needs: a meter name, tags without control
    /// characters, finite numbers.
    pub fn validate(&self) -> Result<(), SinkError> {
        self.problem().map_or(Ok(()), |problem| {
            Err(SinkError::InvalidRecord {
                meter: self.meter.clone(),
                problem,
            })
        })
    }

    fn problem(&self) -> Option<RecordProblem> {
        if self.meter.is_empty() {
            return Some(RecordProblem::EmptyMeter);
        }
        let tags = std::iter::once(("meter", self.meter.as_str()))
            .chain(self.unit.as_deref().map(|u| ("unit", u)));
        for (tag, value) in tags {
            if value.chars().any(char::is_control) {
                return Some(RecordProblem::ControlCharacter {
                    tag,
                    value: value.to_owned(),
                });
            }
        }
        if self.unit.as_deref() == Some("") {
            return Some(RecordProblem::EmptyUnit);
        }
        let not_finite = |field: &str| {
            Some(RecordProblem::NotFinite {
                field: field.to_owned(),
            })
        };
        match &self.kind {
            RecordKind::Stored(s) => {
                let numbers = [
                    ("value", s.value),
                    ("raw", s.raw),
                    ("rate_per_hour", s.rate_per_hour.unwrap_or(0.0)),
                    ("confidence_min", f64::from(s.confidence_min)),
                ];
                if let Some((field, _)) = numbers.iter().find(|(_, v)| !v.is_finite()) {
                    return not_finite(field);
                }
                if let Some(i) = s.digits.iter().position(|d| !d.confidence.is_finite()) {
                    return not_finite(&format!("digit_{i} confidence"));
                }
            }
            RecordKind::Event(e) => {
                if e.raw.is_some_and(|r| !r.is_finite()) {
                    return not_finite("raw");
                }
            }
            RecordKind::Health(h) => {
                let numbers = [
                    ("seconds_since_frame", h.seconds_since_frame),
                    ("seconds_since_stored", h.seconds_since_stored),
                ];
                if let Some((field, _)) = numbers
                    .iter()
                    .find(|(_, v)| v.is_some_and(|v| !v.is_finite()))
                {
                    return not_finite(field);
                }
            }
        }
        None
    }
}

/// RFC 3339 in UTC whatever the value's offset, so files never carry local
/// offsets.
mod utc_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, UtcOffset};

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = t
            .to_offset(UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(|t| t.to_offset(UtcOffset::UTC))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use time::macros::datetime;

    /// A valid stored reading.
    pub(crate) fn sample() -> Record {
        Record::stored(
            "house",
            datetime!(2026-03-01 12:00:07 +01:00),
            StoredValue {
                value: 12345.6,
                raw: 12345.6,
                rate_per_hour: Some(0.42),
                confidence_min: 0.9,
                digits: vec![DigitValue {
                    tenths: "3.7".parse().unwrap(),
                    confidence: 0.9,
                }],
            },
        )
        .with_unit("kWh")
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::sample;
    use super::*;
    use time::macros::datetime;

    #[test]
    fn json_round_trip_in_utc() {
        let r = sample();
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"2026-03-01T11:00:07Z\""), "{json}");
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            back.timestamp_s(),
            datetime!(2026-03-01 11:00:07 UTC).unix_timestamp()
        );
    }

    #[test]
    fn from_core_decisions() {
        use meter_core::{assemble, decide, Counter, Rules, State};
        let p = |s: &str| DigitPrediction::with_confidence(s.parse().unwrap(), 0.95);
        let counter = Counter::new(3, 1).unwrap();
        let at = datetime!(2026-03-01 12:00 UTC);
        let reading = assemble(counter, &[p("1.0"), p("2.0"), p("3.0")]).unwrap();
        let (decision, state) =
            decide(&State::new(counter), &Rules::default(), &reading, at).unwrap();
        let r = Record::from_decision("house", at, &reading, &decision, None);
        let RecordKind::Stored(s) = &r.kind else {
            panic!("{r:?}")
        };
        assert_eq!((s.value, s.raw, s.digits.len()), (12.3, 12.3, 3));
        assert!((s.confidence_min - 0.95).abs() < 1e-6);
        let back = assemble(counter, &[p("0.0"), p("2.0"), p("3.0")]).unwrap();
        let (decision, _) = decide(
            &state,
            &Rules::default(),
            &back,
            at + time::Duration::minutes(1),
        )
        .unwrap();
        let r = Record::from_decision("house", at, &back, &decision, None);
        let RecordKind::Event(e) = &r.kind else {
            panic!("{r:?}")
        };
        assert_eq!(e.status, EventStatus::Rejected);
        assert_eq!(e.raw, Some(2.3));
        assert_eq!(
            e.reason,
            decision.to_string().trim_start_matches("rejected: ")
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let mut r = sample();
        r.meter = "a\nb".into();
        let err = r.validate().unwrap_err().to_string();
        assert!(err.contains("control character"), "{err}");
        let mut r = sample();
        if let RecordKind::Stored(s) = &mut r.kind {
            s.rate_per_hour = Some(f64::NAN);
        }
        assert!(matches!(
            r.validate(),
            Err(SinkError::InvalidRecord { problem: RecordProblem::NotFinite { field }, .. }) if field == "rate_per_hour"
        ));
        let mut r = sample();
        r.unit = Some(String::new());
        assert!(r.validate().is_err());
        assert!(sample().validate().is_ok());
    }
}
