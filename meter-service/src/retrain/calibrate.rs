//! Calibration on the user's dataset: the current model's temperature
//! refitted on the dataset's training images, and the choice between the
//! recalibrated model and the fine-tune (see the module above).

use std::collections::BTreeMap;

use meter_model::{Dataset, DigitModel};

use super::{predictions, reading_tally};
use crate::counters::Tally;

/// Temperatures refitted on the dataset's training images (the user's
/// own, not replay images), when the current model's weights never trained
/// on them: each of `meters` on its own images, the rest of the images
/// (named otherwise, e.g. copied in by hand) together for the model's
/// general temperature. Nothing when the model is a fine-tune (it keeps
/// its parent's calibration): fitted on images it trained on, a model
/// would look surer than it is and get too sharp a temperature.
///
/// Each fit needs [`MIN_CALIBRATION`] images; a sharper temperature also
/// needs [`MIN_UNSURE`] images the model reads below `sure`: whether its
/// doubt was misplaced is learnt only from those. The reader files the
/// digits of stored readings by itself, so a dataset of such images alone,
/// all read right, would otherwise sharpen the model as far as the grid
/// goes (on emeter1, temperature 0.25 stores 7 of 500 history readings
/// wrong; its 100 labels fit 0.70).
pub(super) fn calibration(
    current: &DigitModel,
    own: &Dataset,
    meters: &[&str],
    sure: f32,
) -> anyhow::Result<Calibration> {
    let mut out = Calibration::default();
    let fine_tuned = current
        .metadata()
        .training
        .as_ref()
        .is_some_and(|t| t.init.is_some());
    if fine_tuned {
        return Ok(out);
    }
    let (mine, rest): (Vec<_>, Vec<_>) = own
        .samples
        .iter()
        .cloned()
        .partition(|s| meters.contains(&s.source.as_str()));
    let rest = Dataset {
        samples: rest,
        problems: Vec::new(),
    };
    out.general = refit(current, &rest, "the dataset's other images", sure)?;
    let mine = Dataset {
        samples: mine,
        problems: Vec::new(),
    };
    for meter in mine.sources() {
        let images = mine.with_sources(&[meter.to_owned()]);
        let model = current.for_meter(meter);
        if let Some(t) = refit(&model, &images, &format!("meter {meter}"), sure)? {
            out.meters.insert(meter.to_owned(), t);
        }
    }
    Ok(out)
}

/// What [`calibration`] found: temperatures that differ from the model's.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Calibration {
    /// The model's general temperature.
    pub general: Option<f32>,
    /// Meters' own temperatures.
    pub meters: BTreeMap<String, f32>,
}

impl Calibration {
    pub fn is_empty(&self) -> bool {
        self.general.is_none() && self.meters.is_empty()
    }

    /// `model` recalibrated so (the same weights).
    pub fn apply(&self, model: &DigitModel) -> anyhow::Result<DigitModel> {
        let mut meta = model.metadata().clone();
        if let Some(t) = self.general {
            meta.temperature = t;
        }
        meta.meter_temperatures
            .extend(self.meters.iter().map(|(m, t)| (m.clone(), *t)));
        Ok(model.with_metadata(meta)?)
    }

    /// In words, from `model`'s temperatures: `temperature 0.70 -> 0.25`,
    /// `meter cold 0.70 -> 0.25`.
    pub fn describe(&self, model: &DigitModel) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(t) = self.general {
            parts.push(format!("temperature {:.2} -> {t:.2}", model.temperature()));
        }
        for (m, t) in &self.meters {
            let before = model.for_meter(m).temperature();
            parts.push(format!("meter {m} temperature {before:.2} -> {t:.2}"));
        }
        parts.join(", ")
    }
}

/// The temperature `model` fits on `images` (`what` names them in the
/// log) when it differs from its own and the guards allow it.
fn refit(
    model: &DigitModel,
    images: &Dataset,
    what: &str,
    sure: f32,
) -> anyhow::Result<Option<f32>> {
    if images.len() < MIN_CALIBRATION {
        if !images.is_empty() {
            log::info!(
                "calibration: {what}: {} images, too few to fit a temperature on (need {MIN_CALIBRATION})",
                images.len()
            );
        }
        return Ok(None);
    }
    let before = model.temperature();
    let t = meter_model::fit_temperature(model, images)?;
    log::info!(
        "calibration: {what}: temperature {t:.2} fits the {} training images; the model has {before:.2}",
        images.len(),
    );
    if t < before {
        let unsure = predictions(model, images)?
            .iter()
            .filter(|p| p.confidence < sure)
            .count();
        if unsure < MIN_UNSURE {
            log::info!(
                "calibration: {what}: only {unsure} of them read below {sure}, too few to sharpen on; keeping {before:.2}"
            );
            return Ok(None);
        }
    }
    Ok(((t - before).abs() >= 0.01).then_some(t))
}

/// Fewest training images a temperature is fitted on.
const MIN_CALIBRATION: usize = 50;
/// Fewest unsure training images a sharper temperature is fitted on. The
/// digits the reader filed itself are all read sure by the model that
/// filed them (none unsure); a person's labels are not: Metrona/cold's 80
/// training labels (of 100 drawn at random) have 7, and at 20 the guard
/// kept its temperature at 0.70 where 0.25 stores 98% of its histories.
const MIN_UNSURE: usize = 5;

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

    /// `digits(n)` as meter `meter` filed them.
    fn filed(meter: &str, n: usize) -> Dataset {
        let mut d = digits(n);
        for s in &mut d.samples {
            s.source = meter.to_owned();
        }
        d
    }

    #[test]
    fn the_base_model_is_recalibrated_on_enough_of_the_users_images() {
        let base = DigitModel::shipped();
        let own = digits(MIN_CALIBRATION);
        let c = calibration(&base, &own, &[], f32::INFINITY).unwrap();
        let t = c.general.expect("recalibrated");
        assert_eq!(t, meter_model::fit_temperature(&base, &own).unwrap());
        let sharp = c.apply(&base).unwrap();
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
        assert!(
            calibration(&base, &digits(MIN_CALIBRATION - 1), &[], f32::INFINITY)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn each_meter_gets_its_own_temperature() {
        let base = DigitModel::shipped();
        // Meter "cold" is read right and unsurely; meter "hot" has too few
        // images; the rest (named otherwise) refit nothing either.
        let mut own = filed("cold", MIN_CALIBRATION);
        own.samples
            .extend(filed("hot", MIN_CALIBRATION - 1).samples);
        own.samples.extend(digits(10).samples);
        let c = calibration(&base, &own, &["cold", "hot"], f32::INFINITY).unwrap();
        let t = meter_model::fit_temperature(&base, &filed("cold", MIN_CALIBRATION)).unwrap();
        assert!(t < base.temperature(), "{t}");
        assert_eq!(c.general, None);
        assert_eq!(
            c.meters.into_iter().collect::<Vec<_>>(),
            [("cold".to_owned(), t)]
        );
        let c = calibration(&base, &own, &["cold", "hot"], f32::INFINITY).unwrap();
        let model = c.apply(&base).unwrap();
        // Read as "cold" at its own temperature, every other meter as before.
        assert_eq!(model.for_meter("cold").temperature(), t);
        assert_eq!(model.for_meter("hot").temperature(), base.temperature());
        assert_eq!(model.temperature(), base.temperature());
        let image = &own.samples[0].image;
        let conf =
            |m: &DigitModel| m.predict_batch(std::slice::from_ref(image)).unwrap()[0].confidence;
        assert!(conf(&model.for_meter("cold")) > conf(&model.for_meter("hot")));
        assert_eq!(conf(&model.for_meter("hot")), conf(&base));
        // The temperature is saved with the model and found again.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        model.save(&path).unwrap();
        assert_eq!(
            DigitModel::load(&path)
                .unwrap()
                .for_meter("cold")
                .temperature(),
            t
        );
        // Already at it: nothing to refit.
        assert!(calibration(&model, &own, &["cold", "hot"], f32::INFINITY)
            .unwrap()
            .is_empty());
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
        assert!(calibration(&base, &own, &[], 0.0).unwrap().is_empty());
        let cold = filed("cold", MIN_CALIBRATION);
        assert!(calibration(&base, &cold, &["cold"], 0.0)
            .unwrap()
            .is_empty());
        // A softer temperature needs no such evidence.
        let mut meta = base.metadata().clone();
        meta.temperature = 0.1;
        let too_sharp = base.with_metadata(meta).unwrap();
        let t = calibration(&too_sharp, &own, &[], 0.0).unwrap().general;
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
        assert!(calibration(&tuned, &digits(80), &[], f32::INFINITY)
            .unwrap()
            .is_empty());
        assert!(
            calibration(&tuned, &filed("cold", 80), &["cold"], f32::INFINITY)
                .unwrap()
                .is_empty()
        );
    }
}
