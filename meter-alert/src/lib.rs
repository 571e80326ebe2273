//! Alerts for meter-reader: a pure rule engine ([`Engine`]), an on-disk
//! outbox per notifier with retry and backoff ([`Outbox`], [`Delivery`]),
//! Telegram ([`telegram`]) and webhooks ([`webhook`]), and the glue that
//! runs them beside the reader ([`Alerting`]).
#![deny(missing_docs)]

mod alerting;
pub mod bot;
pub mod config;
mod engine;
mod error;
mod event;
mod http;
pub mod outbox;
pub mod store;
pub mod telegram;
pub mod webhook;

pub use alerting::{Alerting, Options};
pub use bot::{BotBackend, BotHandle, Commands, MeterHealth, Reply};
pub use config::{
    AlertRule, AlertsConfig, NotifyConfig, RulesConfig, Secret, TelegramConfig, WebhookConfig,
    WebhookFormat,
};
pub use engine::{consumption, Engine, EngineState, MeterState, Period, RuleState};
pub use error::{chain, AlertError, Redacted};
pub use event::{
    Alert, AlertState, Digit, Notification, Observation, ObservedReading, ReadingStatus,
};
pub use outbox::{Backoff, Delivery, Notifier, Outbox};

/// Log targets of the HTTP client that print every request's URL at debug
/// and trace level, the bot token included (Telegram puts it in the path).
/// The service's logger must cap them at `info` whatever `RUST_LOG` asks,
/// e.g. `env_logger::Builder::from_default_env().filter_module("ureq",
/// log::LevelFilter::Info)`.
pub const URL_LOGGING_TARGETS: &[&str] = &["ureq", "ureq_proto"];
