//! The sink's typed errors.

use std::path::PathBuf;

/// Why a record cannot be stored at all (it would be rejected by any sink).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordProblem {
    /// The meter name is empty.
    #[error("empty meter name")]
    EmptyMeter,
    /// A tag (meter name or unit) contains a control character such as a
    /// newline, which line protocol cannot carry in a tag.
    #[error("{tag} {value:?} contains a control character")]
    ControlCharacter {
        /// `meter` or `unit`.
        tag: &'static str,
        /// The offending text.
        value: String,
    },
    /// The unit is `Some("")`; use `None` for "no unit".
    #[error("empty unit (use no unit instead)")]
    EmptyUnit,
    /// A numeric field is NaN or infinite.
    #[error("field {field} is not a finite number")]
    NotFinite {
        /// The field's name in the schema (`value`, `raw`, `digit_3`, ...).
        field: String,
    },
}

/// Errors of the sinks and the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A record is malformed; nothing of the batch was written.
    #[error("invalid reading of meter {meter:?}: {problem}")]
    InvalidRecord {
        /// The record's meter name.
        meter: String,
        /// What is wrong with it.
        problem: RecordProblem,
    },
    /// The sink's configuration is invalid.
    #[error("invalid sink configuration: {field}: {problem}")]
    Config {
        /// The setting (`url`, `database`, ...).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The server could not be reached (connection refused, timeout, reset).
    /// Transient: a spool keeps the data and retries.
    #[error("InfluxDB at {url} unreachable")]
    Unreachable {
        /// The server's base URL.
        url: String,
        /// The transport error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server answered 5xx. Transient: a spool keeps the data and retries.
    #[error("InfluxDB at {url} failed with HTTP {status}: {message}")]
    ServerError {
        /// The server's base URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// HTTP 401/403: wrong user/password (1.x) or token (2.x).
    #[error("InfluxDB at {url} refused the credentials (HTTP {status}): {message}; check the user and password or token")]
    Unauthorized {
        /// The server's base URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// HTTP 404: the database (1.x) or bucket/org (2.x) does not exist.
    #[error("InfluxDB at {url} has no database/bucket {target:?} (HTTP 404): {message}; create it first")]
    DatabaseNotFound {
        /// The server's base URL.
        url: String,
        /// The database (1.x) or `org/bucket` (2.x) written to.
        target: String,
        /// The server's error message.
        message: String,
    },
    /// HTTP 400: the server refused the line protocol (parse error, field
    /// type conflict with existing data).
    #[error("InfluxDB at {url} refused the data (HTTP 400): {message}")]
    BadLine {
        /// The server's base URL.
        url: String,
        /// The server's error message (names the offending line or field).
        message: String,
    },
    /// Another 4xx answer.
    #[error("InfluxDB at {url} refused the write with HTTP {status}: {message}")]
    Rejected {
        /// The server's base URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`cannot append to`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spool is full; the new records were not accepted (the spooled
    /// ones are kept).
    #[error("spool {path} is full ({pending_bytes} of {limit_bytes} bytes pending); the database has been unreachable too long")]
    SpoolFull {
        /// The spool directory.
        path: PathBuf,
        /// Bytes waiting for the database.
        pending_bytes: u64,
        /// The configured limit.
        limit_bytes: u64,
    },
    /// The spool holds a damaged record that is not the last one (a torn
    /// last record is dropped silently; damage before it is not).
    #[error("spool file {path} is damaged at byte {offset}: {problem}")]
    SpoolCorrupt {
        /// The spool file.
        path: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// Another process uses the spool directory (two writers would corrupt it).
    #[error("spool {path} is in use by another process")]
    SpoolBusy {
        /// The spool directory.
        path: PathBuf,
    },
    /// The MQTT broker could not be reached, or the connection dropped
    /// before it acknowledged the readings. Transient: a spool keeps the
    /// data and retries.
    #[error("MQTT broker at {url}: {what}")]
    MqttUnreachable {
        /// The broker's URL.
        url: String,
        /// What went wrong (`unreachable`, `connection lost before ...`).
        what: String,
        /// The connection error, when there is one.
        #[source]
        source: Option<std::sync::Arc<rumqttc::ConnectionError>>,
    },
    /// The MQTT broker refused the connection (credentials, client id);
    /// retrying cannot help until the configuration or the broker changes.
    /// A spool keeps the data.
    #[error("MQTT broker at {url} refused the connection: {reason}")]
    MqttRefused {
        /// The broker's URL.
        url: String,
        /// Why, with what to check (never a secret).
        reason: &'static str,
    },
    /// A meter cannot be offered to Home Assistant as configured (its unit
    /// fits no device class, or several).
    #[error("meter {meter:?}: {problem}")]
    HomeAssistant {
        /// The meter.
        meter: String,
        /// Its unit as configured.
        unit: Option<String>,
        /// What is wrong (names the unit).
        problem: String,
    },
    /// A 2xx or 3xx answer other than the one the API documents for a stored
    /// write (a captive portal's `200 text/html`, a proxy's redirect to a
    /// login page, the wrong service on that port). Nothing counts as
    /// delivered; a spool keeps the data.
    #[error("HTTP {status} {content_type} from {url}: not {endpoint}")]
    NotAcknowledged {
        /// The URL written to (without query).
        url: String,
        /// The HTTP status received.
        status: u16,
        /// Its content type (`-` when none was given).
        content_type: String,
        /// What was expected there, e.g. `an InfluxDB write endpoint`.
        endpoint: &'static str,
    },
    /// [`Sink::flush`](crate::Sink::flush) or [`Sink::close`](crate::Sink::close)
    /// ran out of time before the spool was delivered; the readings stay in
    /// the spool and the next start delivers them.
    #[error("{pending} readings not delivered in time; kept in spool {path}")]
    NotDelivered {
        /// The spool directory.
        path: PathBuf,
        /// Readings still waiting.
        pending: usize,
    },
    /// The sink was closed; it takes no more readings.
    #[error("sink with spool {path} is closed")]
    Closed {
        /// The spool directory.
        path: PathBuf,
    },
    /// A configured sink could not be opened (names the sink, e.g.
    /// `csv-1 (out/readings.csv)`; the cause is the source).
    #[error("sink {sink}")]
    Opening {
        /// The sink's label.
        sink: String,
        /// Why it cannot be opened.
        #[source]
        source: Box<SinkError>,
    },
    /// A CSV file could not be written.
    #[error("cannot write CSV to {path}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV error.
        #[source]
        source: csv::Error,
    },
}

impl SinkError {
    /// Whether retrying later may succeed without anyone changing anything
    /// (server down or overloaded). A spool keeps the data either way.
    ///
    /// Permanent failures (a refusal, a host name that does not resolve, a
    /// redirect, a TLS failure, an answer that is not a write endpoint's)
    /// need someone to change something; a spool keeps the data and tries
    /// again only rarely ([`defaults::RETRY_MAX`](crate::defaults::RETRY_MAX)).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { source, .. } => transport_is_transient(source),
            Self::ServerError { .. } | Self::MqttUnreachable { .. } => true,
            Self::Opening { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Whether a transport failure may heal by itself: refused or reset
/// connections and timeouts do (the server restarts); a name that does not
/// exist, a bad URL, redirects and TLS failures do not.
pub(crate) fn transport_is_transient(e: &ureq::Error) -> bool {
    use ureq::Error as E;
    match e {
        E::Io(io) => !is_unknown_host(io),
        E::HostNotFound
        | E::BadUri(_)
        | E::RedirectFailed
        | E::TooManyRedirects
        | E::Tls(_)
        | E::InvalidProxyUrl
        | E::RequireHttpsOnly(_)
        | E::Http(_) => false,
        _ => true,
    }
}

/// A host name the resolver says does not exist, as std reports it (glibc's
/// "Name or service not known"). "Temporary failure in name resolution"
/// (no DNS server yet, at boot) stays transient.
fn is_unknown_host(e: &std::io::Error) -> bool {
    let text = e.to_string();
    text.starts_with("failed to lookup address information") && !text.contains("Temporary")
}
