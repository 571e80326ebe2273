//! Configuration: `[alerts]` (the rules) and `[[notify]]` (where alerts go).
//! Serde structs with unknown keys refused; durations are seconds or text
//! such as `"30m"`, `"1h 30m"`, `"PT2H"`.
//!
//! ```toml
//! [alerts]
//! time_zone = "Europe/Berlin"
//!
//! [alerts.default]               # every meter
//! camera_silent = { after = "30m" }
//! no_stored_reading = { after = "6h", in_a_row = 20 }
//! confidence_drop = {}
//!
//! [alerts.meter.water]           # one meter; replaces default rules by name
//! continuous_flow = { hours = 24 }
//! night_use = { from = "02:00", to = "05:00", max = 0.01 }
//! spike = { max_rate_per_hour = 1.5 }
//! daily_max = { max = 0.5, warn_projected = true }
//! disable = ["confidence_drop"]
//!
//! [[notify]]
//! type = "telegram"
//! chat_id = 123456789            # token from METER_TELEGRAM_BOT_TOKEN
//!
//! [[notify]]
//! type = "webhook"
//! format = "ntfy"
//! url = "https://ntfy.example/meters"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::civil::Time;
use serde::{Deserialize, Deserializer, Serialize};

use crate::AlertError;

mod notify;

pub use notify::{
    NotifyConfig, Secret, TelegramConfig, WebhookConfig, WebhookFormat, TELEGRAM_API,
    TELEGRAM_TOKEN_ENV,
};

/// `[alerts]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// IANA time zone of local midnight and night windows (`Europe/Berlin`);
    /// the system's zone when absent.
    pub time_zone: Option<String>,
    /// Rules of every meter.
    #[serde(default)]
    pub default: RulesConfig,
    /// Rules of one meter, replacing `default`'s rule by rule.
    #[serde(default)]
    pub meter: BTreeMap<String, RulesConfig>,
}

/// The rules of a meter (`[alerts.default]`, `[alerts.meter.NAME]`). Each
/// rule also takes `pending` (how long its condition must hold before it
/// fires, default 0) and `repeat` (how often a firing alert is sent again;
/// `"0s"` never).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Consumption since local midnight above a maximum.
    pub daily_max: Option<DailyMax>,
    /// Consumption in every hour of the last N hours (a leak).
    pub continuous_flow: Option<ContinuousFlow>,
    /// Consumption inside a local night window above a threshold.
    pub night_use: Option<NightUse>,
    /// A stored reading's rate above a maximum.
    pub spike: Option<Spike>,
    /// No frame for a while.
    pub camera_silent: Option<CameraSilent>,
    /// No stored reading for a while, or many refused in a row.
    pub no_stored_reading: Option<NoStoredReading>,
    /// Unsure readings much more frequent today than in the previous week.
    pub confidence_drop: Option<ConfidenceDrop>,
    /// Rules of `[alerts.default]` that do not apply to this meter.
    #[serde(default)]
    pub disable: Vec<AlertRule>,
}

/// When a firing rule is sent and sent again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// The condition must hold this long before the alert fires.
    pub pending: Duration,
    /// A firing alert is sent again after this long; `None`: never.
    pub repeat: Option<Duration>,
}

macro_rules! timing_fields {
    ($( $(#[$doc:meta])* $name:ident { $($field:tt)* } repeat = $repeat:expr; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($field)*
            /// How long the condition must hold before the alert fires.
            #[serde(default, deserialize_with = "opt_duration")]
            pub pending: Option<Duration>,
            /// How often a firing alert is sent again (`"0s"`: never).
            #[serde(default, deserialize_with = "opt_duration")]
            pub repeat: Option<Duration>,
        }

        impl $name {
            /// Pending time and repeat interval, defaults filled in.
            pub fn timing(&self) -> Timing {
                let repeat: Option<Duration> = $repeat;
                Timing {
                    pending: self.pending.unwrap_or_default(),
                    repeat: self.repeat.or(repeat).filter(|d| !d.is_zero()),
                }
            }
        }
    )*};
}

const HOUR: u64 = 3600;

timing_fields! {
    /// `daily_max`: fires once a day when the consumption since local
    /// midnight passes `max`; resolves at the next midnight.
    DailyMax {
        /// The contract maximum per day, in the meter's unit.
        pub max: f64,
        /// Also warn (rule `daily_max_projected`) when, after a quarter of
        /// the day, the day's pace so far projects a breach.
        #[serde(default)]
        pub warn_projected: bool,
    } repeat = None;
    /// `continuous_flow`: every whole hour of the last `hours` shows more
    /// than `min_per_hour` (a dripping tap never stops).
    ContinuousFlow {
        /// Hours looked at (default 24).
        #[serde(default = "default_flow_hours")]
        pub hours: u32,
        /// Consumption an hour must exceed (default 0: any).
        #[serde(default)]
        pub min_per_hour: f64,
    } repeat = Some(Duration::from_secs(12 * HOUR));
    /// `night_use`: consumption inside the local window `from`..`to` above
    /// `max`; fires as soon as it is known, resolves when the next window
    /// starts.
    NightUse {
        /// Window start, local time (`"02:00"`).
        #[serde(deserialize_with = "time_of_day")]
        pub from: Time,
        /// Window end, local time; before `from` means the next day.
        #[serde(deserialize_with = "time_of_day")]
        pub to: Time,
        /// Largest consumption inside the window.
        pub max: f64,
    } repeat = None;
    /// `spike`: a stored reading's rate (since the previous stored one)
    /// above `max_rate_per_hour`.
    Spike {
        /// Largest rate, in the meter's unit per hour.
        pub max_rate_per_hour: f64,
    } repeat = None;
    /// `camera_silent`: no frame for `after` (default 30 minutes).
    CameraSilent {
        /// Silence before firing.
        #[serde(default, deserialize_with = "opt_duration")]
        pub after: Option<Duration>,
    } repeat = Some(Duration::from_secs(12 * HOUR));
    /// `no_stored_reading`: no stored reading for `after` (default 6 h), or
    /// `in_a_row` (default 20) unsure or rejected readings in a row. The
    /// alert carries the frame.
    NoStoredReading {
        /// Time without a stored reading before firing.
        #[serde(default, deserialize_with = "opt_duration")]
        pub after: Option<Duration>,
        /// Refused readings in a row before firing.
        pub in_a_row: Option<u32>,
    } repeat = Some(Duration::from_secs(12 * HOUR));
    /// `confidence_drop`: the share of unsure readings in the last 24 hours
    /// is at least `min_share` and `factor` times the previous 7 days'.
    ConfidenceDrop {
        /// Factor over the previous week (default 3).
        pub factor: Option<f64>,
        /// Smallest share that fires (default 0.2).
        pub min_share: Option<f64>,
        /// Readings needed in each of the two periods (default 20).
        pub min_readings: Option<u32>,
    } repeat = Some(Duration::from_secs(24 * HOUR));
}

fn default_flow_hours() -> u32 {
    24
}

impl CameraSilent {
    /// The silence that fires.
    pub fn after(&self) -> Duration {
        self.after.unwrap_or(Duration::from_secs(30 * 60))
    }
}

impl NoStoredReading {
    /// Time without a stored reading that fires.
    pub fn after(&self) -> Duration {
        self.after.unwrap_or(Duration::from_secs(6 * HOUR))
    }

    /// Refused readings in a row that fire.
    pub fn in_a_row(&self) -> u32 {
        self.in_a_row.unwrap_or(20)
    }
}

impl ConfidenceDrop {
    /// (factor, min_share, min_readings) with defaults.
    pub fn limits(&self) -> (f64, f64, u32) {
        (
            self.factor.unwrap_or(3.0),
            self.min_share.unwrap_or(0.2),
            self.min_readings.unwrap_or(20),
        )
    }
}

/// The alert rules, by the name used in config files and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    /// Consumption since local midnight above the maximum.
    DailyMax,
    /// The day's pace projects a consumption above the maximum.
    DailyMaxProjected,
    /// Consumption in every hour (a leak).
    ContinuousFlow,
    /// Consumption in the night window.
    NightUse,
    /// A rate above the maximum.
    Spike,
    /// No frame.
    CameraSilent,
    /// No stored reading, or refused readings in a row.
    NoStoredReading,
    /// Many more unsure readings than usual.
    ConfidenceDrop,
}

impl AlertRule {
    /// The name in config files and messages (`daily_max`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DailyMax => "daily_max",
            Self::DailyMaxProjected => "daily_max_projected",
            Self::ContinuousFlow => "continuous_flow",
            Self::NightUse => "night_use",
            Self::Spike => "spike",
            Self::CameraSilent => "camera_silent",
            Self::NoStoredReading => "no_stored_reading",
            Self::ConfidenceDrop => "confidence_drop",
        }
    }
}

impl std::fmt::Display for AlertRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AlertsConfig {
    /// The rules of `meter`: its own table's rules, else `default`'s, less
    /// those it disables.
    pub fn rules_for(&self, meter: &str) -> RulesConfig {
        let o = self.meter.get(meter).cloned().unwrap_or_default();
        let d = &self.default;
        let mut r = RulesConfig {
            daily_max: o.daily_max.or_else(|| d.daily_max.clone()),
            continuous_flow: o.continuous_flow.or_else(|| d.continuous_flow.clone()),
            night_use: o.night_use.or_else(|| d.night_use.clone()),
            spike: o.spike.or_else(|| d.spike.clone()),
            camera_silent: o.camera_silent.or_else(|| d.camera_silent.clone()),
            no_stored_reading: o.no_stored_reading.or_else(|| d.no_stored_reading.clone()),
            confidence_drop: o.confidence_drop.or_else(|| d.confidence_drop.clone()),
            disable: o.disable,
        };
        for rule in r.disable.clone() {
            match rule {
                AlertRule::DailyMax | AlertRule::DailyMaxProjected => r.daily_max = None,
                AlertRule::ContinuousFlow => r.continuous_flow = None,
                AlertRule::NightUse => r.night_use = None,
                AlertRule::Spike => r.spike = None,
                AlertRule::CameraSilent => r.camera_silent = None,
                AlertRule::NoStoredReading => r.no_stored_reading = None,
                AlertRule::ConfidenceDrop => r.confidence_drop = None,
            }
        }
        r
    }

    /// The configured time zone (the system's when absent).
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, AlertError> {
        match &self.time_zone {
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| {
                AlertError::config(
                    "alerts.time_zone",
                    format!("unknown time zone {name:?}: {e}"),
                )
            }),
            None => Ok(jiff::tz::TimeZone::system()),
        }
    }

    /// Checks the time zone and every threshold.
    pub fn validate(&self) -> Result<(), AlertError> {
        self.time_zone()?;
        let tables = std::iter::once(("alerts.default".to_owned(), &self.default)).chain(
            self.meter
                .iter()
                .map(|(m, r)| (format!("alerts.meter.{m}"), r)),
        );
        for (key, r) in tables {
            let check = |rule: &str, field: &str, x: f64, zero_ok: bool| {
                if x.is_finite() && (x > 0.0 || (zero_ok && x == 0.0)) {
                    Ok(())
                } else {
                    Err(AlertError::config(
                        format!("{key}.{rule}.{field}"),
                        format!(
                            "{x} is not a {} number",
                            if zero_ok { "non-negative" } else { "positive" }
                        ),
                    ))
                }
            };
            if let Some(x) = &r.daily_max {
                check("daily_max", "max", x.max, false)?;
            }
            if let Some(x) = &r.continuous_flow {
                check("continuous_flow", "min_per_hour", x.min_per_hour, true)?;
                if !(1..=24 * 7).contains(&x.hours) {
                    return Err(AlertError::config(
                        format!("{key}.continuous_flow.hours"),
                        "must be 1..=168",
                    ));
                }
            }
            if let Some(x) = &r.night_use {
                check("night_use", "max", x.max, true)?;
                if x.from == x.to {
                    return Err(AlertError::config(
                        format!("{key}.night_use"),
                        "`from` and `to` are equal",
                    ));
                }
            }
            if let Some(x) = &r.spike {
                check("spike", "max_rate_per_hour", x.max_rate_per_hour, false)?;
            }
            if let Some(x) = &r.confidence_drop {
                let (factor, share, _) = x.limits();
                check("confidence_drop", "factor", factor, false)?;
                check("confidence_drop", "min_share", share, false)?;
            }
        }
        Ok(())
    }
}

/// A duration as seconds (`90`) or text (`"30m"`, `"1h 30m"`, `"PT2H"`).
fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => Ok(Some(Duration::from_secs(s))),
        Raw::Text(t) => {
            let span: jiff::SignedDuration = t
                .parse()
                .map_err(|e| serde::de::Error::custom(format!("{t:?} is not a duration: {e}")))?;
            Duration::try_from(span)
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("{t:?} is negative")))
        }
    }
}

/// A local time of day, `"02:00"`.
fn time_of_day<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|e| {
        serde::de::Error::custom(format!("{text:?} is not a time of day (HH:MM): {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        alerts: AlertsConfig,
        notify: Vec<NotifyConfig>,
    }

    const EXAMPLE: &str = r#"
[alerts]
time_zone = "Europe/Berlin"
[alerts.default]
camera_silent = { after = "30m" }
no_stored_reading = { after = "6h", in_a_row = 20, repeat = "0s" }
confidence_drop = {}
[alerts.meter.water]
continuous_flow = { hours = 24, pending = 600 }
night_use = { from = "02:00", to = "05:00", max = 0.01 }
camera_silent = { after = "1h" }
disable = ["confidence_drop"]

[[notify]]
type = "telegram"
bot_token = "123:SECRET"
chat_id = -1001
allowed_chats = [-1001, 42]

[[notify]]
type = "webhook"
format = "ai_on_the_edge"
url = "http://127.0.0.1:9/hook"
token = "key"
"#;

    #[test]
    fn example_parses_and_resolves_per_meter() {
        let f: File = toml::from_str(EXAMPLE).unwrap();
        f.alerts.validate().unwrap();
        let water = f.alerts.rules_for("water");
        assert_eq!(
            water.camera_silent.unwrap().after(),
            Duration::from_secs(3600)
        );
        assert!(water.confidence_drop.is_none());
        let flow = water.continuous_flow.unwrap();
        assert_eq!(flow.timing().pending, Duration::from_secs(600));
        assert_eq!(flow.timing().repeat, Some(Duration::from_secs(12 * 3600)));
        let gas = f.alerts.rules_for("gas");
        assert_eq!(
            gas.camera_silent.unwrap().after(),
            Duration::from_secs(1800)
        );
        assert_eq!(gas.no_stored_reading.unwrap().timing().repeat, None);
        assert!(gas.confidence_drop.is_some() && gas.night_use.is_none());
        let NotifyConfig::Telegram(t) = &f.notify[0] else {
            panic!()
        };
        assert_eq!(t.allowed_chats(), vec![-1001, 42]);
        assert!(!format!("{t:?}").contains("SECRET"));
        let NotifyConfig::Webhook(w) = &f.notify[1] else {
            panic!()
        };
        assert!(w.sends_readings());
        assert_eq!(w.name(), "webhook-ai-on-the-edge");
    }

    #[test]
    fn bad_input_names_the_key() {
        let e = toml::from_str::<File>(&EXAMPLE.replace("in_a_row", "in_row"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("in_row"), "{e}");
        let e = toml::from_str::<File>(&EXAMPLE.replace("\"30m\"", "\"30 parsecs\""))
            .err()
            .unwrap();
        assert!(e.to_string().contains("30 parsecs"), "{e}");
        let e = toml::from_str::<File>(&EXAMPLE.replace("\"02:00\"", "\"25:00\""))
            .err()
            .unwrap();
        assert!(e.to_string().contains("25:00"), "{e}");
        let f: File = toml::from_str(&EXAMPLE.replace("Europe/Berlin", "Mars/Olympus")).unwrap();
        let e = f.alerts.validate().unwrap_err().to_string();
        assert!(
            e.contains("alerts.time_zone") && e.contains("Mars/Olympus"),
            "{e}"
        );
        let f: File = toml::from_str(&EXAMPLE.replace("max = 0.01", "max = -1")).unwrap();
        let e = f.alerts.validate().unwrap_err().to_string();
        assert!(e.contains("alerts.meter.water.night_use.max"), "{e}");
        let e = toml::from_str::<File>(&EXAMPLE.replace("\"telegram\"", "\"pigeon\""))
            .err()
            .unwrap();
        assert!(e.to_string().contains("pigeon"), "{e}");
    }
}
