//! One frame from JPEG bytes to a decided reading, on one thread: decode,
//! align (two marks), crop six digits, predict them, assemble the value,
//! judge it against the state. Issue 4's bar: <= 10 ms. The same through a
//! `Tracker` (issue 21: a normal frame of a followed camera, with the
//! digit-row check every tenth frame) keeps that bar.
//!
//! `cargo bench -p meter-benches --bench pipeline`

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion};
use meter_core::{assemble, decide, Counter, Rules, State};
use meter_model::DigitModel;
use meter_synth::{FrameParams, MeterLayout};
use meter_vision::{Aligner, Mark, Pipeline, Regions, Tracker};
use time::macros::datetime;

fn jpeg_frame(layout: &MeterLayout) -> Vec<u8> {
    let shot = layout.render(&FrameParams {
        counter: 12_345.6,
        rotation_deg: 1.0,
        shift: (3.0, -2.0),
        noise: 4.0,
        seed: 3,
        ..FrameParams::default()
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(shot.image)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .expect("encodes");
    out
}

fn frame_to_decision(c: &mut Criterion) {
    let layout = MeterLayout::default();
    let model = DigitModel::shipped();
    let mut aligner = Aligner::builder();
    for (k, m) in layout.marks.iter().enumerate() {
        let template = image::imageops::grayscale(&layout.mark_template(k).expect("mark"));
        aligner = aligner.mark(Mark {
            template,
            x: m[0].into(),
            y: m[1].into(),
        });
    }
    let (w, h) = model.input_size();
    let pipeline = Pipeline::builder()
        .aligner(aligner.build().expect("aligner"))
        .regions(Regions::Boxes(layout.digits.clone()))
        .digit_size(w, h)
        .build()
        .expect("pipeline");
    let jpeg = jpeg_frame(&layout);
    let counter = Counter::new(layout.digits.len(), 1).expect("counter");
    let rules = Rules::default();
    let state = State::with_value(counter, 1_234_000, datetime!(2024-01-01 0:00 UTC));
    let now = datetime!(2024-01-01 1:00 UTC);
    c.bench_function("pipeline/jpeg_to_decision_640x480_6digits", |b| {
        b.iter(|| {
            let out = pipeline.process_jpeg(&jpeg, "bench").expect("processes");
            let preds = model.predict_batch(&out.digits).expect("predicts");
            let reading = assemble(counter, &preds).expect("assembles");
            decide(&state, &rules, &reading, now).expect("decides")
        })
    });
    let mut tracker = Tracker::new(pipeline.clone());
    c.bench_function("pipeline/jpeg_to_decision_640x480_6digits_tracker", |b| {
        b.iter(|| {
            let out = tracker.process_jpeg(&jpeg, "bench").expect("processes");
            assert!(out.tracking.confirmed);
            let preds = model.predict_batch(&out.digits).expect("predicts");
            let reading = assemble(counter, &preds).expect("assembles");
            decide(&state, &rules, &reading, now).expect("decides")
        })
    });
}

criterion_group!(benches, frame_to_decision);
criterion_main!(benches);
