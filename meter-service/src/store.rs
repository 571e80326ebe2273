//! The one path from a frame to a stored reading, used by `meter predict`,
//! `meter run`, the benches and anything embedding the service.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use meter_sink::Sink;
use meter_vision::Frame;
use time::OffsetDateTime;

use crate::events::{Bus, CameraMovedEvent, ErrorKind, Event, ReadingEvent};
use crate::reader::MeterReader;
use crate::report::Report;

/// A sink with its name for logs (`influx_v1-0`).
pub type NamedSink = (String, Box<dyn Sink + Send>);

/// The sinks and the event stream of a process.
pub struct Store {
    sinks: Mutex<Vec<NamedSink>>,
    bus: Arc<Bus>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        f.debug_struct("Store")
            .field("sinks", &names)
            .field("bus", &self.bus)
            .finish()
    }
}

impl Store {
    /// Stores into `sinks` and tells `bus`.
    pub fn new(sinks: Vec<NamedSink>, bus: Arc<Bus>) -> Self {
        Self {
            sinks: Mutex::new(sinks),
            bus,
        }
    }

    /// The event stream.
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// Reads `frame` (taken at `time`) with `reader`, hands the record to
    /// every sink, and only when all of them accepted it (written, or
    /// durably spooled) commits the meter's state and files its crops; then
    /// publishes the reading. Any failure is published as an error event and
    /// returned; a reading a sink refused is not remembered as stored.
    pub fn read_and_store(
        &self,
        reader: &mut MeterReader,
        frame: Frame,
        time: OffsetDateTime,
    ) -> anyhow::Result<Report> {
        let meter = reader.meter().name.clone();
        let fail = |kind, e: anyhow::Error| {
            self.bus.error(Some(&meter), kind, &e);
            e
        };
        let taken = reader
            .read(frame, time)
            .map_err(|e| fail(ErrorKind::Frame, e))?;
        let health = taken.health.record(&meter, time);
        self.write(&[taken.report.record(), health])
            .map_err(|e| fail(ErrorKind::Sink, e))?;
        reader
            .commit(&taken)
            .map_err(|e| fail(ErrorKind::Storage, e))?;
        let report = taken.report.clone();
        if let Some(movement) = taken.tracking.moved {
            log::info!(
                "meter {meter}: the camera moved by ({:+.1}, {:+.1}) px, {:+.2} deg; reading it at its new place",
                movement.dx,
                movement.dy,
                movement.angle_deg
            );
            self.bus
                .publish(Event::CameraMoved(Arc::new(CameraMovedEvent {
                    meter: meter.clone(),
                    time,
                    movement,
                })));
        }
        self.bus.publish(Event::Reading(Arc::new(ReadingEvent {
            report: taken.report,
            jpeg: taken.jpeg.into(),
            origin: taken.origin,
            alignment: taken.alignment,
            crops: taken.crops,
            tracking: taken.tracking,
        })));
        Ok(report)
    }

    /// Writes `reader`'s health point as of `now` (after a capture failed:
    /// a silent camera still reports). A failure is logged.
    pub fn write_health(&self, reader: &MeterReader, now: OffsetDateTime) {
        let meter = &reader.meter().name;
        if let Err(e) = self.write(&[reader.health().record(meter, now)]) {
            log::warn!("meter {meter}: health point: {e:#}");
        }
    }

    /// Hands `records` to every sink; the first refusal is the error.
    fn write(&self, records: &[meter_sink::Record]) -> anyhow::Result<()> {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        for (label, sink) in sinks.iter_mut() {
            sink.write(records)
                .with_context(|| format!("sink {label}: the reading was not stored"))?;
        }
        Ok(())
    }

    /// Gives every sink until `deadline` to deliver what it holds, then
    /// closes it; returns whether all delivered everything (what is left
    /// stays in their spools for the next start, and is logged).
    pub fn close(&self, deadline: Instant) -> bool {
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        let mut ok = true;
        for (label, sink) in sinks.iter_mut() {
            if let Err(e) = sink.close(deadline) {
                ok = false;
                log::warn!("sink {label}: {e:#}");
            }
        }
        ok
    }
}
