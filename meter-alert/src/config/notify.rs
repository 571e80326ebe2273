//! `[[notify]]`: where alerts go (a Telegram bot, webhooks), and the
//! [`Secret`] their tokens are kept in.

use std::time::Duration;

use serde::Deserialize;

use crate::AlertError;

/// A secret (bot token, webhook key): never printed, not even by `{:?}`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One `[[notify]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NotifyConfig {
    /// A Telegram bot: alerts, and commands if enabled.
    Telegram(TelegramConfig),
    /// An HTTP POST per alert (and per reading if asked).
    Webhook(WebhookConfig),
}

/// The Telegram Bot API's address.
pub const TELEGRAM_API: &str = "https://api.telegram.org";
/// Where the bot token is read from when `bot_token` is absent.
pub const TELEGRAM_TOKEN_ENV: &str = "METER_TELEGRAM_BOT_TOKEN";

/// `[[notify]] type = "telegram"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Name in logs and of the outbox folder (default `telegram`).
    pub name: Option<String>,
    /// The Bot API's address (a local fake in tests).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The token from @BotFather; else the variable `bot_token_env`.
    pub bot_token: Option<Secret>,
    /// The variable holding the token (default `METER_TELEGRAM_BOT_TOKEN`).
    pub bot_token_env: Option<String>,
    /// The chat alerts go to.
    pub chat_id: i64,
    /// Chats whose commands are answered (default: `chat_id` only).
    pub allowed_chats: Option<Vec<i64>>,
    /// Whether to answer commands (long-polls `getUpdates`; default true).
    #[serde(default = "yes")]
    pub commands: bool,
    /// Whether alerts about refused readings carry the frame (default true).
    #[serde(default = "yes")]
    pub photos: bool,
    /// Timeout of one request (default 30 s).
    #[serde(default, deserialize_with = "super::opt_duration")]
    pub timeout: Option<Duration>,
    /// How long one `getUpdates` waits for a message (default 30 s).
    #[serde(default, deserialize_with = "super::opt_duration")]
    pub poll_timeout: Option<Duration>,
}

fn default_api_url() -> String {
    TELEGRAM_API.to_owned()
}

fn yes() -> bool {
    true
}

impl TelegramConfig {
    /// The token: `bot_token`, else the environment variable.
    pub fn token(&self) -> Result<Secret, AlertError> {
        if let Some(t) = &self.bot_token {
            return Ok(t.clone());
        }
        let var = self.bot_token_env.as_deref().unwrap_or(TELEGRAM_TOKEN_ENV);
        match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Ok(Secret(t.trim().to_owned())),
            _ => Err(AlertError::config(
                format!("notify {}.bot_token", self.name()),
                format!("no bot_token, and the environment variable {var} is not set"),
            )),
        }
    }

    /// The notifier's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("telegram")
    }

    /// Chats whose commands are answered.
    pub fn allowed_chats(&self) -> Vec<i64> {
        self.allowed_chats
            .clone()
            .unwrap_or_else(|| vec![self.chat_id])
    }
}

/// `[[notify]] type = "webhook"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Name in logs and of the outbox folder (default `webhook-<format>`).
    pub name: Option<String>,
    /// Where to POST. Treated as a secret (a Home Assistant webhook id or a
    /// ntfy topic is one): logs show its scheme and host only.
    pub url: Secret,
    /// The body's format.
    pub format: WebhookFormat,
    /// gotify: the application token; ntfy: an access token (Bearer);
    /// ai_on_the_edge: the `APIKEY` header; json/home_assistant: Bearer.
    pub token: Option<Secret>,
    /// Send alerts (default true).
    #[serde(default = "yes")]
    pub alerts: bool,
    /// Send every reading too (default: only for `ai_on_the_edge`).
    pub readings: Option<bool>,
    /// Timeout of one request (default 30 s).
    #[serde(default, deserialize_with = "super::opt_duration")]
    pub timeout: Option<Duration>,
}

/// The body a webhook sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Ours: `meter predict --json`'s fields, plus `alert` for alerts.
    Json,
    /// ntfy: the message as body, `Title`/`Priority`/`Tags` headers.
    Ntfy,
    /// gotify: `POST {url}/message` with `title`, `message`, `priority`.
    Gotify,
    /// Home Assistant's webhook trigger: one flat JSON object.
    HomeAssistant,
    /// AI-on-the-edge-device's webhook: a JSON array of its fields.
    AiOnTheEdge,
}

impl WebhookConfig {
    /// The notifier's name.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let f = match self.format {
                WebhookFormat::Json => "json",
                WebhookFormat::Ntfy => "ntfy",
                WebhookFormat::Gotify => "gotify",
                WebhookFormat::HomeAssistant => "home-assistant",
                WebhookFormat::AiOnTheEdge => "ai-on-the-edge",
            };
            format!("webhook-{f}")
        })
    }

    /// Whether every reading is sent.
    pub fn sends_readings(&self) -> bool {
        self.readings
            .unwrap_or(self.format == WebhookFormat::AiOnTheEdge)
    }
}
