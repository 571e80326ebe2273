//! Training: split by source and at random, augment, AdamW with warm-up and
//! cosine decay, early stopping on validation accuracy, temperature
//! calibration. Deterministic for a given seed and thread count.

mod run;
mod temperature;
mod weights;

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::arch::Architecture;
use crate::augment::AugmentConfig;
use crate::dataset::Dataset;
use crate::eval::{EvalReport, Metrics};
use crate::model::ModelMetadata;
use crate::{DigitModel, ModelError};

pub use run::train;
pub use temperature::fit_temperature;
pub(crate) use weights::random_weights;

/// Training settings; make one with [`TrainConfig::builder`].
#[derive(Debug, Clone)]
pub struct TrainConfig {
    epochs: usize,
    seed: u64,
    batch_size: usize,
    learning_rate: Option<f64>,
    weight_decay: f64,
    label_smoothing: f32,
    dropout: f32,
    patience: usize,
    holdout_sources: Vec<String>,
    validation_fraction: f64,
    architecture: Architecture,
    init: Option<(DigitModel, String)>,
    augment: Option<AugmentConfig>,
    freeze_batch_norm: bool,
    ema_decay: Option<f64>,
}

impl TrainConfig {
    /// A builder with the defaults used for the shipped model.
    pub fn builder() -> TrainConfigBuilder {
        TrainConfigBuilder {
            cfg: TrainConfig {
                epochs: 30,
                seed: 1,
                batch_size: 64,
                learning_rate: None,
                weight_decay: 1e-4,
                label_smoothing: 0.1,
                dropout: 0.2,
                patience: 5,
                holdout_sources: Vec::new(),
                validation_fraction: 0.05,
                architecture: Architecture::default(),
                init: None,
                augment: Some(AugmentConfig::default()),
                freeze_batch_norm: false,
                ema_decay: Some(0.999),
            },
        }
    }

    /// The learning rate in effect (3e-3 from scratch, 1e-3 when fine-tuning).
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
            .unwrap_or(if self.init.is_some() { 1e-3 } else { 3e-3 })
    }

    /// The architecture trained (the initial model's when fine-tuning).
    pub fn architecture(&self) -> &Architecture {
        self.init
            .as_ref()
            .map_or(&self.architecture, |(m, _)| &m.metadata().architecture)
    }
}

/// Builds a [`TrainConfig`]; `build` checks the values.
#[derive(Debug, Clone)]
pub struct TrainConfigBuilder {
    cfg: TrainConfig,
}

impl TrainConfigBuilder {
    /// Maximum number of passes over the training images.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.cfg.epochs = epochs;
        self
    }
    /// Random seed (split, shuffling, augmentation, initial weights, dropout).
    pub fn seed(mut self, seed: u64) -> Self {
        self.cfg.seed = seed;
        self
    }
    /// Images per optimiser step.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.cfg.batch_size = n;
        self
    }
    /// Peak learning rate.
    pub fn learning_rate(mut self, lr: f64) -> Self {
        self.cfg.learning_rate = Some(lr);
        self
    }
    /// AdamW weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.cfg.weight_decay = wd;
        self
    }
    /// Probability mass moved from the label to its two circular neighbours.
    pub fn label_smoothing(mut self, eps: f32) -> Self {
        self.cfg.label_smoothing = eps;
        self
    }
    /// Dropout before the head.
    pub fn dropout(mut self, p: f32) -> Self {
        self.cfg.dropout = p;
        self
    }
    /// Stop after this many epochs without a better validation score.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.cfg.patience = epochs;
        self
    }
    /// Sources (whole meters) kept out of training for validation.
    pub fn holdout_sources(mut self, sources: Vec<String>) -> Self {
        self.cfg.holdout_sources = sources;
        self
    }
    /// Fraction of the remaining images drawn at random for validation.
    pub fn validation_fraction(mut self, f: f64) -> Self {
        self.cfg.validation_fraction = f;
        self
    }
    /// Network shape for training from scratch.
    pub fn architecture(mut self, arch: Architecture) -> Self {
        self.cfg.architecture = arch;
        self
    }
    /// Fine-tune this model instead of starting from random weights;
    /// `name` is recorded in the new model's metadata.
    pub fn init(mut self, model: DigitModel, name: impl Into<String>) -> Self {
        self.cfg.init = Some((model, name.into()));
        self
    }
    /// Keep the batch-norm statistics of the initial model (`init`) instead
    /// of re-estimating them from the training batches: fine-tuning on one
    /// user's meter then cannot shift the normalisation every other meter
    /// relies on (a main cause of forgetting). Scale and shift still learn.
    pub fn freeze_batch_norm(mut self, freeze: bool) -> Self {
        self.cfg.freeze_batch_norm = freeze;
        self
    }

    /// Evaluate and keep an exponential moving average of the weights
    /// (decay per step, e.g. 0.999) instead of the last step's weights:
    /// smoother, usually a little more accurate; `None` keeps the raw weights.
    pub fn ema_decay(mut self, decay: Option<f64>) -> Self {
        self.cfg.ema_decay = decay;
        self
    }

    /// Augmentation settings, or `None` to train on the images as they are.
    pub fn augment(mut self, augment: Option<AugmentConfig>) -> Self {
        self.cfg.augment = augment;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<TrainConfig, ModelError> {
        let c = self.cfg;
        let bad = |field, message: &str| {
            Err(ModelError::Config {
                field,
                message: message.to_owned(),
            })
        };
        if c.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if c.batch_size < 2 {
            return bad("batch_size", "must be at least 2 (batch-norm)");
        }
        if let Some(lr) = c.learning_rate {
            if !(lr.is_finite() && lr > 0.0) {
                return bad("learning_rate", "must be > 0");
            }
        }
        if !(0.0..1.0).contains(&c.validation_fraction) {
            return bad("validation_fraction", "must be in 0..1");
        }
        if !(0.0..1.0).contains(&c.label_smoothing) {
            return bad("label_smoothing", "must be in 0..1");
        }
        if !(0.0..1.0).contains(&c.dropout) {
            return bad("dropout", "must be in 0..1");
        }
        if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
            return bad("weight_decay", "must be >= 0");
        }
        if c.ema_decay.is_some_and(|d| !(0.0..1.0).contains(&d)) {
            return bad("ema_decay", "must be in 0..1");
        }
        if c.init.is_none() {
            // Same checks as for a loaded file.
            let meta = ModelMetadata::new(c.architecture.clone());
            let w = random_weights(&c.architecture, 0);
            DigitModel::from_parts(meta, w)
                .with_metadata(ModelMetadata::new(c.architecture.clone()))?;
        }
        Ok(c)
    }
}

/// Progress reported while training.
#[derive(Debug)]
#[non_exhaustive]
pub enum TrainEvent<'a> {
    /// Training starts.
    Started {
        /// Maximum epochs.
        epochs: usize,
        /// Optimiser steps per epoch.
        batches_per_epoch: usize,
        /// Training images.
        train: usize,
        /// Validation images.
        validation: usize,
    },
    /// One optimiser step done.
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// Loss of this batch.
        loss: f32,
    },
    /// An epoch is done.
    Epoch(&'a EpochStats),
}

/// What one epoch achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f32,
    /// Validation metrics, when there is a validation set.
    pub validation: Option<Metrics>,
    /// Whether this is the best epoch so far (its weights are kept).
    pub improved: bool,
    /// Seconds the epoch took.
    pub seconds: f64,
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The best model (by validation score; the last one without validation).
    pub model: DigitModel,
    /// Per-epoch statistics.
    pub history: Vec<EpochStats>,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    /// Whether early stopping ended training.
    pub stopped_early: bool,
    /// The full evaluation of the kept model on the validation set.
    pub validation: Option<EvalReport>,
}

/// Indices of (training, validation) samples: every sample of a held-out
/// source, plus a seeded random fraction of the others.
pub fn split(data: &Dataset, cfg: &TrainConfig) -> (Vec<usize>, Vec<usize>) {
    let held: HashSet<&str> = cfg.holdout_sources.iter().map(String::as_str).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED_5917);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, s) in data.samples.iter().enumerate() {
        if held.contains(s.source.as_str()) || rng.gen_bool(cfg.validation_fraction) {
            val.push(i);
        } else {
            train.push(i);
        }
    }
    (train, val)
}
