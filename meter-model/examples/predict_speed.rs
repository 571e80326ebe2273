//! Times `predict_batch` on batches of 8 synthetic digits on one thread.
//!
//! `cargo run -p meter-model --example predict_speed [MODEL] [ITERATIONS]`.
//! On a busy machine, run it under `perf stat -e task-clock` and divide the
//! task clock by 8 x ITERATIONS: that excludes time spent waiting for a CPU.

use std::path::Path;
use std::time::Instant;

use meter_model::DigitModel;
use meter_synth::{render_digit, DigitStyle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = match args.next() {
        Some(p) if !p.is_empty() => DigitModel::load(Path::new(&p))?,
        _ => DigitModel::shipped(),
    };
    let iterations: usize = args.next().map_or(Ok(5000), |s| s.parse())?;
    let (w, h) = model.input_size();
    let batch: Vec<_> = (0..8u8)
        .map(|i| {
            let t = meter_core::Tenths::new(i * 12 + 3).expect("< 100");
            render_digit(t, w, h, &DigitStyle::default())
        })
        .collect();
    let start = Instant::now();
    let mut n = 0usize;
    for _ in 0..iterations {
        n += model.predict_batch(&batch)?.len();
    }
    let s = start.elapsed().as_secs_f64();
    println!("{:.1} us/digit wall ({n} digits)", s * 1e6 / n as f64);
    Ok(())
}
