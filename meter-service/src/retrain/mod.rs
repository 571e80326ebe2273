//! Retraining (`meter retrain`, and `meter run` on schedule): fine-tune the current model on the user's dataset and
//! promote the result only if it is not worse.
//!
//! The dataset (`dataset_dir`: labelled and self-filed images) is split by a
//! hash of each image's pixels: one in five is validation, always the same
//! images whatever the order or names, so successive retrains are compared
//! on the same footing and never train on their judge. The candidate and the
//! current model are both evaluated on it; the candidate becomes the next
//! numbered version only if it is no worse on exact, within-0.1 and settled
//! accuracy, and on whole readings composed from those images (as `meter
//! eval --counters` composes them) it stores none wrong and not
//! significantly fewer ([`ReadingCheck`]). Otherwise the numbers are printed
//! and the exit code is 2.
//!
//! Calibration: when the current model's weights never trained on the
//! dataset (the base model, or one only recalibrated), its softmax
//! temperature is refitted on the dataset's training images, which it reads
//! as it will read the user's meters: a meter it reads right but unsurely
//! gets a sharper temperature, one it misreads confidently a softer one.
//! Each meter gets its own, fitted on the images it filed or that were
//! labelled from it (named `<meter>-<hash>`), kept in the model file and
//! applied when that meter is read; other images refit the general one.
//! The composed validation readings are composed and read meter by meter
//! too. Two candidates then exist, the recalibrated current model and the
//! fine-tune at those temperatures; the one that stores more of the composed
//! readings (none wrong) goes before the gate. Measured on meters the
//! shipped model never saw (100 labels each, readings composed from the
//! meter's other photos): Metrona/cold's histories 73% -> 98% stored, none
//! wrong (models/README.md).

use std::path::PathBuf;

use anyhow::Context;
use meter_core::DigitPrediction;
use meter_model::{evaluate, Dataset, DigitModel};
use time::OffsetDateTime;

use crate::config::ResolvedConfig;
use crate::counters::Tally;
use crate::files::image_hash;
use crate::registry::{self, Attempt, Registry, Score, Version};

mod blend;
mod calibrate;
mod gate;
mod tune;

pub use blend::blend;
pub use gate::{Paired, ReadingCheck, ReplayCheck, FORGET_P, UNSEEN_MARGIN};

use calibrate::{calibration, pick_calibrated};
use tune::{fine_tune, pick_blend};

/// One image in this many is validation.
const VALIDATION_EVERY: u64 = 5;
/// Fewest validation images worth a decision.
const MIN_VALIDATION: usize = 5;
/// Fewest training images worth a fine-tune.
const MIN_TRAIN: usize = 16;
/// Default share of the user's own images among replay images.
pub const OWN_SHARE: f32 = 0.5;

/// Whether an image belongs to the fixed validation part.
pub fn is_validation(img: &image::RgbImage) -> bool {
    image_hash(img).is_multiple_of(VALIDATION_EVERY)
}

/// How to retrain (the command's flags; `Default` for `meter run`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Epochs; `None`: about [`TARGET_STEPS`] optimiser steps.
    pub epochs: Option<usize>,
    /// Peak learning rate.
    pub lr: f64,
    /// Seed.
    pub seed: u64,
    /// A model to judge instead of training one.
    pub candidate: Option<PathBuf>,
    /// General images mixed into training.
    pub replay: Option<PathBuf>,
    /// How many of them.
    pub replay_count: usize,
    /// A fixed blend weight instead of choosing one.
    pub blend: Option<f32>,
    /// Where to write the candidate as well, promoted or not.
    pub keep_candidate: Option<PathBuf>,
    /// Share of the dataset's own images when replay images are mixed in.
    pub own_share: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            epochs: None,
            lr: 2e-4,
            seed: 1,
            candidate: None,
            replay: None,
            replay_count: 8000,
            blend: None,
            keep_candidate: None,
            own_share: OWN_SHARE,
        }
    }
}

/// The model's reading of every image of `data`, in order.
fn predictions(model: &DigitModel, data: &Dataset) -> anyhow::Result<Vec<DigitPrediction>> {
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.samples.chunks(meter_model::EVAL_BATCH) {
        let images: Vec<_> = chunk.iter().map(|s| s.image.clone()).collect();
        out.extend(model.predict_batch(&images)?);
    }
    Ok(out)
}

/// Per image: (exact, within 0.1) right.
fn outcomes(model: &DigitModel, data: &Dataset) -> anyhow::Result<Vec<(bool, bool)>> {
    Ok(predictions(model, data)?
        .iter()
        .zip(&data.samples)
        .map(|(p, s)| {
            (
                p.tenths == s.label,
                p.tenths.circular_distance(s.label) <= 1,
            )
        })
        .collect())
}

/// The forgetting check's images with the current model's results on them.
struct ForgetCheck {
    data: Dataset,
    unseen: bool,
    current: Vec<(bool, bool)>,
    score: Score,
}

impl ForgetCheck {
    fn new(current: &DigitModel, data: Dataset, unseen: bool) -> anyhow::Result<Self> {
        Ok(Self {
            current: outcomes(current, &data)?,
            score: Score::from(&evaluate(current, &data)?),
            data,
            unseen,
        })
    }
}

/// Compares `candidate` with the current model on the check's images.
fn replay_check(candidate: &DigitModel, check: &ForgetCheck) -> anyhow::Result<ReplayCheck> {
    let cand = outcomes(candidate, &check.data)?;
    let mut exact = Paired::default();
    let mut within = Paired::default();
    for (&(ce, cw), &(ne, nw)) in check.current.iter().zip(&cand) {
        for (before, after, p) in [(ce, ne, &mut exact), (cw, nw, &mut within)] {
            p.lost += usize::from(before && !after);
            p.gained += usize::from(!before && after);
        }
    }
    Ok(ReplayCheck {
        unseen: check.unseen,
        current: check.score,
        candidate: Score::from(&evaluate(candidate, &check.data)?),
        exact,
        within,
    })
}

/// What a retrain decided.
#[derive(Debug, Clone)]
pub enum RetrainOutcome {
    /// The schedule says not yet (why).
    NotDue(String),
    /// The candidate became version `version`.
    Promoted {
        /// How the candidate was made, in words.
        made: String,
        /// Its number.
        version: u32,
        /// Its file.
        path: PathBuf,
        /// The version it replaced.
        parent: u32,
        /// The replaced version's score on the validation images.
        current: Score,
        /// The candidate's score.
        candidate: Score,
        /// Both models on held-back replay images, with --replay.
        general: Option<ReplayCheck>,
        /// Both models on readings composed from the validation images
        /// (`None`: they cannot make a counter).
        readings: Option<ReadingCheck>,
    },
    /// The candidate was worse: nothing changed.
    Refused {
        /// How the candidate was made, in words.
        made: String,
        /// The version kept.
        parent: u32,
        /// Its score on the validation images.
        current: Score,
        /// The candidate's score.
        candidate: Score,
        /// Both models on held-back replay images, with --replay.
        general: Option<ReplayCheck>,
        /// Both models on readings composed from the validation images
        /// (`None`: they cannot make a counter).
        readings: Option<ReadingCheck>,
        /// Which check refused it, in words (`on readings: ...`).
        why: String,
    },
}

/// Fine-tunes the current model on `cfg`'s dataset (or judges
/// `settings.candidate`), compares it with the current model on the fixed
/// validation part and promotes it when not worse. With `if_due`, does
/// nothing unless the `[retrain]` schedule says enough new images arrived
/// (`meter run` calls it so).
pub fn retrain(
    cfg: &ResolvedConfig,
    settings: &Settings,
    if_due: bool,
) -> anyhow::Result<RetrainOutcome> {
    let mut reg = Registry::load(&cfg.models_dir)?;
    let dataset_images = registry::count_dataset_images(&cfg.dataset_dir)?;
    let now = OffsetDateTime::now_utc();
    if if_due {
        let schedule = cfg.retrain.as_ref().with_context(|| {
            format!(
                "retraining on schedule: config {} has no [retrain] table",
                cfg.path.display()
            )
        })?;
        match registry::retrain_due(schedule, reg.last_attempt.as_ref(), dataset_images, now) {
            Some(why) => log::info!("retraining: {why}"),
            None => {
                return Ok(RetrainOutcome::NotDue(format!(
                    "{dataset_images} images; threshold {} new, at most every {:?}",
                    schedule.after_new_images, schedule.min_interval
                )))
            }
        }
    }
    let parent = reg.current_version();
    let current = registry::load_current_model(cfg)?;
    let mut data = Dataset::load(&cfg.dataset_dir, current.input_size())
        .with_context(|| format!("dataset_dir {}", cfg.dataset_dir.display()))?;
    let meters: Vec<&str> = cfg.meters.iter().map(|m| m.name.as_str()).collect();
    crate::files::sources_by_meter(&mut data, Some(&meters));
    for p in &data.problems {
        log::warn!("skipped: {p}");
    }
    let (val, train): (Vec<_>, Vec<_>) = data
        .samples
        .into_iter()
        .partition(|s| is_validation(&s.image));
    let (val, mut train) = (
        Dataset {
            samples: val,
            problems: Vec::new(),
        },
        Dataset {
            samples: train,
            problems: Vec::new(),
        },
    );
    anyhow::ensure!(
        val.len() >= MIN_VALIDATION && train.len() >= MIN_TRAIN,
        "dataset_dir {}: {} images ({} training, {} validation) are too few; \
         need at least {MIN_TRAIN} and {MIN_VALIDATION}: label more with `meter classify`",
        cfg.dataset_dir.display(),
        train.len() + val.len(),
        train.len(),
        val.len()
    );
    log::info!(
        "dataset {}: {} training, {} validation images; current model: {}",
        cfg.dataset_dir.display(),
        train.len(),
        val.len(),
        version_name(parent)
    );
    let user_images = train.len();
    // What "unsure" means for the calibration's guard: the most lenient
    // min_confidence among the meters, at most the default, so that as few
    // images as possible count as evidence for sharpening.
    let sure = cfg
        .meters
        .iter()
        .map(|m| m.rules.min_confidence)
        .fold(meter_core::Rules::default().min_confidence, f32::min);
    let calibrated = calibration(&current, &train, &meters, sure)?;
    // The forgetting check: the replay images of meters the current model
    // never trained on, else a fifth of the replay images (by hash).
    let mut check = None;
    let own_sources = train.sources();
    let unseen_sources: Vec<String> = current
        .metadata()
        .training
        .as_ref()
        .map(|t| t.holdout_sources.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !own_sources.contains(s.as_str()))
        .collect();
    if let Some(dir) = &settings.replay {
        let mut extra = Dataset::load(dir, current.input_size())
            .with_context(|| format!("replay data {}", dir.display()))?;
        let (unseen, seen): (Vec<_>, Vec<_>) = extra
            .samples
            .into_iter()
            .partition(|s| unseen_sources.contains(&s.source));
        extra.samples = seen;
        extra.subsample(settings.replay_count, settings.seed);
        let (held, unseen) = if unseen.is_empty() {
            let (held, kept): (Vec<_>, Vec<_>) = extra
                .samples
                .into_iter()
                .partition(|s| is_validation(&s.image));
            extra.samples = kept;
            (held, false)
        } else {
            (unseen, true)
        };
        if !held.is_empty() {
            let data = Dataset {
                samples: held,
                problems: Vec::new(),
            };
            log::info!(
                "forgetting check: {} images of {} meter(s) {}",
                data.len(),
                data.sources().len(),
                if unseen {
                    "the current model never trained on"
                } else {
                    "held back from fine-tuning"
                }
            );
            check = Some(ForgetCheck::new(&current, data, unseen)?);
        }
        // The user's images are repeated (augmentation makes each pass
        // differ) until they are `own_share` of what is seen.
        let share = f64::from(settings.own_share);
        let repeats = ((share / (1.0 - share)) * extra.len() as f64 / user_images as f64)
            .round()
            .max(1.0) as usize;
        log::info!(
            "mixing in {} images from {} (the {user_images} of the dataset {repeats} times each)",
            extra.len(),
            dir.display()
        );
        let own = train.samples.clone();
        for _ in 1..repeats {
            train.samples.extend(own.iter().cloned());
        }
        train.samples.extend(extra.samples);
    }
    let cur_score = Score::from(&evaluate(&current, &val)?);
    // Each model reads the composed validation readings once (a few
    // seconds each); the candidate's tally may come from choosing it.
    let (candidate, made, cand_tally, train_seconds) = match &settings.candidate {
        Some(p) => {
            let m = DigitModel::load(p).with_context(|| format!("candidate {}", p.display()))?;
            let tally = reading_tally(&m, &val)?;
            (m, format!("{} (given)", p.display()), tally, 0.0)
        }
        None => {
            let (tuned, secs) = fine_tune(&current, parent, &train, &unseen_sources, settings)?;
            let (alpha, best, keeps) =
                pick_blend(&current, tuned, &val, check.as_ref(), settings.blend)?;
            let tuned = format!("fine-tuned (blend {alpha:.2})");
            if calibrated.is_empty() {
                let tally = reading_tally(&best, &val)?;
                let made = format!("{tuned}, temperature {:.2}", current.temperature());
                (best, made, tally, secs)
            } else {
                let recalibrated = calibrated.apply(&current)?;
                let best = calibrated.apply(&best)?;
                let (model, what, tally) =
                    pick_calibrated(recalibrated, best, keeps, &val, &tuned)?;
                let made = format!("{what}, {}", calibrated.describe(&current));
                (model, made, tally, secs)
            }
        }
    };
    log::info!("candidate: {made}");
    if let Some(p) = &settings.keep_candidate {
        candidate.save(p)?;
    }
    let cand_score = Score::from(&evaluate(&candidate, &val)?);
    let general = check
        .as_ref()
        .map(|c| replay_check(&candidate, c))
        .transpose()?;
    let readings = match (reading_tally(&current, &val)?, cand_tally) {
        (Some(current), Some(candidate)) => Some(ReadingCheck { current, candidate }),
        _ => None,
    };
    if let Some(r) = readings.as_ref().filter(|r| r.current.stored_wrong > 0) {
        // The current model is misreading this dataset's meter surely: the
        // user should know whatever the candidate's fate.
        log::warn!(
            "{} stores {} of {} readings composed from the dataset's validation digits wrong: \
             label more of this meter's digits (`meter classify`) or raise its min_confidence",
            version_name(parent),
            r.current.stored_wrong,
            r.current.frames
        );
    }
    let why = refusal(&cur_score, &cand_score, general.as_ref(), readings.as_ref());
    let promote = why.is_none();
    reg.last_attempt = Some(Attempt {
        time: now,
        dataset_images,
        promoted: promote,
    });
    if let Some(why) = why {
        reg.save(&cfg.models_dir)?;
        return Ok(RetrainOutcome::Refused {
            made,
            parent,
            current: cur_score,
            candidate: cand_score,
            general,
            readings,
            why,
        });
    }
    let n = reg.next_version();
    let file = registry::version_file(n);
    std::fs::create_dir_all(&cfg.models_dir)
        .with_context(|| format!("creating {}", cfg.models_dir.display()))?;
    let path = cfg.models_dir.join(&file);
    // Written whole, then renamed into place by the model crate.
    candidate.save(&path)?;
    reg.versions.push(Version {
        version: n,
        file,
        created: now,
        parent,
        train_images: user_images,
        score: cand_score,
        parent_score: cur_score,
        train_seconds,
    });
    reg.current = Some(n);
    reg.save(&cfg.models_dir)?;
    Ok(RetrainOutcome::Promoted {
        made,
        version: n,
        path,
        parent,
        current: cur_score,
        candidate: cand_score,
        general,
        readings,
    })
}

/// Which of the gate's checks refuses the candidate, in words; `None`:
/// promote it.
fn refusal(
    current: &Score,
    candidate: &Score,
    general: Option<&ReplayCheck>,
    readings: Option<&ReadingCheck>,
) -> Option<String> {
    if !candidate.not_worse_than(current) {
        return Some("on the dataset's validation images".to_owned());
    }
    if general.is_some_and(ReplayCheck::forgets) {
        return Some("on the replay check (it forgets other meters)".to_owned());
    }
    readings
        .and_then(ReadingCheck::refusal)
        .map(|r| format!("on readings: {r}"))
}

/// `model` on counters composed from the validation images (single frames
/// and histories together), or `None` when those images cannot make a
/// counter (no settled digit).
fn reading_tally(model: &DigitModel, val: &Dataset) -> anyhow::Result<Option<Tally>> {
    use crate::counters::{evaluate_counters, CounterEval, Plan, StreamKind};
    // 200 frames a model: a retrain's few seconds, enough to see a candidate
    // that stores wrong readings or leaves a third more unsure.
    let options = CounterEval {
        plan: Plan {
            single_frames: 100,
            histories: 5,
            history_len: 20,
            ..Plan::default()
        },
        ..CounterEval::default()
    };
    match evaluate_counters(model, val, &[], &options) {
        Ok(r) => {
            let mut t = r.total(StreamKind::Single);
            t.add(&r.total(StreamKind::History));
            Ok(Some(t))
        }
        Err(e) if e.chain().any(|c| c.is::<meter_synth::ComposeError>()) => {
            log::info!("no reading-level check: {e:#}");
            Ok(None)
        }
        Err(e) => Err(e.context("the reading-level check")),
    }
}

/// `v0 (base model)`, `v3`.
pub fn version_name(v: u32) -> String {
    if v == 0 {
        "v0 (base model)".into()
    } else {
        format!("v{v}")
    }
}
