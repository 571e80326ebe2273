//! Delivery that never blocks reading: each notifier has an on-disk outbox
//! (one JSON file per notification, and its photo beside it, named by a
//! sequence number) drained in order by a thread of its own, with retry and
//! exponential backoff. A server's `retry_after` is honoured. A notification
//! the server refuses as malformed (400, 413, 422) three times is moved to
//! `refused/` in the outbox with an error line, so one bad payload cannot
//! block the queue; every other failure (no answer, 401, 403, 404, 429,
//! 5xx) is retried until it succeeds, since it is the notifier that is
//! broken, not the notification.
//!
//! Delivery is at least once: a crash between the server's answer and the
//! removal of the file sends that one notification again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::error::chain;
use crate::event::Notification;
use crate::store::{load_json, save_json, sync_dir, write_atomic};
use crate::AlertError;

/// Attempts before a refused notification is set aside.
const REFUSALS: u32 = 3;

/// A notification queued on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    notification: Notification,
    photo: bool,
    attempts: u32,
}

/// One notifier's queue.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    queue: Mutex<Queue>,
    wake: Sender<()>,
    woken: Receiver<()>,
}

#[derive(Debug)]
struct Queue {
    seqs: VecDeque<u64>,
    next: u64,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, with what a previous run left
    /// queued.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Arc<Self>, AlertError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| AlertError::io("create", &dir, e))?;
        let mut seqs = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| AlertError::io("read", &dir, e))? {
            let path = entry.map_err(|e| AlertError::io("read", &dir, e))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if let Some(seq) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let next = seqs.last().map_or(0, |s| s + 1);
        let (wake, woken) = bounded(1);
        Ok(Arc::new(Self {
            dir,
            queue: Mutex::new(Queue {
                seqs: seqs.into(),
                next,
            }),
            wake,
            woken,
        }))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a notification (and its photo), durably, and wakes the
    /// delivery thread.
    pub fn push(
        &self,
        notification: &Notification,
        photo: Option<&[u8]>,
    ) -> Result<(), AlertError> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let seq = q.next;
        if let Some(jpeg) = photo {
            write_atomic(&self.photo_path(seq), jpeg)?;
        }
        let entry = Entry {
            notification: notification.clone(),
            photo: photo.is_some(),
            attempts: 0,
        };
        // The JSON file is the commit: without it the photo is ignored.
        save_json(&self.entry_path(seq), &entry)?;
        q.next += 1;
        q.seqs.push_back(seq);
        let _ = self.wake.try_send(());
        Ok(())
    }

    /// Notifications waiting.
    pub fn len(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seqs
            .len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    fn photo_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.jpg"))
    }

    fn front(&self) -> Option<u64> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seqs
            .front()
            .copied()
    }

    fn read(&self, seq: u64) -> Result<(Entry, Option<Vec<u8>>), AlertError> {
        let path = self.entry_path(seq);
        let entry: Entry = load_json(&path, "outbox entry")?
            .ok_or_else(|| AlertError::io("read", &path, std::io::ErrorKind::NotFound.into()))?;
        let photo = if entry.photo {
            let p = self.photo_path(seq);
            Some(std::fs::read(&p).map_err(|e| AlertError::io("read", p, e))?)
        } else {
            None
        };
        Ok((entry, photo))
    }

    /// Removes the front entry after delivery.
    fn pop(&self, seq: u64) -> Result<(), AlertError> {
        let path = self.entry_path(seq);
        std::fs::remove_file(&path).map_err(|e| AlertError::io("remove", &path, e))?;
        let _ = std::fs::remove_file(self.photo_path(seq));
        let _ = sync_dir(&self.dir);
        self.pop_front(seq);
        Ok(())
    }

    /// Moves the front entry to `refused/`.
    fn set_aside(&self, seq: u64) -> Result<PathBuf, AlertError> {
        let aside = self.dir.join("refused");
        std::fs::create_dir_all(&aside).map_err(|e| AlertError::io("create", &aside, e))?;
        let to = aside.join(format!("{seq:020}.json"));
        std::fs::rename(self.entry_path(seq), &to).map_err(|e| AlertError::io("move", &to, e))?;
        let _ = std::fs::rename(self.photo_path(seq), aside.join(format!("{seq:020}.jpg")));
        self.pop_front(seq);
        Ok(to)
    }

    fn pop_front(&self, seq: u64) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.seqs.front() == Some(&seq) {
            q.seqs.pop_front();
        }
    }

    fn count_attempt(&self, seq: u64, entry: &mut Entry) {
        entry.attempts += 1;
        // Best effort: a lost count only delays setting it aside.
        let _ = save_json(&self.entry_path(seq), entry);
    }
}

/// Something that delivers notifications: Telegram, a webhook.
pub trait Notifier: Send {
    /// The name in log lines.
    fn name(&self) -> &str;
    /// Delivers one notification (with the frame, where there is one).
    fn deliver(
        &mut self,
        notification: &Notification,
        photo: Option<&[u8]>,
    ) -> Result<(), AlertError>;
}

/// Waits between attempts: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(2),
            max: Duration::from_secs(5 * 60),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row (1, 2, ..).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// A running delivery thread; [`stop`](Self::stop) it before exit.
#[derive(Debug)]
pub struct Delivery {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Delivery {
    /// Starts draining `outbox` into `notifier`.
    pub fn spawn(outbox: Arc<Outbox>, mut notifier: Box<dyn Notifier>, backoff: Backoff) -> Self {
        let (stop, stopped) = bounded(1);
        let thread = std::thread::Builder::new()
            .name(format!("notify-{}", notifier.name()))
            .spawn(move || drain(&outbox, notifier.as_mut(), backoff, &stopped))
            .expect("spawn a thread");
        Self { stop, thread }
    }

    /// Stops after the request in flight (bounded by the notifier's
    /// timeout); what is queued stays on disk for the next start.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn drain(outbox: &Outbox, notifier: &mut dyn Notifier, backoff: Backoff, stopped: &Receiver<()>) {
    let name = notifier.name().to_owned();
    let mut failures = 0u32;
    loop {
        if stopped.try_recv().is_ok() {
            return;
        }
        let Some(seq) = outbox.front() else {
            crossbeam_channel::select! {
                recv(outbox.woken) -> _ => continue,
                recv(stopped) -> _ => return,
            }
        };
        let (mut entry, photo) = match outbox.read(seq) {
            Ok(x) => x,
            Err(e) => {
                log::error!("notifier {name}: {}; setting it aside", chain(&e));
                if outbox.set_aside(seq).is_err() {
                    outbox.pop_front(seq);
                }
                continue;
            }
        };
        let wait = match notifier.deliver(&entry.notification, photo.as_deref()) {
            Ok(()) => {
                if failures > 0 {
                    log::info!(
                        "notifier {name}: delivering again after {failures} failed attempts"
                    );
                }
                failures = 0;
                if let Err(e) = outbox.pop(seq) {
                    log::error!("notifier {name}: {}", chain(&e));
                    outbox.pop_front(seq);
                }
                continue;
            }
            Err(e) if matches!(e.status(), Some(400 | 413 | 422)) => {
                outbox.count_attempt(seq, &mut entry);
                if entry.attempts >= REFUSALS {
                    match outbox.set_aside(seq) {
                        Ok(to) => log::error!(
                            "notifier {name}: {}; refused {REFUSALS} times, kept in {}",
                            chain(&e),
                            to.display()
                        ),
                        Err(e2) => log::error!("notifier {name}: {}; {}", chain(&e), chain(&e2)),
                    }
                    continue;
                }
                failures += 1;
                let wait = backoff.delay(failures);
                log::warn!("notifier {name}: {}; retrying in {wait:?}", chain(&e));
                wait
            }
            Err(e) => {
                failures += 1;
                let wait = e.retry_after().unwrap_or_else(|| backoff.delay(failures));
                log::warn!(
                    "notifier {name}: {}; retrying in {wait:?} ({} waiting)",
                    chain(&e),
                    outbox.len()
                );
                wait
            }
        };
        if stopped.recv_timeout(wait).is_ok() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let b = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let d: Vec<u64> = (1..=6).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 10, 10]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(10));
    }
}
