//! Shared helpers.

use meter_core::{assemble, Counter, DigitPrediction, Reading, Tenths};
use meter_synth::MeterLayout;

/// A prediction of `tenths` with the given confidence.
pub fn pred(tenths: Tenths, confidence: f32) -> DigitPrediction {
    DigitPrediction::with_confidence(tenths, confidence)
}

/// The exact roller positions of a value of `counter` given in ticks, as
/// the synthetic frames draw them.
pub fn positions(counter: Counter, ticks: u64) -> Vec<Tenths> {
    let layout = MeterLayout {
        digits: vec![[0, 0, 1, 1]; usize::from(counter.digits())],
        ..MeterLayout::default()
    };
    let drawn = layout.digit_positions(ticks as f64 / 10.0);
    assert_eq!(drawn, counter.positions(ticks), "{counter}: {ticks}");
    drawn
}

/// A confident reading of `text` (e.g. `"1234.56"`) as a perfect model would
/// see it on `counter`.
pub fn reading(counter: Counter, text: &str) -> Reading {
    let ticks = counter.parse(text).unwrap();
    let preds: Vec<_> = positions(counter, ticks)
        .into_iter()
        .map(|t| pred(t, 0.99))
        .collect();
    assemble(counter, &preds).unwrap()
}
