//! The spool flush of 100,000 readings into a local influxd, measured by hand
//! (tests never assert times):
//!
//! `cargo test -p meter-sink --test it -- --ignored --nocapture spool_flush_100k`

use std::time::Instant;

use meter_sink::{InfluxSink, Sink, Spool, SpoolingSink};

use crate::{reading, WEEK_START};
use testkit::servers::Influxd;

#[test]
#[ignore = "throughput measurement, run by hand"]
fn spool_flush_100k() {
    const N: i64 = 100_000;
    let Some(server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<_> = (0..N)
        .map(|i| reading("house", WEEK_START + i * 10, i as f64))
        .collect();
    let t = Instant::now();
    let mut spool = Spool::open(dir.path(), 1 << 30).unwrap();
    for chunk in records.chunks(1000) {
        spool.append(chunk).unwrap();
    }
    let bytes = spool.pending_bytes();
    drop(spool);
    let spool_s = t.elapsed().as_secs_f64();
    let batch = 5000;
    let influx = InfluxSink::v1(&server.url(), "meters")
        .batch_size(batch)
        .build()
        .unwrap();
    let mut sink = SpoolingSink::builder(influx, dir.path())
        .max_bytes(1 << 30)
        .build()
        .unwrap();
    let t = Instant::now();
    sink.flush().unwrap();
    let flush_s = t.elapsed().as_secs_f64();
    assert_eq!(sink.status().pending_records, 0);
    let (_, count) = server.rows("meters", "SELECT count(value) FROM meter_reading");
    assert_eq!(count[0][1].as_i64(), Some(N));
    eprintln!(
        "spooled {N} readings ({:.1} MB) in {spool_s:.2} s (appends of 1000, fsync each); \
         flushed to influxd in batches of {batch} in {flush_s:.2} s = {:.0} readings/s",
        bytes as f64 / 1e6,
        N as f64 / flush_s
    );
}
