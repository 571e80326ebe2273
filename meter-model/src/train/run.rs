//! The training loop.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::temperature::fit_temperature;
use super::weights::{get_weights, random_weights, set_weights, weights_from};
use super::{split, EpochStats, TrainConfig, TrainEvent, TrainOutcome};
use crate::arch::net;
use crate::augment::augment;
use crate::dataset::{Dataset, Sample};
use crate::eval::{evaluate, Metrics};
use crate::model::{ModelMetadata, TrainingSummary, ValidationSummary};
use crate::preprocess::{fit_to_input, write_chw};
use crate::weights::Weights;
use crate::{DigitModel, ModelError, CLASSES};

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
        meta.meter_temperatures = init.metadata().meter_temperatures.clone();
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
