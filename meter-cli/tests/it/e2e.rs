//! End to end over real HTTP: `meter run` reads the camera simulator's
//! rolling counter (noise, jitter, rotation, flash reflection) frame after
//! frame; every stored value is checked against the simulator's truth.
//!
//! `cargo test` runs 150 frames; `METER_E2E_FRAMES=1000` (scripts/ci/e2e.sh)
//! runs the full 1,000.

use std::time::Instant;

use serde_json::Value;

use crate::helpers::{rolling, run, s, sim_meter, stderr, stdout};

#[test]
fn rolling_counter_over_http() {
    let frames: u64 = std::env::var("METER_E2E_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    // Starts just below the end of the six-digit counter (9999.9 with one
    // decimal... 99999.9 here) and advances 0.037 units a frame: the last
    // roller moves 3.7 tenths a frame, every higher roller rolls in turn, and
    // the counter wraps to 00000.0 after about 400 frames.
    let (start, step) = (99_985.0, 0.037);
    let sim = sim_meter(
        rolling(start, step, 11),
        "10ms",
        "max_rate_per_hour = 1000000.0",
    );
    let t0 = Instant::now();
    let o = run(&[
        "run",
        "--config",
        s(&sim.config),
        "--count",
        &frames.to_string(),
        "--json",
    ]);
    let elapsed = t0.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let reports: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len() as u64, frames);
    // One capture per reading (no retries), so reading k saw frame k.
    assert_eq!(sim.server.frames_served(), frames);
    let modulus = 10_000_000i64; // ticks of a 6-digit counter with its tenth
    let mut stored = 0;
    let mut exact = 0;
    let mut wrong = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for (k, r) in reports.iter().enumerate() {
        *statuses
            .entry(r["status"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        let Some(v) = r["value"].as_f64() else {
            continue;
        };
        stored += 1;
        let got = (v * 100.0).round() as i64;
        let dist = |truth: i64| {
            let d = (got - truth).rem_euclid(modulus);
            d.min(modulus - d)
        };
        // The truth of frame k is start + k * step; rendering the frame
        // again (slow) confirms it where the comparison is close.
        let mut truth = ((start + k as f64 * step) * 100.0 + 1e-6).floor() as i64 % modulus;
        if dist(truth) >= 8 {
            truth = sim
                .server
                .render_frame(k as u64)
                .unwrap()
                .truth
                .unwrap()
                .tenths;
        }
        let dist = dist(truth);
        // Within the last digit's resolution (one step = 10 ticks).
        if dist >= 10 {
            wrong.push(format!("frame {k}: stored {v}, truth {truth} ticks"));
        }
        if dist <= 1 {
            exact += 1;
        }
    }
    let rate = stored as f64 / frames as f64;
    eprintln!(
        "e2e: {frames} frames in {:.1} s: {stored} stored ({:.1}%), {exact} within one tenth of the last digit, {statuses:?}",
        elapsed.as_secs_f64(),
        100.0 * rate
    );
    assert!(wrong.is_empty(), "wrong values stored: {wrong:#?}");
    assert!(
        rate >= 0.95,
        "only {:.1}% stored: {statuses:?}",
        100.0 * rate
    );
}
