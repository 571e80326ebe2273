//! Calibration on the user's dataset: the current model's temperature
//! refitted on the dataset's training images, and the choice between the
//! recalibrated model and the fine-tune (see the module above).

use meter_model::{Dataset, DigitModel};

use super::{predictions, reading_tally};
use crate::counters::Tally;

/// The temperature refitted on the dataset's training images (the user's
/// own, not replay images), when the current model's weights never trained
/// on them; `None` otherwise (a fine-tune keeps its parent's, which was
/// fitted so). Fitted on images it trained on, a model would look surer
/// than it is and get too sharp a temperature.
///
/// A sharper temperature also needs [`MIN_UNSURE`] images the model reads
/// below `sure`: whether its doubt was misplaced is learnt only from
/// those. The reader files the digits of stored readings by itself, so a
/// dataset of such images alone, all read right, would otherwise sharpen
/// the model as far as the grid goes (on emeter1, temperature 0.25 stores 7
/// of 500 history readings wrong; its 100 labels fit 0.70).
pub(super) fn calibration(
    current: &DigitModel,
    own: &Dataset,
    sure: f32,
) -> anyhow::Result<Option<f32>> {
    let fine_tuned = current
        .metadata()
        .training
        .as_ref()
        .is_some_and(|t| t.init.is_some());
    if fine_tuned || own.len() < MIN_CALIBRATION {
        return Ok(None);
    }
    let before = current.metadata().temperature;
    let t = meter_model::fit_temperature(current, own)?;
    log::info!(
        "calibration: temperature {t:.2} fits the {} training images; the model has {before:.2}",
        own.len(),
    );
    if t < before {
        let unsure = predictions(current, own)?
            .iter()
            .filter(|p| p.confidence < sure)
            .count();
        if unsure < MIN_UNSURE {
            log::info!(
                "calibration: only {unsure} of them read below {sure}, too few to sharpen on; keeping {before:.2}"
            );
            return Ok(None);
        }
    }
    Ok(Some(t))
}

/// Fewest training images a temperature is fitted on.
const MIN_CALIBRATION: usize = 50;
/// Fewest unsure training images a sharper temperature is fitted on.
const MIN_UNSURE: usize = 20;

/// `model` with softmax temperature `t`.
pub(super) fn with_temperature(model: &DigitModel, t: f32) -> anyhow::Result<DigitModel> {
    let mut meta = model.metadata().clone();
    meta.temperature = t;
    Ok(model.with_metadata(meta)?)
}

/// The recalibrated current model or the fine-tune at the same temperature
/// (`tuned_keeps`: whether the fine-tune passed the forgetting check): the
/// one that can pass the gate (the recalibrated model reads every digit as
/// the current one, so it never forgets), then the one storing more of the
/// readings composed from the validation images with none wrong (ties: the
/// fine-tune, which also learnt the digits). With the chosen one's tally.
pub(super) fn pick_calibrated(
    recalibrated: DigitModel,
    tuned: DigitModel,
    tuned_keeps: bool,
    val: &Dataset,
    tuned_name: &str,
) -> anyhow::Result<(DigitModel, String, Option<Tally>)> {
    let a = reading_tally(&recalibrated, val)?;
    let b = reading_tally(&tuned, val)?;
    let key = |keeps: bool, t: &Option<Tally>| {
        (keeps, t.as_ref().map(|t| (t.stored_wrong == 0, t.stored)))
    };
    for (name, t) in [("recalibrated", &a), (tuned_name, &b)] {
        if let Some(t) = t {
            log::info!(
                "{name}: {} of {} composed readings stored, {} wrong",
                t.stored,
                t.frames,
                t.stored_wrong
            );
        }
    }
    Ok(if key(true, &a) > key(tuned_keeps, &b) {
        (recalibrated, "recalibrated".to_owned(), a)
    } else {
        (tuned, tuned_name.to_owned(), b)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use meter_core::Tenths;
    use meter_model::Sample;
    use meter_synth::{render_digit, DigitStyle};

    fn digits(n: usize) -> Dataset {
        let (w, h) = DigitModel::shipped().input_size();
        let samples = (0..n)
            .map(|k| {
                let label = Tenths::new((k % 10) as u8 * 10).unwrap();
                let style = DigitStyle {
                    glyph_height: 0.6 + 0.02 * (k % 8) as f32,
                    ..DigitStyle::default()
                };
                Sample {
                    image: render_digit(label, w, h, &style),
                    label,
                    source: "user".into(),
                    kind: None,
                    path: PathBuf::from(format!("img{k}.png")),
                }
            })
            .collect();
        Dataset {
            samples,
            problems: Vec::new(),
        }
    }

    #[test]
    fn the_base_model_is_recalibrated_on_enough_of_the_users_images() {
        let base = DigitModel::shipped();
        let own = digits(MIN_CALIBRATION);
        let t = calibration(&base, &own, f32::INFINITY)
            .unwrap()
            .expect("recalibrated");
        assert_eq!(t, meter_model::fit_temperature(&base, &own).unwrap());
        let sharp = with_temperature(&base, t).unwrap();
        assert_eq!(sharp.metadata().temperature, t);
        // The same weights: the same digits, only surer or less sure.
        let images: Vec<_> = own.samples.iter().map(|s| s.image.clone()).collect();
        let read = |m: &DigitModel| -> Vec<Tenths> {
            m.predict_batch(&images)
                .unwrap()
                .iter()
                .map(|p| p.tenths)
                .collect()
        };
        assert_eq!(read(&sharp), read(&base));
        // Too few images to fit a temperature on.
        assert_eq!(
            calibration(&base, &digits(MIN_CALIBRATION - 1), f32::INFINITY).unwrap(),
            None
        );
    }

    #[test]
    fn a_sharper_temperature_needs_unsure_images() {
        // Clean synthetic digits, all read right: the fit sharpens.
        let base = DigitModel::shipped();
        let own = digits(MIN_CALIBRATION);
        let t = meter_model::fit_temperature(&base, &own).unwrap();
        assert!(t < base.metadata().temperature, "{t}");
        // As if every image were read sure (as the reader's own filed
        // digits are): no evidence that the doubt was misplaced.
        assert_eq!(calibration(&base, &own, 0.0).unwrap(), None);
        // A softer temperature needs no such evidence.
        let mut meta = base.metadata().clone();
        meta.temperature = 0.1;
        let too_sharp = base.with_metadata(meta).unwrap();
        let t = calibration(&too_sharp, &own, 0.0).unwrap();
        assert!(t.is_some_and(|t| t > 0.1), "{t:?}");
    }

    #[test]
    fn a_fine_tuned_model_keeps_its_temperature() {
        // It trained on the dataset: fitted there, it would look surer than
        // it is.
        let base = DigitModel::shipped();
        let mut meta = base.metadata().clone();
        if let Some(t) = meta.training.as_mut() {
            t.init = Some("v0 (base model)".into());
        }
        let tuned = base.with_metadata(meta).unwrap();
        assert_eq!(
            calibration(&tuned, &digits(80), f32::INFINITY).unwrap(),
            None
        );
    }
}
