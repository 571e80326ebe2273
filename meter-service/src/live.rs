//! What the service last saw of each meter, kept up to date by a
//! subscriber of the event stream: for the Telegram bot, the web page and
//! anything that asks "how is each meter doing?".

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::events::{CameraMovedEvent, ErrorEvent, ErrorKind, Event, ReadingEvent, Subscriber};
use crate::report::Status;

/// One meter's latest news.
#[derive(Debug, Clone, Default)]
pub struct MeterLive {
    /// The last reading (stored or not), with its frame and digit images;
    /// both empty where the [`Live`] keeps no frames
    /// ([`Live::without_frames`]).
    pub last: Option<Arc<ReadingEvent>>,
    /// When a frame was last read.
    pub last_frame: Option<OffsetDateTime>,
    /// The last stored value and when it was read.
    pub last_stored: Option<(OffsetDateTime, f64)>,
    /// Unsure or rejected readings since the last stored one.
    pub not_stored_in_a_row: u32,
    /// The last failure, cleared by the next reading.
    pub last_error: Option<Arc<ErrorEvent>>,
    /// Capture failures since the start.
    pub capture_failures: u64,
    /// Unsure readings since the start.
    pub unsure: u64,
    /// The last time the camera moved.
    pub last_move: Option<Arc<CameraMovedEvent>>,
}

/// Every meter's [`MeterLive`], shared. Holds at most one frame per meter,
/// the last one.
#[derive(Debug)]
pub struct Live {
    meters: RwLock<BTreeMap<String, MeterLive>>,
    /// Whether the last reading keeps its frame and digit images.
    frames: bool,
}

impl Default for Live {
    fn default() -> Self {
        Self::new([])
    }
}

impl Live {
    /// Nothing seen yet of `meters`; keeps each one's last frame (for the
    /// web page and the Telegram bot).
    pub fn new<'a>(meters: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            meters: RwLock::new(
                meters
                    .into_iter()
                    .map(|m| (m.to_owned(), MeterLive::default()))
                    .collect(),
            ),
            frames: true,
        }
    }

    /// Like [`new`](Self::new), but the last reading is kept without its
    /// frame and digit images (about 60 KB a meter): for a process that
    /// shows no frames.
    pub fn without_frames<'a>(meters: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            frames: false,
            ..Self::new(meters)
        }
    }

    /// Whether the last readings keep their frames.
    pub fn keeps_frames(&self) -> bool {
        self.frames
    }

    /// Takes in one event.
    pub fn update(&self, event: &Event) {
        let mut meters = self.meters.write().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Reading(r) => {
                let m = meters.entry(r.report.meter.clone()).or_default();
                m.last_frame = Some(r.report.time);
                match (r.report.status, r.report.value) {
                    (Status::Stored, Some(v)) => {
                        m.last_stored = Some((r.report.time, v));
                        m.not_stored_in_a_row = 0;
                    }
                    (status, _) => {
                        m.not_stored_in_a_row += 1;
                        m.unsure += u64::from(status == Status::Unsure);
                    }
                }
                m.last_error = None;
                m.last = Some(if self.frames {
                    r.clone()
                } else {
                    Arc::new(ReadingEvent {
                        jpeg: Arc::from([]),
                        crops: Arc::default(),
                        ..ReadingEvent::clone(r)
                    })
                });
            }
            Event::Error(e) => {
                if let Some(name) = &e.meter {
                    let m = meters.entry(name.clone()).or_default();
                    m.capture_failures += u64::from(e.kind == ErrorKind::Camera);
                    m.last_error = Some(e.clone());
                }
            }
            Event::CameraMoved(c) => {
                meters.entry(c.meter.clone()).or_default().last_move = Some(c.clone());
            }
            _ => {}
        }
    }

    /// `meter`'s news; `None` for a meter not read here.
    pub fn get(&self, meter: &str) -> Option<MeterLive> {
        let meters = self.meters.read().unwrap_or_else(|e| e.into_inner());
        meters.get(meter).cloned()
    }

    /// Every meter's news, by name.
    pub fn all(&self) -> Vec<(String, MeterLive)> {
        let meters = self.meters.read().unwrap_or_else(|e| e.into_inner());
        meters.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// A subscriber that keeps this up to date.
    pub fn subscriber(self: &Arc<Self>) -> Box<dyn Subscriber> {
        Box::new(LiveSubscriber(self.clone()))
    }
}

struct LiveSubscriber(Arc<Live>);

impl Subscriber for LiveSubscriber {
    fn name(&self) -> String {
        "live".into()
    }

    fn handle(&mut self, event: &Event) -> anyhow::Result<()> {
        self.0.update(event);
        Ok(())
    }
}
