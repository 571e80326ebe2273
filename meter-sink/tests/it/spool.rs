//! The spool's crash safety, byte by byte.

use std::path::{Path, PathBuf};

use meter_sink::{JsonLinesSink, Sink, SinkError, Spool, SpoolingSink};
use proptest::prelude::*;

use crate::{reading, WEEK_START};

fn log_file(dir: &Path) -> PathBuf {
    let logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    logs[0].clone()
}

fn records(n: i64) -> Vec<meter_sink::Record> {
    (0..n)
        .map(|i| reading("house", WEEK_START + i * 60, i as f64))
        .collect()
}

#[test]
fn every_torn_tail_is_cut_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(&records(3)).unwrap();
    let before_last = std::fs::metadata(log_file(dir.path())).unwrap().len();
    spool.append(&records(4)[3..]).unwrap();
    drop(spool);
    let path = log_file(dir.path());
    let full = std::fs::read(&path).unwrap();
    for cut in before_last..full.len() as u64 {
        std::fs::write(&path, &full[..cut as usize]).unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.pending_records(), 3, "cut at {cut}");
        assert_eq!(spool.torn_bytes(), cut - before_last);
        let (got, _) = spool.peek(10).unwrap();
        assert_eq!(got, records(3));
        // The cut is persistent: the file now ends after record 3.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before_last);
    }
    // A crash that extended the file with zeros (delayed allocation).
    let mut zeros = full.clone();
    zeros.extend(std::iter::repeat_n(0u8, 4096));
    std::fs::write(&path, &zeros).unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.pending_records(), 4);
}

#[test]
fn damage_before_the_last_record_is_an_error_not_a_silent_drop() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    // Three separate (synced) writes.
    for r in records(3) {
        spool.append(&[r]).unwrap();
    }
    drop(spool);
    let path = log_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[30] ^= 0x40; // inside the first record's payload
    std::fs::write(&path, &bytes).unwrap();
    let err = Spool::open(dir.path(), 1 << 20).unwrap_err();
    assert!(
        matches!(err, SinkError::SpoolCorrupt { offset: 8, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // Nothing was thrown away.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_torn_multi_record_write_is_dropped_whole_even_if_written_out_of_order() {
    // Pages of an unsynced write may reach the disk in any order: here the
    // last write's first record is zeros but its second one landed.
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(&records(2)).unwrap();
    let synced = std::fs::metadata(log_file(dir.path())).unwrap().len() as usize;
    spool.append(&records(5)[2..]).unwrap();
    drop(spool);
    let path = log_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let first_len = 16 + u32::from_le_bytes(bytes[synced..synced + 4].try_into().unwrap()) as usize;
    bytes[synced..synced + first_len].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.peek(10).unwrap().0, records(2));
    assert_eq!(spool.torn_bytes() as usize, bytes.len() - synced);
}

#[test]
fn acknowledged_records_leave_and_the_log_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(&records(10)).unwrap();
    let (first, next) = spool.peek(4).unwrap();
    assert_eq!(first, records(4));
    spool.ack(next, 4).unwrap();
    drop(spool);
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.pending_records(), 6);
    let (rest, next) = spool.peek(100).unwrap();
    assert_eq!(rest, records(10)[4..]);
    let old = log_file(dir.path());
    spool.ack(next, 6).unwrap();
    assert!(spool.is_empty());
    let new = log_file(dir.path());
    assert_ne!(old, new, "compaction starts a new log");
    assert_eq!(std::fs::metadata(&new).unwrap().len(), 8);
    drop(spool);
    assert!(Spool::open(dir.path(), 1 << 20).unwrap().is_empty());
}

#[test]
fn interrupted_compaction_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(&records(2)).unwrap();
    drop(spool);
    // A crash after creating the next generation's log, before switching
    // the acknowledgement to it.
    let old = log_file(dir.path());
    std::fs::write(dir.path().join("spool-0000000000000001.log"), b"MRSPOOL1").unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(spool.pending_records(), 2);
    assert_eq!(log_file(dir.path()), old);
}

#[test]
fn full_spool_refuses_new_records_and_keeps_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 4096).unwrap();
    let mut stored = 0;
    let err = loop {
        match spool.append(&records(stored + 1)[stored as usize..]) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            SinkError::SpoolFull {
                limit_bytes: 4096,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(stored > 5);
    drop(spool);
    assert_eq!(
        Spool::open(dir.path(), 4096).unwrap().pending_records(),
        stored as usize
    );
}

#[test]
fn spooling_sink_drains_in_order_into_a_file_sink() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    // A sink that fails until the file exists stands in for a database that
    // comes back; here the JSON-lines sink always works, so only ordering is
    // checked: spooled records first, new ones after.
    let mut spool = Spool::open(dir.path().join("spool"), 1 << 20).unwrap();
    spool.append(&records(3)).unwrap();
    drop(spool);
    let mut sink = SpoolingSink::builder(
        JsonLinesSink::create(&out).unwrap(),
        dir.path().join("spool"),
    )
    .build()
    .unwrap();
    let later = reading("house", WEEK_START + 3600, 99.0);
    sink.write(std::slice::from_ref(&later)).unwrap();
    sink.flush().unwrap();
    let lines: Vec<meter_sink::Record> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut expected = records(3);
    expected.push(later);
    assert_eq!(lines, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever garbage a crash leaves after the last complete record, the
    /// complete records survive.
    #[test]
    fn garbage_tail_never_costs_complete_records(n in 1i64..6, tail in proptest::collection::vec(any::<u8>(), 1..64)) {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&records(n)).unwrap();
        drop(spool);
        let path = log_file(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&tail);
        std::fs::write(&path, &bytes).unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        prop_assert_eq!(spool.pending_records(), n as usize);
        prop_assert_eq!(spool.peek(100).unwrap().0, records(n));
        prop_assert_eq!(spool.torn_bytes(), tail.len() as u64);
    }
}

#[test]
fn a_second_process_cannot_open_a_spool_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let first = Spool::open(dir.path(), 1 << 20).unwrap();
    let err = Spool::open(dir.path(), 1 << 20).unwrap_err();
    assert!(matches!(err, SinkError::SpoolBusy { .. }), "{err:?}");
    drop(first);
    Spool::open(dir.path(), 1 << 20).unwrap();
}
