//! Webhooks: one HTTP POST per notification, in one of five formats.
//!
//! - `json`: [`Notification`] as JSON: `{"event":"reading", ...}` with the
//!   field names of `meter predict --json` (meter, time, value, raw, digits,
//!   status, reason, unit, rate_per_hour) plus `previous`, or
//!   `{"event":"alert", "meter", "rule", "state", "repeat", "time",
//!   "message", "value", "threshold", "unit", "with_frame"}`.
//!   `token`: `Authorization: Bearer`.
//! - `home_assistant`: the same object with a `message` for readings too,
//!   POSTed to `http://ha:8123/api/webhook/<id>` (a webhook trigger; use
//!   `trigger.json.message`).
//! - `ntfy`: the message as the body of a POST to the topic URL, with
//!   `Title`, `Priority` and `Tags` headers; `token`: `Authorization: Bearer`.
//! - `gotify`: `POST <url>/message` with `X-Gotify-Key: <token>` and
//!   `{"title", "message", "priority"}`.
//! - `ai_on_the_edge`: AI-on-the-edge-device's webhook body, a JSON array of
//!   one object of strings: `timestamp` (local, `%Y-%m-%dT%H:%M:%S%z`),
//!   `timestampLong` (Unix seconds), `name`, `rawValue`, `value`,
//!   `preValue`, `rate` (per minute, as AI-on-the-edge's), `changeAbsolute`,
//!   `error` (`no error` or the reason); `token`: the `APIKEY` header.

use std::time::Duration;

use jiff::tz::TimeZone;
use serde_json::{json, Value};

use crate::config::{Secret, WebhookConfig, WebhookFormat};
use crate::event::{AlertState, Notification, ObservedReading, ReadingStatus};
use crate::http::{agent, finish, quote, safe_url, url_secrets};
use crate::outbox::Notifier;
use crate::AlertError;

/// A webhook notifier.
#[derive(Debug)]
pub struct WebhookNotifier {
    name: String,
    url: Secret,
    format: WebhookFormat,
    token: Option<Secret>,
    tz: TimeZone,
    agent: ureq::Agent,
    target: String,
}

impl WebhookNotifier {
    /// A notifier for the `[[notify]]` table; local times in `tz`.
    pub fn new(cfg: &WebhookConfig, tz: TimeZone) -> Result<Self, AlertError> {
        let name = cfg.name();
        let url = cfg.url.expose();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(AlertError::config(
                format!("notify {name}.url"),
                "not an http(s) URL",
            ));
        }
        if cfg.format == WebhookFormat::Gotify && cfg.token.is_none() {
            return Err(AlertError::config(
                format!("notify {name}.token"),
                "gotify needs the application's token",
            ));
        }
        Ok(Self {
            target: format!("webhook {name} ({})", safe_url(url)),
            name,
            url: cfg.url.clone(),
            format: cfg.format,
            token: cfg.token.clone(),
            tz,
            agent: agent(cfg.timeout.unwrap_or(Duration::from_secs(30))),
        })
    }

    /// The request: URL, headers and body.
    fn request(&self, n: &Notification) -> (String, Vec<(&'static str, String)>, Vec<u8>) {
        let url = self.url.expose().to_owned();
        let bearer = || {
            self.token
                .as_ref()
                .map(|t| ("Authorization", format!("Bearer {}", t.expose())))
        };
        let json_body = |v: &Value| v.to_string().into_bytes();
        let ct = ("Content-Type", "application/json".to_owned());
        match self.format {
            WebhookFormat::Json => {
                let body = serde_json::to_value(n).expect("plain data serialises");
                (
                    url,
                    [Some(ct)].into_iter().chain([bearer()]).flatten().collect(),
                    json_body(&body),
                )
            }
            WebhookFormat::HomeAssistant => {
                let mut body = serde_json::to_value(n).expect("plain data serialises");
                if let Notification::Reading { reading, .. } = n {
                    body["message"] = json!(reading_text(reading));
                }
                (
                    url,
                    [Some(ct)].into_iter().chain([bearer()]).flatten().collect(),
                    json_body(&body),
                )
            }
            WebhookFormat::Ntfy => {
                let (title, priority, tags, text) = match n {
                    Notification::Alert(a) => {
                        let (p, t) = match a.state {
                            AlertState::Firing => ("high", "rotating_light"),
                            AlertState::Resolved => ("default", "white_check_mark"),
                        };
                        (a.title(), p, t, a.message.clone())
                    }
                    Notification::Reading { reading, .. } => (
                        format!("{}: {}", reading.meter, reading.status.as_str()),
                        "low",
                        "bar_chart",
                        reading_text(reading),
                    ),
                };
                let mut headers = vec![
                    ("Content-Type", "text/plain; charset=utf-8".to_owned()),
                    // Header values must be ASCII.
                    ("Title", title.chars().filter(char::is_ascii).collect()),
                    ("Priority", priority.to_owned()),
                    ("Tags", tags.to_owned()),
                ];
                headers.extend(bearer());
                (url, headers, text.into_bytes())
            }
            WebhookFormat::Gotify => {
                let (title, message, priority) = match n {
                    Notification::Alert(a) => {
                        let p = if a.state == AlertState::Firing { 8 } else { 4 };
                        (a.title(), a.message.clone(), p)
                    }
                    Notification::Reading { reading, .. } => {
                        (reading.meter.clone(), reading_text(reading), 2)
                    }
                };
                let body = json!({ "title": title, "message": message, "priority": priority });
                let token = self.token.as_ref().map_or("", Secret::expose).to_owned();
                let url = format!("{}/message", url.trim_end_matches('/'));
                (url, vec![ct, ("X-Gotify-Key", token)], json_body(&body))
            }
            WebhookFormat::AiOnTheEdge => {
                let body = json!([self.ai_on_the_edge(n)]);
                let mut headers = vec![ct];
                if let Some(t) = &self.token {
                    headers.push(("APIKEY", t.expose().to_owned()));
                }
                (url, headers, json_body(&body))
            }
        }
    }

    /// One object of AI-on-the-edge-device's webhook array (all strings).
    fn ai_on_the_edge(&self, n: &Notification) -> Value {
        let (meter, time, raw, value, previous, rate, error) = match n {
            Notification::Reading {
                reading: r,
                previous,
            } => {
                let value = r.value.or(*previous);
                let error = match (r.status, &r.reason) {
                    (ReadingStatus::Stored, _) => "no error".to_owned(),
                    (s, Some(reason)) => format!("{}: {reason}", s.as_str()),
                    (s, None) => s.as_str().to_owned(),
                };
                (
                    &r.meter,
                    r.time,
                    r.raw,
                    value,
                    *previous,
                    r.rate_per_hour,
                    error,
                )
            }
            Notification::Alert(a) => (&a.meter, a.time, None, None, None, None, a.message.clone()),
        };
        let s = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        let stamp = jiff::Timestamp::from_second(time.unix_timestamp())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let change = match (value, previous) {
            (Some(v), Some(p)) => Some(v - p),
            _ => None,
        };
        json!({
            "timestamp": stamp.to_zoned_datetime(self.tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%z").to_string(),
            "timestampLong": time.unix_timestamp().to_string(),
            "name": meter,
            "rawValue": s(raw),
            "value": s(value),
            "preValue": s(previous),
            "rate": s(rate.map(|r| r / 60.0)),
            "changeAbsolute": s(change),
            "error": error,
        })
    }
}

/// `water: 123.4 m3 (stored)`, `water: rejected (value decreased by 3)`.
fn reading_text(r: &ObservedReading) -> String {
    let unit = r
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    match (r.status, r.value) {
        (ReadingStatus::Stored, Some(v)) => format!("{}: {v}{unit} (stored)", r.meter),
        (s, _) => format!(
            "{}: {} ({})",
            r.meter,
            s.as_str(),
            r.reason.as_deref().unwrap_or("no reason given")
        ),
    }
}

impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver(&mut self, n: &Notification, _photo: Option<&[u8]>) -> Result<(), AlertError> {
        let (url, headers, body) = self.request(n);
        let mut req = self.agent.post(&url);
        for (k, v) in &headers {
            req = req.header(*k, v.as_str());
        }
        let mut secrets = url_secrets(self.url.expose());
        secrets.extend(self.token.as_ref().map(|t| t.expose().to_owned()));
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let (answer, retry_after) = finish(req.send(&body[..]), &self.target, &secrets)?;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        Err(AlertError::Status {
            target: self.target.clone(),
            status: answer.status,
            description: quote(&answer.body, &secrets),
            retry_after,
        })
    }
}
