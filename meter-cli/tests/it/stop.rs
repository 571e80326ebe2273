//! Stopping takes seconds: SIGTERM to `meter run` while its camera hangs on
//! a capture and its database accepts connections and never answers; every
//! reading it reported stored is in the spool afterwards.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use firmware::camsim::{FaultKind, Frames, Server, SimConfig};
use meter_sink::{RecordKind, Spool};
use testkit::http::Hung;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::helpers::{meter, rolling, s};

#[test]
fn sigterm_stops_run_at_once_with_a_hung_camera_and_a_hung_database() {
    // Every third capture hangs (accepted, never answered).
    let server = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(rolling(1000.0, 0.1, 5))),
        fault_every: Some((3, FaultKind::Timeout)),
        ..SimConfig::default()
    })
    .unwrap();
    // A database that takes connections and never says a word.
    let hung = Hung::start();
    let db_url = hung.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let setup = server.write_setup(&dir.path().join("sim")).unwrap();
    let table = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace("interval = \"10s\"", "interval = \"10ms\"");
    let config = dir.path().join("meter.toml");
    std::fs::write(
        &config,
        format!("{table}\n[[sink]]\ntype = \"influx_v1\"\nurl = \"{db_url}\"\ndatabase = \"m\"\n"),
    )
    .unwrap();
    let mut child = meter()
        .args(["run", "--config", s(&config), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the readings before the hanging capture.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stored = Vec::new();
    let mut line = String::new();
    while stored.len() < 2 {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "meter run ended early"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["status"] == "stored" {
            stored.push(v["time"].as_str().unwrap().to_owned());
        }
    }
    // Now the camera hangs on its next capture; give the reader time to be
    // stuck in it.
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "meter run still running 2 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("gone {:?} after SIGTERM", signalled.elapsed());
    assert!(status.success(), "{status}");
    // Everything reported stored before the stop is still there.
    for rest in out.lines() {
        let v: serde_json::Value = serde_json::from_str(&rest.unwrap()).unwrap();
        if v["status"] == "stored" {
            stored.push(v["time"].as_str().unwrap().to_owned());
        }
    }
    let spool = Spool::open(dir.path().join("state/spool/influx_v1-0"), 1 << 20).unwrap();
    let (kept, _) = spool.peek(1000).unwrap();
    // The spool also holds each cycle's meter_health point, and may hold a
    // reading spooled just before the signal and never printed.
    // Compared to the millisecond, the precision the sinks store.
    let ms = |t: OffsetDateTime| t.unix_timestamp_nanos() / 1_000_000;
    let spooled: Vec<i128> = kept
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::Stored(_)))
        .map(|r| ms(r.captured_at))
        .collect();
    for t in &stored {
        assert!(
            spooled.contains(&ms(OffsetDateTime::parse(t, &Rfc3339).unwrap())),
            "the reading of {t} was reported stored and is not in the spool: {spooled:?}"
        );
    }
    drop(hung);
}
