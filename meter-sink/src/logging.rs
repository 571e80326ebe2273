//! Keeping secrets out of logs at every level.
//!
//! The sinks never log a credential themselves, and send them only in
//! headers. The HTTP stack below them does print more at its most verbose
//! levels: at `trace`, ureq prints whole request URLs and ureq-proto dumps
//! the request bytes, `Authorization` header included. Those crates are
//! therefore capped at `debug` (where ureq prints URLs without their path
//! and query and only harmless headers), whatever `RUST_LOG` asks for.
//!
//! A binary applies the cap by wrapping its logger:
//!
//! ```
//! # struct MyLogger;
//! # impl log::Log for MyLogger {
//! #     fn enabled(&self, _: &log::Metadata) -> bool { true }
//! #     fn log(&self, _: &log::Record) {}
//! #     fn flush(&self) {}
//! # }
//! let logger = meter_sink::CapHttpClientLogs(MyLogger); // e.g. env_logger's Logger
//! // log::set_boxed_logger(Box::new(logger))?; log::set_max_level(...);
//! assert!(!log::Log::enabled(
//!     &logger,
//!     &log::Metadata::builder().target("ureq_proto::util").level(log::Level::Trace).build()
//! ));
//! ```

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Log targets of the HTTP stack (matched as `target` or `target::…`) and
/// the most verbose level at which their lines carry no secret.
pub const HTTP_CLIENT_LOG_CAPS: &[(&str, LevelFilter)] = &[
    ("ureq", LevelFilter::Debug),
    ("ureq_proto", LevelFilter::Debug),
    ("rustls", LevelFilter::Debug),
];

/// Whether a line of `target` at `level` may be logged under
/// [`HTTP_CLIENT_LOG_CAPS`] (always, for targets outside the HTTP stack).
pub fn http_client_log_allowed(target: &str, level: Level) -> bool {
    HTTP_CLIENT_LOG_CAPS.iter().all(|(crate_name, cap)| {
        let ours = target
            .strip_prefix(crate_name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        !ours || level <= *cap
    })
}

/// A logger that passes everything to the wrapped one except the HTTP
/// stack's lines above [`HTTP_CLIENT_LOG_CAPS`].
#[derive(Debug)]
pub struct CapHttpClientLogs<L>(pub L);

impl<L: Log> Log for CapHttpClientLogs<L> {
    fn enabled(&self, metadata: &Metadata) -> bool {
        http_client_log_allowed(metadata.target(), metadata.level()) && self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if http_client_log_allowed(record.target(), record.level()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_only_the_http_stack() {
        assert!(!http_client_log_allowed("ureq::run", Level::Trace));
        assert!(!http_client_log_allowed("ureq_proto::util", Level::Trace));
        assert!(!http_client_log_allowed("ureq", Level::Trace));
        assert!(http_client_log_allowed("ureq::run", Level::Debug));
        assert!(http_client_log_allowed(
            "meter_sink::spooling",
            Level::Trace
        ));
        assert!(http_client_log_allowed("ureqx", Level::Trace));
    }
}
