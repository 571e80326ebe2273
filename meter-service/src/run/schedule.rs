//! The scheduler and one meter's turn: due meters handed to the bounded
//! pool of workers, each read by one worker at a time (see the module
//! above).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use meter_vision::VisionError;

use super::{Counters, Service, DEFAULT_WORKERS};
use crate::events::ErrorKind;
use crate::reader::capture_time;
use crate::report::Status;

/// Why a meter's turn ended.
enum Turn {
    /// Read (or failed); schedule it again.
    Again,
    /// Stopped while reading (the camera request was abandoned).
    Stopped,
    /// Its source has no more frames.
    Exhausted,
    /// The reading panicked.
    Panicked,
}

impl Service {
    /// Hands due meters to the workers until every meter is done or a stop;
    /// returns whether it was stopped (rather than running out of work).
    pub(super) fn schedule<'s>(
        &'s self,
        scope: &'s std::thread::Scope<'s, '_>,
        counters: &'s Counters,
        panicked: &'s Mutex<Option<String>>,
        read_now: &Receiver<String>,
    ) -> bool {
        let n = self.slots.len();
        let workers = self.opts.workers.unwrap_or(DEFAULT_WORKERS).clamp(1, n);
        let (job_tx, job_rx) = crossbeam_channel::bounded::<usize>(n);
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<(usize, Turn)>();
        for w in 0..workers {
            let (job_rx, done_tx) = (job_rx.clone(), done_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn_scoped(scope, move || {
                    for idx in job_rx.iter() {
                        // Meters queued when a stop came are not read.
                        let turn = if self.stop.is_stopped() {
                            Turn::Stopped
                        } else {
                            self.turn(idx, counters)
                        };
                        if matches!(turn, Turn::Panicked) {
                            panicked
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert_with(|| self.slots[idx].0.clone());
                        }
                        if done_tx.send((idx, turn)).is_err() {
                            break;
                        }
                    }
                });
            if let Err(e) = spawned {
                // Fewer workers still read every meter, only slower.
                log::error!("starting worker {w}: {e}");
                if w == 0 {
                    return false;
                }
                break;
            }
        }
        drop(done_tx);
        let start = Instant::now();
        let mut due: BinaryHeap<Reverse<(Instant, usize)>> =
            (0..n).map(|i| Reverse((start, i))).collect();
        let mut next_at = vec![start; n];
        let mut taken = vec![0u64; n];
        let mut busy = vec![false; n];
        let mut finished = vec![false; n];
        let mut active = n;
        let stopped = loop {
            if self.stop.is_stopped() {
                break true;
            }
            let now = Instant::now();
            while let Some(&Reverse((t, i))) = due.peek() {
                if t > now {
                    break;
                }
                due.pop();
                // A meter already read or done (a read-now came first).
                if busy[i] || finished[i] {
                    continue;
                }
                busy[i] = true;
                let _ = job_tx.send(i);
            }
            if active == 0 {
                break false;
            }
            // Wake for the next due meter, a finished turn, a read-now, or
            // (polled) a stop.
            let wait = due
                .peek()
                .map_or(Duration::from_millis(100), |Reverse((t, _))| {
                    t.saturating_duration_since(now)
                })
                .min(Duration::from_millis(100));
            crossbeam_channel::select! {
                recv(done_rx) -> msg => {
                    let Ok((i, turn)) = msg else { break false };
                    busy[i] = false;
                    taken[i] += 1;
                    let done = match turn {
                        Turn::Again => self.opts.count.is_some_and(|c| taken[i] >= c),
                        Turn::Exhausted | Turn::Stopped => true,
                        Turn::Panicked => {
                            self.stop.stop();
                            true
                        }
                    };
                    if done {
                        finished[i] = true;
                        active -= 1;
                    } else {
                        // Fixed rate; a reading that overran is not made up for.
                        let next = next_at[i] + self.slots[i].1;
                        next_at[i] = next.max(Instant::now());
                        due.push(Reverse((next_at[i], i)));
                    }
                }
                recv(read_now) -> msg => {
                    if let Ok(name) = msg {
                        match self.slots.iter().position(|(m, _, _)| *m == name) {
                            Some(i) if !finished[i] => due.push(Reverse((Instant::now(), i))),
                            _ => log::warn!("read now: no meter {name:?} is being read here"),
                        }
                    }
                }
                default(wait) => {}
            }
        };
        // Workers finish the readings in hand.
        drop(job_tx);
        while busy.iter().any(|b| *b) {
            match done_rx.recv() {
                Ok((i, _)) => busy[i] = false,
                Err(_) => break,
            }
        }
        stopped
    }

    /// One reading of meter `idx`.
    fn turn(&self, idx: usize, counters: &Counters) -> Turn {
        let (name, _, slot) = &self.slots[idx];
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let slot = &mut *slot;
            slot.generation = self.model.refresh(&mut slot.reader, slot.generation);
            if let Some(m) = self.reconfigure.take(name) {
                match slot.reader.set_geometry(m) {
                    Ok(()) => log::info!("meter {name}: reading with the new boxes"),
                    Err(e) => log::error!("{e:#}; keeping the previous boxes"),
                }
            }
            let frame = match slot.source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Turn::Exhausted,
                // Abandoned by a stop: not the camera's fault.
                Err(VisionError::Stopped { .. }) => return Turn::Stopped,
                Err(e) => {
                    let e = anyhow::Error::new(e).context(format!("meter {name}"));
                    self.store.bus().error(Some(name), ErrorKind::Camera, &e);
                    self.store
                        .write_health(&slot.reader, time::OffsetDateTime::now_utc());
                    counters.count(Err(()));
                    return Turn::Again;
                }
            };
            let time = capture_time(&frame);
            let outcome = self
                .store
                .read_and_store(&mut slot.reader, frame, time)
                .map(|r| r.status)
                .map_err(|_| ());
            counters.count(outcome);
            Turn::Again
        }));
        match result {
            Ok(Turn::Exhausted) => {
                log::info!(
                    "meter {name}: source {} has no more frames",
                    slot.reader.meter().source
                );
                Turn::Exhausted
            }
            Ok(turn) => turn,
            Err(_) => {
                counters.count(Err(()));
                let e = anyhow::anyhow!("meter {name}: a reading panicked");
                self.store.bus().error(Some(name), ErrorKind::Panic, &e);
                Turn::Panicked
            }
        }
    }
}

impl Counters {
    fn count(&self, outcome: Result<Status, ()>) {
        self.readings.fetch_add(1, Ordering::Relaxed);
        let counter = match outcome {
            Ok(Status::Stored) => &self.stored,
            Ok(Status::Unsure) => &self.unsure,
            Ok(Status::Rejected) => &self.rejected,
            Err(()) => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
