//! Each webhook format as a receiver sees it.

use meter_alert::webhook::WebhookNotifier;
use meter_alert::{
    Alert, AlertRule, AlertState, Notification, Notifier, ReadingStatus, WebhookConfig,
};
use serde_json::Value;

use crate::recorder::{Received, Recorder};
use crate::{reading, time, HOOK_KEY, HOOK_SECRET, T0};

fn send(format: &str, path: &str, extra: &str, n: &Notification) -> Received {
    let receiver = Recorder::start();
    let cfg: WebhookConfig = toml::from_str(&format!(
        "url = '{}{path}'\nformat = '{format}'\ntoken = '{HOOK_KEY}'\n{extra}",
        receiver.url
    ))
    .unwrap();
    let mut notifier =
        WebhookNotifier::new(&cfg, jiff::tz::TimeZone::get("Europe/Berlin").unwrap()).unwrap();
    notifier.deliver(n, None).unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    got[0].clone()
}

fn alert() -> Notification {
    Notification::Alert(Alert {
        meter: "water".into(),
        rule: AlertRule::ContinuousFlow,
        state: AlertState::Firing,
        repeat: 0,
        time: time(T0),
        message: "water: consumption in every one of the last 24 hours".into(),
        value: Some(0.001),
        threshold: Some(0.0),
        unit: Some("m3".into()),
        with_frame: false,
    })
}

fn stored() -> Notification {
    Notification::Reading {
        reading: reading(T0, ReadingStatus::Stored, Some(123.456)),
        previous: Some(123.4),
    }
}

fn json(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn json_uses_the_field_names_of_predict_json() {
    let r = send("json", "/hook", "", &stored());
    let v = json(&r);
    assert_eq!(
        keys(&v),
        [
            "digits",
            "event",
            "meter",
            "previous",
            "rate_per_hour",
            "raw",
            "reason",
            "status",
            "time",
            "unit",
            "value"
        ]
    );
    assert_eq!(
        (
            v["event"].as_str(),
            v["status"].as_str(),
            v["time"].as_str()
        ),
        (
            Some("reading"),
            Some("stored"),
            Some("2026-03-02T00:00:00Z")
        )
    );
    assert_eq!(v["digits"][0]["confidence"], 0.51f32 as f64);
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {HOOK_KEY}").as_str())
    );
    let v = json(&send("json", "/hook", "", &alert()));
    assert_eq!(
        (v["event"].as_str(), v["rule"].as_str(), v["state"].as_str()),
        (Some("alert"), Some("continuous_flow"), Some("firing"))
    );
}

#[test]
fn home_assistant_gets_one_flat_object_with_a_message() {
    let path = format!("/api/webhook/{HOOK_SECRET}");
    let r = send("home_assistant", &path, "", &stored());
    assert_eq!(r.url, path);
    let v = json(&r);
    assert_eq!(v["message"], "water: 123.456 m3 (stored)");
    assert_eq!(v["meter"], "water");
    let v = json(&send("home_assistant", &path, "", &alert()));
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("every one of the last 24 hours"));
}

#[test]
fn ntfy_gets_text_and_headers() {
    let r = send("ntfy", "/meters", "", &alert());
    assert_eq!(
        String::from_utf8(r.body.clone()).unwrap(),
        "water: consumption in every one of the last 24 hours"
    );
    assert_eq!(r.header("title"), Some("water: continuous_flow firing"));
    assert_eq!(r.header("priority"), Some("high"));
    assert_eq!(r.header("tags"), Some("rotating_light"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {HOOK_KEY}").as_str())
    );
}

#[test]
fn gotify_posts_a_message_with_its_key() {
    let r = send("gotify", "/", "", &alert());
    assert_eq!(r.url, "/message");
    assert_eq!(r.header("x-gotify-key"), Some(HOOK_KEY));
    let v = json(&r);
    assert_eq!(
        (v["title"].as_str(), v["priority"].as_i64()),
        (Some("water: continuous_flow firing"), Some(8))
    );
    let cfg: Result<WebhookConfig, _> =
        toml::from_str("url = 'http://127.0.0.1:1'\nformat = 'gotify'");
    let e = WebhookNotifier::new(&cfg.unwrap(), jiff::tz::TimeZone::UTC).unwrap_err();
    assert!(
        e.to_string()
            .contains("gotify needs the application's token"),
        "{e}"
    );
}

#[test]
fn ai_on_the_edge_gets_its_own_array_of_strings() {
    let r = send("ai_on_the_edge", "/webhook.php", "", &stored());
    assert_eq!(r.header("apikey"), Some(HOOK_KEY));
    let v = json(&r);
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 1);
    let o = &items[0];
    assert_eq!(
        keys(o),
        [
            "changeAbsolute",
            "error",
            "name",
            "preValue",
            "rate",
            "rawValue",
            "timestamp",
            "timestampLong",
            "value"
        ]
    );
    assert!(o.as_object().unwrap().values().all(Value::is_string), "{o}");
    assert_eq!(o["timestamp"], "2026-03-02T01:00:00+0100");
    assert_eq!(o["timestampLong"], T0.to_string());
    assert_eq!(
        (
            o["name"].as_str(),
            o["value"].as_str(),
            o["preValue"].as_str()
        ),
        (Some("water"), Some("123.456"), Some("123.4"))
    );
    assert_eq!(o["error"], "no error");
    let change: f64 = o["changeAbsolute"].as_str().unwrap().parse().unwrap();
    assert!((change - 0.056).abs() < 1e-9);
    let rate: f64 = o["rate"].as_str().unwrap().parse().unwrap();
    assert!(
        (rate - 0.1 / 60.0).abs() < 1e-12,
        "per minute, as AI-on-the-edge's"
    );
    // A rejected reading keeps the previous value, with the reason as error.
    let rejected = Notification::Reading {
        reading: reading(T0, ReadingStatus::Rejected, None),
        previous: Some(123.4),
    };
    let v = json(&send("ai_on_the_edge", "/webhook.php", "", &rejected));
    assert_eq!(v[0]["value"], "123.4");
    assert_eq!(v[0]["error"], "rejected: value decreased by 3");
    assert_eq!(v[0]["rawValue"], "99.9");
}
