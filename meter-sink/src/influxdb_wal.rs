//! Repair of an InfluxDB 1.x write-ahead log after a crash, before `influxd`
//! starts again.
//!
//! Why: when `influxd` 1.6.7 (Debian's package) is killed in the middle of a
//! write, the last WAL segment ends in a torn entry. On the next start it
//! opens that segment for appending *at its end* and only then truncates the
//! torn entry, so the writes it accepts afterwards land behind a hole; the
//! start after the next crash stops reading at the hole and truncates there.
//! Every point written between the two crashes is lost, though each was
//! acknowledged with `204`, and no spool on our side can see it. Cutting the
//! torn entry before `influxd` opens the segment, as it should itself, closes
//! that window. (Reproduced in `meter-sink`'s tests, which kill `influxd`
//! and use this on every restart.)
//!
//! Only run it while `influxd` is stopped (e.g. as `ExecStartPre=` of its
//! systemd unit): on a running server a write in progress looks torn.
//!
//! A segment is a sequence of entries `[type: u8][len: u32 BE][len bytes of
//! snappy data]` with type 1 (write), 2 (delete) or 3 (delete range). The
//! repair keeps the longest prefix of complete entries and cuts the rest; it
//! does not decompress (a kill leaves a prefix of the last entry, never
//! altered bytes inside it).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::SinkError;

/// One segment that lost a torn tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalCut {
    /// The segment file.
    pub path: PathBuf,
    /// Bytes of complete entries kept.
    pub kept_bytes: u64,
    /// Bytes cut off the end.
    pub cut_bytes: u64,
}

/// Cuts the torn last entry off every WAL segment (`*.wal`) under
/// `wal_dir` (InfluxDB's `[data] wal-dir`, e.g. `/var/lib/influxdb/wal`);
/// returns what it cut, for the caller to report. A missing directory has
/// nothing to repair.
pub fn cut_torn_wal_tails(wal_dir: &Path) -> Result<Vec<WalCut>, SinkError> {
    let mut cuts = Vec::new();
    for path in wal_segments(wal_dir)? {
        let bytes = fs::read(&path).map_err(|e| SinkError::io("cannot read", &path, e))?;
        let kept = complete_entries_len(&bytes);
        if kept == bytes.len() {
            continue;
        }
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(kept as u64).and_then(|_| f.sync_all()))
            .map_err(|e| SinkError::io("cannot truncate", &path, e))?;
        cuts.push(WalCut {
            path,
            kept_bytes: kept as u64,
            cut_bytes: (bytes.len() - kept) as u64,
        });
    }
    Ok(cuts)
}

/// The `*.wal` files under `dir`, sorted (none if `dir` does not exist).
pub fn wal_segments(dir: &Path) -> Result<Vec<PathBuf>, SinkError> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SinkError::io("cannot list", &dir, e)),
        };
        for entry in entries {
            let path = entry
                .map_err(|e| SinkError::io("cannot list", &dir, e))?
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wal") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Length of the complete entries at the start of a segment.
fn complete_entries_len(bytes: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + 5) {
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let complete = (1..=3).contains(&header[0]) && len > 0 && bytes.len() - pos - 5 >= len;
        if !complete {
            break;
        }
        pos += 5 + len;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut e = vec![kind];
        e.extend_from_slice(&(body.len() as u32).to_be_bytes());
        e.extend_from_slice(body);
        e
    }

    #[test]
    fn complete_entries_are_kept_and_every_torn_prefix_is_cut() {
        let good = [entry(1, b"first"), entry(2, b"k1\nk2"), entry(3, b"range")].concat();
        assert_eq!(complete_entries_len(&good), good.len());
        assert_eq!(complete_entries_len(&[]), 0);
        let last = entry(1, b"the torn one");
        for cut in 1..last.len() {
            let torn = [&good[..], &last[..cut]].concat();
            assert_eq!(complete_entries_len(&torn), good.len(), "torn at {cut}");
        }
        // A hole of zeros (what influxd leaves after appending behind a tear).
        let holed = [&good[..], &[0u8; 9][..], &entry(1, b"later")[..]].concat();
        assert_eq!(complete_entries_len(&holed), good.len());
    }

    #[test]
    fn repair_walks_shard_directories_and_reports_what_it_cut() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path().join("meters/autogen/3");
        fs::create_dir_all(&shard).unwrap();
        let intact = [entry(1, b"a"), entry(1, b"bc")].concat();
        let torn = [&intact[..], &[1u8, 0, 0][..]].concat();
        fs::write(shard.join("_00001.wal"), &intact).unwrap();
        fs::write(shard.join("_00002.wal"), &torn).unwrap();
        fs::write(shard.join("notes.txt"), b"\x01\x00").unwrap();
        let cuts = cut_torn_wal_tails(dir.path()).unwrap();
        assert_eq!(
            cuts,
            vec![WalCut {
                path: shard.join("_00002.wal"),
                kept_bytes: intact.len() as u64,
                cut_bytes: 3,
            }]
        );
        assert_eq!(fs::read(shard.join("_00002.wal")).unwrap(), intact);
        assert_eq!(fs::read(shard.join("notes.txt")).unwrap(), b"\x01\x00");
        // Idempotent.
        assert!(cut_torn_wal_tails(dir.path()).unwrap().is_empty());
        assert!(cut_torn_wal_tails(&dir.path().join("absent"))
            .unwrap()
            .is_empty());
    }
}
