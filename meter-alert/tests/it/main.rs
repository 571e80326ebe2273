//! meter-alert integration tests: the bot against a local fake Telegram
//! API, webhooks and the outbox against a local receiver, and the Grafana
//! alert rules against a real influxd.

mod fake_telegram;
mod grafana;
mod outbox;
mod recorder;
mod telegram;
mod webhook;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use meter_alert::{BotBackend, MeterHealth, Observation, ObservedReading, ReadingStatus};
use time::OffsetDateTime;

/// The bot token every test uses: no output may ever contain it.
pub const TOKEN: &str = "7654321:SECRET-bot-token-never-printed";
/// A webhook path secret (a Home Assistant webhook id, a ntfy topic).
pub const HOOK_SECRET: &str = "SECRET-hook-id-never-printed";
/// A webhook key (gotify token, APIKEY).
pub const HOOK_KEY: &str = "SECRET-hook-key-never-printed";

/// Every log line of this test process.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    /// Everything, but the HTTP client's URL lines capped at info as the
    /// service must cap them ([`meter_alert::URL_LOGGING_TARGETS`]).
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        let noisy = meter_alert::URL_LOGGING_TARGETS
            .iter()
            .any(|t| m.target().starts_with(t));
        !noisy || m.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        eprintln!("{line}");
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    fn flush(&self) {}
}

/// Installs the capturing logger (once).
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Log lines so far.
pub fn logs() -> Vec<String> {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Waits until a log line contains every one of `parts`.
pub fn wait_log(parts: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(l) = logs()
            .into_iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return l;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with {parts:?}; lines: {:#?}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 2026-03-02 00:00 UTC.
pub const T0: i64 = 1_772_409_600;

pub fn time(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap()
}

/// A reading of meter `water`.
pub fn reading(t: i64, status: ReadingStatus, value: Option<f64>) -> ObservedReading {
    ObservedReading {
        meter: "water".into(),
        time: time(t),
        value,
        raw: Some(value.unwrap_or(99.9)),
        digits: vec![meter_alert::Digit {
            value: 3.7,
            confidence: 0.51,
        }],
        status,
        reason: (status != ReadingStatus::Stored).then(|| "value decreased by 3".to_owned()),
        unit: Some("m3".into()),
        rate_per_hour: value.map(|_| 0.1),
    }
}

pub fn obs(r: ObservedReading) -> Observation {
    Observation::Reading(r)
}

/// A real JPEG (a grey frame).
pub fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// The service side as the bot sees it.
#[derive(Default)]
pub struct Backend {
    pub set_calls: Mutex<Vec<(String, String)>>,
}

impl BotBackend for Backend {
    fn meters(&self) -> Vec<String> {
        vec!["water".into()]
    }
    fn last_reading(&self, _meter: &str) -> Option<ObservedReading> {
        Some(reading(T0, ReadingStatus::Stored, Some(123.456)))
    }
    fn last_frame(&self, _meter: &str) -> Option<Vec<u8>> {
        Some(jpeg())
    }
    fn health(&self) -> Vec<MeterHealth> {
        vec![MeterHealth {
            meter: "water".into(),
            last_frame: Some(time(T0)),
            last_stored: Some(time(T0)),
            not_stored_in_a_row: 0,
            last_error: None,
        }]
    }
    fn set_value(&self, meter: &str, value: &str) -> Result<String, String> {
        self.set_calls
            .lock()
            .unwrap()
            .push((meter.to_owned(), value.to_owned()));
        Ok(format!(
            "{meter}: stored value set to {value} (was 123.456)"
        ))
    }
}
