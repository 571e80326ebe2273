//! The configuration file: TOML, overridable by `METER_*` environment
//! variables, read in two stages: [`RawConfig`] (serde, unknown keys
//! refused) and [`ResolvedConfig`] (validated, paths resolved against the
//! config file's folder, defaults filled in). Every error names the file and
//! the key.
//!
//! Environment overrides apply to the top-level keys and the `[model]` table:
//! `METER_STATE_DIR`, `METER_DATASET_DIR`, `METER_UNSURE_DIR`,
//! `METER_REJECTED_DIR`, `METER_SPOOL_DIR`, `METER_DATASET_CAP`,
//! `METER_MODEL__PATH`, `METER_MODEL__MIN_CONFIDENCE` (a double underscore
//! separates table and key). Other `METER_*` variables (such as
//! `METER_DIGITS_DIR`, read by `meter train`) are not configuration.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use meter_alert::{AlertsConfig, NotifyConfig};
use meter_core::{Counter, Rules};
use meter_sink::SinkSpec;
use meter_vision::{CounterWindow, MarkSpec, MeterGeometry, SourceSpec};

mod raw;

pub use raw::{
    parse_interval, RawConfig, RawCounterWindow, RawInterval, RawMark, RawMeter, RawModel,
    RawRetrain, RawServe, MAX_INTERVAL, MIN_INTERVAL,
};

/// Every default of the configuration that is not a library's own (those
/// are [`Rules::default`], [`MeterGeometry`]'s and the sinks').
pub mod defaults {
    use std::time::Duration;

    /// Time between readings.
    pub const INTERVAL: Duration = Duration::from_secs(60);
    /// Most images per label folder filed by self-training.
    pub const DATASET_CAP: usize = 2000;
    /// `[retrain] after_new_images`.
    pub const AFTER_NEW_IMAGES: usize = 200;
    /// `[retrain] min_interval`.
    pub const RETRAIN_MIN_INTERVAL: Duration = Duration::from_secs(24 * 3600);
    /// `[retrain] check_every`.
    pub const RETRAIN_CHECK_EVERY: Duration = Duration::from_secs(600);
    /// `predict_deadline`: the camera's three attempts fit with room.
    pub const PREDICT_DEADLINE: Duration = Duration::from_secs(60);
    /// `[serve] listen`: this machine only.
    pub const SERVE_LISTEN: &str = "127.0.0.1:8090";
}

/// The web page's settings (`[serve]`, or `meter serve`'s defaults).
#[derive(Clone, PartialEq)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: String,
    /// The access token, when one is set.
    pub token: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: defaults::SERVE_LISTEN.to_owned(),
            token: None,
        }
    }
}

// By hand: the token never shows in logs or errors.
impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// Top-level keys (and the `model` table) that `METER_*` may override.
const ENV_KEYS: &[&str] = &[
    "state_dir",
    "dataset_dir",
    "unsure_dir",
    "rejected_dir",
    "spool_dir",
    "dataset_cap",
    "model__path",
    "model__min_confidence",
];

/// When to retrain automatically.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainSchedule {
    /// New dataset images needed since the last retrain.
    pub after_new_images: usize,
    /// Shortest time between two retrains.
    pub min_interval: Duration,
    /// Whether `meter run` retrains in the background when due.
    pub in_run: bool,
    /// How often `meter run` checks whether a retrain is due.
    pub check_every: Duration,
}

/// A validated meter.
#[derive(Debug, Clone)]
pub struct MeterConfig {
    /// Unique name.
    pub name: String,
    /// Frame source.
    pub source: SourceSpec,
    /// Time between readings in `meter run`.
    pub interval: Duration,
    /// Alignment and digit regions (mark paths are absolute).
    pub geometry: MeterGeometry,
    /// Counter shape.
    pub counter: Counter,
    /// Unit of the value.
    pub unit: Option<String>,
    /// Plausibility rules.
    pub rules: Rules,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Model file; `None` means the shipped model.
    pub model_path: Option<PathBuf>,
    /// State folder.
    pub state_dir: PathBuf,
    /// Dataset folder.
    pub dataset_dir: PathBuf,
    /// Unsure crops folder.
    pub unsure_dir: PathBuf,
    /// Rejected frames folder.
    pub rejected_dir: PathBuf,
    /// Spool folder (one sub-folder per sink).
    pub spool_dir: PathBuf,
    /// Most images per label folder filed by self-training.
    pub dataset_cap: usize,
    /// Model versions folder (`meter retrain`, `meter model`).
    pub models_dir: PathBuf,
    /// Automatic retraining; `None` when `[retrain]` is absent.
    pub retrain: Option<RetrainSchedule>,
    /// Meters, in file order.
    pub meters: Vec<MeterConfig>,
    /// Sinks, in file order.
    pub sinks: Vec<SinkSpec>,
    /// Alert rules; `None` when `[alerts]` is absent.
    pub alerts: Option<AlertsConfig>,
    /// Notifiers.
    pub notify: Vec<NotifyConfig>,
    /// The config file's folder: relative paths are taken from it.
    pub base_dir: PathBuf,
    /// How long `meter predict` may take in all.
    pub predict_deadline: Duration,
    /// `[serve]`: the web page; `None` when the table is absent.
    pub serve: Option<ServeConfig>,
}

impl ResolvedConfig {
    /// Reads, overrides from the environment, and validates `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    /// As [`load`](Self::load), with the environment given.
    pub fn load_with_env(path: &Path, env: &HashMap<String, String>) -> anyhow::Result<Self> {
        let raw = read_raw(path, env).with_context(|| format!("config {}", path.display()))?;
        resolve(path, raw, env).with_context(|| format!("config {}", path.display()))
    }

    /// The meter called `name`.
    pub fn meter(&self, name: &str) -> anyhow::Result<&MeterConfig> {
        self.meters
            .iter()
            .find(|m| m.name == name)
            .with_context(|| {
                let names: Vec<_> = self.meters.iter().map(|m| m.name.as_str()).collect();
                format!(
                    "config {}: no meter named {name:?} (meters: {})",
                    self.path.display(),
                    names.join(", ")
                )
            })
    }
}

fn read_raw(path: &Path, env: &HashMap<String, String>) -> anyhow::Result<RawConfig> {
    // Read it ourselves: a missing or unreadable file gets the OS's words.
    let text = std::fs::read_to_string(path)?;
    // Only the known override keys: the prefix is shared with non-config
    // variables such as METER_DIGITS_DIR.
    let overrides: HashMap<String, String> = env
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("METER_")?.to_ascii_lowercase();
            ENV_KEYS
                .contains(&key.as_str())
                .then(|| (k.clone(), v.clone()))
        })
        .collect();
    let cfg = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("METER")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(overrides)),
        )
        .build()
        .map_err(one_line)?;
    cfg.try_deserialize::<RawConfig>().map_err(one_line)
}

/// The config crate's message on one line (TOML parse errors come with a
/// multi-line excerpt), with its key paths written as `meter[0].unit`
/// rather than `meter[0]unit`.
fn one_line(e: config::ConfigError) -> anyhow::Error {
    let text = e.to_string();
    let mut out = String::with_capacity(text.len());
    let mut prev = ' ';
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "|")
    {
        if !out.is_empty() {
            out.push_str("; ");
        }
        for c in line.chars() {
            if prev == ']' && (c.is_ascii_alphabetic() || c == '_') {
                out.push('.');
            }
            out.push(c);
            prev = c;
        }
    }
    anyhow::anyhow!(out)
}

fn resolve_serve(raw: &RawServe, env: &HashMap<String, String>) -> anyhow::Result<ServeConfig> {
    let token = match (&raw.token, &raw.token_env) {
        (Some(_), Some(_)) => bail!("serve.token: give `token` or `token_env`, not both"),
        (Some(t), None) => Some(t.clone()),
        (None, Some(var)) => Some(
            env.get(var)
                .filter(|t| !t.is_empty())
                .cloned()
                .with_context(|| format!("serve.token_env: ${var} is not set"))?,
        ),
        (None, None) => None,
    };
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        bail!("serve.token: use at least 16 characters");
    }
    Ok(ServeConfig {
        listen: raw
            .listen
            .clone()
            .unwrap_or_else(|| defaults::SERVE_LISTEN.to_owned()),
        token,
    })
}

fn resolve(
    path: &Path,
    raw: RawConfig,
    env: &HashMap<String, String>,
) -> anyhow::Result<ResolvedConfig> {
    let serve = raw
        .serve
        .as_ref()
        .map(|s| resolve_serve(s, env))
        .transpose()?;
    // Absolute, so that paths in logs and errors say where things are.
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf());
    let base = base.as_path();
    let abs = |p: &Path| -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let dir = |p: &Option<PathBuf>, default: &str| abs(p.as_deref().unwrap_or(Path::new(default)));
    let min_confidence = raw
        .model
        .min_confidence
        .unwrap_or(Rules::default().min_confidence);
    if !(0.0..=1.0).contains(&min_confidence) {
        bail!("model.min_confidence: {min_confidence} is outside 0..=1");
    }
    let state_dir = dir(&raw.state_dir, "state");
    let spool_dir = raw
        .spool_dir
        .as_deref()
        .map(abs)
        .unwrap_or_else(|| state_dir.join("spool"));
    let dataset_cap = raw.dataset_cap.unwrap_or(defaults::DATASET_CAP);
    if raw.meter.is_empty() {
        bail!("meter: no [[meter]] table; add one (see `meter prepare`)");
    }
    let mut names = HashSet::new();
    let mut meters = Vec::with_capacity(raw.meter.len());
    for (i, m) in raw.meter.into_iter().enumerate() {
        let key = |k: &str| format!("meter[{i}].{k}");
        let meter = resolve_meter(m, base, &abs, min_confidence, &key)?;
        if !names.insert(meter.name.clone()) {
            bail!("{}: {:?} is used by two meters", key("name"), meter.name);
        }
        meters.push(meter);
    }
    for (i, s) in raw.sink.iter().enumerate() {
        s.validate().with_context(|| format!("sink[{i}]"))?;
        if let SinkSpec::Mqtt(mqtt) = s {
            for m in &meters {
                mqtt.check_meter(&m.name, m.unit.as_deref())
                    .with_context(|| format!("sink[{i}] (mqtt)"))?;
            }
        }
    }
    let predict_deadline = match &raw.predict_deadline {
        None => defaults::PREDICT_DEADLINE,
        Some(i) => parse_interval(i).context("predict_deadline")?,
    };
    let retrain = match &raw.retrain {
        None => None,
        Some(r) => {
            let after_new_images = r.after_new_images.unwrap_or(defaults::AFTER_NEW_IMAGES);
            if after_new_images == 0 {
                bail!("retrain.after_new_images: must be at least 1");
            }
            let min_interval = match &r.min_interval {
                None => defaults::RETRAIN_MIN_INTERVAL,
                Some(i) => parse_interval(i).context("retrain.min_interval")?,
            };
            let check_every = match &r.check_every {
                None => defaults::RETRAIN_CHECK_EVERY,
                Some(i) => parse_interval(i).context("retrain.check_every")?,
            };
            Some(RetrainSchedule {
                after_new_images,
                min_interval,
                in_run: r.in_run.unwrap_or(false),
                check_every,
            })
        }
    };
    Ok(ResolvedConfig {
        path: path.to_path_buf(),
        models_dir: dir(&raw.models_dir, "models"),
        retrain,
        model_path: raw.model.path.as_deref().map(abs),
        dataset_dir: dir(&raw.dataset_dir, "dataset"),
        unsure_dir: dir(&raw.unsure_dir, "unsure"),
        rejected_dir: dir(&raw.rejected_dir, "rejected"),
        state_dir,
        spool_dir,
        dataset_cap,
        meters,
        sinks: raw.sink,
        alerts: raw.alerts,
        notify: raw.notify,
        base_dir: base.to_path_buf(),
        predict_deadline,
        serve,
    })
}

/// Whether `name` can name a meter: non-empty letters, digits, `-`, `_`
/// and `.`, not starting with `.` (it names files).
pub fn valid_meter_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

fn resolve_meter(
    m: RawMeter,
    base: &Path,
    abs: &dyn Fn(&Path) -> PathBuf,
    min_confidence: f32,
    key: &dyn Fn(&str) -> String,
) -> anyhow::Result<MeterConfig> {
    if !valid_meter_name(&m.name) {
        bail!(
            "{}: {:?} must be non-empty letters, digits, '-', '_' or '.' (it names files)",
            key("name"),
            m.name
        );
    }
    let source = SourceSpec::parse(&m.source, base).with_context(|| key("source"))?;
    let interval = match m.interval {
        None => defaults::INTERVAL,
        Some(i) => parse_interval(&i).with_context(|| key("interval"))?,
    };
    let (regions_len, counter_window) = match (&m.counter, m.digits.is_empty()) {
        (None, false) => (m.digits.len(), None),
        (Some(c), true) => (
            c.count as usize,
            Some(CounterWindow {
                window: c.window,
                count: c.count,
            }),
        ),
        (None, true) => bail!(
            "{}: no digit boxes (or `counter` window) given",
            key("digits")
        ),
        (Some(_), false) => bail!(
            "{}: give either `digits` or `counter`, not both",
            key("digits")
        ),
    };
    for (k, b) in m.digits.iter().enumerate() {
        if b[2] == 0 || b[3] == 0 {
            bail!("{}[{k}]: box {b:?} has zero width or height", key("digits"));
        }
    }
    let decimals = m.decimals.unwrap_or(0);
    // Too many boxes is the boxes' fault, not the decimals'.
    let count_key = match counter_window {
        Some(_) => "counter.count",
        None => "digits",
    };
    let counter = Counter::new(regions_len, decimals).with_context(|| {
        key(if regions_len > Counter::MAX_DIGITS {
            count_key
        } else {
            "decimals"
        })
    })?;
    if m.marks.len() > 3 {
        bail!("{}: at most 3 marks, got {}", key("marks"), m.marks.len());
    }
    if let Some(r) = m.max_rate_per_hour {
        if !(r.is_finite() && r > 0.0) {
            bail!(
                "{}: {r} must be a positive number",
                key("max_rate_per_hour")
            );
        }
    }
    let accept_after = m.accept_after.unwrap_or(Rules::default().accept_after);
    if accept_after < 2 {
        bail!(
            "{}: {accept_after} would accept any reading; use 2 or more",
            key("accept_after")
        );
    }
    if let Some(r) = m.rotate {
        if !r.is_finite() {
            bail!("{}: not a number", key("rotate"));
        }
    }
    let search_radius = m
        .search_radius
        .unwrap_or(MeterGeometry::DEFAULT_SEARCH_RADIUS);
    if search_radius > MeterGeometry::MAX_SEARCH_RADIUS {
        bail!(
            "{}: {search_radius} px is more than the {} px allowed (each reading pays for the \
             search; a camera that moved further is found by the wide search)",
            key("search_radius"),
            MeterGeometry::MAX_SEARCH_RADIUS
        );
    }
    let marks = m
        .marks
        .iter()
        .map(|mk| MarkSpec {
            image: abs(&mk.image),
            x: mk.x,
            y: mk.y,
        })
        .collect();
    let geometry = MeterGeometry {
        rotate: m.rotate.unwrap_or(0.0),
        marks,
        digits: m.digits,
        counter: counter_window,
        search_radius,
        max_rotation: m
            .max_rotation
            .unwrap_or(MeterGeometry::DEFAULT_MAX_ROTATION),
        min_mark_score: m
            .min_mark_score
            .unwrap_or(MeterGeometry::DEFAULT_MIN_MARK_SCORE),
    };
    Ok(MeterConfig {
        name: m.name,
        source,
        interval,
        geometry,
        counter,
        unit: m.unit.filter(|u| !u.is_empty()),
        rules: Rules {
            min_confidence,
            allow_negative: m.allow_negative.unwrap_or(false),
            max_rate_per_hour: m.max_rate_per_hour,
            accept_after,
            decision: m.decision.unwrap_or_default(),
            ..Rules::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> anyhow::Result<ResolvedConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meter.toml");
        std::fs::write(&path, text).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ResolvedConfig::load_with_env(&path, &env)
    }

    const GOOD: &str = r#"
        [model]
        min_confidence = 0.9

        [[meter]]
        name = "house"
        source = "http://127.0.0.1:8080/"
        interval = "5m"
        marks = [{ image = "marks/a.png", x = 64, y = 64 }]
        digits = [[170, 200, 40, 64], [220, 200, 40, 64], [270, 200, 40, 64]]
        decimals = 1
        unit = "kWh"
        max_rate_per_hour = 20.0

        [[sink]]
        type = "jsonl"
        path = "out/readings.jsonl"
    "#;

    #[test]
    fn retrain_in_run_is_off_unless_asked_for() {
        let c = load(&format!("{GOOD}\n[retrain]\nafter_new_images = 50\n"), &[]).unwrap();
        let r = c.retrain.unwrap();
        assert!(!r.in_run);
        assert_eq!(r.check_every, Duration::from_secs(600));
        let text = format!("{GOOD}\n[retrain]\nin_run = true\ncheck_every = \"30s\"\n");
        let r = load(&text, &[]).unwrap().retrain.unwrap();
        assert!(r.in_run);
        assert_eq!(r.check_every, Duration::from_secs(30));
        let bad = format!("{GOOD}\n[retrain]\ncheck_every = \"soon\"\n");
        let e = format!("{:#}", load(&bad, &[]).unwrap_err());
        assert!(e.contains("retrain.check_every"), "{e}");
        let e = format!(
            "{:#}",
            load(&format!("{GOOD}\n[retrain]\nin_runn = true\n"), &[]).unwrap_err()
        );
        assert!(e.contains("in_runn"), "{e}");
    }

    #[test]
    fn serve_table_and_its_token() {
        assert_eq!(load(GOOD, &[]).unwrap().serve, None);
        let c = load(&format!("[serve]\n{GOOD}"), &[]).unwrap();
        assert_eq!(c.serve, Some(ServeConfig::default()));
        let text = format!("[serve]\nlisten = \"0.0.0.0:8090\"\ntoken_env = \"WEB_TOKEN\"\n{GOOD}");
        let secret = "0123456789abcdef-secret";
        let s = load(&text, &[("WEB_TOKEN", secret)])
            .unwrap()
            .serve
            .unwrap();
        assert_eq!(
            (s.listen.as_str(), s.token.as_deref()),
            ("0.0.0.0:8090", Some(secret))
        );
        assert!(
            !format!("{s:?}").contains(secret),
            "the token never in Debug"
        );
        let e = format!("{:#}", load(&text, &[]).unwrap_err());
        assert!(
            e.contains("serve.token_env") && e.contains("WEB_TOKEN"),
            "{e}"
        );
        let e = format!("{:#}", load(&text, &[("WEB_TOKEN", "short")]).unwrap_err());
        assert!(e.contains("16 characters") && !e.contains("short"), "{e}");
    }

    #[test]
    fn resolves_a_good_file() {
        let c = load(GOOD, &[]).unwrap();
        assert_eq!(c.meters[0].rules.min_confidence, 0.9);
        let m = &c.meters[0];
        assert_eq!(m.source, SourceSpec::Http("http://127.0.0.1:8080".into()));
        assert_eq!(m.interval, Duration::from_secs(300));
        assert_eq!(m.counter, Counter::new(3, 1).unwrap());
        assert_eq!(m.rules.max_rate_per_hour, Some(20.0));
        assert_eq!(m.rules.min_confidence, 0.9);
        assert!(
            m.geometry.marks[0].image.is_absolute() || m.geometry.marks[0].image.starts_with("/")
        );
        assert!(c.state_dir.ends_with("state"));
        assert_eq!(
            c.sinks[0].file(&c.base_dir).unwrap(),
            c.base_dir.join("out/readings.jsonl")
        );
    }

    #[test]
    fn environment_overrides_known_keys_only() {
        let c = load(
            GOOD,
            &[
                ("METER_MODEL__MIN_CONFIDENCE", "0.8"),
                ("METER_STATE_DIR", "/tmp/elsewhere"),
                ("METER_DIGITS_DIR", "/data"),
            ],
        )
        .unwrap();
        assert_eq!(c.meters[0].rules.min_confidence, 0.8);
        assert_eq!(c.state_dir, PathBuf::from("/tmp/elsewhere"));
    }

    #[test]
    fn errors_name_the_key() {
        let err = |text: &str| format!("{:#}", load(text, &[]).unwrap_err());
        let e = err(&GOOD.replace("unit = ", "colour = "));
        assert!(e.contains("colour"), "{e}");
        assert!(e.contains("meter.toml"), "{e}");
        let e = err(&GOOD.replace("decimals = 1", "decimals = 4"));
        assert!(e.contains("meter[0].decimals"), "{e}");
        let e = err(&GOOD.replace("\"5m\"", "\"soon\""));
        assert!(e.contains("meter[0].interval"), "{e}");
        let e = err(&GOOD.replace("name = \"house\"", "name = \"a/b\""));
        assert!(e.contains("meter[0].name"), "{e}");
        let e = err(&GOOD.replace("min_confidence = 0.9", "min_confidence = 1.5"));
        assert!(e.contains("model.min_confidence"), "{e}");
        let e = err(&GOOD.replace("type = \"jsonl\"", "type = \"mongo\""));
        assert!(e.contains("mongo"), "{e}");
        let e = err("[[meter]\nname=");
        assert!(e.contains("meter.toml"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = err(&GOOD.replace("max_rate_per_hour = 20.0", "max_rate_per_hour = \"fast\""));
        assert!(e.contains("meter[0].max_rate_per_hour"), "{e}");
    }

    /// The TOML examples in the README and the Home Assistant and alerts
    /// docs load as they are shown (an example without a `[[meter]]` table
    /// next to a meter of its own), so a renamed key cannot leave them
    /// behind.
    #[test]
    fn documented_examples_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut checked = 0;
        for doc in ["README.md", "docs/home-assistant.md", "docs/alerts.md"] {
            let text = std::fs::read_to_string(root.join(doc)).unwrap();
            for block in text.split("```toml\n").skip(1) {
                let block = block.split("```").next().unwrap();
                let config = if block.contains("[[meter]]") {
                    block.to_owned()
                } else {
                    format!("{GOOD}\n{block}")
                };
                let c = load(&config, &[]).unwrap_or_else(|e| panic!("{doc}: {e:#}\n{block}"));
                if let Some(alerts) = &c.alerts {
                    alerts
                        .validate()
                        .unwrap_or_else(|e| panic!("{doc}: {e}\n{block}"));
                }
                checked += 1;
            }
        }
        // README: the configuration, Home Assistant, alerts; the docs' own.
        assert!(checked >= 5, "only {checked} examples found");
    }
}
