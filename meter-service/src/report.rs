//! What one reading gave: the `--json` object of `meter predict` and
//! `meter run`, the log line, and the record for the sinks.

use std::fmt;

use meter_core::{Decision, Reading};
use meter_sink::Record;
use serde::Serialize;
use time::OffsetDateTime;

/// Whether a reading was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored: the meter's value now.
    Stored,
    /// Not sure enough (a digit below the confidence, rollers that disagree).
    Unsure,
    /// Implausible (went down, rose too fast).
    Rejected,
}

impl Status {
    /// The status of `decision`.
    pub fn of(decision: &Decision) -> Self {
        match decision {
            Decision::Stored { .. } => Status::Stored,
            Decision::Unsure(_) => Status::Unsure,
            Decision::Rejected(_) => Status::Rejected,
        }
    }

    /// `stored`, `unsure` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stored => "stored",
            Status::Unsure => "unsure",
            Status::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One digit in a report.
#[derive(Debug, Clone, Serialize)]
pub struct DigitReport {
    /// The roller position read, in steps (`3.7`).
    pub value: f32,
    /// The model's confidence.
    pub confidence: f32,
}

/// What one reading gave.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Meter name.
    pub meter: String,
    /// Capture time, RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The stored value; `None` when not stored.
    pub value: Option<f64>,
    /// The assembled reading before plausibility.
    pub raw: f64,
    /// The assembled reading as the counter shows it (`001234.56`).
    pub raw_text: String,
    /// Each digit, most significant first.
    pub digits: Vec<DigitReport>,
    /// The probability that the judged value is right, from every digit's
    /// distribution under the odometer model (the history only vetoes).
    pub probability: f32,
    /// Stored, unsure or rejected.
    pub status: Status,
    /// Why it was not stored, or what is worth knowing about a stored one.
    pub reason: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Change per hour since the previous stored value.
    pub rate_per_hour: Option<f64>,
    /// The full decision.
    #[serde(skip)]
    pub decision: Decision,
    /// The assembled reading.
    #[serde(skip)]
    pub reading: Reading,
}

impl Report {
    /// One structured log line.
    pub fn log_line(&self) -> String {
        let digits: Vec<String> = self
            .digits
            .iter()
            .map(|d| format!("{:.1}@{:.2}", d.value, d.confidence))
            .collect();
        let value = self.value.map_or("-".to_owned(), |v| v.to_string());
        let mut line = format!(
            "time={} meter={} status={} value={value} raw={} p={:.3} digits={}",
            self.time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            self.meter,
            self.status,
            self.raw_text,
            self.probability,
            digits.join(",")
        );
        if let Some(r) = &self.reason {
            line.push_str(&format!(" reason={r:?}"));
        }
        line
    }

    /// The record for the sinks.
    pub fn record(&self) -> Record {
        let rec = Record::from_decision(
            &self.meter,
            self.time,
            &self.reading,
            &self.decision,
            self.rate_per_hour,
        );
        match &self.unit {
            Some(u) => rec.with_unit(u.clone()),
            None => rec,
        }
    }

    /// The report as one JSON object (`predict --json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serialises")
    }
}
