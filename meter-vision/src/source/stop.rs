//! A stop signal that long waits (camera requests, retry pauses) watch.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Tells sources to give up: set by [`stop`](Self::stop), or by itself at
/// a deadline. Clones share the signal; the run loop keeps one and hands
/// clones to the sources, which then abandon a hung camera request or a
/// retry pause within [`STOP_POLL`](crate::source::defaults::STOP_POLL) of
/// a stop, with [`VisionError::Stopped`](crate::VisionError::Stopped).
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stopped: Mutex<bool>,
    changed: Condvar,
    deadline: Option<Instant>,
}

impl StopSignal {
    /// A signal that fires only when [`stop`](Self::stop) is called.
    pub fn new() -> Self {
        Self::default()
    }

    /// A signal that also fires by itself at `deadline` (e.g. the overall
    /// time allowed to a one-shot reading).
    pub fn with_deadline(deadline: Instant) -> Self {
        Self {
            inner: Arc::new(Inner {
                deadline: Some(deadline),
                ..Inner::default()
            }),
        }
    }

    /// Fires the signal, waking everyone waiting on it.
    pub fn stop(&self) {
        *self.lock() = true;
        self.inner.changed.notify_all();
    }

    /// Whether it fired (stopped, or past the deadline).
    pub fn is_stopped(&self) -> bool {
        *self.lock() || self.past_deadline(Instant::now())
    }

    /// The deadline given at creation.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// Sleeps for `duration`, or less if the signal fires; returns whether
    /// it fired.
    pub fn sleep(&self, duration: Duration) -> bool {
        self.sleep_until(Instant::now() + duration)
    }

    /// Sleeps until `until`, or less if the signal fires; returns whether
    /// it fired.
    pub fn sleep_until(&self, until: Instant) -> bool {
        let mut stopped = self.lock();
        loop {
            let now = Instant::now();
            if *stopped || self.past_deadline(now) {
                return true;
            }
            if now >= until {
                return false;
            }
            let wake = self.inner.deadline.map_or(until, |d| d.min(until));
            stopped = self
                .inner
                .changed
                .wait_timeout(stopped, wake - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn past_deadline(&self, now: Instant) -> bool {
        self.inner.deadline.is_some_and(|d| now >= d)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.inner.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_wakes_a_sleeper_and_a_deadline_fires_by_itself() {
        let signal = StopSignal::new();
        assert!(!signal.sleep(Duration::from_millis(1)));
        let sleeper = {
            let s = signal.clone();
            std::thread::spawn(move || s.sleep(Duration::from_secs(600)))
        };
        signal.stop();
        assert!(sleeper.join().unwrap());
        assert!(signal.is_stopped());
        let soon = StopSignal::with_deadline(Instant::now() + Duration::from_millis(20));
        assert!(soon.sleep(Duration::from_secs(600)));
        assert!(soon.is_stopped());
    }
}
