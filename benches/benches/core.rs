//! meter-core: value assembly and the plausibility decision.
//!
//! `cargo bench -p meter-benches --bench core`

use criterion::{criterion_group, criterion_main, Criterion};
use meter_core::{assemble, decide, Counter, DigitPrediction, Rules, State, Tenths};
use time::macros::datetime;

fn core(c: &mut Criterion) {
    let counter = Counter::new(8, 2).expect("counter");
    // 0129.99.7: a carry running through four rollers.
    let preds: Vec<DigitPrediction> = ["0.0", "1.0", "2.7", "9.7", "9.7", "9.7", "9.7", "9.7"]
        .iter()
        .map(|s| {
            let t: Tenths = s.parse().expect("label");
            DigitPrediction::with_confidence(t, 0.99)
        })
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
}

criterion_group!(benches, core);
criterion_main!(benches);
