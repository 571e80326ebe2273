//! Numbered model versions made by `meter retrain`, with their metrics, in
//! `<models_dir>/registry.json` beside `v0001.safetensors`, `v0002...`.
//!
//! Version 0 is the base model: `[model] path`, or the shipped model. The
//! registry's `current` version is what every command that predicts loads
//! ([`load_current_model`]); `meter model use N` moves it (rollback).

use std::path::{Path, PathBuf};

use anyhow::Context;
use meter_model::{DigitModel, EvalReport};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{ResolvedConfig, RetrainSchedule};

/// The registry file's name in the models folder.
pub const REGISTRY_FILE: &str = "registry.json";

/// Accuracy on a validation set, as compared for promotion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Images evaluated.
    pub n: usize,
    /// Predicted tenth == label.
    pub exact: f64,
    /// Circular distance <= 0.1.
    pub within_0_1: f64,
    /// Settled digit right (labels near a whole digit only).
    pub settled_digit: Option<f64>,
}

impl From<&EvalReport> for Score {
    fn from(r: &EvalReport) -> Self {
        Self {
            n: r.n,
            exact: r.exact,
            within_0_1: r.within_0_1,
            settled_digit: r.settled_digit,
        }
    }
}

impl Score {
    /// Whether `self` (a candidate) is no worse than `current` on every
    /// measure: exact, within 0.1, and settled digit where both have one.
    pub fn not_worse_than(&self, current: &Score) -> bool {
        let settled_ok = match (self.settled_digit, current.settled_digit) {
            (Some(a), Some(b)) => a >= b,
            _ => true,
        };
        self.exact >= current.exact && self.within_0_1 >= current.within_0_1 && settled_ok
    }

    /// `exact 91.30%  within 0.1 99.10%  settled 100.00%  (n 23)`.
    pub fn describe(&self) -> String {
        format!(
            "exact {:6.2}%  within 0.1 {:6.2}%  settled {}  (n {})",
            100.0 * self.exact,
            100.0 * self.within_0_1,
            self.settled_digit
                .map_or("     -".to_owned(), |s| format!("{:6.2}%", 100.0 * s)),
            self.n
        )
    }
}

/// One promoted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// 1, 2, ...
    pub version: u32,
    /// File name in the models folder.
    pub file: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The version it was fine-tuned from (0: the base model).
    pub parent: u32,
    /// Images trained on.
    pub train_images: usize,
    /// Its score on the user's validation images.
    pub score: Score,
    /// The parent's score on the same images.
    pub parent_score: Score,
    /// Seconds the training took.
    pub train_seconds: f64,
}

/// The last `meter retrain`, promoted or not (the schedule's memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it ran.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Images in the dataset then.
    pub dataset_images: usize,
    /// Whether the candidate was promoted.
    pub promoted: bool,
}

/// The registry file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// The version in use; `None` or 0: the base model.
    pub current: Option<u32>,
    /// Promoted versions, oldest first.
    pub versions: Vec<Version>,
    /// The last retrain.
    pub last_attempt: Option<Attempt>,
}

impl Registry {
    /// Reads `<dir>/registry.json`; an empty registry when there is none.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(REGISTRY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("model registry {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading model registry {}", path.display())),
        }
    }

    /// Writes `<dir>/registry.json` atomically.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(REGISTRY_FILE);
        let text = serde_json::to_string_pretty(self).expect("registry serialises");
        crate::files::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The current version number (0: the base model).
    pub fn current_version(&self) -> u32 {
        self.current.unwrap_or(0)
    }

    /// The entry of version `n`.
    pub fn version(&self, n: u32) -> Option<&Version> {
        self.versions.iter().find(|v| v.version == n)
    }

    /// The number the next version gets.
    pub fn next_version(&self) -> u32 {
        self.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1
    }
}

/// The file name of version `n` (`v0007.safetensors`).
pub fn version_file(n: u32) -> String {
    format!("v{n:04}.safetensors")
}

/// The registry's current model file, when a retrained version is in use;
/// `None` means the configured or shipped model. An unreadable registry or
/// a missing version file is an error (never silently the old model).
pub fn current_model_path(cfg: &ResolvedConfig) -> anyhow::Result<Option<PathBuf>> {
    let reg = Registry::load(&cfg.models_dir)?;
    match reg.current_version() {
        0 => Ok(None),
        n => {
            let v = reg.version(n).with_context(|| {
                format!(
                    "model registry {}: current version {n} is not listed",
                    cfg.models_dir.join(REGISTRY_FILE).display()
                )
            })?;
            let path = cfg.models_dir.join(&v.file);
            anyhow::ensure!(
                path.is_file(),
                "model registry {}: version {n}'s file {} is missing (`meter model use N` picks another)",
                cfg.models_dir.join(REGISTRY_FILE).display(),
                path.display()
            );
            Ok(Some(path))
        }
    }
}

/// Makes version `n` current (0: the base model), after loading it: never
/// a switch to a file that cannot serve (`meter model use`, the web page).
pub fn use_version(cfg: &ResolvedConfig, n: u32) -> anyhow::Result<()> {
    let mut reg = Registry::load(&cfg.models_dir)?;
    if n != 0 {
        let v = reg.version(n).ok_or_else(|| {
            let have: Vec<String> = reg
                .versions
                .iter()
                .map(|v| format!("v{}", v.version))
                .collect();
            anyhow::anyhow!(
                "model registry {}: no version {n} (have v0{}{})",
                cfg.models_dir.join(REGISTRY_FILE).display(),
                if have.is_empty() { "" } else { ", " },
                have.join(", ")
            )
        })?;
        DigitModel::load(&cfg.models_dir.join(&v.file))?;
    }
    reg.current = (n != 0).then_some(n);
    reg.save(&cfg.models_dir)
}

/// The model every predicting command should use: the registry's current
/// version, else `[model] path`, else the shipped model.
pub fn load_current_model(cfg: &ResolvedConfig) -> anyhow::Result<DigitModel> {
    match current_model_path(cfg)? {
        Some(p) => DigitModel::load(&p)
            .with_context(|| format!("model version {} (model registry)", p.display())),
        None => load_base_model(cfg),
    }
}

/// The base model (version 0): `[model] path`, or the shipped model.
pub fn load_base_model(cfg: &ResolvedConfig) -> anyhow::Result<DigitModel> {
    match &cfg.model_path {
        Some(p) => {
            // The model error names the file and its cause already; as a
            // message, not a chain, so the cause is not printed twice.
            DigitModel::load(p)
                .map_err(|e| anyhow::anyhow!("model.path in {}: {e}", cfg.path.display()))
        }
        // Parsed here rather than through `DigitModel::shipped()`, which
        // panics on a bad built-in file: this reports it as an error.
        None => DigitModel::from_bytes(DigitModel::shipped_bytes(), "the built-in model").context(
            "the built-in model (models/digits.safetensors) is unusable; set [model] path",
        ),
    }
}

/// Whether a scheduled retrain is due: enough new dataset images since the
/// last attempt and long enough since it. Returns the reason when due.
pub fn retrain_due(
    schedule: &RetrainSchedule,
    last: Option<&Attempt>,
    dataset_images: usize,
    now: OffsetDateTime,
) -> Option<String> {
    let (since_images, since_time) = match last {
        None => (dataset_images, None),
        Some(a) => (
            dataset_images.saturating_sub(a.dataset_images),
            Some(a.time),
        ),
    };
    if since_images < schedule.after_new_images {
        return None;
    }
    if let Some(t) = since_time {
        let elapsed = now - t;
        if elapsed < schedule.min_interval {
            return None;
        }
    }
    Some(format!(
        "{since_images} new images (threshold {})",
        schedule.after_new_images
    ))
}

/// Counts the image files in the label folders of `dataset_dir` (0 when it
/// does not exist yet).
pub fn count_dataset_images(dataset_dir: &Path) -> anyhow::Result<usize> {
    Ok(crate::files::label_files(dataset_dir)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn score(exact: f64, within: f64) -> Score {
        Score {
            n: 10,
            exact,
            within_0_1: within,
            settled_digit: Some(1.0),
        }
    }

    #[test]
    fn not_worse_needs_every_measure() {
        let cur = score(0.8, 0.95);
        assert!(score(0.8, 0.95).not_worse_than(&cur));
        assert!(score(0.9, 0.96).not_worse_than(&cur));
        assert!(!score(0.9, 0.94).not_worse_than(&cur));
        assert!(!score(0.79, 0.99).not_worse_than(&cur));
        let mut s = score(0.9, 0.99);
        s.settled_digit = Some(0.9);
        assert!(!s.not_worse_than(&cur));
    }

    #[test]
    fn registry_round_trips_and_numbers_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::load(dir.path()).unwrap();
        assert_eq!(reg, Registry::default());
        assert_eq!(reg.next_version(), 1);
        reg.versions.push(Version {
            version: 1,
            file: version_file(1),
            created: OffsetDateTime::UNIX_EPOCH,
            parent: 0,
            train_images: 80,
            score: score(0.9, 1.0),
            parent_score: score(0.5, 0.8),
            train_seconds: 12.0,
        });
        reg.current = Some(1);
        reg.save(dir.path()).unwrap();
        let back = Registry::load(dir.path()).unwrap();
        assert_eq!(back, reg);
        assert_eq!(back.next_version(), 2);
        assert_eq!(version_file(12), "v0012.safetensors");
    }

    #[test]
    fn corrupt_registry_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(REGISTRY_FILE), "{ not json").unwrap();
        let e = format!("{:#}", Registry::load(dir.path()).unwrap_err());
        assert!(e.contains("registry.json"), "{e}");
    }

    #[test]
    fn retrain_is_due_after_enough_new_images_and_time() {
        let sched = RetrainSchedule {
            after_new_images: 100,
            min_interval: Duration::from_secs(3600),
            in_run: false,
            check_every: Duration::from_secs(600),
        };
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1000);
        assert!(retrain_due(&sched, None, 99, t0).is_none());
        assert!(retrain_due(&sched, None, 100, t0).is_some());
        let last = Attempt {
            time: t0,
            dataset_images: 500,
            promoted: false,
        };
        // Enough images but too soon.
        assert!(retrain_due(&sched, Some(&last), 650, t0 + time::Duration::minutes(30)).is_none());
        // Late enough but too few new images.
        assert!(retrain_due(&sched, Some(&last), 599, t0 + time::Duration::hours(2)).is_none());
        let why = retrain_due(&sched, Some(&last), 600, t0 + time::Duration::hours(2)).unwrap();
        assert!(why.contains("100 new images"), "{why}");
    }

    #[test]
    fn counts_only_label_folders() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(count_dataset_images(&dir.path().join("none")).unwrap(), 0);
        for (folder, file) in [
            ("3.7", "a.png"),
            ("3", "b.png"),
            ("junk", "c.png"),
            ("3", ".d.tmp"),
        ] {
            std::fs::create_dir_all(dir.path().join(folder)).unwrap();
            std::fs::write(dir.path().join(folder).join(file), b"x").unwrap();
        }
        assert_eq!(count_dataset_images(dir.path()).unwrap(), 2);
    }
}
