//! The event stream: everything that listens to the service (the log
//! printer, alerts, MQTT, the web page, an embedding program) subscribes
//! here.
//!
//! Each [`Subscriber`] runs on a thread of its own behind a bounded queue,
//! so a slow one never delays reading: when its queue is full, events for it
//! are dropped and counted (a warning says how many). One that fails is
//! logged and keeps receiving; one that panics is logged and dropped. The
//! sinks are not subscribers of this kind: the service commits a meter's
//! state only once every sink has accepted the reading
//! ([`Store::read_and_store`](crate::Store::read_and_store)).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use image::RgbImage;
use meter_vision::Alignment;
use time::OffsetDateTime;

use crate::report::Report;

/// Something that happened in the service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A reading: stored, unsure or rejected.
    Reading(Arc<ReadingEvent>),
    /// Something failed.
    Error(Arc<ErrorEvent>),
    /// A retrain ended.
    Retrain(Arc<RetrainEvent>),
    /// A meter's camera moved, and the meter was found at its new place.
    CameraMoved(Arc<CameraMovedEvent>),
}

/// The camera of a meter moved (bumped, a sagging mount): the tracker
/// found the meter at a new place on several consistent frames and reads
/// it there from now on.
#[derive(Debug, Clone)]
pub struct CameraMovedEvent {
    /// The meter.
    pub meter: String,
    /// The frame on which the new place became the reference.
    pub time: OffsetDateTime,
    /// How far: shift of the frame's centre (px), turn (degrees), scale.
    pub movement: meter_vision::CameraMove,
}

/// A reading with what it was read from.
#[derive(Debug, Clone)]
pub struct ReadingEvent {
    /// The reading (value, digits, confidences, status, reason).
    pub report: Report,
    /// The frame as received (JPEG).
    pub jpeg: Arc<[u8]>,
    /// Where the frame came from (URL or file).
    pub origin: String,
    /// How the frame was aligned.
    pub alignment: Alignment,
    /// The digit images the model read, most significant first.
    pub crops: Arc<Vec<RgbImage>>,
    /// How the frame was aligned.
    pub tracking: meter_vision::Tracking,
}

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The camera or frame source gave no frame.
    Camera,
    /// A frame that could not be read (corrupt, alignment failed).
    Frame,
    /// A sink refused a reading (it was not stored).
    Sink,
    /// The state or the dataset could not be written or read.
    Storage,
    /// A reading panicked (a bug): the service stops.
    Panic,
}

impl ErrorKind {
    /// `camera`, `frame`, `sink`, `storage`, `panic`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Camera => "camera",
            ErrorKind::Frame => "frame",
            ErrorKind::Sink => "sink",
            ErrorKind::Storage => "storage",
            ErrorKind::Panic => "panic",
        }
    }
}

/// A failure.
#[derive(Debug, Clone)]
pub struct ErrorEvent {
    /// The meter concerned, if one is.
    pub meter: Option<String>,
    /// When.
    pub time: OffsetDateTime,
    /// What failed.
    pub kind: ErrorKind,
    /// The error, with its causes, on one line.
    pub message: String,
}

/// A retrain's outcome.
#[derive(Debug, Clone)]
pub struct RetrainEvent {
    /// When it ended.
    pub time: OffsetDateTime,
    /// What it decided; `Err` with the error's text when it failed.
    pub outcome: Result<crate::retrain::RetrainOutcome, String>,
}

/// Something that listens to the service's events.
pub trait Subscriber: Send {
    /// A short name for log lines.
    fn name(&self) -> String;

    /// Handles one event. An error is logged; the subscriber goes on
    /// receiving events.
    fn handle(&mut self, event: &Event) -> anyhow::Result<()>;

    /// Called once after the last event, when the service stops.
    fn finish(&mut self) {}
}

/// Queue length per subscriber. An event holds the frame's JPEG (tens of
/// kB), not the decoded picture, so a subscriber that lags holds at most a
/// few tens of MB.
pub const QUEUE: usize = 1024;

struct Listener {
    name: String,
    tx: Sender<Event>,
    dropped: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

/// Fans events out to the subscribers, each on its own thread.
#[derive(Default)]
pub struct Bus {
    listeners: Mutex<Vec<Listener>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|l| l.name.clone())
            .collect();
        f.debug_struct("Bus").field("subscribers", &names).finish()
    }
}

impl Bus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts delivering events to `subscriber` on a thread of its own.
    pub fn subscribe(&self, subscriber: Box<dyn Subscriber>) -> std::io::Result<()> {
        let name = subscriber.name();
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let thread = std::thread::Builder::new()
            .name(format!("subscriber-{name}"))
            .spawn({
                let name = name.clone();
                let dropped = dropped.clone();
                move || deliver(name, subscriber, rx, &dropped)
            })?;
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Listener {
                name,
                tx,
                dropped,
                thread,
            });
        Ok(())
    }

    /// Hands `event` to every subscriber without waiting for any.
    pub fn publish(&self, event: Event) {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for l in listeners.iter() {
            match l.tx.try_send(event.clone()) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    // Counted here, reported by the subscriber's thread once
                    // it catches up (one line per burst, not per event).
                    l.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Publishes an error event.
    pub fn error(&self, meter: Option<&str>, kind: ErrorKind, err: &anyhow::Error) {
        let message = format!("{err:#}");
        self.publish(Event::Error(Arc::new(ErrorEvent {
            meter: meter.map(str::to_owned),
            time: OffsetDateTime::now_utc(),
            kind,
            message,
        })));
    }

    /// Delivers what is queued, calls each subscriber's `finish` and ends
    /// their threads.
    pub fn close(&self) {
        let listeners =
            std::mem::take(&mut *self.listeners.lock().unwrap_or_else(|e| e.into_inner()));
        for l in listeners {
            drop(l.tx);
            if l.thread.join().is_err() {
                log::error!("subscriber {}: its thread panicked", l.name);
            }
        }
    }
}

fn deliver(
    name: String,
    mut subscriber: Box<dyn Subscriber>,
    rx: Receiver<Event>,
    dropped: &AtomicU64,
) {
    for event in rx.iter() {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            log::warn!("subscriber {name}: too slow, {lost} events were dropped for it");
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| subscriber.handle(&event))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("subscriber {name}: {e:#}"),
            Err(_) => {
                log::error!("subscriber {name} panicked; it receives no more events");
                return;
            }
        }
    }
    if std::panic::catch_unwind(AssertUnwindSafe(|| subscriber.finish())).is_err() {
        log::error!("subscriber {name} panicked while finishing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    struct Probe {
        name: &'static str,
        seen: Arc<Mutex<Vec<String>>>,
        gate: Option<mpsc::Receiver<()>>,
        fail: bool,
        panic_on: Option<usize>,
    }

    impl Subscriber for Probe {
        fn name(&self) -> String {
            self.name.into()
        }
        fn handle(&mut self, event: &Event) -> anyhow::Result<()> {
            if let Some(g) = &self.gate {
                let _ = g.recv_timeout(Duration::from_secs(5));
            }
            let Event::Error(e) = event else {
                return Ok(());
            };
            let mut seen = self.seen.lock().unwrap();
            seen.push(e.message.clone());
            if self.panic_on == Some(seen.len()) {
                drop(seen);
                panic!("probe panics");
            }
            anyhow::ensure!(!self.fail, "probe fails");
            Ok(())
        }
        fn finish(&mut self) {
            self.seen.lock().unwrap().push("finished".into());
        }
    }

    fn probe(name: &'static str) -> (Probe, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        (
            Probe {
                name,
                seen: seen.clone(),
                gate: None,
                fail: false,
                panic_on: None,
            },
            seen,
        )
    }

    fn err(bus: &Bus, i: usize) {
        bus.error(Some("m"), ErrorKind::Camera, &anyhow::anyhow!("event {i}"));
    }

    #[test]
    fn a_slow_failing_or_panicking_subscriber_never_stops_the_others() {
        let bus = Bus::new();
        let (good, good_seen) = probe("good");
        let (mut failing, failing_seen) = probe("failing");
        failing.fail = true;
        let (mut panicking, panicking_seen) = probe("panicking");
        panicking.panic_on = Some(2);
        let (mut slow, slow_seen) = probe("slow");
        let (open, gate) = mpsc::channel();
        slow.gate = Some(gate);
        for p in [good, failing, panicking, slow] {
            bus.subscribe(Box::new(p)).unwrap();
        }
        // The slow one blocks on its first event; publishing never waits.
        // Published in steps the others keep up with (on a busy machine a
        // tight loop could outrun any consumer).
        let n = QUEUE + 100;
        for i in 0..n {
            err(&bus, i);
            if i % 100 == 99 {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while (good_seen.lock().unwrap().len() <= i
                    || failing_seen.lock().unwrap().len() <= i)
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        for _ in 0..n {
            let _ = open.send(());
        }
        bus.close();
        let good = good_seen.lock().unwrap();
        assert_eq!(good.len(), n + 1, "every event, then finish");
        assert_eq!(good[0], "event 0");
        assert_eq!(failing_seen.lock().unwrap().len(), n + 1);
        assert_eq!(
            panicking_seen.lock().unwrap().len(),
            2,
            "dropped after its panic, not finished"
        );
        let slow = slow_seen.lock().unwrap();
        assert!(slow.len() < n + 1, "the slow one lost events");
        assert_eq!(slow.last().unwrap(), "finished");
    }
}
