//! Digit model inference (image to prediction, one thread, batches of 8),
//! loading, and training throughput (one epoch of 512 images, batches of 64,
//! augmentation on, with the threads candle is given: `RAYON_NUM_THREADS`).
//!
//! `cargo bench -p meter-benches --bench model`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use meter_model::{Dataset, DigitModel, Sample, TrainConfig};
use meter_synth::{render_digit, DigitStyle};

fn digits(w: u32, h: u32) -> Vec<image::RgbImage> {
    (0..8u8)
        .map(|i| {
            render_digit(
                meter_core::Tenths::new(i * 12 + 3).expect("< 100"),
                w,
                h,
                &DigitStyle::default(),
            )
        })
        .collect()
}

fn predict(c: &mut Criterion) {
    let model = DigitModel::shipped();
    let (w, h) = model.input_size();
    let mut group = c.benchmark_group("model/predict_batch8");
    group.throughput(Throughput::Elements(8));
    // The common case: crops already at the input size.
    let native = digits(w, h);
    group.bench_function(BenchmarkId::new("fast", format!("{w}x{h}")), |b| {
        b.iter(|| model.predict_batch(&native).expect("predicts"))
    });
    // Larger crops that must be resized first.
    let large = digits(40, 64);
    group.bench_function(BenchmarkId::new("fast", "40x64"), |b| {
        b.iter(|| model.predict_batch(&large).expect("predicts"))
    });
    // candle's forward pass on the same weights, for comparison.
    group.sample_size(20);
    group.bench_function(
        BenchmarkId::new("candle_reference", format!("{w}x{h}")),
        |b| b.iter(|| model.logits_reference(&native).expect("runs")),
    );
    group.finish();
}

fn load(c: &mut Criterion) {
    let bytes = DigitModel::shipped_bytes();
    c.bench_function("model/load_from_bytes", |b| {
        b.iter(|| DigitModel::from_bytes(bytes, "bench").expect("loads"))
    });
}

fn train_epoch(c: &mut Criterion) {
    let (w, h) = DigitModel::shipped().input_size();
    let samples = (0..512u32)
        .map(|i| {
            let label = meter_core::Tenths::new((i % 100) as u8).expect("< 100");
            Sample {
                image: render_digit(label, w, h, &DigitStyle::default()),
                label,
                source: format!("bench-{}", i % 4),
                kind: None,
                path: format!("{i}.png").into(),
            }
        })
        .collect();
    let data = Dataset {
        samples,
        problems: Vec::new(),
    };
    let cfg = TrainConfig::builder()
        .architecture(DigitModel::shipped().metadata().architecture.clone())
        .epochs(1)
        .batch_size(64)
        .validation_fraction(0.0)
        .build()
        .expect("valid");
    let mut group = c.benchmark_group("model/train");
    group.sample_size(10);
    group.throughput(Throughput::Elements(512));
    group.bench_function("epoch_512_images", |b| {
        b.iter(|| meter_model::train(&data, &cfg, &mut |_| {}).expect("trains"))
    });
    group.finish();
}

criterion_group!(benches, predict, load, train_epoch);
criterion_main!(benches);
