//! Temperature calibration: on the validation set after training, and on
//! a user's dataset by `meter retrain`.

use crate::dataset::Dataset;
use crate::model::softmax;
use crate::{DigitModel, ModelError, CLASSES};

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
