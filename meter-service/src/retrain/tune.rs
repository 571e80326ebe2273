//! Fine-tuning the current model on the user's dataset, and the blend of
//! the two that goes on.

use std::time::Instant;

use meter_model::{evaluate, Dataset, DigitModel, TrainConfig, TrainEvent};

use super::{blend, replay_check, version_name, ForgetCheck, Settings};
use crate::registry::Score;

/// Optimiser steps aimed at when --epochs is not given.
const TARGET_STEPS: usize = 200;
/// Images per optimiser step.
const BATCH: usize = 32;

/// Blend weights tried between the fine-tuned model (1.0) and the current one.
const BLENDS: [f32; 4] = [1.0, 0.75, 0.5, 0.25];

/// The blend of `current` and `tuned` that reads the user's validation
/// images best among those that forget nothing on the replay check (when
/// there is one), with its weight and whether it passed that check; ties go
/// to the blend closer to `current`.
pub(super) fn pick_blend(
    current: &DigitModel,
    tuned: DigitModel,
    val: &Dataset,
    check: Option<&ForgetCheck>,
    fixed: Option<f32>,
) -> anyhow::Result<(f32, DigitModel, bool)> {
    let mut best: Option<(f32, (f64, f64), bool, DigitModel)> = None;
    let fixed = fixed.map(|a| [a]);
    for &alpha in fixed.as_ref().map_or(&BLENDS[..], |f| &f[..]) {
        let m = if alpha == 1.0 {
            tuned.clone()
        } else {
            blend(current, &tuned, alpha)?
        };
        let u = Score::from(&evaluate(&m, val)?);
        let keeps = match check {
            Some(c) => !replay_check(&m, c)?.forgets(),
            None => true,
        };
        log::info!(
            "blend {alpha:.2}: {}{}",
            u.describe(),
            if keeps {
                ""
            } else {
                " (forgets on the replay check)"
            }
        );
        let key = (u.exact, u.within_0_1);
        let better = match &best {
            None => true,
            Some((_, k, kept, _)) => (keeps, key) >= (*kept, *k),
        };
        if better {
            best = Some((alpha, key, keeps, m));
        }
    }
    let (alpha, _, keeps, m) = best.expect("at least one blend");
    log::info!("chose blend {alpha:.2}");
    Ok((alpha, m, keeps))
}

pub(super) fn fine_tune(
    current: &DigitModel,
    parent: u32,
    train: &Dataset,
    unseen_sources: &[String],
    args: &Settings,
) -> anyhow::Result<(DigitModel, f64)> {
    let batch = BATCH.min(train.len());
    let batches = (train.len() / batch).max(1);
    let epochs = args
        .epochs
        .unwrap_or_else(|| TARGET_STEPS.div_ceil(batches).clamp(1, 60));
    let cfg = TrainConfig::builder()
        .init(current.clone(), version_name(parent))
        .epochs(epochs)
        .patience(epochs)
        .seed(args.seed)
        .batch_size(batch)
        .learning_rate(args.lr)
        .validation_fraction(0.0)
        // None of their images is trained on (they are the forgetting
        // check); recorded so that the next retrain checks on them too.
        .holdout_sources(unseen_sources.to_vec())
        // With `scripts/adapt.sh` (emeter1) the candidate loses 11 and gains 9
        // of the other meters' images and is promoted; re-estimating the
        // statistics instead, it loses 36, gains 27 and is refused.
        .freeze_batch_norm(true)
        .build()?;
    let started = Instant::now();
    let outcome = meter_model::train(train, &cfg, &mut |ev| {
        if let TrainEvent::Epoch(s) = ev {
            log::info!(
                "epoch {:>2}/{epochs}: loss {:.4} ({:.1}s)",
                s.epoch,
                s.train_loss,
                s.seconds
            );
        }
    })?;
    let secs = started.elapsed().as_secs_f64();
    log::info!(
        "trained {epochs} epochs on {} images in {secs:.0} s",
        train.len()
    );
    Ok((outcome.model, secs))
}
