//! The Telegram bot's commands, answered by long-polling `getUpdates`:
//! `/reading [meter]`, `/photo [meter]`, `/status`, `/set <meter> <value>`,
//! `/help`. Only chats in `allowed_chats` get answers; a command from any
//! other chat is logged and left unanswered. The update offset is saved
//! before a command runs, so a restart never runs a command twice (a crash
//! in between loses that command's answer instead).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{AlertRule, TelegramConfig};
use crate::error::chain;
use crate::event::{ObservedReading, ReadingStatus};
use crate::outbox::Backoff;
use crate::store::{load_json, save_json};
use crate::telegram::{TelegramApi, Update};
use crate::AlertError;

/// What the bot needs from the reader (implemented by the service).
pub trait BotBackend: Send + Sync {
    /// The configured meters, in config order.
    fn meters(&self) -> Vec<String>;
    /// The last reading of `meter` (stored or not).
    fn last_reading(&self, meter: &str) -> Option<ObservedReading>;
    /// The last frame of `meter` with its digit boxes drawn, as JPEG.
    fn last_frame(&self, meter: &str) -> Option<Vec<u8>>;
    /// Each meter's health.
    fn health(&self) -> Vec<MeterHealth>;
    /// What `meter set-value` does; `Ok` carries the confirmation
    /// (`water: stored value set to 123.4 (was 120.1)`), `Err` the reason
    /// for people.
    fn set_value(&self, meter: &str, value: &str) -> Result<String, String>;
}

/// One meter's health, for `/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterHealth {
    /// The meter.
    pub meter: String,
    /// The last frame read.
    pub last_frame: Option<OffsetDateTime>,
    /// The last stored reading.
    pub last_stored: Option<OffsetDateTime>,
    /// Unsure or rejected readings since the last stored one.
    pub not_stored_in_a_row: u32,
    /// The last capture error, if the last capture failed.
    pub last_error: Option<String>,
}

/// An answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A text message.
    Text(String),
    /// A photo with a caption.
    Photo(String, Vec<u8>),
}

/// The rules firing now, shared by the alerting side with the bot.
pub type Firing = Arc<Mutex<Vec<(String, AlertRule)>>>;

/// Answers commands; the pure part of the bot.
pub struct Commands {
    backend: Arc<dyn BotBackend>,
    tz: TimeZone,
    firing: Firing,
}

const HELP: &str = "Commands:\n\
/reading [meter] – the last reading\n\
/photo [meter] – the last frame with its digit boxes\n\
/status – each meter's health and the alerts firing\n\
/set <meter> <value> – correct a meter's stored value (what `meter set-value` does)\n\
/help – this text";

impl Commands {
    /// Commands over `backend`, times shown in `tz`.
    pub fn new(backend: Arc<dyn BotBackend>, tz: TimeZone, firing: Firing) -> Self {
        Self {
            backend,
            tz,
            firing,
        }
    }

    /// The answer to `text`; `None` for text that is not a command.
    pub fn answer(&self, text: &str) -> Option<Reply> {
        let mut words = text.split_whitespace();
        let command = words.next()?.strip_prefix('/')?;
        // In groups commands come as `/reading@MyBot`.
        let command = command
            .split('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let args: Vec<&str> = words.collect();
        Some(match command.as_str() {
            "start" | "help" => Reply::Text(HELP.to_owned()),
            "reading" => self.reading(args.first().copied()),
            "photo" => self.photo(args.first().copied()),
            "status" => Reply::Text(self.status()),
            "set" => match args[..] {
                [meter, value] => match self.known(meter) {
                    Err(reply) => reply,
                    Ok(meter) => match self.backend.set_value(&meter, value) {
                        Ok(done) => Reply::Text(format!("✅ {done}")),
                        Err(why) => Reply::Text(format!("❌ {meter}: {why}")),
                    },
                },
                _ => {
                    Reply::Text("Usage: /set <meter> <value>, e.g. /set water 1234.567".to_owned())
                }
            },
            other => Reply::Text(format!("Unknown command /{other}.\n\n{HELP}")),
        })
    }

    fn known(&self, meter: &str) -> Result<String, Reply> {
        let meters = self.backend.meters();
        if meters.iter().any(|m| m == meter) {
            Ok(meter.to_owned())
        } else {
            Err(Reply::Text(format!(
                "Unknown meter {meter:?}; meters: {}.",
                meters.join(", ")
            )))
        }
    }

    /// The named meter, or the only one.
    fn pick(&self, meter: Option<&str>, command: &str) -> Result<String, Reply> {
        match meter {
            Some(m) => self.known(m),
            None => {
                let meters = self.backend.meters();
                match &meters[..] {
                    [one] => Ok(one.clone()),
                    [] => Err(Reply::Text("No meters are configured.".to_owned())),
                    _ => Err(Reply::Text(format!(
                        "Which meter? /{command} {}",
                        meters.join(" | ")
                    ))),
                }
            }
        }
    }

    fn reading(&self, meter: Option<&str>) -> Reply {
        let meters = match meter {
            Some(_) => match self.pick(meter, "reading") {
                Ok(m) => vec![m],
                Err(reply) => return reply,
            },
            None => self.backend.meters(),
        };
        let lines: Vec<String> = meters.iter().map(|m| self.reading_line(m)).collect();
        Reply::Text(if lines.is_empty() {
            "No meters are configured.".to_owned()
        } else {
            lines.join("\n")
        })
    }

    fn reading_line(&self, meter: &str) -> String {
        let Some(r) = self.backend.last_reading(meter) else {
            return format!("{meter}: no reading yet");
        };
        let unit = r
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        let when = self.local(r.time);
        match (r.status, r.value) {
            (ReadingStatus::Stored, Some(v)) => format!("{meter}: {v}{unit} (stored {when})"),
            (status, _) => {
                let raw = r
                    .raw
                    .map(|v| format!(", read {v}{unit}"))
                    .unwrap_or_default();
                let reason = r.reason.map(|w| format!(": {w}")).unwrap_or_default();
                format!("{meter}: {} {when}{reason}{raw}", status.as_str())
            }
        }
    }

    fn photo(&self, meter: Option<&str>) -> Reply {
        let meter = match self.pick(meter, "photo") {
            Ok(m) => m,
            Err(reply) => return reply,
        };
        match self.backend.last_frame(&meter) {
            Some(jpeg) => Reply::Photo(self.reading_line(&meter), jpeg),
            None => Reply::Text(format!("{meter}: no frame yet")),
        }
    }

    fn status(&self) -> String {
        let firing = self
            .firing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut lines = Vec::new();
        for h in self.backend.health() {
            let frame = h.last_frame.map_or("never".to_owned(), |t| self.local(t));
            let stored = h.last_stored.map_or("never".to_owned(), |t| self.local(t));
            let mut line = format!(
                "{}: last frame {frame}, last stored {stored}, {} not stored since",
                h.meter, h.not_stored_in_a_row
            );
            if let Some(e) = &h.last_error {
                line.push_str(&format!("; last error: {e}"));
            }
            let rules: Vec<&str> = firing
                .iter()
                .filter(|(m, _)| *m == h.meter)
                .map(|(_, r)| r.as_str())
                .collect();
            line.push_str(&if rules.is_empty() {
                " ✅".to_owned()
            } else {
                format!(" 🔴 firing: {}", rules.join(", "))
            });
            lines.push(line);
        }
        if lines.is_empty() {
            "No meters are configured.".to_owned()
        } else {
            lines.join("\n")
        }
    }

    fn local(&self, t: OffsetDateTime) -> String {
        let ts =
            jiff::Timestamp::from_second(t.unix_timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.tz
            .to_datetime(ts)
            .strftime("%Y-%m-%d %H:%M")
            .to_string()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Offset {
    offset: i64,
}

/// The running bot; [`stop`](Self::stop) it before exit.
#[derive(Debug)]
pub struct BotHandle {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl BotHandle {
    /// Starts long-polling for `cfg`'s bot. The offset is kept in
    /// `state_dir/telegram-<name>.offset.json`.
    pub fn spawn(
        cfg: &TelegramConfig,
        commands: Commands,
        state_dir: &std::path::Path,
        backoff: Backoff,
    ) -> Result<Self, AlertError> {
        let api = TelegramApi::new(cfg)?;
        let offset_path = state_dir.join(format!("telegram-{}.offset.json", cfg.name()));
        let offset = load_json::<Offset>(&offset_path, "telegram offset")?
            .unwrap_or_default()
            .offset;
        let bot = Bot {
            api,
            allowed: cfg.allowed_chats(),
            commands,
            offset_path,
            offset,
            backoff,
        };
        let (stop, stopped) = bounded(1);
        let thread = std::thread::Builder::new()
            .name(format!("bot-{}", cfg.name()))
            .spawn(move || bot.run(&stopped))
            .expect("spawn a thread");
        Ok(Self { stop, thread })
    }

    /// Stops after the poll in flight returns (at most the poll timeout
    /// plus the request timeout).
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

struct Bot {
    api: TelegramApi,
    allowed: Vec<i64>,
    commands: Commands,
    offset_path: PathBuf,
    offset: i64,
    backoff: Backoff,
}

impl Bot {
    fn run(mut self, stopped: &Receiver<()>) {
        let name = self.api.name().to_owned();
        let mut failures = 0u32;
        while stopped.try_recv().is_err() {
            let wait = match self.api.get_updates(self.offset) {
                Ok(updates) => {
                    if failures > 0 {
                        log::info!("telegram {name}: receiving commands again");
                    }
                    failures = 0;
                    for u in updates {
                        self.handle(u);
                    }
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    let wait = e
                        .retry_after()
                        .unwrap_or_else(|| self.backoff.delay(failures));
                    let hint = match e.status() {
                        Some(401) => " (the bot token was refused: check bot_token)",
                        Some(409) => {
                            " (another program is reading this bot's updates, or a webhook is set: \
                             only one reader per token can poll; stop the other one)"
                        }
                        _ => "",
                    };
                    log::error!("{}{hint}; polling again in {wait:?}", chain(&e));
                    wait
                }
            };
            if stopped.recv_timeout(wait).is_ok() {
                return;
            }
        }
    }

    fn handle(&mut self, update: Update) {
        let name = self.api.name().to_owned();
        self.offset = self.offset.max(update.update_id + 1);
        if let Err(e) = save_json(
            &self.offset_path,
            &Offset {
                offset: self.offset,
            },
        ) {
            log::error!("telegram {name}: {}", chain(&e));
        }
        let Some(msg) = update.message else { return };
        let Some(text) = msg.text.as_deref() else {
            return;
        };
        let command = text.split_whitespace().next().unwrap_or_default();
        if !command.starts_with('/') {
            return;
        }
        if !self.allowed.contains(&msg.chat.id) {
            let who = msg
                .chat
                .username
                .as_deref()
                .map(|u| format!(" (@{u})"))
                .unwrap_or_default();
            log::warn!(
                "telegram {name}: ignored {command} from chat {}{who}: not in allowed_chats",
                msg.chat.id
            );
            return;
        }
        if command.starts_with("/set") {
            log::info!("telegram {name}: chat {}: {text}", msg.chat.id);
        }
        let Some(reply) = self.commands.answer(text) else {
            return;
        };
        let sent = match reply {
            Reply::Text(t) => self.api.send_message(msg.chat.id, &t),
            Reply::Photo(caption, jpeg) => self.api.send_photo(msg.chat.id, &caption, &jpeg),
        };
        // An answer is for now: it is not queued for later.
        if let Err(e) = sent {
            log::warn!(
                "telegram {name}: answer to {command} not sent: {}",
                chain(&e)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl BotBackend for Fake {
        fn meters(&self) -> Vec<String> {
            vec!["water".into(), "power".into()]
        }
        fn last_reading(&self, meter: &str) -> Option<ObservedReading> {
            (meter == "water").then(|| ObservedReading {
                meter: "water".into(),
                time: OffsetDateTime::from_unix_timestamp(1_772_409_600).unwrap(),
                value: None,
                raw: Some(123.4),
                digits: vec![],
                status: ReadingStatus::Rejected,
                reason: Some("value decreased by 3".into()),
                unit: Some("m3".into()),
                rate_per_hour: None,
            })
        }
        fn last_frame(&self, meter: &str) -> Option<Vec<u8>> {
            (meter == "water").then(|| vec![0xFF, 0xD8, 0xFF, 0xD9])
        }
        fn health(&self) -> Vec<MeterHealth> {
            vec![MeterHealth {
                meter: "water".into(),
                last_frame: None,
                last_stored: None,
                not_stored_in_a_row: 4,
                last_error: Some("timeout".into()),
            }]
        }
        fn set_value(&self, meter: &str, value: &str) -> Result<String, String> {
            value
                .parse::<f64>()
                .map(|v| format!("{meter}: stored value set to {v} (was 120)"))
                .map_err(|_| format!("{value:?} is not a value"))
        }
    }

    fn commands() -> Commands {
        let firing = Arc::new(Mutex::new(vec![(
            "water".to_owned(),
            AlertRule::NoStoredReading,
        )]));
        Commands::new(
            Arc::new(Fake),
            TimeZone::get("Europe/Berlin").unwrap(),
            firing,
        )
    }

    fn text(reply: Option<Reply>) -> String {
        match reply {
            Some(Reply::Text(t)) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_answer() {
        let c = commands();
        assert_eq!(c.answer("hello"), None);
        assert!(text(c.answer("/help")).contains("/set <meter> <value>"));
        assert_eq!(
            text(c.answer("/reading@MeterBot water")),
            "water: rejected 2026-03-02 01:00: value decreased by 3, read 123.4 m3"
        );
        assert!(text(c.answer("/reading")).contains("power: no reading yet"));
        assert!(
            text(c.answer("/reading gas")).contains("Unknown meter \"gas\"; meters: water, power")
        );
        assert!(text(c.answer("/photo")).contains("Which meter?"));
        assert!(matches!(c.answer("/photo water"), Some(Reply::Photo(_, j)) if j.len() == 4));
        assert_eq!(
            text(c.answer("/set water 125.5")),
            "✅ water: stored value set to 125.5 (was 120)"
        );
        assert!(text(c.answer("/set water x")).starts_with("❌ water: \"x\" is not a value"));
        assert!(text(c.answer("/set water")).starts_with("Usage"));
        let status = text(c.answer("/status"));
        assert!(
            status.contains("4 not stored since; last error: timeout 🔴 firing: no_stored_reading"),
            "{status}"
        );
        assert!(text(c.answer("/frobnicate")).starts_with("Unknown command /frobnicate"));
    }
}
