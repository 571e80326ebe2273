//! Time-series sinks for meter readings: InfluxDB 1.x and 2.x over HTTP
//! (line protocol, millisecond precision, UTC), a durable on-disk spool
//! that keeps readings while the database is away, CSV / JSON-lines files,
//! and MQTT with Home Assistant discovery ([`mqtt`]). [`SinkSpec`] is the
//! `[[sink]]` configuration and opens them.
//!
//! Schema (see [`line`](mod@line)): measurement `meter_reading` with tags `meter`,
//! `unit` and fields `value`, `raw`, `rate_per_hour`, `confidence_min`,
//! `digit_0`.. (most significant first); measurement `meter_event` with tags
//! `meter`, `status` (`unsure`/`rejected`), `unit` and fields `reason`, `raw`;
//! measurement `meter_health` with tag `meter` and fields `up`,
//! `not_stored_in_a_row`, `seconds_since_frame`, `seconds_since_stored`,
//! one point per meter and cycle (alert rules fire on a silent meter).
//!
//! ```
//! use meter_sink::{DigitValue, JsonLinesSink, Record, Sink, SpoolingSink, StoredValue};
//! use time::macros::datetime;
//!
//! let dir = tempfile::tempdir()?;
//! let reading = Record::stored(
//!     "house",
//!     datetime!(2026-03-01 12:00:07 UTC),
//!     StoredValue {
//!         value: 12345.6,
//!         raw: 12345.6,
//!         rate_per_hour: Some(0.4),
//!         confidence_min: 0.97,
//!         digits: vec![DigitValue { tenths: "5.6".parse()?, confidence: 0.97 }],
//!     },
//! )
//! .with_unit("kWh");
//!
//! // The line written to InfluxDB:
//! let line = meter_sink::line::encode(std::slice::from_ref(&reading), Vec::new());
//! assert_eq!(
//!     String::from_utf8(line)?,
//!     "meter_reading,meter=house,unit=kWh value=12345.6,raw=12345.6,rate_per_hour=0.4,confidence_min=0.97,digit_0=5.6 1772366407000\n"
//! );
//!
//! // Any sink can sit behind a spool; for InfluxDB use
//! // `InfluxSink::v1("http://127.0.0.1:8086", "meters").build()?`.
//! let file = JsonLinesSink::create(dir.path().join("readings.jsonl"))?;
//! let mut sink = SpoolingSink::builder(file, dir.path().join("spool")).build()?;
//! sink.write(&[reading])?; // durably spooled; delivered in the background
//! sink.close(std::time::Instant::now() + std::time::Duration::from_secs(2))?;
//! assert_eq!(std::fs::read_to_string(dir.path().join("readings.jsonl"))?.lines().count(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod defaults;
mod error;
mod file;
pub mod http;
mod influx;
pub mod influxdb_wal;
pub mod line;
mod logging;
pub mod mqtt;
mod record;
mod spec;
mod spool;
mod spooling;

pub use error::{RecordProblem, SinkError};
pub use file::{CsvSink, JsonLinesSink, CSV_HEADER};
pub use influx::{InfluxBuilder, InfluxSink};
pub use logging::{http_client_log_allowed, CapHttpClientLogs, HTTP_CLIENT_LOG_CAPS};
pub use record::{DigitValue, EventStatus, Health, NotStored, Record, RecordKind, StoredValue};
pub use spec::{Opened, SinkSpec};
pub use spool::Spool;
pub use spooling::{DeliveryStatus, SpoolingBuilder, SpoolingSink};

use std::time::Instant;

/// Somewhere readings are stored.
pub trait Sink {
    /// Stores the records, in order. Invalid records
    /// ([`Record::validate`]) are refused before anything is written.
    /// A [`SpoolingSink`] returns once the records are durably spooled and
    /// delivers them in the background.
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError>;

    /// Makes everything written so far durable (files: synced to disk;
    /// spool: delivered to the database, waiting as long as that takes).
    fn flush(&mut self) -> Result<(), SinkError>;

    /// Flushes what it can by `deadline`, then stops: in-flight requests are
    /// abandoned (their readings stay in the spool, and the next start
    /// delivers them). Returns within a few milliseconds of `deadline`
    /// whatever the server does. The sink takes no more writes afterwards.
    fn close(&mut self, deadline: Instant) -> Result<(), SinkError> {
        let _ = deadline;
        self.flush()
    }

    /// How many records one [`write`](Self::write) should carry at most
    /// (a spool drains in batches of this size).
    fn batch_size(&self) -> usize {
        1000
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        (**self).write(records)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }

    fn close(&mut self, deadline: Instant) -> Result<(), SinkError> {
        (**self).close(deadline)
    }

    fn batch_size(&self) -> usize {
        (**self).batch_size()
    }
}
