//! What the rule engine remembers, per meter and per rule, saved in
//! `state_dir` so that a restart neither re-sends nor forgets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::AlertRule;
use crate::AlertError;

/// The engine's memory, saved in `state_dir` as [`EngineState::FILE`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineState {
    /// Per meter.
    pub meters: BTreeMap<String, MeterState>,
    /// The last observation's time (Unix seconds): a restart after a longer
    /// gap than [`DOWNTIME`] restarts the silence clocks.
    pub last_seen: Option<i64>,
}

/// A gap between observations longer than this means the reader was down
/// (the service sends a tick every minute).
pub const DOWNTIME: Duration = Duration::from_secs(5 * 60);

/// What the engine remembers of one meter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MeterState {
    /// The meter's unit, from its readings.
    pub unit: Option<String>,
    /// When the engine first heard of the meter (Unix seconds).
    pub first_seen: Option<i64>,
    /// The last frame read, stored or not.
    pub last_frame: Option<i64>,
    /// The last capture failure's message.
    pub last_error: Option<String>,
    /// The last stored reading: (time, value).
    pub last_stored: Option<(i64, f64)>,
    /// Rate per hour between the last two stored readings.
    pub last_rate: Option<f64>,
    /// Unsure or rejected readings since the last stored one.
    pub refused_in_a_row: u32,
    /// The last refusal, `rejected: value decreased by 3`.
    pub last_refusal: Option<String>,
    /// Consumption per UTC hour (key: the hour's first second).
    pub hourly: BTreeMap<i64, f64>,
    /// Consumption of the local day of the last stored reading.
    pub day: Option<Period>,
    /// Consumption of the night window of the last stored reading.
    pub night: Option<Period>,
    /// Readings per UTC hour: (all, unsure).
    pub counts: BTreeMap<i64, (u32, u32)>,
    /// Rules pending or firing (absent: inactive).
    pub rules: BTreeMap<AlertRule, RuleState>,
}

/// Consumption within `start..end` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// First second.
    pub start: i64,
    /// First second after.
    pub end: i64,
    /// Consumption inside.
    pub used: f64,
}

/// A rule that is not inactive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RuleState {
    /// The condition holds since `since`, not yet for the pending time.
    Pending {
        /// When the condition began to hold.
        since: i64,
    },
    /// Fired.
    Firing {
        /// When it fired.
        since: i64,
        /// When it was last sent.
        last_sent: i64,
        /// Repeats sent.
        repeats: u32,
    },
}

impl EngineState {
    /// The file in `state_dir`.
    pub const FILE: &'static str = "alerts.json";

    /// The state file of `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(Self::FILE)
    }

    /// Loads the state; empty when there is none yet. A corrupt file is an
    /// error naming it (the caller decides whether to start afresh).
    pub fn load(state_dir: &Path) -> Result<Self, AlertError> {
        Ok(crate::store::load_json(&Self::path(state_dir), "alert state")?.unwrap_or_default())
    }

    /// Saves the state atomically.
    pub fn save(&self, state_dir: &Path) -> Result<(), AlertError> {
        crate::store::save_json(&Self::path(state_dir), self)
    }
}
