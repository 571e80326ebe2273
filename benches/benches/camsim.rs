//! Camera simulator cost: rendering one synthetic 640x480 frame (render,
//! noise, flash hot-spot, warp, JPEG), and one `GET /capture` over loopback
//! HTTP (keep-alive client). Frames per second = 1 / time per iteration.
//!
//! `cargo bench -p meter-benches --bench camsim`
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use firmware::camsim::{Advance, Frames, Server, SimConfig, SyntheticConfig};

fn sim() -> Server {
    Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(SyntheticConfig {
            advance: Advance::PerFrame(0.07),
            ..SyntheticConfig::default()
        })),
        ..SimConfig::default()
    })
    .expect("simulator starts")
}

fn bench(c: &mut Criterion) {
    let sim = sim();
    let mut seq = 0u64;
    c.bench_function("camsim/render_frame_640x480", |b| {
        b.iter(|| {
            seq += 1;
            black_box(sim.render_frame(seq).expect("frame").jpeg.len())
        })
    });
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let url = sim.capture_url();
    c.bench_function("camsim/http_capture_640x480", |b| {
        b.iter(|| {
            let mut resp = agent.get(&url).call().expect("capture");
            black_box(resp.body_mut().read_to_vec().expect("body").len())
        })
    });
    sim.stop();

    // A slowly turning meter with 8 disturbance variants: served from the
    // frame cache (what one simulator feeding many readers costs).
    let cached = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(SyntheticConfig {
            advance: Advance::PerHour(1.0),
            variants: Some(8),
            ..SyntheticConfig::default()
        })),
        ..SimConfig::default()
    })
    .expect("simulator starts");
    let url = cached.capture_url();
    c.bench_function("camsim/http_capture_cached_variants8", |b| {
        b.iter(|| {
            let mut resp = agent.get(&url).call().expect("capture");
            black_box(resp.body_mut().read_to_vec().expect("body").len())
        })
    });
    cached.stop();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
