//! Setting up a meter: its folder layout and a commented config file with
//! the paths and defaults filled in (`meter prepare`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The folders of a prepared root.
pub const FOLDERS: [&str; 7] = [
    "frames", "dataset", "unsure", "rejected", "models", "state", "marks",
];

/// Creates the folder layout of a meter under `root` (the folders of
/// [`FOLDERS`] and one label folder per tenth) and its commented config,
/// `root/meter.toml`; returns the config's path. An existing config is
/// replaced only with `force` (the folders are kept either way).
pub fn prepare(root: &Path, meter: &str, source: &str, force: bool) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let root = root
        .canonicalize()
        .with_context(|| format!("resolving {}", root.display()))?;
    let config = root.join("meter.toml");
    if config.exists() && !force {
        bail!(
            "{} exists; pass --force to replace it (the folders are kept either way)",
            config.display()
        );
    }
    if !crate::config::valid_meter_name(meter) {
        bail!("meter name {meter:?}: use letters, digits, '-', '_' and '.' (it names files)");
    }
    for f in FOLDERS {
        mkdir(&root.join(f))?;
    }
    // One folder per label, 0.0 ..= 9.9, as `meter classify` files them.
    for i in 0..100u8 {
        let label = meter_core::Tenths::new(i).expect("< 100").to_string();
        mkdir(&root.join("dataset").join(label))?;
    }
    crate::files::write_atomic(&config, template(&root, meter, source).as_bytes())
        .with_context(|| format!("writing {}", config.display()))?;
    Ok(config)
}

fn mkdir(p: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}

/// The commented config file.
pub fn template(root: &Path, meter: &str, source: &str) -> String {
    use crate::config::defaults as d;
    let r = root.display();
    let rules = meter_core::Rules::default();
    let (conf, accept) = (rules.min_confidence, rules.accept_after);
    let (cap, after) = (d::DATASET_CAP, d::AFTER_NEW_IMAGES);
    let dur = |x| humantime::format_duration(x);
    let (min_interval, check_every, interval) = (
        dur(d::RETRAIN_MIN_INTERVAL),
        dur(d::RETRAIN_CHECK_EVERY),
        dur(d::INTERVAL),
    );
    format!(
        r#"# meter-reader configuration (created by `meter prepare`).
# Relative paths are taken from this file's folder. Top-level keys and
# [model] can be overridden by environment variables: METER_STATE_DIR,
# METER_MODEL__PATH, METER_MODEL__MIN_CONFIDENCE, ...

# Each meter's last stored value and time (survives restarts).
state_dir = "{r}/state"
# Training folders, one per label (0.0 .. 9.9); confident digits of stored
# readings are filed here so the model keeps learning your meter.
dataset_dir = "{r}/dataset"
# Digit crops of unsure readings, to label with `meter classify`.
unsure_dir = "{r}/unsure"
# Frames that could not be used (truncated JPEGs), for inspection.
rejected_dir = "{r}/rejected"
# Most images filed per label folder by self-training.
dataset_cap = {cap}

[model]
# The digit model; leave out for the model shipped with meter-reader.
# path = "{r}/models/my-meter.safetensors"
# A reading is stored only when every digit is at least this confident.
min_confidence = {conf}

# Retraining on your own meter (`meter retrain --if-due`, `meter run`): a
# new version is kept only when it reads the validation images no worse.
# [retrain]
# Retrain once this many images arrived in dataset_dir since the last try.
# after_new_images = {after}
# Never retrain more often than this.
# min_interval = "{min_interval}"
# Whether `meter run` retrains by itself, in the background, when due; the
# meters read with a promoted version from their next frame on.
# in_run = false
# How often `meter run` asks whether a retrain is due.
# check_every = "{check_every}"

[[meter]]
name = "{meter}"
# The ESP32-CAM's address (GET /capture), or a JPEG file or folder of frames.
source = "{source}"
# Time between readings in `meter run`: seconds, or "30s", "5m", "1h".
interval = "{interval}"
# Degrees counter-clockwise, applied before anything else.
rotate = 0
# Reference marks: small images cut from a reference frame (`meter roi`
# writes candidates), and where their top-left corner lies in the aligned
# frame. One to three; two fix rotation as well as shift.
marks = [
    {{ image = "{r}/marks/{meter}-0.png", x = 64, y = 64 }},
    {{ image = "{r}/marks/{meter}-1.png", x = 544, y = 384 }},
]
# Digit boxes [x, y, width, height] in the aligned frame, most significant
# first. `meter roi --auto --frame F` proposes them.
digits = [
    [170, 200, 40, 64], [220, 200, 40, 64], [270, 200, 40, 64],
    [320, 200, 40, 64], [370, 200, 40, 64], [420, 200, 40, 64],
]
# How many of the last digits are after the decimal point.
decimals = 1
unit = "kWh"
# Largest plausible consumption per hour, in `unit` (leave out for no limit).
max_rate_per_hour = 20.0
# How a reading is judged: "reading" stores it when its probability of being
# right, from every digit and the odometer, reaches min_confidence;
# "per_digit" needs every digit at least that confident.
decision = "reading"
# Whether the value may go down (e.g. a bidirectional meter).
allow_negative = false
# This many consistent readings in a row that disagree with the stored value
# replace it (and are reported), so a wrong stored value never sticks.
accept_after = {accept}

# Where readings go. Any number of [[sink]] tables.
[[sink]]
type = "jsonl"
path = "{r}/readings.jsonl"

# [[sink]]
# type = "csv"
# path = "{r}/readings.csv"

# [[sink]]
# type = "influx_v1"
# url = "http://127.0.0.1:8086"
# database = "meters"
# user = "meter"
# password = "secret"

# [[sink]]
# type = "influx_v2"
# url = "http://127.0.0.1:8086"
# org = "home"
# bucket = "meters"
# token = "..."
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_a_valid_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meter.toml");
        std::fs::write(&p, template(dir.path(), "house", "http://127.0.0.1:1")).unwrap();
        let cfg = crate::config::ResolvedConfig::load_with_env(&p, &Default::default()).unwrap();
        assert_eq!(cfg.meters[0].name, "house");
        // Written with the defaults the loader uses.
        assert_eq!(
            cfg.meters[0].rules,
            meter_core::Rules {
                max_rate_per_hour: Some(20.0),
                ..meter_core::Rules::default()
            }
        );
        assert_eq!(cfg.meters[0].interval, crate::config::defaults::INTERVAL);
        assert_eq!(cfg.meters[0].counter.digits(), 6);
        assert_eq!(cfg.state_dir, dir.path().join("state"));
    }
}
