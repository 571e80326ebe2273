//! The Telegram Bot API, over ureq: `sendMessage`, `sendPhoto` (multipart)
//! and long-polled `getUpdates`. The token lives only in the request URL;
//! every error text is redacted and names the method, not the URL.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{Secret, TelegramConfig};
use crate::error::redact;
use crate::event::Notification;
use crate::http::{agent, finish, quote};
use crate::outbox::Notifier;
use crate::AlertError;

/// Telegram's longest message.
const MESSAGE_MAX: usize = 4096;
/// Telegram's longest photo caption.
const CAPTION_MAX: usize = 1024;

/// A Bot API client.
#[derive(Debug, Clone)]
pub struct TelegramApi {
    name: String,
    base: String,
    token: Secret,
    agent: ureq::Agent,
    poll_agent: ureq::Agent,
    poll_timeout: Duration,
}

/// One update of `getUpdates`.
#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    /// Its number; the next poll asks for those after it.
    pub update_id: i64,
    /// A message, if the update is one.
    pub message: Option<Message>,
}

/// A message sent to the bot.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// The chat it came from.
    pub chat: Chat,
    /// Its text.
    pub text: Option<String>,
}

/// A chat.
#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    /// The chat's id.
    pub id: i64,
    /// `@name` of a private chat, if set.
    pub username: Option<String>,
}

impl TelegramApi {
    /// A client for the `[[notify]]` table (token from it or the
    /// environment).
    pub fn new(cfg: &TelegramConfig) -> Result<Self, AlertError> {
        let timeout = cfg.timeout.unwrap_or(Duration::from_secs(30));
        let poll_timeout = cfg.poll_timeout.unwrap_or(Duration::from_secs(30));
        if !cfg.api_url.starts_with("http://") && !cfg.api_url.starts_with("https://") {
            return Err(AlertError::config(
                format!("notify {}.api_url", cfg.name()),
                format!("{:?} is not an http(s) URL", cfg.api_url),
            ));
        }
        Ok(Self {
            name: cfg.name().to_owned(),
            base: cfg.api_url.trim_end_matches('/').to_owned(),
            token: cfg.token()?,
            agent: agent(timeout),
            // A long poll is allowed its wait plus the usual timeout.
            poll_agent: agent(poll_timeout + timeout),
            poll_timeout,
        })
    }

    /// The notifier's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, method: &str) -> String {
        let target = format!(
            "telegram {} {method} ({}/bot***/{method})",
            self.name, self.base
        );
        redact(&target, &[self.token.expose()])
    }

    fn call(
        &self,
        method: &str,
        content_type: &str,
        body: &[u8],
        poll: bool,
    ) -> Result<Value, AlertError> {
        let url = format!("{}/bot{}/{method}", self.base, self.token.expose());
        let agent = if poll { &self.poll_agent } else { &self.agent };
        let target = self.target(method);
        let secrets = [self.token.expose()];
        let result = agent
            .post(&url)
            .header("Content-Type", content_type)
            .send(body);
        let (answer, header_wait) = finish(result, &target, &secrets)?;
        let parsed: Option<Value> = serde_json::from_str(&answer.body).ok();
        let ok = parsed.as_ref().and_then(|v| v["ok"].as_bool()) == Some(true);
        if (200..300).contains(&answer.status) && ok {
            return Ok(parsed.map(|mut v| v["result"].take()).unwrap_or_default());
        }
        let description = parsed
            .as_ref()
            .and_then(|v| v["description"].as_str())
            .map(|d| quote(d, &secrets))
            .unwrap_or_else(|| quote(&answer.body, &secrets));
        let retry_after = parsed
            .as_ref()
            .and_then(|v| v["parameters"]["retry_after"].as_u64())
            .map(Duration::from_secs)
            .or(header_wait);
        Err(AlertError::Status {
            target,
            status: if (200..300).contains(&answer.status) {
                502
            } else {
                answer.status
            },
            description,
            retry_after,
        })
    }

    /// `sendMessage` (plain text, cut to Telegram's limit).
    pub fn send_message(&self, chat_id: i64, text: &str) -> Result<(), AlertError> {
        let body = json!({ "chat_id": chat_id, "text": cut(text, MESSAGE_MAX) });
        self.call(
            "sendMessage",
            "application/json",
            body.to_string().as_bytes(),
            false,
        )
        .map(drop)
    }

    /// `sendPhoto` with a JPEG and a caption.
    pub fn send_photo(&self, chat_id: i64, caption: &str, jpeg: &[u8]) -> Result<(), AlertError> {
        let (content_type, body) = multipart(&[
            Part::Text("chat_id", &chat_id.to_string()),
            Part::Text("caption", cut(caption, CAPTION_MAX)),
            Part::File("photo", "frame.jpg", "image/jpeg", jpeg),
        ]);
        self.call("sendPhoto", &content_type, &body, false)
            .map(drop)
    }

    /// `getUpdates` after `offset`, waiting up to the poll timeout.
    pub fn get_updates(&self, offset: i64) -> Result<Vec<Update>, AlertError> {
        let body = json!({
            "offset": offset,
            "timeout": self.poll_timeout.as_secs(),
            "allowed_updates": ["message"],
        });
        let result = self.call(
            "getUpdates",
            "application/json",
            body.to_string().as_bytes(),
            true,
        )?;
        serde_json::from_value(result).map_err(|e| AlertError::Status {
            target: self.target("getUpdates"),
            status: 502,
            description: format!("unexpected answer: {e}"),
            retry_after: None,
        })
    }
}

/// The first `max` characters of `text` (Telegram counts characters).
fn cut(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .map_or(text, |(i, _)| &text[..i])
}

enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, &'a str, &'a [u8]),
}

/// A `multipart/form-data` body and its content type.
fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    // A boundary that occurs in no part.
    let mut n = 0u32;
    let boundary = loop {
        let b = format!("meter-alert-boundary-{n:08x}");
        let inside = parts.iter().any(|p| match p {
            Part::Text(_, v) => v.contains(&b),
            Part::File(.., data) => data.windows(b.len()).any(|w| w == b.as_bytes()),
        });
        if !inside {
            break b;
        }
        n += 1;
    };
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File(name, file, content_type, data) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Alerts to one chat.
#[derive(Debug)]
pub struct TelegramNotifier {
    api: TelegramApi,
    chat_id: i64,
    photos: bool,
}

impl TelegramNotifier {
    /// A notifier for the `[[notify]]` table.
    pub fn new(cfg: &TelegramConfig) -> Result<Self, AlertError> {
        Ok(Self {
            api: TelegramApi::new(cfg)?,
            chat_id: cfg.chat_id,
            photos: cfg.photos,
        })
    }
}

impl Notifier for TelegramNotifier {
    fn name(&self) -> &str {
        self.api.name()
    }

    fn deliver(
        &mut self,
        notification: &Notification,
        photo: Option<&[u8]>,
    ) -> Result<(), AlertError> {
        let Notification::Alert(alert) = notification else {
            return Ok(()); // readings are not sent to chats
        };
        let text = alert.text();
        match photo.filter(|_| self.photos) {
            Some(jpeg) => match self.api.send_photo(self.chat_id, &text, jpeg) {
                // Telegram refuses some pictures (size, format): the text
                // still matters.
                Err(e) if e.status() == Some(400) => {
                    log::warn!("{}; sending the alert without its frame", crate::chain(&e));
                    self.api.send_message(self.chat_id, &text)
                }
                other => other,
            },
            None => self.api.send_message(self.chat_id, &text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_boundary_avoids_the_content() {
        let data = b"xx--meter-alert-boundary-00000000yy";
        let (ct, body) = multipart(&[
            Part::Text("a", "1"),
            Part::File("f", "x.jpg", "image/jpeg", data),
        ]);
        assert!(ct.ends_with("meter-alert-boundary-00000001"), "{ct}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("--meter-alert-boundary-00000001\r\n"));
        assert!(text.ends_with("--meter-alert-boundary-00000001--\r\n"));
    }

    #[test]
    fn cut_counts_characters() {
        assert_eq!(cut("ääää", 2), "ää");
        assert_eq!(cut("ab", 5), "ab");
    }
}
