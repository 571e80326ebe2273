//! The fault bars: the database killed and restarted while readings
//! flow, and the writer itself killed at random moments.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use meter_sink::{InfluxSink, Sink, SpoolingSink};
use rand::{Rng, SeedableRng};

use crate::reading;
use crate::WEEK_START;
use testkit::servers::Influxd;

fn spooling_sink(url: &str, spool: &std::path::Path) -> SpoolingSink {
    let influx = InfluxSink::v1(url, "meters")
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    SpoolingSink::builder(influx, spool)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .unwrap()
}

/// Every stored point as `timestamp -> value`.
fn stored(server: &Influxd) -> BTreeMap<i64, f64> {
    let (_, rows) = server.rows("meters", "SELECT value FROM meter_reading");
    rows.iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_f64().unwrap()))
        .collect()
}

/// Asserts that `points` hold every reading written at `WEEK_START +
/// offset`, naming how many `what` were lost and the first ten (and
/// influxd's log).
fn assert_all_stored(
    points: &BTreeMap<i64, f64>,
    offsets: impl IntoIterator<Item = i64>,
    what: &str,
    server: &Influxd,
) {
    let lost: Vec<i64> = offsets
        .into_iter()
        .filter(|i| !points.contains_key(&(WEEK_START + i)))
        .collect();
    assert!(
        lost.is_empty(),
        "{} {what} lost, e.g. {:?}\n{}",
        lost.len(),
        &lost[..lost.len().min(10)],
        server.log()
    );
}

#[test]
fn influxd_killed_and_restarted_20_times_while_writing() {
    let Some(mut server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    let spool = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (url, dir, stop) = (server.url(), spool.path().to_owned(), stop.clone());
        thread::spawn(move || {
            let mut sink = spooling_sink(&url, &dir);
            let mut written = 0i64;
            while !stop.load(Ordering::Relaxed) {
                // Batches of 1..=3 readings, one second apart.
                let n = 1 + written % 3;
                let batch: Vec<_> = (written..written + n)
                    .map(|i| reading("house", WEEK_START + i, i as f64))
                    .collect();
                sink.write(&batch)
                    .expect("a down server must not fail a write");
                written += n;
                thread::sleep(Duration::from_millis(2));
            }
            (written, sink)
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(rng.gen_range(50..250)));
        server.kill();
        thread::sleep(Duration::from_millis(rng.gen_range(20..200)));
        server.restart();
    }
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (written, mut sink) = writer.join().unwrap();
    sink.flush().unwrap();
    let status = sink.status();
    assert_eq!(status.pending_records, 0);
    eprintln!(
        "restart test: {written} readings written, {} delivery attempts failed during the outages",
        status.failed_attempts
    );
    assert!(
        status.failed_attempts > 0,
        "the outages never failed a delivery; the test proved nothing"
    );

    let points = stored(&server);
    assert_all_stored(&points, 0..written, "readings", &server);
    assert_eq!(
        points.len() as i64,
        written,
        "readings that were never written appeared"
    );
    for (ts, value) in &points {
        assert_eq!(*value, (ts - WEEK_START) as f64, "wrong value at {ts}");
    }
    // Exactly once: one point per reading, none doubled by replays.
    let (_, count) = server.rows("meters", "SELECT count(value) FROM meter_reading");
    assert_eq!(count[0][1].as_i64(), Some(written));
}

const CHILD_ENV: &str = "METER_SINK_TEST_WRITER";

/// The writer process of `writer_killed_20_times`: writes readings forever,
/// printing `ack <first> <n>` after each acknowledged write.
#[test]
#[ignore = "child process of writer_killed_20_times; does nothing on its own"]
fn writer_child() {
    let Ok(config) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = config.split('\n');
    let (url, dir, start) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let start: i64 = start.parse().unwrap();
    let mut sink = spooling_sink(url, std::path::Path::new(dir));
    let mut out = std::io::stdout().lock();
    writeln!(out, "torn {}", sink.status().torn_bytes).unwrap();
    out.flush().unwrap();
    let mut i = start;
    loop {
        let n = 1 + (i % 8);
        let batch: Vec<_> = (i..i + n)
            .map(|j| reading("house", WEEK_START + j, j as f64))
            .collect();
        sink.write(&batch).unwrap();
        writeln!(out, "ack {i} {n}").unwrap();
        out.flush().unwrap();
        i += n;
    }
}

#[test]
fn writer_killed_20_times() {
    let Some(mut server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    let spool = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut acked = Vec::new();
    let mut torn_seen = 0;
    let mut up = true;
    for k in 0..20i64 {
        // A third of the runs with the database down (the writer only
        // spools), a third with it up, a third with it killed mid-run.
        let down = k % 3 == 0;
        if down && up {
            server.kill();
            up = false;
        } else if !down && !up {
            server.restart();
            up = true;
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "faults::writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ENV,
                format!(
                    "{}\n{}\n{}",
                    server.url(),
                    spool.path().display(),
                    k * 100_000
                ),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let life = rng.gen_range(30..400);
        if k % 3 == 2 {
            thread::sleep(Duration::from_millis(life / 2));
            server.kill();
            up = false;
            thread::sleep(Duration::from_millis(life / 2));
        } else {
            thread::sleep(Duration::from_millis(life));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("ack"), Some(first), Some(n)) => {
                    let (first, n): (i64, i64) = (first.parse().unwrap(), n.parse().unwrap());
                    acked.extend(first..first + n);
                }
                (Some("torn"), Some(bytes), None) if bytes != "0" => torn_seen += 1,
                _ => {}
            }
        }
    }
    if !up {
        server.restart();
    }
    let mut sink = spooling_sink(&server.url(), spool.path());
    if sink.status().torn_bytes > 0 {
        torn_seen += 1;
    }
    sink.flush().unwrap();
    eprintln!(
        "writer-kill test: {} readings acknowledged over 20 kills; a torn spool tail was found and cut after {torn_seen} of them; influxd's WAL was torn {} times",
        acked.len(),
        server.torn_wal_tails_cut
    );
    assert!(
        acked.len() > 100,
        "too few acknowledged readings ({}) to mean anything",
        acked.len()
    );
    let points = stored(&server);
    assert_all_stored(
        &points,
        acked.iter().copied(),
        "acknowledged readings",
        &server,
    );
    for (ts, value) in &points {
        assert_eq!(*value, (ts - WEEK_START) as f64, "wrong value at {ts}");
    }
}

/// Regression: CI once lost 8,151 acknowledged readings in
/// `writer_killed_20_times`. influxd was killed mid-write, which tore its
/// WAL, and after the next start it wrote behind the tear, which the start
/// after the next kill cut off (see [`meter_sink::influxdb_wal`]). Here the
/// tear is made on purpose; without the repair the harness runs before each
/// start, influxd 1.6.7 keeps only the first 100 points.
#[test]
fn writes_after_a_torn_influxd_wal_survive_the_next_kill() {
    let Some(mut server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    let write = |server: &Influxd, from: i64| {
        let mut sink = InfluxSink::v1(&server.url(), "meters").build().unwrap();
        let batch: Vec<_> = (from..from + 100)
            .map(|i| reading("house", WEEK_START + i, i as f64))
            .collect();
        sink.write(&batch).unwrap();
    };
    write(&server, 0);
    server.kill();
    let wal = server.wal_segments();
    assert_eq!(wal.len(), 1, "expected one WAL segment, found {wal:?}");
    // What a SIGKILL between the entry's header and its body leaves.
    let mut segment = std::fs::OpenOptions::new()
        .append(true)
        .open(&wal[0])
        .unwrap();
    segment.write_all(&[1, 0, 0, 16, 0, b'a', b'b']).unwrap();
    drop(segment);
    server.restart();
    assert_eq!(server.torn_wal_tails_cut, 1);
    write(&server, 100);
    server.kill();
    server.restart();
    assert_all_stored(&stored(&server), 0..200, "acknowledged points", &server);
}

#[test]
fn hung_server_times_out_into_the_spool_and_the_replay_does_not_double() {
    let Some(server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    let spool = tempfile::tempdir().unwrap();
    let influx = InfluxSink::v1(&server.url(), "meters")
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let mut sink = SpoolingSink::builder(influx, spool.path())
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    sink.write(&[reading("house", WEEK_START, 0.0)]).unwrap();
    sink.flush().unwrap();
    server.freeze(true);
    // The request is sent, the answer never comes: a timeout, and the
    // readings stay in the spool.
    let batch: Vec<_> = (1..4)
        .map(|i| reading("house", WEEK_START + i, i as f64))
        .collect();
    sink.write(&batch)
        .expect("spooled whatever the server does");
    let result = sink.flush();
    server.freeze(false);
    let err = result.unwrap_err();
    assert!(err.is_transient(), "a timeout is transient: {err:?}");
    assert_eq!(sink.status().pending_records, 3);
    // influxd may well have stored the timed-out request after waking up;
    // the replay overwrites the same points.
    sink.flush().unwrap();
    let points = stored(&server);
    assert_eq!(points.len(), 4, "{points:?}");
    let (_, count) = server.rows("meters", "SELECT count(value) FROM meter_reading");
    assert_eq!(count[0][1].as_i64(), Some(4));
}
