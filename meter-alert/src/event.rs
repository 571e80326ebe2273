//! What goes in (observations of the reader) and what comes out (alerts,
//! and the notifications a notifier delivers).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::AlertRule;

/// What the engine is fed, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observation {
    /// A frame was read: stored, unsure or rejected.
    Reading(ObservedReading),
    /// No frame: the camera did not answer, the frame was unusable.
    CaptureFailed {
        /// The meter.
        meter: String,
        /// When the capture was tried.
        #[serde(with = "time::serde::rfc3339")]
        time: OffsetDateTime,
        /// What went wrong, for people.
        error: String,
    },
    /// The clock: time-based rules (silence, midnight) are evaluated for
    /// every meter. Send one at least every minute.
    Tick {
        /// Now.
        #[serde(with = "time::serde::rfc3339")]
        time: OffsetDateTime,
    },
}

impl Observation {
    /// When it happened.
    pub fn time(&self) -> OffsetDateTime {
        match self {
            Self::Reading(r) => r.time,
            Self::CaptureFailed { time, .. } | Self::Tick { time } => *time,
        }
    }
}

/// One reading of one frame, with the field names of `meter predict --json`
/// (this is also the `json` webhook's body for readings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedReading {
    /// The meter.
    pub meter: String,
    /// Capture time.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The stored value; `None` when not stored.
    pub value: Option<f64>,
    /// The value read from the digits, before plausibility.
    pub raw: Option<f64>,
    /// Each digit, most significant first.
    #[serde(default)]
    pub digits: Vec<Digit>,
    /// Stored, unsure or rejected.
    pub status: ReadingStatus,
    /// Why it was not stored (or a note on a stored one).
    pub reason: Option<String>,
    /// The meter's unit.
    pub unit: Option<String>,
    /// Change per hour since the previous stored value.
    pub rate_per_hour: Option<f64>,
}

/// One digit of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Digit {
    /// The roller position, in steps (`3.7`).
    pub value: f32,
    /// The model's confidence, 0..=1.
    pub confidence: f32,
}

/// What became of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadingStatus {
    /// Plausible and stored.
    Stored,
    /// A digit's confidence was too low.
    Unsure,
    /// The value failed a plausibility rule.
    Rejected,
}

impl ReadingStatus {
    /// `stored`, `unsure`, `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Unsure => "unsure",
            Self::Rejected => "rejected",
        }
    }
}

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds (first time, or a repeat).
    Firing,
    /// The condition no longer holds.
    Resolved,
}

/// A transition of one rule of one meter, to be notified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The meter.
    pub meter: String,
    /// The rule.
    pub rule: AlertRule,
    /// Firing or resolved.
    pub state: AlertState,
    /// 0 the first time it fires, then 1, 2.. for each repeat.
    pub repeat: u32,
    /// When the engine decided.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// One or two sentences for people.
    pub message: String,
    /// What the rule measured (consumption, rate, minutes, share).
    pub value: Option<f64>,
    /// The limit it was compared with.
    pub threshold: Option<f64>,
    /// The meter's unit.
    pub unit: Option<String>,
    /// Whether the frame belongs with it (refused readings).
    pub with_frame: bool,
}

impl Alert {
    /// `🔴 water: …` / `✅ water: …`, the text sent to people.
    pub fn text(&self) -> String {
        let mark = match self.state {
            AlertState::Firing => "🔴",
            AlertState::Resolved => "✅",
        };
        format!("{mark} {}", self.message)
    }

    /// A short title: `water: continuous_flow firing`.
    pub fn title(&self) -> String {
        let state = match self.state {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        };
        format!("{}: {} {state}", self.meter, self.rule)
    }
}

/// What a notifier delivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Notification {
    /// An alert.
    Alert(Alert),
    /// A reading (webhooks that asked for readings).
    Reading {
        /// The reading.
        #[serde(flatten)]
        reading: ObservedReading,
        /// The stored value before this reading (AI-on-the-edge's
        /// `preValue`).
        previous: Option<f64>,
    },
}
