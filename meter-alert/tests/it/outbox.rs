//! The outbox: a dead notifier never delays a reading, a restart loses
//! nothing queued, and a thousand alerts queued while the receiver is down
//! all arrive once it is back, in order, none twice.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use meter_alert::webhook::WebhookNotifier;
use meter_alert::{
    Alert, AlertRule, AlertState, Alerting, AlertsConfig, Backoff, Delivery, Notification, Options,
    Outbox, ReadingStatus,
};

use crate::recorder::Recorder;
use crate::{capture_logs, obs, reading, time, wait_log, Backend, T0};

fn backoff() -> Backoff {
    Backoff {
        first: Duration::from_millis(20),
        max: Duration::from_millis(100),
    }
}

fn alert(i: u32) -> Notification {
    Notification::Alert(Alert {
        meter: "water".into(),
        rule: AlertRule::Spike,
        state: AlertState::Firing,
        repeat: i,
        time: time(T0 + i64::from(i)),
        message: format!("alert {i}"),
        value: None,
        threshold: None,
        unit: None,
        with_frame: false,
    })
}

fn hook(url: &str) -> WebhookNotifier {
    let cfg: meter_alert::WebhookConfig = toml::from_str(&format!(
        "url = '{url}/hook'\nformat = 'json'\ntimeout = '2s'"
    ))
    .unwrap();
    WebhookNotifier::new(&cfg, jiff::tz::TimeZone::UTC).unwrap()
}

fn repeats(received: &[crate::recorder::Received]) -> Vec<u64> {
    received
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["repeat"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn a_thousand_alerts_queued_while_down_arrive_in_order_once() {
    capture_logs();
    let receiver = Recorder::start();
    receiver.status.store(503, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    let delivery = Delivery::spawn(outbox.clone(), Box::new(hook(&receiver.url)), backoff());
    for i in 0..1000 {
        outbox.push(&alert(i), None).unwrap();
    }
    wait_log(&["webhook-json", "HTTP 503", "retrying in"]);
    assert!(receiver.accepted().is_empty());
    receiver.status.store(200, Ordering::SeqCst);
    let got = receiver.wait_accepted(1000);
    delivery.stop();
    assert_eq!(
        repeats(&got),
        (0..1000).collect::<Vec<u64>>(),
        "in order, each once"
    );
    assert!(outbox.is_empty());
    assert_eq!(receiver.accepted().len(), 1000, "nothing after the last");
}

#[test]
fn a_restart_loses_nothing_queued_and_a_refused_payload_is_set_aside() {
    capture_logs();
    let receiver = Recorder::start();
    receiver.status.store(502, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = Outbox::open(dir.path()).unwrap();
        let delivery = Delivery::spawn(outbox.clone(), Box::new(hook(&receiver.url)), backoff());
        for i in 0..5 {
            outbox.push(&alert(i), Some(&crate::jpeg())).unwrap();
        }
        delivery.stop();
    }
    // Restarted: the five are still there, in order.
    let outbox = Outbox::open(dir.path()).unwrap();
    assert_eq!(outbox.len(), 5);
    outbox.push(&alert(5), None).unwrap();
    // The receiver now refuses everything as malformed: each is tried three
    // times and set aside, none is lost.
    receiver.status.store(422, Ordering::SeqCst);
    let delivery = Delivery::spawn(outbox.clone(), Box::new(hook(&receiver.url)), backoff());
    wait_log(&["webhook-json", "HTTP 422", "refused 3 times, kept in"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !outbox.is_empty() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    delivery.stop();
    let aside = std::fs::read_dir(dir.path().join("refused"))
        .unwrap()
        .count();
    assert_eq!(aside, 6 + 5, "six entries and five photos kept in refused/");
    let tried: Vec<u64> = repeats(
        &receiver
            .received()
            .into_iter()
            .filter(|r| r.status == 422)
            .collect::<Vec<_>>(),
    );
    let mut expected: Vec<u64> = (0..6).flat_map(|i| [i; 3]).collect();
    expected.dedup_by(|_, _| false);
    assert_eq!(tried, expected);
}

#[test]
fn a_dead_notifier_never_delays_reading() {
    capture_logs();
    // A receiver that accepts connections and never answers.
    let receiver = Recorder::start();
    receiver.hang.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let rules: AlertsConfig =
        toml::from_str("[default]\nspike = { max_rate_per_hour = 1.0 }").unwrap();
    let notify: meter_alert::NotifyConfig = toml::from_str(&format!(
        "type = 'webhook'\nformat = 'json'\nurl = '{}/hook'\nreadings = true\ntimeout = '60s'",
        receiver.url
    ))
    .unwrap();
    let mut alerting = Alerting::start(
        &rules,
        &[notify],
        &["water".into()],
        dir.path(),
        Arc::new(Backend::default()),
        Options { backoff: backoff() },
    )
    .unwrap();
    // 200 readings, every other one a spike: if observe waited for the
    // receiver, this would take 60 s per notification.
    let mut alerts = 0;
    for i in 0..200 {
        let v = 1.0 + (i / 2) as f64 * 10.0 + (i % 2) as f64 * 0.01;
        alerts += alerting
            .observe(&obs(reading(T0 + i * 600, ReadingStatus::Stored, Some(v))))
            .unwrap()
            .len();
    }
    assert!(alerts >= 100, "{alerts}");
    let queued: usize = alerting.queued().iter().map(|(_, n)| n).sum();
    // At most the one in flight has left the outbox.
    assert!(queued >= 200 + alerts - 1, "{queued}");
    receiver.hang.store(false, Ordering::SeqCst);
    drop(receiver);
    let _ = alerting.firing();
}
