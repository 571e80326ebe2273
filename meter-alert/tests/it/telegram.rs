//! The bot end to end against the fake Telegram API.

use std::sync::Arc;
use std::time::Duration;

use meter_alert::{
    chain, Alerting, AlertsConfig, Backoff, NotifyConfig, Options, ReadingStatus, TelegramConfig,
};

use crate::fake_telegram::{whole_jpeg, FakeTelegram, Fault};
use crate::{
    capture_logs, logs, obs, reading, wait_log, Backend, HOOK_KEY, HOOK_SECRET, T0, TOKEN,
};

const CHAT: i64 = 4242;

fn telegram(fake: &FakeTelegram, extra: &str) -> NotifyConfig {
    let text = format!(
        "type = 'telegram'\napi_url = '{}'\nbot_token = '{}'\nchat_id = {CHAT}\ntimeout = '1s'\npoll_timeout = '1s'\n{extra}",
        fake.url,
        fake.token()
    );
    toml::from_str(&text).unwrap()
}

fn options() -> Options {
    Options {
        backoff: Backoff {
            first: Duration::from_millis(50),
            max: Duration::from_millis(300),
        },
    }
}

const RULES: &str = "time_zone = 'Europe/Berlin'\n[default]\nno_stored_reading = { in_a_row = 3 }\nspike = { max_rate_per_hour = 1.0 }";

fn start(
    fake: &FakeTelegram,
    extra: &str,
    dir: &std::path::Path,
    backend: Arc<Backend>,
) -> Alerting {
    capture_logs();
    let rules: AlertsConfig = toml::from_str(RULES).unwrap();
    Alerting::start(
        &rules,
        &[telegram(fake, extra)],
        &["water".into()],
        dir,
        backend,
        options(),
    )
    .unwrap()
}

#[test]
fn alerts_reach_the_chat_and_refused_readings_carry_the_frame() {
    let fake = FakeTelegram::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let mut alerting = start(&fake, "commands = false", dir.path(), Arc::default());
    alerting
        .observe(&obs(reading(T0, ReadingStatus::Stored, Some(1.0))))
        .unwrap();
    alerting
        .observe(&obs(reading(T0 + 600, ReadingStatus::Stored, Some(2.0))))
        .unwrap(); // 6/h
    for i in 1..=3 {
        alerting
            .observe(&obs(reading(
                T0 + 600 + i * 60,
                ReadingStatus::Rejected,
                None,
            )))
            .unwrap();
    }
    let sent = fake.wait_for("two alerts", |r| {
        r.iter().filter(|r| r.status == 200).count() == 2
    });
    let sent: Vec<_> = sent.into_iter().filter(|r| r.status == 200).collect();
    assert_eq!(sent[0].method, "sendMessage");
    assert_eq!(sent[0].body["chat_id"], CHAT);
    assert!(
        sent[0].body["text"]
            .as_str()
            .unwrap()
            .contains("water: 6 m3/h"),
        "{:?}",
        sent[0].body
    );
    assert_eq!(sent[1].method, "sendPhoto");
    assert!(whole_jpeg(sent[1].photo.as_deref().unwrap()));
    let caption = sent[1].body["caption"].as_str().unwrap();
    assert!(
        caption.contains("3 refused in a row") && caption.contains("/set water"),
        "{caption}"
    );
    assert_eq!(sent[1].body["chat_id"], CHAT.to_string());
    alerting.stop();
}

#[test]
fn commands_are_answered_in_allowed_chats_only_and_never_twice() {
    let fake = FakeTelegram::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(Backend::default());
    let alerting = start(
        &fake,
        "allowed_chats = [4242, 77]",
        dir.path(),
        backend.clone(),
    );
    fake.send_update(CHAT, "/reading");
    fake.send_update(999, "/status");
    fake.send_update(77, "/set water 130.5");
    fake.send_update(CHAT, "/photo");
    let answered = |r: &[crate::fake_telegram::Request]| {
        r.iter()
            .filter(|r| r.method.starts_with("send") && r.status == 200)
            .count()
            == 3
    };
    let r = fake.wait_for("three answers", answered);
    let answers: Vec<_> = r.iter().filter(|r| r.method.starts_with("send")).collect();
    assert_eq!(answers[0].body["chat_id"], CHAT);
    assert!(answers[0].body["text"]
        .as_str()
        .unwrap()
        .starts_with("water: 123.456 m3 (stored 2026-03-02 01:00)"));
    assert_eq!(answers[1].body["chat_id"], 77);
    assert_eq!(
        answers[1].body["text"],
        "✅ water: stored value set to 130.5 (was 123.456)"
    );
    assert_eq!(answers[2].method, "sendPhoto");
    assert!(whole_jpeg(answers[2].photo.as_deref().unwrap()));
    wait_log(&["ignored /status from chat 999 (@user999): not in allowed_chats"]);
    assert!(!r
        .iter()
        .any(|r| r.body["chat_id"] == 999 || r.body["chat_id"] == "999"));
    alerting.stop();

    // A restart asks from the saved offset: nothing runs twice.
    let alerting = start(
        &fake,
        "allowed_chats = [4242, 77]",
        dir.path(),
        backend.clone(),
    );
    fake.send_update(CHAT, "/help");
    fake.wait_for("the help", |r| {
        r.iter().any(|r| {
            r.body["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Commands:"))
        })
    });
    alerting.stop();
    assert_eq!(backend.set_calls.lock().unwrap().len(), 1);
    let sends = fake
        .requests()
        .into_iter()
        .filter(|r| r.method.starts_with("send"))
        .count();
    assert_eq!(sends, 4);
}

#[test]
fn faults_end_in_clear_log_lines_retries_and_no_lost_alert() {
    let fake = FakeTelegram::start(TOKEN);
    for f in [
        Fault::Status(502, "Bad Gateway", None),
        Fault::Status(429, "Too Many Requests: retry after 1", Some(1)),
        Fault::Status(401, "Unauthorized", None),
        Fault::Hang(Duration::from_secs(3)),
    ] {
        fake.fault("sendMessage", f);
    }
    fake.fault("getUpdates", Fault::Status(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running", None));
    let dir = tempfile::tempdir().unwrap();
    let mut alerting = start(&fake, "", dir.path(), Arc::default());
    alerting
        .observe(&obs(reading(T0, ReadingStatus::Stored, Some(1.0))))
        .unwrap();
    alerting
        .observe(&obs(reading(T0 + 600, ReadingStatus::Stored, Some(2.0))))
        .unwrap();
    let r = fake.wait_for("the alert", |r| {
        r.iter()
            .any(|r| r.method == "sendMessage" && r.status == 200)
    });
    let tries: Vec<u16> = r
        .iter()
        .filter(|r| r.method == "sendMessage")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        tries,
        [502, 429, 401, 504, 200],
        "each fault retried, the alert sent once"
    );
    wait_log(&[
        "telegram telegram sendMessage",
        "HTTP 502: Bad Gateway",
        "retrying in",
    ]);
    wait_log(&["HTTP 429: Too Many Requests", "retrying in 1s"]);
    wait_log(&["HTTP 401: Unauthorized"]);
    wait_log(&["sendMessage", "no answer", "timeout"]);
    wait_log(&["HTTP 409", "another program is reading this bot's updates"]);
    wait_log(&["delivering again after 4 failed attempts"]);
    alerting.stop();
    assert!(alerting_outbox_empty(dir.path()));
}

fn alerting_outbox_empty(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir.join("outbox/telegram"))
        .unwrap()
        .filter_map(Result::ok)
        .all(|e| !e.file_name().to_string_lossy().ends_with(".json"))
}

#[test]
fn a_wrong_token_and_a_photo_telegram_refuses() {
    capture_logs();
    // A fake that expects another token: every call is 401.
    let fake = FakeTelegram::start("1:other");
    let mut cfg = match telegram(&fake, "") {
        NotifyConfig::Telegram(t) => t,
        _ => unreachable!(),
    };
    cfg.bot_token = Some(meter_alert::Secret::new(TOKEN));
    let api = meter_alert::telegram::TelegramApi::new(&cfg).unwrap();
    let e = api.send_message(1, "x").unwrap_err();
    assert_eq!(e.status(), Some(401));
    let text = chain(&e);
    assert!(
        text.contains("/bot***/sendMessage") && text.contains("Unauthorized"),
        "{text}"
    );
    // Nothing listening: the error names the method, not the token.
    let closed = TelegramConfig {
        api_url: "http://127.0.0.1:9".into(),
        ..cfg.clone()
    };
    let e = meter_alert::telegram::TelegramApi::new(&closed)
        .unwrap()
        .send_message(1, "x")
        .unwrap_err();
    assert!(chain(&e).contains("no answer"), "{}", chain(&e));
    assert_eq!(secret_hits(&chain(&e)), Vec::<&str>::new());
    // A photo that is not a whole JPEG is refused (400): the alert goes as
    // text (the fake accepts the same token now).
    let fake = FakeTelegram::start(TOKEN);
    let cfg = TelegramConfig {
        api_url: fake.url.clone(),
        ..cfg
    };
    let mut n = meter_alert::telegram::TelegramNotifier::new(&cfg).unwrap();
    let alert = meter_alert::Notification::Alert(meter_alert::Alert {
        meter: "water".into(),
        rule: meter_alert::AlertRule::NoStoredReading,
        state: meter_alert::AlertState::Firing,
        repeat: 0,
        time: crate::time(T0),
        message: "water: refused".into(),
        value: None,
        threshold: None,
        unit: None,
        with_frame: true,
    });
    use meter_alert::Notifier;
    let jpeg = crate::jpeg();
    n.deliver(&alert, Some(&jpeg[..jpeg.len() - 10])).unwrap();
    let r = fake.requests();
    assert_eq!((r[0].method.as_str(), r[0].status), ("sendPhoto", 400));
    assert_eq!((r[1].method.as_str(), r[1].status), ("sendMessage", 200));
    wait_log(&[
        "IMAGE_PROCESS_FAILED",
        "sending the alert without its frame",
    ]);
}

/// The secrets found in `text`.
pub fn secret_hits(text: &str) -> Vec<&'static str> {
    let token_secret = TOKEN.split(':').nth(1).unwrap();
    [TOKEN, token_secret, HOOK_SECRET, HOOK_KEY]
        .into_iter()
        .filter(|s| text.contains(s))
        .collect()
}

/// Runs last in spirit: every other test in this process logs through the
/// same capture; this one adds the faults of every kind and then greps all
/// lines and error texts for the secrets.
#[test]
fn no_secret_in_any_log_line_or_error() {
    capture_logs();
    // Errors of every kind, with secrets in the URL and the token.
    let fake = FakeTelegram::start(TOKEN);
    fake.fault(
        "sendMessage",
        Fault::Status(400, "Bad Request: chat not found", None),
    );
    fake.fault("sendMessage", Fault::Hang(Duration::from_secs(3)));
    let cfg = match telegram(&fake, "") {
        NotifyConfig::Telegram(t) => t,
        _ => unreachable!(),
    };
    let api = meter_alert::telegram::TelegramApi::new(&cfg).unwrap();
    let mut errors = Vec::new();
    for _ in 0..2 {
        errors.push(chain(&api.send_message(1, "x").unwrap_err()));
    }
    let bad = TelegramConfig {
        api_url: format!("http://127.0.0.1:1/{TOKEN}"),
        ..cfg.clone()
    };
    errors.push(chain(
        &meter_alert::telegram::TelegramApi::new(&bad)
            .unwrap()
            .send_message(1, "x")
            .unwrap_err(),
    ));
    errors.push(format!("{cfg:?}"));
    for format in ["json", "ntfy", "gotify", "home_assistant", "ai_on_the_edge"] {
        let hook: meter_alert::WebhookConfig = toml::from_str(&format!(
            "url = 'http://user:{HOOK_KEY}@127.0.0.1:1/api/webhook/{HOOK_SECRET}?token={HOOK_KEY}'\nformat = '{format}'\ntoken = '{HOOK_KEY}'\ntimeout = '1s'"
        ))
        .unwrap();
        errors.push(format!("{hook:?}"));
        let mut n =
            meter_alert::webhook::WebhookNotifier::new(&hook, jiff::tz::TimeZone::UTC).unwrap();
        let note = meter_alert::Notification::Reading {
            reading: reading(T0, ReadingStatus::Stored, Some(1.0)),
            previous: None,
        };
        use meter_alert::Notifier;
        errors.push(chain(&n.deliver(&note, None).unwrap_err()));
    }
    // An answer that quotes the URL, secret and all, back.
    let echo = crate::recorder::Recorder::start();
    echo.status.store(500, std::sync::atomic::Ordering::SeqCst);
    let hook: meter_alert::WebhookConfig = toml::from_str(&format!(
        "url = '{}/{HOOK_SECRET}'\nformat = 'json'\ntoken = '{HOOK_KEY}'",
        echo.url
    ))
    .unwrap();
    let mut n = meter_alert::webhook::WebhookNotifier::new(&hook, jiff::tz::TimeZone::UTC).unwrap();
    let note = meter_alert::Notification::Reading {
        reading: reading(T0, ReadingStatus::Stored, Some(1.0)),
        previous: None,
    };
    use meter_alert::Notifier;
    errors.push(chain(&n.deliver(&note, None).unwrap_err()));

    assert!(
        errors.iter().any(|e| e.contains("chat not found")),
        "{errors:#?}"
    );
    for text in errors.iter().chain(logs().iter()) {
        assert_eq!(secret_hits(text), Vec::<&str>::new(), "a secret in: {text}");
    }
}
