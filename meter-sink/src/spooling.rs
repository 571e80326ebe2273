//! A sink wrapper that spools every reading durably first and delivers it
//! to the wrapped sink (usually a database) on a thread of its own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::SinkError;
use crate::record::Record;
use crate::spool::Spool;
use crate::{defaults, Sink};

#[derive(Debug, Clone)]
struct SpoolConfig {
    dir: PathBuf,
    max_bytes: u64,
    retry_min: Duration,
    retry_max: Duration,
}

/// Builds a [`SpoolingSink`].
#[derive(Debug)]
pub struct SpoolingBuilder<S> {
    inner: S,
    config: SpoolConfig,
}

impl<S: Sink + Send + 'static> SpoolingBuilder<S> {
    /// Largest size of unacknowledged data (default
    /// [`defaults::SPOOL_MAX_BYTES`]). A warning is logged at 80%; beyond
    /// it new readings are refused with [`SinkError::SpoolFull`].
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.config.max_bytes = bytes;
        self
    }

    /// How long to wait before retrying the database after a transient
    /// failure: doubling from `min` up to `max` (default
    /// [`defaults::RETRY_MIN`] .. [`defaults::RETRY_MAX`]). A permanent
    /// failure waits `max`. [`Sink::flush`] always retries at once.
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.retry_min = min;
        self.config.retry_max = max;
        self
    }

    /// Opens the spool (recovering it after a crash) and starts delivering
    /// what it holds.
    pub fn build(self) -> Result<SpoolingSink, SinkError> {
        let c = self.config;
        if c.max_bytes < 4096 {
            return Err(SinkError::Config {
                field: "spool max_bytes",
                problem: format!("{} is too small (at least 4096)", c.max_bytes),
            });
        }
        if c.retry_min > c.retry_max {
            return Err(SinkError::Config {
                field: "spool retry_backoff",
                problem: format!("min {:?} above max {:?}", c.retry_min, c.retry_max),
            });
        }
        let spool = Spool::open(&c.dir, c.max_bytes)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                spool: Some(spool),
                flush_requested: 0,
                flush_served: 0,
                failure: None,
                retry_at: None,
                backoff: c.retry_min,
                delivered: 0,
                failed_attempts: 0,
                last_error: None,
            }),
            wake: Condvar::new(),
            progress: Condvar::new(),
        });
        let batch_size = self.inner.batch_size();
        let worker = {
            let (shared, inner, config) = (shared.clone(), self.inner, c.clone());
            std::thread::Builder::new()
                .name("spool-delivery".into())
                .spawn(move || deliver(&shared, inner, &config))
                .map_err(|e| SinkError::io("cannot start the delivery thread of", &c.dir, e))?
        };
        Ok(SpoolingSink {
            shared,
            worker: Some(worker),
            dir: c.dir,
            batch_size,
        })
    }
}

/// Wraps a sink (usually an [`InfluxSink`](crate::InfluxSink)) so that no
/// reading is lost while it fails, and nobody waits for it.
///
/// - [`write`](Sink::write) appends the records to the on-disk
///   [`Spool`] (`fsync`ed) and returns: durably spooled counts as
///   accepted, whatever the database does.
/// - A thread owned by the sink delivers the spool to the inner sink,
///   oldest first, in batches of its [`batch_size`](Sink::batch_size); a
///   batch leaves the spool only after the inner sink acknowledged it (for
///   InfluxDB: answered `204`).
/// - Transient failures (unreachable, timeout, 5xx) are retried with
///   backoff; permanent ones (credentials, unknown database, refused data,
///   an answer that is not a write endpoint's, a host name that does not
///   resolve) are logged as errors and retried only every
///   [`retry_max`](SpoolingBuilder::retry_backoff). Either way the data
///   stays in the spool. [`status`](Self::status) tells how delivery goes.
/// - [`flush`](Sink::flush) delivers everything now and returns the inner
///   sink's error if it fails; [`close`](Sink::close) does the same until a
///   deadline, then abandons a request in flight.
///
/// A crash (or a close) between a write to the database and its
/// acknowledgement replays the batch at the next start; InfluxDB keeps one
/// point per series and timestamp, so nothing is doubled.
///
/// A request abandoned by [`close`](Sink::close) or drop finishes (or times
/// out) on its own thread, which then ends; the spool directory is free at
/// once for another [`SpoolingSink`].
#[derive(Debug)]
pub struct SpoolingSink {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    dir: PathBuf,
    batch_size: usize,
}

/// How delivery from a spool goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// Readings in the spool, not yet acknowledged by the database.
    pub pending_records: usize,
    /// Their size in bytes.
    pub pending_bytes: u64,
    /// Readings appended since the spool was opened.
    pub appended_since_open: u64,
    /// Bytes of a torn last write cut off when the spool was opened.
    pub torn_bytes: u64,
    /// Readings delivered since the spool was opened.
    pub delivered: u64,
    /// Delivery attempts that failed since the spool was opened.
    pub failed_attempts: u64,
    /// The last failure, while delivery is failing (`None` once a batch
    /// went through again).
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the delivery thread: new records, a flush, a close.
    wake: Condvar,
    /// Wakes flush and close: an attempt ended.
    progress: Condvar,
}

#[derive(Debug)]
struct State {
    /// `None` once closed.
    spool: Option<Spool>,
    /// Flushes asked for, and the last one the delivery thread answered
    /// (by an empty spool or a failed attempt).
    flush_requested: u64,
    flush_served: u64,
    /// The error of the last failed attempt, with the flush it answered.
    failure: Option<(u64, SinkError)>,
    retry_at: Option<Instant>,
    backoff: Duration,
    delivered: u64,
    failed_attempts: u64,
    last_error: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SpoolingSink {
    /// A spool in `dir` in front of `inner`.
    pub fn builder<S: Sink + Send + 'static>(
        inner: S,
        dir: impl Into<PathBuf>,
    ) -> SpoolingBuilder<S> {
        SpoolingBuilder {
            inner,
            config: SpoolConfig {
                dir: dir.into(),
                max_bytes: defaults::SPOOL_MAX_BYTES,
                retry_min: defaults::RETRY_MIN,
                retry_max: defaults::RETRY_MAX,
            },
        }
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How delivery goes (all zero once closed).
    pub fn status(&self) -> DeliveryStatus {
        let state = self.shared.lock();
        let spool = state.spool.as_ref();
        DeliveryStatus {
            pending_records: spool.map_or(0, Spool::pending_records),
            pending_bytes: spool.map_or(0, Spool::pending_bytes),
            appended_since_open: spool.map_or(0, Spool::appended_since_open),
            torn_bytes: spool.map_or(0, Spool::torn_bytes),
            delivered: state.delivered,
            failed_attempts: state.failed_attempts,
            last_error: state.last_error.clone(),
        }
    }

    /// Asks for everything spooled to be delivered now (ignoring the
    /// backoff) and waits until it is, until an attempt fails (its error is
    /// returned) or until `deadline` ([`SinkError::NotDelivered`]).
    fn flush_until(&mut self, deadline: Option<Instant>) -> Result<(), SinkError> {
        let mut state = self.shared.lock();
        if state.spool.is_none() {
            return Err(SinkError::Closed {
                path: self.dir.clone(),
            });
        }
        state.flush_requested += 1;
        let target = state.flush_requested;
        self.shared.wake.notify_all();
        loop {
            if state.failure.as_ref().is_some_and(|(f, _)| *f >= target) {
                if let Some((_, e)) = state.failure.take() {
                    return Err(e);
                }
            }
            if state.flush_served >= target {
                return Ok(());
            }
            let pending = state.spool.as_ref().map_or(0, Spool::pending_records);
            let not_delivered = || SinkError::NotDelivered {
                path: self.dir.clone(),
                pending,
            };
            if self.worker.as_ref().is_none_or(JoinHandle::is_finished) {
                // The delivery thread died (a panic in the inner sink).
                return Err(not_delivered());
            }
            let now = Instant::now();
            // Woken at least every second to notice a dead delivery thread.
            let wait = match deadline {
                Some(d) if now >= d => return Err(not_delivered()),
                Some(d) => (d - now).min(Duration::from_secs(1)),
                None => Duration::from_secs(1),
            };
            state = self
                .shared
                .progress
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops the delivery thread (a request in flight is abandoned) and
    /// releases the spool directory.
    fn shut_down(&mut self) {
        let spool = self.shared.lock().spool.take();
        self.shared.wake.notify_all();
        drop(spool);
        if let Some(worker) = self.worker.take() {
            if worker.is_finished() {
                let _ = worker.join();
            }
        }
    }
}

impl Drop for SpoolingSink {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Sink for SpoolingSink {
    /// Appends the records to the spool (durably) and returns; delivery
    /// happens in the background. Refused records: invalid ones (they would
    /// block the spool forever), and any when the spool is full.
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        records.iter().try_for_each(Record::validate)?;
        if records.is_empty() {
            return Ok(());
        }
        let mut state = self.shared.lock();
        let spool = state.spool.as_mut().ok_or_else(|| SinkError::Closed {
            path: self.dir.clone(),
        })?;
        spool.append(records)?;
        drop(state);
        self.shared.wake.notify_all();
        Ok(())
    }

    /// Delivers everything spooled now (ignoring the backoff), waiting as
    /// long as that takes; returns the inner sink's error if it still fails.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.flush_until(None)
    }

    /// Delivers what it can by `deadline` ([`SinkError::NotDelivered`]
    /// when something is left), then stops delivering and releases the
    /// spool. What is left is delivered by the next start.
    fn close(&mut self, deadline: Instant) -> Result<(), SinkError> {
        let result = match self.shared.lock().spool {
            Some(_) => None,
            None => Some(Ok(())),
        };
        let result = result.unwrap_or_else(|| self.flush_until(Some(deadline)));
        self.shut_down();
        result
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// The delivery thread: waits for records (or a flush, or the end of a
/// backoff), sends the oldest batch without holding the lock, acknowledges
/// it, and so on until the sink is closed.
fn deliver<S: Sink>(shared: &Shared, mut inner: S, config: &SpoolConfig) {
    let batch = inner.batch_size().max(1);
    let mut state = shared.lock();
    loop {
        let Some(spool) = state.spool.as_ref() else {
            return;
        };
        let urgent = state.flush_requested > state.flush_served;
        if spool.is_empty() {
            if urgent {
                state.flush_served = state.flush_requested;
                shared.progress.notify_all();
            }
            state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        let now = Instant::now();
        if let Some(at) = state.retry_at.filter(|&at| !urgent && now < at) {
            state = shared
                .wake
                .wait_timeout(state, at - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        let serving = state.flush_requested;
        let (records, next) = match spool.peek(batch) {
            Ok(peeked) => peeked,
            Err(e) => {
                state.failed(e, serving, config);
                shared.progress.notify_all();
                continue;
            }
        };
        drop(state);
        let result = inner.write(&records).and_then(|()| inner.flush());
        state = shared.lock();
        let Some(spool) = state.spool.as_mut() else {
            // Closed while the request was in flight: its records stay in
            // the spool file, and the next start sends them again.
            return;
        };
        match result.and_then(|()| spool.ack(next, records.len())) {
            Ok(()) => state.succeeded(records.len(), config),
            Err(e) => state.failed(e, serving, config),
        }
        shared.progress.notify_all();
    }
}

impl State {
    fn succeeded(&mut self, records: usize, config: &SpoolConfig) {
        self.delivered += records as u64;
        self.backoff = config.retry_min;
        self.retry_at = None;
        if self.last_error.take().is_some() {
            log::info!(
                "spool {}: delivering again ({} readings still waiting)",
                config.dir.display(),
                self.spool.as_ref().map_or(0, Spool::pending_records)
            );
        }
    }

    /// Records a failed attempt made for flush `serving`: logs it (once
    /// while it repeats), schedules the next attempt.
    fn failed(&mut self, e: SinkError, serving: u64, config: &SpoolConfig) {
        self.failed_attempts += 1;
        let wait = if e.is_transient() {
            let wait = self.backoff;
            self.backoff = (self.backoff * 2).min(config.retry_max);
            wait
        } else {
            config.retry_max
        };
        self.retry_at = Some(Instant::now() + wait);
        let message = ErrorChain(&e).to_string();
        let pending = self.spool.as_ref().map_or(0, Spool::pending_records);
        let dir = config.dir.display();
        if self.last_error.as_deref() == Some(message.as_str()) {
            log::debug!("{message}; {pending} readings kept in spool {dir}, next try in {wait:?}");
        } else if e.is_transient() {
            log::warn!("{message}; {pending} readings kept in spool {dir}, next try in {wait:?}");
        } else {
            log::error!(
                "{message}; {pending} readings kept in spool {dir} until this is fixed (next try in {wait:?})"
            );
        }
        self.last_error = Some(message);
        self.flush_served = self.flush_served.max(serving);
        self.failure = Some((serving, e));
    }
}

/// Formats an error with its sources, for log lines.
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
