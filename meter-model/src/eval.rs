//! Evaluation: accuracy overall, per kind and per source, confusions, speed.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use meter_core::Tenths;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::{DigitModel, ModelError};

/// Images per `predict_batch` call when evaluating (the digits of one frame).
pub const EVAL_BATCH: usize = 8;
/// How many confusions a report lists.
pub const TOP_CONFUSIONS: usize = 15;
/// The confidence levels [`EvalReport::by_confidence`] reports (0.95 is the
/// default `min_confidence` below which a reading is unsure).
pub const CONFIDENCE_LEVELS: [f32; 5] = [0.5, 0.8, 0.9, 0.95, 0.99];

/// Accuracy of one group of images. Fractions are in 0..=1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Images evaluated.
    pub n: usize,
    /// Fraction whose predicted tenth equals the label.
    pub exact: f64,
    /// Fraction within one tenth of the label (circular: 9.9 and 0.0 are neighbours).
    pub within_0_1: f64,
    /// Among labels whose fraction is <= .2 or >= .8: fraction whose rounded
    /// digit (mod 10) is right; `None` when there are no such labels.
    pub settled_digit: Option<f64>,
    /// How many labels counted for `settled_digit`.
    pub settled_n: usize,
}

/// A (label, prediction) pair that occurred, with its count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    /// The true label.
    pub label: Tenths,
    /// What the model said.
    pub predicted: Tenths,
    /// How often.
    pub count: usize,
}

/// The predictions at or above one confidence level: how many a reader that
/// accepts only those would keep, and how right they are. Confidence is the
/// calibrated probability of being within one tenth, so `within_0_1` should
/// be at least `min_confidence` when the calibration holds on this data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtConfidence {
    /// The level.
    pub min_confidence: f32,
    /// Predictions at or above it.
    pub n: usize,
    /// Their fraction of all predictions.
    pub share: f64,
    /// Fraction of those predicted exactly; `None` when `n` is 0.
    pub exact: Option<f64>,
    /// Fraction of those within one tenth; `None` when `n` is 0.
    pub within_0_1: Option<f64>,
}

/// The result of [`evaluate`]; serialises to the JSON `meter eval --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Images evaluated.
    pub n: usize,
    /// Fraction predicted exactly.
    pub exact: f64,
    /// Fraction within one tenth (circular).
    pub within_0_1: f64,
    /// Settled-digit accuracy (see [`Metrics::settled_digit`]).
    pub settled_digit: Option<f64>,
    /// Labels counted for `settled_digit`.
    pub settled_n: usize,
    /// Mean confidence of the predictions.
    pub mean_confidence: f64,
    /// Accuracy among the predictions at or above each of [`CONFIDENCE_LEVELS`].
    pub by_confidence: Vec<AtConfidence>,
    /// Metrics per `kind` (from a manifest); empty when no kind is known.
    pub per_kind: BTreeMap<String, Metrics>,
    /// Metrics per source.
    pub per_source: BTreeMap<String, Metrics>,
    /// The most frequent errors, most frequent first.
    pub confusions: Vec<Confusion>,
    /// Microseconds per digit of `predict_batch` on this thread, in batches of 8,
    /// image to prediction (resizing included).
    pub us_per_digit: f64,
}

#[derive(Default)]
struct Acc {
    n: usize,
    exact: usize,
    within: usize,
    settled_n: usize,
    settled_ok: usize,
}

impl Acc {
    fn add(&mut self, label: Tenths, pred: Tenths) {
        self.n += 1;
        self.exact += usize::from(label == pred);
        self.within += usize::from(label.circular_distance(pred) <= 1);
        let f = label.fraction_tenths();
        if f <= 2 || f >= 8 {
            self.settled_n += 1;
            self.settled_ok += usize::from(label.settled_digit() == pred.settled_digit());
        }
    }

    fn metrics(&self) -> Metrics {
        let frac = |k: usize, n: usize| k as f64 / n.max(1) as f64;
        Metrics {
            n: self.n,
            exact: frac(self.exact, self.n),
            within_0_1: frac(self.within, self.n),
            settled_digit: (self.settled_n > 0).then(|| frac(self.settled_ok, self.settled_n)),
            settled_n: self.settled_n,
        }
    }
}

/// Evaluates `model` on every sample of `data` (on this thread).
pub fn evaluate(model: &DigitModel, data: &Dataset) -> Result<EvalReport, ModelError> {
    if data.is_empty() {
        return Err(ModelError::Config {
            field: "data",
            message: "nothing to evaluate: the dataset is empty".into(),
        });
    }
    let mut total = Acc::default();
    let mut per_kind: BTreeMap<String, Acc> = BTreeMap::new();
    let mut per_source: BTreeMap<String, Acc> = BTreeMap::new();
    let mut confusions: HashMap<(Tenths, Tenths), usize> = HashMap::new();
    let mut confidence = 0.0f64;
    let mut at_level: [Acc; CONFIDENCE_LEVELS.len()] = Default::default();
    let mut elapsed = 0.0f64;
    let mut batch = Vec::with_capacity(EVAL_BATCH);
    for chunk in data.samples.chunks(EVAL_BATCH) {
        batch.clear();
        batch.extend(chunk.iter().map(|s| s.image.clone()));
        let start = Instant::now();
        let preds = model.predict_batch(&batch)?;
        elapsed += start.elapsed().as_secs_f64();
        for (s, p) in chunk.iter().zip(&preds) {
            total.add(s.label, p.tenths);
            if let Some(k) = &s.kind {
                per_kind
                    .entry(k.clone())
                    .or_default()
                    .add(s.label, p.tenths);
            }
            per_source
                .entry(s.source.clone())
                .or_default()
                .add(s.label, p.tenths);
            if s.label != p.tenths {
                *confusions.entry((s.label, p.tenths)).or_default() += 1;
            }
            confidence += f64::from(p.confidence);
            for (level, acc) in CONFIDENCE_LEVELS.iter().zip(&mut at_level) {
                if p.confidence >= *level {
                    acc.add(s.label, p.tenths);
                }
            }
        }
    }
    let mut confusions: Vec<Confusion> = confusions
        .into_iter()
        .map(|((label, predicted), count)| Confusion {
            label,
            predicted,
            count,
        })
        .collect();
    confusions.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.label.cmp(&b.label))
            .then(a.predicted.cmp(&b.predicted))
    });
    confusions.truncate(TOP_CONFUSIONS);
    let m = total.metrics();
    Ok(EvalReport {
        n: m.n,
        exact: m.exact,
        within_0_1: m.within_0_1,
        settled_digit: m.settled_digit,
        settled_n: m.settled_n,
        mean_confidence: confidence / m.n as f64,
        by_confidence: CONFIDENCE_LEVELS
            .iter()
            .zip(at_level)
            .map(|(&min_confidence, acc)| {
                let kept = acc.metrics();
                AtConfidence {
                    min_confidence,
                    n: kept.n,
                    share: kept.n as f64 / m.n as f64,
                    exact: (kept.n > 0).then_some(kept.exact),
                    within_0_1: (kept.n > 0).then_some(kept.within_0_1),
                }
            })
            .collect(),
        per_kind: per_kind
            .iter()
            .map(|(k, a)| (k.clone(), a.metrics()))
            .collect(),
        per_source: per_source
            .iter()
            .map(|(k, a)| (k.clone(), a.metrics()))
            .collect(),
        confusions,
        us_per_digit: elapsed * 1e6 / m.n as f64,
    })
}
