//! meter-core: value assembly, the per-digit plausibility decision and the
//! reading-level decision (odometer posterior).
//!
//! `cargo bench -p meter-benches --bench core`

use criterion::{criterion_group, criterion_main, Criterion};
use meter_core::{
    assemble, decide, judge, Counter, DecisionRule, DigitPrediction, Distribution, Evidence, Rules,
    State, Tenths,
};
use time::macros::datetime;

/// A model-like distribution: most mass on `at`, some on its neighbours, a
/// little on a look-alike digit and a thin tail everywhere.
fn spread(at: Tenths, confidence: f32) -> DigitPrediction {
    let mut p = [0.0005f32; Tenths::CLASSES];
    let i = usize::from(at.index());
    p[i] = confidence;
    p[(i + 1) % 100] = (1.0 - confidence) * 0.3;
    p[(i + 99) % 100] = (1.0 - confidence) * 0.2;
    p[(i + 30) % 100] = (1.0 - confidence) * 0.2;
    DigitPrediction::from_distribution(Distribution::from_probs(&p).expect("distribution"))
}

fn core(c: &mut Criterion) {
    let counter = Counter::new(8, 2).expect("counter");
    // 0129.99.7: a carry running through four rollers.
    let positions = ["0.0", "1.0", "2.7", "9.7", "9.7", "9.7", "9.7", "9.7"];
    let preds: Vec<DigitPrediction> = positions
        .iter()
        .map(|s| DigitPrediction::with_confidence(s.parse().expect("label"), 0.99))
        .collect();
    c.bench_function("core/assemble_8digits", |b| {
        b.iter(|| assemble(counter, &preds).expect("assembles"))
    });
    let reading = assemble(counter, &preds).expect("assembles");
    let state = State::with_value(counter, 1_000_000, datetime!(2024-01-01 0:00 UTC));
    let rules = Rules {
        max_rate_per_hour: Some(100.0),
        ..Rules::default()
    };
    let now = datetime!(2024-01-01 1:00 UTC);
    c.bench_function("core/decide", |b| {
        b.iter(|| decide(&state, &rules, &reading, now).expect("decides"))
    });
    // The reading-level decision on rollers that are each a little unsure.
    let unsure: Vec<DigitPrediction> = positions
        .iter()
        .zip([0.99, 0.98, 0.7, 0.8, 0.9, 0.6, 0.85, 0.75])
        .map(|(s, conf)| spread(s.parse().expect("label"), conf))
        .collect();
    let reading_rules = Rules {
        decision: DecisionRule::Reading,
        ..rules.clone()
    };
    c.bench_function("core/judge_reading_8digits", |b| {
        b.iter(|| judge(&state, &reading_rules, &Evidence::read(&unsure), now).expect("judges"))
    });
}

criterion_group!(benches, core);
criterion_main!(benches);
