//! Every default of the sinks, in one place.
//!
//! `[[sink]]` tables ([`SinkSpec`](crate::SinkSpec)) take no tuning keys:
//! these values apply. The builders ([`InfluxSink`](crate::InfluxSink),
//! [`SpoolingSink`](crate::SpoolingSink)) can override them.

use std::time::Duration;

/// Longest an InfluxDB request may take, connect to last byte. A hung
/// server costs at most this per attempt; it never delays a reading or a
/// stop (delivery runs on the spool's own thread).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest the TCP connect alone may take (within [`HTTP_TIMEOUT`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines per InfluxDB request (InfluxDB's recommendation).
pub const BATCH_SIZE: usize = 5000;

/// Largest size of unacknowledged data in a spool: 64 MiB, about 170,000
/// readings, four months at one a minute. A warning is logged at 80%;
/// beyond it new readings are refused.
pub const SPOOL_MAX_BYTES: u64 = 64 << 20;

/// First wait before the spool retries a database after a transient
/// failure; doubled after each failure up to [`RETRY_MAX`].
pub const RETRY_MIN: Duration = Duration::from_secs(1);

/// Longest wait between two delivery attempts, and the wait after a
/// permanent failure (bad credentials, missing database, not a write
/// endpoint), which only someone's change can heal.
pub const RETRY_MAX: Duration = Duration::from_secs(60);
