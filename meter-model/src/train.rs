//! Training: split by source and at random, augment, AdamW with warm-up and
//! cosine decay, early stopping on validation accuracy, temperature
//! calibration. Deterministic for a given seed and thread count.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::arch::{net, Architecture};
use crate::augment::{augment, AugmentConfig};
use crate::dataset::{Dataset, Sample};
use crate::eval::{evaluate, EvalReport, Metrics};
use crate::model::{softmax, ModelMetadata, TrainingSummary, ValidationSummary};
use crate::preprocess::{fit_to_input, write_chw};
use crate::weights::Weights;
use crate::{DigitModel, ModelError, CLASSES};

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

/// Trains a model on `data` and reports progress to `progress`.
pub fn train(
    data: &Dataset,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(TrainEvent<'_>),
) -> Result<TrainOutcome, ModelError> {
    let (train_idx, val_idx) = split(data, cfg);
    if train_idx.len() < cfg.batch_size.min(2) || train_idx.is_empty() {
        return Err(ModelError::Config {
            field: "data",
            message: format!(
                "only {} training images after holding out {} for validation",
                train_idx.len(),
                val_idx.len()
            ),
        });
    }
    let arch = cfg.architecture().clone();
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model_net = net(&arch, VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
    let start_weights = match &cfg.init {
        Some((m, _)) => m.weights().clone(),
        None => random_weights(&arch, cfg.seed),
    };
    set_weights(&varmap, &start_weights)?;
    let mut ema: Option<BTreeMap<String, Tensor>> = cfg.ema_decay.map(|_| {
        let data = varmap.data().lock().expect("varmap lock");
        data.iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect()
    });
    let trainable: Vec<Var> = {
        let data = varmap.data().lock().expect("varmap lock");
        let mut named: Vec<(&String, &Var)> = data
            .iter()
            .filter(|(n, _)| !n.contains("running_"))
            .collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        named.into_iter().map(|(_, v)| v.clone()).collect()
    };
    let lr = cfg.learning_rate();
    let mut opt = AdamW::new(
        trainable.clone(),
        ParamsAdamW {
            lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let val_set = Dataset {
        samples: val_idx.iter().map(|&i| data.samples[i].clone()).collect(),
        problems: Vec::new(),
    };
    let batch = cfg.batch_size.min(train_idx.len());
    let batches = train_idx.len() / batch; // drop the ragged tail (batch-norm)
    let total_steps = (batches * cfg.epochs).max(1);
    let warmup = (total_steps / 20).clamp(1, 300);
    progress(TrainEvent::Started {
        epochs: cfg.epochs,
        batches_per_epoch: batches,
        train: train_idx.len(),
        validation: val_idx.len(),
    });
    let (w, h) = (arch.width, arch.height);
    let plane = (w * h * 3) as usize;
    let feats = arch.head_in();
    let targets = soft_targets(cfg.label_smoothing);
    let mut order = train_idx.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Weights)> = None;
    let mut step = 0usize;
    let mut stopped_early = false;
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        order.shuffle(&mut rng);
        let mut loss_sum = 0f64;
        for b in 0..batches {
            let idx = &order[b * batch..(b + 1) * batch];
            let mut x = vec![0f32; batch * plane];
            let mut y = vec![0f32; batch * CLASSES];
            for (k, &i) in idx.iter().enumerate() {
                let s: &Sample = &data.samples[i];
                let out = &mut x[k * plane..(k + 1) * plane];
                // Samples loaded for another input size are resized, not
                // misread (a no-op for the usual, matching size).
                let image = fit_to_input(&s.image, w, h);
                match &cfg.augment {
                    Some(a) => write_chw(&augment(&image, a, &mut rng), out),
                    None => write_chw(&image, out),
                }
                let l = usize::from(s.label.index());
                y[k * CLASSES..(k + 1) * CLASSES].copy_from_slice(&targets[l]);
            }
            let x = Tensor::from_vec(x, (batch, 3, h as usize, w as usize), &dev)?;
            let y = Tensor::from_vec(y, (batch, CLASSES), &dev)?;
            let mask = if cfg.dropout > 0.0 {
                let keep = 1.0 - cfg.dropout;
                let m: Vec<f32> = (0..batch * feats)
                    .map(|_| {
                        if rng.gen::<f32>() < keep {
                            1.0 / keep
                        } else {
                            0.0
                        }
                    })
                    .collect();
                Some(Tensor::from_vec(m, (batch, feats), &dev)?)
            } else {
                None
            };
            // Two half-batches: forward passes in turn (batch-norm updates
            // its running statistics in a fixed order), backward passes on
            // two threads, gradients averaged (= the full batch's mean loss).
            // Results do not depend on the number of cores.
            let half = batch / 2;
            let mut losses = Vec::with_capacity(2);
            for (start, len) in [(0, half), (half, batch - half)] {
                let logits = model_net.forward_masked(
                    &x.narrow(0, start, len)?,
                    !cfg.freeze_batch_norm,
                    mask.as_ref()
                        .map(|m| m.narrow(0, start, len))
                        .transpose()?
                        .as_ref(),
                )?;
                let logp = candle_nn::ops::log_softmax(&logits, 1)?;
                losses.push((y.narrow(0, start, len)? * logp)?.sum(1)?.mean(0)?.neg()?);
            }
            let (grads_a, grads_b) = if candle_core::utils::get_num_threads() > 1 {
                std::thread::scope(|scope| {
                    let other = scope.spawn(|| losses[1].backward());
                    let mine = losses[0].backward();
                    (mine, other.join().expect("backward pass thread"))
                })
            } else {
                (losses[0].backward(), losses[1].backward())
            };
            let (mut grads, grads_b) = (grads_a?, grads_b?);
            for var in &trainable {
                if let (Some(a), Some(b)) = (grads.get(var), grads_b.get(var)) {
                    let mean = ((a + b)? * 0.5)?;
                    grads.insert(var, mean);
                }
            }
            step += 1;
            opt.set_learning_rate(schedule(lr, step, warmup, total_steps));
            opt.step(&grads)?;
            if let (Some(ema), Some(decay)) = (&mut ema, cfg.ema_decay) {
                // Early steps average over fewer steps (the usual warm-up).
                let d = decay.min((1 + step) as f64 / (10 + step) as f64);
                let data = varmap.data().lock().expect("varmap lock");
                for (name, avg) in ema.iter_mut() {
                    let now = data[name].as_tensor().detach();
                    *avg = ((&*avg * d)? + (now * (1.0 - d))?)?.detach();
                }
            }
            let loss = (losses[0].to_scalar::<f32>()? + losses[1].to_scalar::<f32>()?) / 2.0;
            loss_sum += f64::from(loss);
            progress(TrainEvent::Batch {
                epoch,
                batch: b + 1,
                loss,
            });
        }
        let weights = match &ema {
            Some(avg) => weights_from(|name| avg.get(name).cloned(), &arch)?,
            None => get_weights(&varmap, &arch)?,
        };
        let validation = if val_set.is_empty() {
            None
        } else {
            let m = DigitModel::from_parts(ModelMetadata::new(arch.clone()), weights.clone());
            let r = evaluate(&m, &val_set)?;
            Some(Metrics {
                n: r.n,
                exact: r.exact,
                within_0_1: r.within_0_1,
                settled_digit: r.settled_digit,
                settled_n: r.settled_n,
            })
        };
        // Exact first; within-one-tenth breaks ties. Without validation, the last epoch wins.
        let score = validation
            .as_ref()
            .map_or(epoch as f64, |m| m.exact + 0.25 * m.within_0_1);
        let improved = best.as_ref().is_none_or(|(s, _, _)| score > *s);
        if improved {
            best = Some((score, epoch, weights));
        }
        let stats = EpochStats {
            epoch,
            train_loss: (loss_sum / batches.max(1) as f64) as f32,
            validation,
            improved,
            seconds: t0.elapsed().as_secs_f64(),
        };
        progress(TrainEvent::Epoch(&stats));
        history.push(stats);
        let best_epoch = best.as_ref().map_or(epoch, |b| b.1);
        if !val_set.is_empty() && epoch - best_epoch >= cfg.patience && epoch < cfg.epochs {
            stopped_early = true;
            break;
        }
    }
    let (_, best_epoch, weights) = best.expect("at least one epoch ran");
    let mut meta = ModelMetadata::new(arch.clone());
    if let Some((init, _)) = &cfg.init {
        // Without validation images to refit it on, a fine-tune keeps the
        // initial model's calibration: at the default 1.0 a candidate from
        // a model calibrated at 0.7 was less sure of everything, and the
        // reading gate refused it for storing fewer readings.
        meta.temperature = init.metadata().temperature;
    }
    let plain = DigitModel::from_parts(meta.clone(), weights.clone());
    let validation = if val_set.is_empty() {
        None
    } else {
        meta.temperature = fit_temperature(&plain, &val_set)?;
        let calibrated = plain.with_metadata(meta.clone())?;
        Some(evaluate(&calibrated, &val_set)?)
    };
    let mut holdout = cfg.holdout_sources.clone();
    holdout.sort();
    meta.training = Some(TrainingSummary {
        data: Vec::new(),
        train_images: train_idx.len(),
        validation_images: val_idx.len(),
        holdout_sources: holdout,
        epochs: history.len(),
        best_epoch,
        seed: cfg.seed,
        init: cfg.init.as_ref().map(|(_, n)| n.clone()),
    });
    meta.validation = validation.as_ref().map(|r| ValidationSummary {
        n: r.n,
        exact: r.exact,
        within_0_1: r.within_0_1,
        settled_digit: r.settled_digit.unwrap_or(f64::NAN),
    });
    if let Some(v) = &mut meta.validation {
        if v.settled_digit.is_nan() {
            v.settled_digit = 0.0;
        }
    }
    Ok(TrainOutcome {
        model: DigitModel::from_parts(meta, weights),
        history,
        best_epoch,
        stopped_early,
        validation,
    })
}

/// Linear warm-up, then cosine decay to 2% of the peak.
fn schedule(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step <= warmup {
        return lr * step as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    lr * (0.02 + 0.98 * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()))
}

/// Per class: `1 - eps` on the label, `eps / 2` on each circular neighbour
/// (the scale wraps: 9.9 is next to 0.0).
fn soft_targets(eps: f32) -> Vec<Vec<f32>> {
    (0..CLASSES)
        .map(|l| {
            let mut t = vec![0f32; CLASSES];
            t[l] = 1.0 - eps;
            t[(l + 1) % CLASSES] += eps / 2.0;
            t[(l + CLASSES - 1) % CLASSES] += eps / 2.0;
            t
        })
        .collect()
}

/// Seeded initial weights: Kaiming-uniform convolutions and head, identity batch-norm.
pub(crate) fn random_weights(arch: &Architecture, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1417_0000);
    let mut map = BTreeMap::new();
    for (name, shape) in arch.tensor_shapes() {
        let n: usize = shape.iter().product();
        let values = if name.ends_with("running_var")
            || (name.starts_with("bn") && name.ends_with("weight"))
        {
            vec![1.0; n]
        } else if name.starts_with("bn") || name == "head.bias" {
            vec![0.0; n]
        } else {
            let fan_in: usize = shape[1..].iter().product();
            let bound = (6.0 / fan_in as f32).sqrt();
            (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
        };
        map.insert(name, (shape, values));
    }
    Weights(map)
}

fn set_weights(varmap: &VarMap, w: &Weights) -> Result<(), ModelError> {
    let data = varmap.data().lock().expect("varmap lock");
    for (name, (shape, values)) in &w.0 {
        let var = data.get(name).ok_or_else(|| ModelError::MissingTensor {
            origin: "training network".into(),
            name: name.clone(),
        })?;
        var.set(&Tensor::from_slice(values, shape.as_slice(), &Device::Cpu)?)?;
    }
    Ok(())
}

fn get_weights(varmap: &VarMap, arch: &Architecture) -> Result<Weights, ModelError> {
    let data = varmap.data().lock().expect("varmap lock");
    weights_from(|name| data.get(name).map(|v| v.as_tensor().clone()), arch)
}

/// The architecture's tensors, looked up by name.
fn weights_from(
    get: impl Fn(&str) -> Option<Tensor>,
    arch: &Architecture,
) -> Result<Weights, ModelError> {
    let mut map = BTreeMap::new();
    for (name, shape) in arch.tensor_shapes() {
        let t = get(&name).ok_or_else(|| ModelError::MissingTensor {
            origin: "training network".into(),
            name: name.clone(),
        })?;
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        map.insert(name, (shape, values));
    }
    Ok(Weights(map))
}

/// The softmax temperature minimising the log-loss on `val` (grid search
/// over 0.25 ..= 3.0): the calibration of `model` on those images.
pub fn fit_temperature(model: &DigitModel, val: &Dataset) -> Result<f32, ModelError> {
    let mut logits = Vec::with_capacity(val.len() * CLASSES);
    for chunk in val.samples.chunks(64) {
        let imgs: Vec<_> = chunk.iter().map(|s| s.image.clone()).collect();
        logits.extend(model.logits(&imgs)?);
    }
    let nll = |t: f32| -> f64 {
        logits
            .chunks_exact(CLASSES)
            .zip(&val.samples)
            .map(|(l, s)| -f64::from(softmax(l, t)[usize::from(s.label.index())].max(1e-12)).ln())
            .sum()
    };
    let mut best = (f64::INFINITY, 1.0f32);
    for i in 0..=55 {
        let t = 0.25 + 0.05 * i as f32;
        let v = nll(t);
        if v < best.0 {
            best = (v, t);
        }
    }
    Ok(best.1)
}
