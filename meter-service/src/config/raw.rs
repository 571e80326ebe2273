//! The configuration file as written: serde structs with unknown keys
//! refused, and the interval syntax.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use meter_alert::{AlertsConfig, NotifyConfig};
use meter_core::DecisionRule;
use meter_sink::SinkSpec;
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[model]`.
    #[serde(default)]
    pub model: RawModel,
    /// Where each meter's last value is kept.
    pub state_dir: Option<PathBuf>,
    /// Training folders (`dataset/<label>/`).
    pub dataset_dir: Option<PathBuf>,
    /// Crops of unsure readings, for labelling.
    pub unsure_dir: Option<PathBuf>,
    /// Frames that could not be used (corrupt JPEGs).
    pub rejected_dir: Option<PathBuf>,
    /// Readings waiting for a sink that is away.
    pub spool_dir: Option<PathBuf>,
    /// Most digit images filed per label folder by self-training.
    pub dataset_cap: Option<usize>,
    /// Numbered model versions of `meter retrain` and their `registry.json`.
    pub models_dir: Option<PathBuf>,
    /// `[retrain]`: when `meter run` / `meter retrain --if-due` retrain.
    pub retrain: Option<RawRetrain>,
    /// `[[meter]]` tables.
    #[serde(default)]
    pub meter: Vec<RawMeter>,
    /// `[[sink]]` tables.
    #[serde(default)]
    pub sink: Vec<SinkSpec>,
    /// `[alerts]`: the alert rules.
    pub alerts: Option<AlertsConfig>,
    /// `[[notify]]` tables: where alerts go.
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
    /// How long `meter predict` may take in all (`"60s"`).
    pub predict_deadline: Option<RawInterval>,
    /// `[serve]`: the web page (`meter serve`, and inside `meter run`).
    pub serve: Option<RawServe>,
}

/// `[serve]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServe {
    /// Address to listen on (default `127.0.0.1:8090`).
    pub listen: Option<String>,
    /// The access token (required to listen beyond this machine).
    pub token: Option<String>,
    /// The environment variable holding the token instead.
    pub token_env: Option<String>,
}

/// `[model]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// Model file; the shipped model when absent.
    pub path: Option<PathBuf>,
    /// Every digit must reach this confidence (default 0.95).
    pub min_confidence: Option<f32>,
}

/// `[retrain]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetrain {
    /// Retrain once this many images arrived in the dataset since the last retrain.
    pub after_new_images: Option<usize>,
    /// Never retrain more often than this (`"24h"`, seconds).
    pub min_interval: Option<RawInterval>,
    /// Whether `meter run` retrains by itself when due (default false).
    pub in_run: Option<bool>,
    /// How often `meter run` asks whether a retrain is due (default `"10m"`).
    pub check_every: Option<RawInterval>,
}

/// `[[meter]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeter {
    /// Unique name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Camera URL (`http://...`), a JPEG file or a folder of them.
    pub source: String,
    /// Seconds between readings, or `"30s"`, `"5m"`, `"1h"`.
    pub interval: Option<RawInterval>,
    /// Degrees counter-clockwise, applied first.
    pub rotate: Option<f64>,
    /// Reference marks.
    #[serde(default)]
    pub marks: Vec<RawMark>,
    /// Digit boxes `[x, y, w, h]` in the aligned frame, most significant first.
    #[serde(default)]
    pub digits: Vec<[u32; 4]>,
    /// Instead of `digits`: `{ window = [x, y, w, h], count = N }`.
    pub counter: Option<RawCounterWindow>,
    /// Digits after the decimal point.
    pub decimals: Option<u8>,
    /// Unit of the value (`kWh`, `m3`).
    pub unit: Option<String>,
    /// Largest plausible change per hour, in `unit`.
    pub max_rate_per_hour: Option<f64>,
    /// Whether the value may go down.
    pub allow_negative: Option<bool>,
    /// How a reading is judged: `"reading"` (its probability of being
    /// right, the default) or `"per_digit"` (every digit confident).
    pub decision: Option<DecisionRule>,
    /// Consistent readings in a row that replace a disagreeing stored value.
    pub accept_after: Option<u32>,
    /// Mark search window half-size, pixels.
    pub search_radius: Option<u32>,
    /// Largest rotation searched after `rotate`, degrees.
    pub max_rotation: Option<f64>,
    /// Lowest acceptable mark match score (-1..1).
    pub min_mark_score: Option<f32>,
}

/// A reference mark.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMark {
    /// Template image file.
    pub image: PathBuf,
    /// Top-left x in the aligned frame.
    pub x: u32,
    /// Top-left y in the aligned frame.
    pub y: u32,
}

/// A counter window split equally.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCounterWindow {
    /// `[x, y, w, h]`.
    pub window: [u32; 4],
    /// Digits in it.
    pub count: u32,
}

/// An interval as written: seconds, or text such as `"30s"`, `"5m"`,
/// `"1h 30m"`, `"500ms"` (humantime's syntax).
#[derive(Debug, Clone, PartialEq)]
pub enum RawInterval {
    /// Seconds.
    Seconds(f64),
    /// Text.
    Text(String),
}

impl<'de> Deserialize<'de> for RawInterval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawInterval;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds or a duration such as \"30s\", \"5m\", \"1h\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawInterval, E> {
                Ok(RawInterval::Seconds(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawInterval, E> {
                Ok(RawInterval::Seconds(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawInterval, E> {
                Ok(RawInterval::Seconds(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawInterval, E> {
                Ok(RawInterval::Text(v.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest interval (and `--duration`) accepted: a year. Longer ones
/// are typing mistakes, and would overflow the clock arithmetic.
pub const MAX_INTERVAL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a number of seconds or a duration text (`"30s"`, `"5m"`,
/// `"1h 30m"`, `"500ms"`; a bare number in text is seconds), within
/// [`MIN_INTERVAL`] ..= [`MAX_INTERVAL`].
pub fn parse_interval(i: &RawInterval) -> anyhow::Result<Duration> {
    let secs = match i {
        RawInterval::Seconds(s) => *s,
        RawInterval::Text(t) => {
            let t = t.trim();
            match t.parse::<f64>() {
                Ok(s) => s,
                Err(_) => humantime::parse_duration(t)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "{t:?} is not a duration like \"30s\", \"5m\", \"1h\" ({e})"
                        )
                    })?
                    .as_secs_f64(),
            }
        }
    };
    let (lo, hi) = (MIN_INTERVAL.as_secs_f64(), MAX_INTERVAL.as_secs_f64());
    if !(secs.is_finite() && (lo..=hi).contains(&secs)) {
        // In days: humantime's years are 365.25 days ("1year 18h").
        bail!(
            "{secs} s is outside {} ..= {} days",
            humantime::format_duration(MIN_INTERVAL),
            MAX_INTERVAL.as_secs() / 86_400
        );
    }
    Ok(Duration::from_secs_f64(secs))
}
