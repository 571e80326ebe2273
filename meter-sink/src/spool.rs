//! A durable on-disk spool of readings waiting for a database (the
//! [`SpoolingSink`](crate::SpoolingSink) delivers from it).
//!
//! Layout of the spool directory:
//! - `spool-<generation>.log`: an 8-byte header `MRSPOOL1`, then records
//!   `[len: u32 LE][crc32 of len, seq and payload: u32 LE][seq: u64 LE][payload: JSON of a Record]`,
//!   where `seq` numbers the [`Spool::append`] call (all records of one call
//!   share it); each call is `fsync`ed before it returns.
//! - `ack`: `[generation: u64 LE][offset: u64 LE][crc32: u32 LE]`, replaced
//!   atomically (write, fsync, rename, fsync directory): every record before
//!   `offset` was acknowledged by the database.
//!
//! When everything is acknowledged the log is compacted: a fresh empty log of
//! the next generation is created, the ack file switched to it, and the old
//! log deleted; a crash at any step leaves a state [`Spool::open`] cleans up.
//! A crash mid-append leaves a torn tail, which `open` detects (a record
//! short or failing its CRC, or zero-filled) and cuts off. Since an append
//! starts only after the previous one was synced, a torn tail can only hold
//! records of one append, the last: when intact records of a *later* append
//! follow the damage, it is real corruption of acknowledged data, reported as
//! [`SinkError::SpoolCorrupt`] with nothing dropped.
//!
//! One process at a time may use a spool directory: [`Spool::open`] takes an
//! exclusive `flock` on `dir/lock` (released by the kernel when the process
//! dies, even by SIGKILL) and answers [`SinkError::SpoolBusy`] otherwise.
//! (Unix only; elsewhere the caller must ensure it.)

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::SinkError;
use crate::record::Record;

const MAGIC: &[u8; 8] = b"MRSPOOL1";
const HEADER_LEN: u64 = MAGIC.len() as u64;
const FRAME_HEADER: u64 = 16;
/// Larger payloads are treated as damage (a reading is a few hundred bytes).
const MAX_PAYLOAD: u32 = 1 << 20;
const ACK_FILE: &str = "ack";
const ACK_LEN: usize = 20;

fn log_name(generation: u64) -> String {
    format!("spool-{generation:016}.log")
}

fn parse_log_name(name: &str) -> Option<u64> {
    name.strip_prefix("spool-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn frame_crc(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SinkError::io("cannot sync directory", dir, e))
}

/// The append-only record log with its acknowledgement offset.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    generation: u64,
    log_path: PathBuf,
    log: File,
    /// Records before this byte offset were acknowledged.
    acked: u64,
    /// End of the last valid record.
    end: u64,
    pending_records: usize,
    max_bytes: u64,
    warned_full: bool,
    torn_bytes: u64,
    /// Sequence number of the next append.
    next_seq: u64,
    appended: u64,
    /// Held for the spool's lifetime.
    _lock: File,
}

impl Spool {
    /// Opens (creates) the spool in `dir`, holding at most `max_bytes` of
    /// unacknowledged records. Cuts off a torn last record.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, SinkError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)
            .map_err(|e| SinkError::io("cannot create spool directory", &dir, e))?;
        let lock = lock_dir(&dir)?;
        let ack = read_ack(&dir)?;
        let mut logs = Vec::new();
        for entry in
            fs::read_dir(&dir).map_err(|e| SinkError::io("cannot list spool directory", &dir, e))?
        {
            let entry = entry.map_err(|e| SinkError::io("cannot list spool directory", &dir, e))?;
            if let Some(g) = entry.file_name().to_str().and_then(parse_log_name) {
                logs.push(g);
            }
        }
        logs.sort_unstable();
        // Without an ack file nothing was acknowledged yet: the oldest log counts.
        let (generation, acked) = ack.unwrap_or((logs.first().copied().unwrap_or(0), HEADER_LEN));
        for &g in &logs {
            let path = dir.join(log_name(g));
            if g < generation {
                // Fully acknowledged before a compaction finished.
                fs::remove_file(&path)
                    .map_err(|e| SinkError::io("cannot remove old spool log", &path, e))?;
            } else if g > generation {
                // Created by a compaction that did not finish: must be empty.
                let len = fs::metadata(&path)
                    .map_err(|e| SinkError::io("cannot stat", &path, e))?
                    .len();
                if len > HEADER_LEN {
                    return Err(SinkError::SpoolCorrupt {
                        path,
                        offset: HEADER_LEN,
                        problem: format!(
                            "newer than the acknowledged generation {generation} but not empty"
                        ),
                    });
                }
                fs::remove_file(&path)
                    .map_err(|e| SinkError::io("cannot remove unused spool log", &path, e))?;
            }
        }
        let log_path = dir.join(log_name(generation));
        let log = open_log(&dir, &log_path)?;
        let mut spool = Self {
            dir,
            generation,
            log_path,
            log,
            acked,
            end: acked,
            pending_records: 0,
            max_bytes,
            warned_full: false,
            torn_bytes: 0,
            next_seq: 0,
            appended: 0,
            _lock: lock,
        };
        spool.recover()?;
        Ok(spool)
    }

    /// Validates the unacknowledged records; cuts a torn tail.
    fn recover(&mut self) -> Result<(), SinkError> {
        let path = self.log_path.clone();
        let file_len = self
            .log
            .metadata()
            .map_err(|e| SinkError::io("cannot stat", &path, e))?
            .len();
        if self.acked > file_len {
            return Err(SinkError::SpoolCorrupt {
                path,
                offset: file_len,
                problem: format!(
                    "acknowledged offset {} beyond the end of the log",
                    self.acked
                ),
            });
        }
        let mut bytes = Vec::new();
        self.log
            .seek(SeekFrom::Start(self.acked))
            .and_then(|_| (&self.log).read_to_end(&mut bytes))
            .map_err(|e| SinkError::io("cannot read spool log", &path, e))?;
        let mut pos = 0usize;
        let mut count = 0usize;
        let mut last_seq = None;
        while pos < bytes.len() {
            match check_frame(&bytes[pos..]) {
                Ok((frame_len, seq)) => {
                    pos += frame_len;
                    count += 1;
                    last_seq = Some(seq);
                }
                Err(problem) => {
                    let offset = self.acked + pos as u64;
                    // Intact records after the damage: from the same (torn)
                    // append they are fine to drop; from a later append they
                    // prove the damaged one had been synced.
                    let later: Vec<u64> = intact_frames_after(&bytes[pos..]);
                    let torn_append = later.first().is_none_or(|&t| {
                        later.iter().all(|&s| s == t) && last_seq.is_none_or(|before| t >= before)
                    });
                    if !torn_append {
                        return Err(SinkError::SpoolCorrupt {
                            path,
                            offset,
                            problem: format!(
                                "{problem}, followed by intact records of later writes"
                            ),
                        });
                    }
                    let rest = bytes.len() - pos;
                    log::warn!(
                        "spool {}: dropping a torn last write at byte {offset} ({rest} bytes: {problem}); it was never acknowledged to the caller",
                        path.display(),
                    );
                    self.torn_bytes = rest as u64;
                    self.log
                        .set_len(offset)
                        .and_then(|_| self.log.sync_all())
                        .map_err(|e| SinkError::io("cannot truncate spool log", &path, e))?;
                    break;
                }
            }
        }
        self.next_seq = last_seq.map_or(0, |s| s + 1);
        self.end = self.acked + pos as u64;
        self.pending_records = count;
        Ok(())
    }

    /// Bytes of a torn last record cut off by [`open`](Self::open) (0 if the
    /// spool was intact).
    pub fn torn_bytes(&self) -> u64 {
        self.torn_bytes
    }

    /// Records appended since [`open`](Self::open) (how often the database
    /// was away).
    pub fn appended_since_open(&self) -> u64 {
        self.appended
    }

    /// Number of records waiting for acknowledgement.
    pub fn pending_records(&self) -> usize {
        self.pending_records
    }

    /// Bytes waiting for acknowledgement.
    pub fn pending_bytes(&self) -> u64 {
        self.end - self.acked
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending_records == 0
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends records durably (fsync) before returning. Refuses them when
    /// the spool would exceed its size limit.
    pub fn append(&mut self, records: &[Record]) -> Result<(), SinkError> {
        let mut buf = Vec::new();
        for r in records {
            let payload = serde_json::to_vec(r)
                .map_err(|e| SinkError::io("cannot encode record for", &self.log_path, e.into()))?;
            let len = u32::try_from(payload.len())
                .ok()
                .filter(|&l| l <= MAX_PAYLOAD)
                .ok_or_else(|| {
                    SinkError::io(
                        "record too large for",
                        &self.log_path,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!("{} bytes", payload.len()),
                        ),
                    )
                })?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&frame_crc(len, self.next_seq, &payload).to_le_bytes());
            buf.extend_from_slice(&self.next_seq.to_le_bytes());
            buf.extend_from_slice(&payload);
        }
        let pending = self.pending_bytes() + buf.len() as u64;
        if pending > self.max_bytes {
            log::warn!(
                "spool {} is full ({} bytes pending, limit {}): refusing {} new readings",
                self.dir.display(),
                self.pending_bytes(),
                self.max_bytes,
                records.len()
            );
            return Err(SinkError::SpoolFull {
                path: self.dir.clone(),
                pending_bytes: self.pending_bytes(),
                limit_bytes: self.max_bytes,
            });
        }
        if pending > self.max_bytes / 10 * 8 && !self.warned_full {
            self.warned_full = true;
            log::warn!(
                "spool {} is over 80% full ({pending} of {} bytes); the database has been unreachable for long",
                self.dir.display(),
                self.max_bytes
            );
        }
        let result = self
            .log
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| self.log.write_all(&buf))
            .and_then(|_| self.log.sync_data());
        if let Err(e) = result {
            // Leave no half record behind (e.g. disk full); best effort, and
            // `open` would cut it anyway.
            let _ = self.log.set_len(self.end);
            return Err(SinkError::io(
                "cannot append to spool log",
                &self.log_path,
                e,
            ));
        }
        self.end += buf.len() as u64;
        self.pending_records += records.len();
        self.next_seq += 1;
        self.appended += records.len() as u64;
        Ok(())
    }

    /// Reads up to `max` of the oldest unacknowledged records, and the offset
    /// to [`ack`](Self::ack) once they are stored.
    pub fn peek(&self, max: usize) -> Result<(Vec<Record>, u64), SinkError> {
        let mut records = Vec::new();
        let mut offset = self.acked;
        if self.is_empty() {
            return Ok((records, offset));
        }
        let io = |e| SinkError::io("cannot read spool log", &self.log_path, e);
        let mut file = File::open(&self.log_path).map_err(io)?;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut reader = BufReader::new(file);
        let mut payload = Vec::new();
        while records.len() < max && offset < self.end {
            let mut header = [0u8; FRAME_HEADER as usize];
            reader.read_exact(&mut header).map_err(io)?;
            let len = u32_at(&header, 0);
            let crc = u32_at(&header, 4);
            let seq = u64_at(&header, 8);
            payload.resize(len as usize, 0);
            reader.read_exact(&mut payload).map_err(io)?;
            let corrupt = |problem: String| SinkError::SpoolCorrupt {
                path: self.log_path.clone(),
                offset,
                problem,
            };
            if frame_crc(len, seq, &payload) != crc {
                return Err(corrupt("checksum mismatch".into()));
            }
            let record: Record = serde_json::from_slice(&payload)
                .map_err(|e| corrupt(format!("not a reading: {e}")))?;
            records.push(record);
            offset += FRAME_HEADER + u64::from(len);
        }
        Ok((records, offset))
    }

    /// Marks every record before `offset` (from [`peek`](Self::peek)) as
    /// stored; compacts the log when nothing is left.
    pub fn ack(&mut self, offset: u64, records: usize) -> Result<(), SinkError> {
        debug_assert!(offset <= self.end && offset >= self.acked);
        if offset == self.end {
            return self.compact();
        }
        write_ack(&self.dir, self.generation, offset)?;
        self.acked = offset;
        self.pending_records -= records.min(self.pending_records);
        if self.pending_bytes() <= self.max_bytes / 2 {
            self.warned_full = false;
        }
        Ok(())
    }

    fn compact(&mut self) -> Result<(), SinkError> {
        let next = self.generation + 1;
        let next_path = self.dir.join(log_name(next));
        // A leftover from an interrupted compaction would be empty; start clean.
        let _ = fs::remove_file(&next_path);
        let log = open_log(&self.dir, &next_path)?;
        write_ack(&self.dir, next, HEADER_LEN)?;
        let old = std::mem::replace(&mut self.log_path, next_path);
        self.log = log;
        self.generation = next;
        self.acked = HEADER_LEN;
        self.end = HEADER_LEN;
        self.pending_records = 0;
        self.warned_full = false;
        fs::remove_file(&old)
            .map_err(|e| SinkError::io("cannot remove acknowledged spool log", &old, e))
    }
}

/// Checks one frame at the start of `bytes`: its total length and append
/// sequence number if intact.
fn check_frame(bytes: &[u8]) -> Result<(usize, u64), String> {
    let header = bytes
        .get(..FRAME_HEADER as usize)
        .ok_or("incomplete record header")?;
    let len = u32_at(header, 0);
    let crc = u32_at(header, 4);
    let seq = u64_at(header, 8);
    if len == 0 || len > MAX_PAYLOAD {
        return Err(format!("implausible record length {len}"));
    }
    let total = FRAME_HEADER as usize + len as usize;
    let payload = bytes
        .get(FRAME_HEADER as usize..total)
        .ok_or("incomplete record")?;
    if frame_crc(len, seq, payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok((total, seq))
}

/// Sequence numbers of the intact frames found by scanning `bytes` (which
/// starts at a damaged frame) byte by byte.
fn intact_frames_after(bytes: &[u8]) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut pos = 1;
    while pos + FRAME_HEADER as usize <= bytes.len() {
        match check_frame(&bytes[pos..]) {
            Ok((len, seq)) => {
                seqs.push(seq);
                pos += len;
            }
            Err(_) => pos += 1,
        }
    }
    seqs
}

fn open_log(dir: &Path, path: &Path) -> Result<File, SinkError> {
    let mut log = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| SinkError::io("cannot open spool log", path, e))?;
    let len = log
        .metadata()
        .map_err(|e| SinkError::io("cannot stat", path, e))?
        .len();
    if len < HEADER_LEN {
        // New, or torn while being created (nothing was in it yet).
        log.set_len(0)
            .and_then(|_| log.write_all(MAGIC))
            .and_then(|_| log.sync_all())
            .map_err(|e| SinkError::io("cannot initialise spool log", path, e))?;
        sync_dir(dir)?;
    } else {
        let mut magic = [0u8; HEADER_LEN as usize];
        log.read_exact(&mut magic)
            .map_err(|e| SinkError::io("cannot read spool log", path, e))?;
        if &magic != MAGIC {
            return Err(SinkError::SpoolCorrupt {
                path: path.to_owned(),
                offset: 0,
                problem: "not a meter-reader spool log (bad header)".into(),
            });
        }
    }
    Ok(log)
}

/// Tries to take a spool's lock, 10 ms apart, before it is busy.
const LOCK_ATTEMPTS: u32 = 30;

fn lock_dir(dir: &Path) -> Result<File, SinkError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SinkError::io("cannot open", &path, e))?;
    // A lock taken by a process that just closed the spool can linger for
    // a moment in a child forked before it closed (until the child's exec
    // closes it): wait that moment out before calling the spool busy.
    #[cfg(unix)]
    for attempt in 0.. {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::WOULDBLOCK) if attempt < LOCK_ATTEMPTS => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(SinkError::SpoolBusy {
                    path: dir.to_owned(),
                })
            }
            Err(e) => return Err(SinkError::io("cannot lock", &path, e.into())),
        }
    }
    Ok(file)
}

fn read_ack(dir: &Path) -> Result<Option<(u64, u64)>, SinkError> {
    let path = dir.join(ACK_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SinkError::io("cannot read", &path, e)),
    };
    let corrupt = || SinkError::SpoolCorrupt {
        path: path.clone(),
        offset: 0,
        problem: "acknowledgement file damaged".into(),
    };
    let bytes: [u8; ACK_LEN] = bytes.try_into().map_err(|_| corrupt())?;
    let crc = u32::from_le_bytes(bytes[16..20].try_into().map_err(|_| corrupt())?);
    if crc32fast::hash(&bytes[..16]) != crc {
        return Err(corrupt());
    }
    let generation = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| corrupt())?);
    let offset = u64::from_le_bytes(bytes[8..16].try_into().map_err(|_| corrupt())?);
    Ok(Some((generation, offset)))
}

fn write_ack(dir: &Path, generation: u64, offset: u64) -> Result<(), SinkError> {
    let mut bytes = [0u8; ACK_LEN];
    bytes[..8].copy_from_slice(&generation.to_le_bytes());
    bytes[8..16].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..16]);
    bytes[16..].copy_from_slice(&crc.to_le_bytes());
    let tmp = dir.join("ack.tmp");
    let path = dir.join(ACK_FILE);
    File::create(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.sync_all()))
        .map_err(|e| SinkError::io("cannot write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| SinkError::io("cannot replace", &path, e))?;
    sync_dir(dir)
}
