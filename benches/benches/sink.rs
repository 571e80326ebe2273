//! meter-sink: line-protocol encoding throughput (bar: >= 50,000 readings/s
//! on one core), the spool's durable append, and what a caller waits for in
//! `SpoolingSink::write` (spooled, not delivered) while the database hangs.
//!
//! `cargo bench -p meter-benches --bench sink`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use meter_core::Tenths;
use meter_sink::{
    line, DigitValue, EventStatus, InfluxSink, NotStored, Record, Sink, Spool, SpoolingSink,
    StoredValue,
};
use time::OffsetDateTime;

const START: i64 = 1_772_409_600;

/// Realistic readings: 8 digits, unit, rate; every 50th a rejected event.
fn readings(n: usize) -> Vec<Record> {
    (0..n as i64)
        .map(|i| {
            let at = OffsetDateTime::from_unix_timestamp(START + i * 60).unwrap();
            if i % 50 == 49 {
                return Record::event(
                    "house",
                    at,
                    NotStored {
                        status: EventStatus::Rejected,
                        raw: Some(12_000.0),
                        reason: "value went down from 12345.6 to 12000".into(),
                    },
                )
                .with_unit("kWh");
            }
            let value = 12_345.6 + i as f64 * 0.01;
            Record::stored(
                "house",
                at,
                StoredValue {
                    value,
                    raw: value,
                    rate_per_hour: Some(0.6),
                    confidence_min: 0.97,
                    digits: (0..8)
                        .map(|d| DigitValue {
                            tenths: Tenths::wrapping(i * 7 + d * 13),
                            confidence: 0.97,
                        })
                        .collect(),
                },
            )
            .with_unit("kWh")
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let records = readings(1000);
    let mut group = c.benchmark_group("line_protocol");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("encode_1000_readings", |b| {
        let mut buf = Vec::with_capacity(256 * 1024);
        b.iter(|| {
            buf.clear();
            buf = line::encode(std::hint::black_box(&records), std::mem::take(&mut buf));
            std::hint::black_box(buf.len())
        })
    });
    group.finish();
}

fn spool(c: &mut Criterion) {
    let records = readings(100);
    let mut group = c.benchmark_group("spool");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.sample_size(20);
    group.bench_function("append_100_readings_fsync", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let spool = Spool::open(dir.path(), 1 << 30).unwrap();
                (dir, spool)
            },
            |(_dir, mut spool)| spool.append(&records).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// One reading handed to a spooling InfluxDB sink whose server accepts
/// connections and never answers: the caller's cost is the spool's append
/// (an fsync), never the database's.
fn spooling_write(c: &mut Criterion) {
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let influx = InfluxSink::v1(&url, "meters").build().unwrap();
    let mut sink = SpoolingSink::builder(influx, dir.path())
        .max_bytes(1 << 30)
        .build()
        .unwrap();
    let records = readings(10_000);
    let mut next = records.iter().cycle();
    let mut group = c.benchmark_group("spooling_sink");
    group.sample_size(20);
    group.bench_function("write_1_reading_database_hung", |b| {
        b.iter(|| {
            let r = next.next().unwrap();
            sink.write(std::slice::from_ref(r)).unwrap()
        })
    });
    group.finish();
    let _ = sink.close(std::time::Instant::now());
    drop(hung);
}

criterion_group!(benches, encode, spool, spooling_write);
criterion_main!(benches);
