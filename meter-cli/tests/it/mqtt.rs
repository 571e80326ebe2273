//! `meter run` publishing to a real Mosquitto (see [`testkit::mosquitto`])
//! while the broker is killed and restarted under it, and the last will when
//! `meter run` itself is killed: issue 19's bars, on the binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value;
use testkit::mosquitto::{Mosquitto, Observer, Received};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::helpers::{meter, rolling, s, sim_meter, SimMeter};

const WAIT: Duration = Duration::from_secs(30);

/// A simulated meter read every `interval`, with an MQTT sink on `broker`
/// under `prefix` (and the JSON-lines sink `sim_meter` writes).
fn mqtt_meter(broker: &Mosquitto, prefix: &str, interval: &str, keep_alive_secs: u16) -> SimMeter {
    // A counter that keeps turning (a tenth every ten frames): the values
    // rise during the run.
    let sim = sim_meter(
        rolling(2_000.0, 0.01, 19),
        interval,
        "max_rate_per_hour = 1000000.0",
    );
    let text = std::fs::read_to_string(&sim.config).unwrap();
    std::fs::write(
        &sim.config,
        format!(
            "{text}\n[[sink]]\ntype = \"mqtt\"\nurl = \"{}\"\ntopic_prefix = \"{prefix}\"\nkeep_alive_secs = {keep_alive_secs}\n",
            broker.url()
        ),
    )
    .unwrap();
    sim
}

/// `meter run --json`, its reports and its log collected as they come.
struct Running {
    child: Child,
    reports: Arc<Mutex<Vec<Value>>>,
    log: Arc<Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Running {
    fn start(config: &Path, rust_log: &str) -> Self {
        let mut child = meter()
            .args(["run", "--config", s(config), "--json"])
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let reports: Arc<Mutex<Vec<Value>>> = Arc::default();
        let log: Arc<Mutex<String>> = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let readers = vec![
            {
                let reports = reports.clone();
                thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
                        reports.lock().unwrap().push(v);
                    }
                })
            },
            {
                let log = log.clone();
                thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = stderr.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        log.lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                })
            },
        ];
        Self {
            child,
            reports,
            log,
            readers,
        }
    }

    /// Times and values of the readings reported stored so far.
    fn stored(&self) -> Vec<(String, f64)> {
        stored_of(&self.reports.lock().unwrap())
    }

    /// SIGTERM, as a service manager stops it; waits for the end and for
    /// its output.
    fn stop(mut self) -> (Vec<Value>, String) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let log = self.log.lock().unwrap().clone();
        assert!(status.success(), "meter run: {status}\n{log}");
        let reports = self.reports.lock().unwrap().clone();
        (reports, log)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times and values of the stored readings among `reports`.
fn stored_of(reports: &[Value]) -> Vec<(String, f64)> {
    reports
        .iter()
        .filter(|r| r["status"] == "stored")
        .map(|r| {
            (
                r["time"].as_str().unwrap().to_owned(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The `time` of each state message.
fn times_of(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|m| m.json()["time"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn meter_run_publishes_every_stored_reading_through_10_broker_restarts() {
    let Some(mut broker) = Mosquitto::start() else {
        eprintln!("SKIPPED: no mosquitto");
        return;
    };
    let SimMeter {
        server: camera,
        config,
        dir: _dir,
    } = mqtt_meter(&broker, "restarts", "50ms", 5);
    // A persistent session at QoS 0: the broker keeps what arrives while
    // this observer reconnects after a restart (its persistence saves the
    // session), and never delivers a message to it twice, so every copy it
    // receives is one the sink sent.
    let observer = Observer::with_session(
        &broker.url(),
        &["restarts/+/state"],
        Some("restart-observer"),
    );
    // The broker saves the session.
    thread::sleep(Duration::from_millis(100));
    // The sink's trace says what it handed to the broker and whether the
    // broker confirmed it, and when it reconnected.
    let run = Running::start(&config, "warn,meter_sink::mqtt=trace");
    let first = observer.wait_until(WAIT, |r| r.iter().any(|m| m.json()["status"] == "stored"));
    assert!(
        first,
        "no stored reading published\n{}",
        run.log.lock().unwrap()
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let mut outages = Vec::new();
    for _ in 0..10 {
        thread::sleep(Duration::from_millis(rng.gen_range(300..800)));
        let down = OffsetDateTime::now_utc();
        broker.kill();
        thread::sleep(Duration::from_millis(rng.gen_range(100..500)));
        broker.restart();
        outages.push(down..OffsetDateTime::now_utc());
    }
    // No more readings (the camera goes away; the reading in hand ends),
    // then let the spool drain: everything stored arrives.
    camera.stop();
    thread::sleep(Duration::from_secs(1));
    let (until, _) = run.stored().last().cloned().unwrap();
    let drained = observer.wait_until(WAIT, |r| times_of(r).contains(&until));
    assert!(
        drained,
        "the spool never drained up to {until}\nbroker:\n{}\nmeter run:\n{}",
        broker.log(),
        run.log.lock().unwrap()
    );
    let (reports, log) = run.stop();

    let stored = stored_of(&reports);
    let (last_time, last_value) = stored.last().cloned().unwrap();
    // Anything stored after the drain was delivered by the stop.
    assert!(
        observer.wait_until(WAIT, |r| times_of(r).contains(&last_time)),
        "the last stored reading ({last_time}) never arrived\n{}",
        log.lines()
            .filter(|l| !l.contains(" TRACE ") || l.contains(&last_time))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Readings captured while the broker was away: they had to wait in the
    // spool.
    let while_down = stored
        .iter()
        .filter(|(t, _)| {
            let t = OffsetDateTime::parse(t, &Rfc3339).unwrap();
            outages.iter().any(|o| o.contains(&t))
        })
        .count();
    let reconnects = log.matches(": connected").count();
    eprintln!(
        "mqtt run test: {} readings reported, {} stored, {while_down} of them while the broker was down; the sink reconnected {reconnects} times",
        reports.len(),
        stored.len()
    );
    assert!(
        while_down > 0 && reconnects > 0,
        "the outages missed the readings; the test proved nothing\n{log}"
    );

    let copies = observer.received();
    let times = times_of(&copies);
    // Every stored reading, in order of first arrival.
    let mut first: Vec<&String> = Vec::new();
    for (t, m) in times.iter().zip(&copies) {
        if m.json()["status"] == "stored" && !first.contains(&t) {
            first.push(t);
        }
    }
    let expected: Vec<&String> = stored.iter().map(|(t, _)| t).collect();
    let missing: Vec<&String> = expected
        .iter()
        .copied()
        .filter(|t| !first.contains(t))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} stored readings never published, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(first, expected, "stored readings published out of order");
    // Exactly once, except what QoS 1 cannot tell apart: a reading the
    // broker forwarded and then died before its PUBACK reached the sink and
    // before it saved its retained state (which the sink reads back at
    // connect); the sink sends that one again. Nothing the broker confirmed
    // is ever sent again.
    let mut sends: HashMap<&str, Vec<bool>> = HashMap::new();
    for line in log.lines() {
        if let Some((_, rest)) = line.split_once(": sent camsim ") {
            let (time, outcome) = rest.split_once(' ').unwrap();
            sends.entry(time).or_default().push(outcome == "confirmed");
        }
    }
    // Each stored reading first arrives with its stored value, unless the
    // broker lost what the sink sent first: a reading sent again carries the
    // highest value already sent when that is more (subscribers may have
    // seen it), so that no value goes down.
    let mut raised = 0;
    let mut seen: Vec<&String> = Vec::new();
    for (m, t) in copies.iter().zip(&times) {
        if seen.contains(&t) {
            continue;
        }
        seen.push(t);
        let Some((_, stored_value)) = stored.iter().find(|(s, _)| s == t) else {
            continue;
        };
        let value = m.json()["value"].as_f64().unwrap();
        let sent = sends.get(t.as_str()).map_or(0, Vec::len);
        if value != *stored_value {
            assert!(
                sent > 1 && value > *stored_value,
                "the reading of {t} arrived with {value}, stored {stored_value}, sent {sent} times"
            );
            raised += 1;
        }
    }
    let mut published: Vec<&String> = Vec::new();
    let mut repeated = 0;
    for t in &times {
        if published.contains(&t) {
            continue;
        }
        published.push(t);
        let sent = sends.get(t.as_str()).map_or(&[][..], Vec::as_slice);
        let confirmed_at = sent.iter().position(|c| *c);
        assert!(
            confirmed_at.is_none_or(|i| i == sent.len() - 1),
            "reading {t} sent again after the broker confirmed it: {sent:?}"
        );
        let n = times.iter().filter(|x| *x == t).count();
        assert!(
            n <= sent.len(),
            "reading {t} arrived {n} times but was sent {} times",
            sent.len()
        );
        repeated += n - 1;
    }
    let sent_again = sends.values().filter(|s| s.len() > 1).count();
    eprintln!(
        "mqtt run test: {sent_again} readings sent again after an unconfirmed send, {raised} of them first arrived so, with a higher value; {repeated} of {} readings arrived twice (the broker died between forwarding them and confirming or saving them)",
        published.len()
    );
    assert!(
        repeated * 50 <= published.len(),
        "{repeated} of {} readings arrived twice",
        published.len()
    );

    // Home Assistant takes any decrease for a meter reset: no published
    // value is below an earlier one, the copies sent again included, and
    // once there is a value it stays.
    let values: Vec<Value> = copies.iter().map(|m| m.json()["value"].clone()).collect();
    let numbers: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
    assert!(
        values.iter().skip_while(|v| v.is_null()).all(Value::is_f64),
        "a value went missing: {values:?}"
    );
    assert!(
        numbers.windows(2).all(|w| w[0] <= w[1]),
        "a published value went down: {numbers:?}"
    );

    let retained = Observer::retained(&broker.url(), &["restarts/camsim/state"]);
    assert_eq!(retained.len(), 1, "{retained:?}");
    assert_eq!(retained[0].json()["value"], last_value);
    let last_reported = reports.last().unwrap()["time"].as_str().unwrap();
    assert_eq!(retained[0].json()["time"], last_reported);
}

#[test]
fn meter_run_killed_goes_offline_within_one_and_a_half_keep_alives() {
    let Some(broker) = Mosquitto::start() else {
        eprintln!("SKIPPED: no mosquitto");
        return;
    };
    // The smallest keep-alive the config takes.
    let keep_alive = Duration::from_secs(1);
    let sim = mqtt_meter(&broker, "will", "200ms", 1);
    let watcher = Observer::new(&broker.url(), &["will/status", "will/+/state"]);
    let mut run = Running::start(&sim.config, "warn");
    let status = |r: &[Received]| -> Vec<Vec<u8>> {
        r.iter()
            .filter(|m| m.topic == "will/status")
            .map(|m| m.payload.clone())
            .collect()
    };
    let publishing = watcher.wait_until(WAIT, |r| {
        status(r).contains(&b"online".to_vec()) && r.iter().any(|m| m.topic == "will/camsim/state")
    });
    assert!(
        publishing,
        "meter run never published\n{}",
        run.log.lock().unwrap()
    );
    let killed = Instant::now();
    run.child.kill().unwrap(); // SIGKILL
    run.child.wait().unwrap();
    assert!(
        watcher.wait_until(WAIT, |r| status(r).last() == Some(&b"offline".to_vec())),
        "no offline after SIGKILL\n{}",
        broker.log()
    );
    let took = killed.elapsed();
    eprintln!("mqtt run test: offline {took:?} after SIGKILL (keep-alive {keep_alive:?})");
    assert!(
        took <= keep_alive * 3 / 2,
        "offline came {took:?} after SIGKILL, keep-alive {keep_alive:?}"
    );
    let retained = Observer::retained(&broker.url(), &["will/status"]);
    assert_eq!(retained[0].payload, b"offline", "the will is retained");
}
