//! The web page with 100 simulated meters, each read once by the service:
//! the overview (`GET /`) and one meter's frame with its overlay
//! (`GET /api/meters/{name}/frame.jpg`, drawn once per reading, then
//! served from memory), over loopback HTTP with a keep-alive client.
//! Targets: overview <= 50 ms, frame <= 10 ms.
//!
//! `cargo bench -p meter-benches --bench web`
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use firmware::camsim::{Advance, Frames, Server, SimConfig, SyntheticConfig};
use meter_service::config::{ResolvedConfig, ServeConfig};
use meter_service::{RunOptions, Service};

const METERS: usize = 100;

fn bench(c: &mut Criterion) {
    let sim = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(SyntheticConfig {
            advance: Advance::PerFrame(0.1),
            ..SyntheticConfig::default()
        })),
        ..SimConfig::default()
    })
    .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let setup = sim.write_setup(&dir.path().join("sim")).unwrap();
    let table = std::fs::read_to_string(&setup.config).unwrap();
    let mut text = String::new();
    for i in 0..METERS {
        text.push_str(&table.replace("name = \"camsim\"", &format!("name = \"m{i:03}\"")));
        text.push('\n');
    }
    text.push_str("[[sink]]\ntype = \"jsonl\"\npath = \"readings.jsonl\"\n");
    let config = dir.path().join("meter.toml");
    std::fs::write(&config, text).unwrap();
    let cfg = ResolvedConfig::load_with_env(&config, &Default::default()).unwrap();
    let service = Service::new(
        cfg.clone(),
        RunOptions {
            count: Some(1),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let live = service.live().clone();
    let reconfigure = service.reconfigure().clone();
    service.run().unwrap();
    let web = meter_web::Server::start(
        cfg,
        &ServeConfig {
            listen: "127.0.0.1:0".into(),
            token: None,
        },
        live,
        Some(reconfigure),
    )
    .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let get = |path: &str| {
        let url = format!("http://{}{path}", web.addr());
        let agent = agent.clone();
        move || {
            let mut r = agent.get(&url).call().expect("answer");
            black_box(r.body_mut().read_to_vec().expect("body").len())
        }
    };
    let overview = get("/");
    c.bench_function("web/overview_100_meters", |b| b.iter(&overview));
    let meters = get("/api/meters");
    c.bench_function("web/api_meters_100_meters", |b| b.iter(&meters));
    let frame = get("/api/meters/m042/frame.jpg");
    c.bench_function("web/frame_jpg", |b| b.iter(&frame));
    web.stop();
    sim.stop();
}

criterion_group!(benches, bench);
criterion_main!(benches);
