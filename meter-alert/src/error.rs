//! The crate's one error type. Every variant names what it is about (file,
//! notifier, HTTP target); HTTP targets and causes are redacted before they
//! get here, so no error can carry a bot token or webhook secret.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong in meter-alert.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A configuration value is invalid.
    #[error("config {key}: {problem}")]
    Config {
        /// The key, e.g. `alerts.time_zone` or `notify[1].chat_id`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A file or folder could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `read`, `write`, `remove`, ...
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A state or outbox file is not what this version wrote.
    #[error("{} is not a valid {what} file (fix or delete it)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// `alert state`, `outbox entry`, ...
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The server answered with an error status.
    #[error("{target}: HTTP {status}: {description}")]
    Status {
        /// Who was asked, redacted (e.g. `telegram sendMessage`, `webhook ha (http://ha:8123/…)`).
        target: String,
        /// The HTTP status.
        status: u16,
        /// The server's explanation (Telegram's `description`, or the
        /// start of the body), redacted.
        description: String,
        /// How long the server asked us to wait (Telegram's 429
        /// `parameters.retry_after`, or a `Retry-After` header).
        retry_after: Option<Duration>,
    },
    /// No usable answer: connection refused, timeout, unreadable body.
    #[error("{target}: no answer")]
    Unreachable {
        /// Who was asked, redacted.
        target: String,
        /// The cause, redacted.
        #[source]
        source: Redacted,
    },
}

impl AlertError {
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

    pub(crate) fn config(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The HTTP status, when the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An error message with every secret replaced by `***`; the cause of
/// [`AlertError::Unreachable`] (the HTTP client's own errors can quote the
/// URL, and a Telegram URL holds the bot token).
#[derive(Debug)]
pub struct Redacted(pub(crate) String);

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Redacted {}

/// `text` with each non-empty secret replaced by `***`.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, "***");
    }
    out
}

/// An error and its causes on one line (`a: b: c`), as logged.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
