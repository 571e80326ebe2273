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
    AlertsConfig, NotifyConfig, Rule, RulesConfig, Secret, TelegramConfig, WebhookConfig,
    WebhookFormat,
};
pub use engine::{consumption, Engine, EngineState, MeterState, Period, RuleState};
pub use error::{chain, AlertError, Redacted};
pub use event::{Alert, AlertState, Digit, Notification, Observation, ReadingEvent, ReadingStatus};
pub use outbox::{Backoff, Delivery, Notifier, Outbox};
