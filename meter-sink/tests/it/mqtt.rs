//! The MQTT sink against a real Mosquitto (see [`testkit::mosquitto`]): Home
//! Assistant's discovery schema, the state message, commands, the last
//! will, broker restarts, a wrong password and replays after a crash.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use meter_sink::mqtt::{self, DeviceClass, MeterInfo, MqttCommand, MqttSink, MqttSpec};
use meter_sink::{EventStatus, NotStored, Record, Sink, SinkError, Spool, SpoolingSink};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{reading, rejected, WEEK_START};
use testkit::mosquitto::{Mosquitto, Observer, Received, Setup};

const WAIT: Duration = Duration::from_secs(10);

/// Every log line of the sink and of rumqttc, at every level, for the
/// secret checks.
fn captured_logs() -> &'static Mutex<Vec<String>> {
    struct Capture;
    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.target().starts_with("meter_sink") || m.target().starts_with("rumqttc")
        }
        fn log(&self, r: &log::Record) {
            if self.enabled(r.metadata()) {
                let line = format!("{} {}: {}", r.level(), r.target(), r.args());
                LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        }
        fn flush(&self) {}
    }
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if log::set_logger(&Capture).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    &LINES
}

fn spec(broker: &Mosquitto, prefix: &str) -> MqttSpec {
    let mut s = MqttSpec::new(broker.url());
    s.topic_prefix = prefix.into();
    s.keep_alive_secs = 5;
    s
}

fn house() -> MeterInfo {
    MeterInfo::new("house", Some("kWh"))
}

/// The sink behind a spool with short retry delays, connected.
fn open(spec: &MqttSpec, dir: &Path, meters: &[MeterInfo]) -> (SpoolingSink, mqtt::MqttHandle) {
    captured_logs();
    let sink = MqttSink::new(spec, dir, meters).unwrap();
    let handle = sink.handle();
    let sink = SpoolingSink::builder(sink, dir)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .unwrap();
    handle.start();
    (sink, handle)
}

/// Writes until the broker has it (the first write may race the connect).
fn write_through(sink: &mut SpoolingSink, records: &[Record]) {
    sink.write(records).unwrap();
    drain(sink);
}

/// Flushes until the spool is empty (the broker may still be connecting);
/// fails with the sink's warnings after [`WAIT`].
fn drain(sink: &mut SpoolingSink) {
    let deadline = Instant::now() + WAIT;
    while let Err(e) = sink.flush() {
        if Instant::now() > deadline {
            let logs = captured_logs().lock().unwrap().clone();
            let warnings: Vec<&String> = logs
                .iter()
                .filter(|l| l.starts_with("WARN meter_sink") || l.starts_with("ERROR"))
                .collect();
            panic!("not delivered: {e}\n{warnings:#?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!((sink.status().pending_records == 0));
}

fn state_of(broker: &Mosquitto, prefix: &str, meter: &str) -> Value {
    let topic = format!("{prefix}/{meter}/state");
    let retained = Observer::retained(&broker.url(), &[&topic]);
    assert_eq!(retained.len(), 1, "retained state of {meter}: {retained:?}");
    retained[0].json()
}

fn time_of(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

// ---------------------------------------------------------------------------
// Home Assistant's discovery schema, written down from its documentation
// (integrations/mqtt, integrations/sensor, binary_sensor.mqtt, button.mqtt)
// independently of the sink's own tables.

/// Keys allowed at the root of a device discovery payload (besides the
/// shared entity options).
const ROOT_KEYS: &[&str] = &[
    "device",
    "origin",
    "components",
    "availability",
    "availability_topic",
    "availability_mode",
    "availability_template",
    "payload_available",
    "payload_not_available",
    "state_topic",
    "command_topic",
    "qos",
    "encoding",
];
const COMMON_KEYS: &[&str] = &[
    "platform",
    "name",
    "unique_id",
    "default_entity_id",
    "device_class",
    "entity_category",
    "icon",
    "enabled_by_default",
    "availability",
    "availability_topic",
    "availability_mode",
    "availability_template",
    "payload_available",
    "payload_not_available",
    "json_attributes_topic",
    "json_attributes_template",
    "qos",
    "encoding",
    "device",
    "origin",
    "entity_picture",
];
const SENSOR_KEYS: &[&str] = &[
    "state_topic",
    "value_template",
    "unit_of_measurement",
    "state_class",
    "options",
    "expire_after",
    "force_update",
    "last_reset_value_template",
    "suggested_display_precision",
];
const BINARY_SENSOR_KEYS: &[&str] = &[
    "state_topic",
    "value_template",
    "payload_on",
    "payload_off",
    "off_delay",
    "expire_after",
    "force_update",
];
const BUTTON_KEYS: &[&str] = &[
    "command_topic",
    "command_template",
    "payload_press",
    "retain",
];
/// Abbreviations Home Assistant expands (a sample of the common ones; none
/// may be present next to its long form).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("cmps", "components"),
    ("p", "platform"),
    ("dev", "device"),
    ("o", "origin"),
    ("uniq_id", "unique_id"),
    ("def_ent_id", "default_entity_id"),
    ("dev_cla", "device_class"),
    ("stat_t", "state_topic"),
    ("stat_cla", "state_class"),
    ("unit_of_meas", "unit_of_measurement"),
    ("val_tpl", "value_template"),
    ("avty_t", "availability_topic"),
    ("ent_cat", "entity_category"),
    ("json_attr_t", "json_attributes_topic"),
    ("json_attr_tpl", "json_attributes_template"),
    ("cmd_t", "command_topic"),
    ("pl_prs", "payload_press"),
    ("ic", "icon"),
    ("ops", "options"),
];
/// Units per sensor device class (sensor docs, "device class" table).
fn units_of(class: &str) -> Option<&'static [&'static str]> {
    Some(match class {
        "energy" => &[
            "J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal",
            "Gcal",
        ],
        "gas" => &["L", "m³", "ft³", "CCF"],
        "water" => &["L", "gal", "m³", "ft³", "CCF"],
        _ => return None,
    })
}

fn expand(map: &serde_json::Map<String, Value>, what: &str) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (k, v) in map {
        let long = ABBREVIATIONS
            .iter()
            .find(|(a, _)| a == k)
            .map_or(k.as_str(), |(_, l)| l);
        assert!(
            out.insert(long.to_owned(), v.clone()).is_none(),
            "{what}: {k} given twice (long and abbreviated)"
        );
    }
    out
}

/// Checks one entity config (after merging the shared options).
fn check_entity(
    what: &str,
    platform: &str,
    config: &serde_json::Map<String, Value>,
    retained: &HashMap<String, Value>,
    unique_ids: &mut HashSet<String>,
) {
    let allowed: Vec<&str> = COMMON_KEYS
        .iter()
        .chain(match platform {
            "sensor" => SENSOR_KEYS,
            "binary_sensor" => BINARY_SENSOR_KEYS,
            "button" => BUTTON_KEYS,
            other => panic!("{what}: unexpected platform {other}"),
        })
        .copied()
        .collect();
    for k in config.keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "{what}: key {k:?} is not a {platform} option"
        );
    }
    assert!(
        !config.contains_key("object_id"),
        "{what}: deprecated object_id"
    );
    let uid = config["unique_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no unique_id"));
    assert!(
        unique_ids.insert(uid.to_owned()),
        "{what}: unique_id {uid} used twice"
    );
    let entity = config["default_entity_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no default_entity_id"));
    let (domain, object) = entity.split_once('.').unwrap();
    assert_eq!(domain, platform, "{what}: default_entity_id {entity}");
    assert!(
        !object.is_empty()
            && object
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "{what}: default_entity_id {entity}"
    );
    if let Some(cat) = config.get("entity_category") {
        assert!(
            cat == "diagnostic" || cat == "config",
            "{what}: entity_category {cat}"
        );
    }
    let class = config.get("device_class").and_then(Value::as_str);
    let unit = config.get("unit_of_measurement").and_then(Value::as_str);
    let state_class = config.get("state_class").and_then(Value::as_str);
    if let Some(units) = class.and_then(units_of) {
        let unit = unit.unwrap_or_else(|| panic!("{what}: {class:?} without a unit"));
        assert!(
            units.contains(&unit),
            "{what}: unit {unit} is not one of {class:?}'s {units:?}"
        );
        assert!(
            matches!(state_class, Some("total" | "total_increasing")),
            "{what}: the energy dashboard needs state_class total(_increasing), not {state_class:?}"
        );
    }
    if matches!(class, Some("enum" | "timestamp")) {
        assert!(
            unit.is_none() && state_class.is_none(),
            "{what}: {class:?} takes no unit or state class"
        );
    }
    if class == Some("enum") {
        assert!(
            config["options"].as_array().is_some_and(|o| !o.is_empty()),
            "{what}: enum without options"
        );
    }
    if platform == "binary_sensor" {
        assert_eq!(class, Some("problem"), "{what}");
    }
    if platform == "button" {
        assert!(
            config["command_topic"].is_string(),
            "{what}: button without command_topic"
        );
        return;
    }
    let state_topic = config["state_topic"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no state_topic"));
    let state = retained
        .get(state_topic)
        .unwrap_or_else(|| panic!("{what}: nothing retained at {state_topic}"));
    for key in ["value_template", "json_attributes_template"] {
        let Some(template) = config.get(key).and_then(Value::as_str) else {
            continue;
        };
        for field in template.split("value_json.").skip(1) {
            let field: String = field
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                state.get(&field).is_some(),
                "{what}: {key} reads {field}, which {state_topic} lacks: {state}"
            );
        }
    }
}

/// Checks every retained discovery config; returns the entities found
/// (`platform`, `unique_id`).
fn check_discovery(retained: &[Received], status_topic: &str) -> Vec<(String, String)> {
    let by_topic: HashMap<String, Value> = retained
        .iter()
        .map(|m| (m.topic.clone(), m.json()))
        .collect();
    assert_eq!(
        retained
            .iter()
            .find(|m| m.topic == status_topic)
            .map(|m| m.payload.as_slice()),
        Some(&b"online"[..]),
        "availability"
    );
    let mut unique_ids = HashSet::new();
    let mut entities = Vec::new();
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    for m in retained
        .iter()
        .filter(|m| m.topic.starts_with("homeassistant/"))
    {
        let what = m.topic.as_str();
        let levels: Vec<&str> = what.split('/').collect();
        let Value::Object(root) = m.json() else {
            panic!(
                "{what}: not a JSON object: {:?}",
                String::from_utf8_lossy(&m.payload)
            )
        };
        let root = expand(&root, what);
        let device = root["device"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: no device"));
        assert!(
            device["identifiers"]
                .as_array()
                .is_some_and(|i| !i.is_empty()),
            "{what}: device identifiers"
        );
        assert!(device["name"].is_string(), "{what}: device name");
        assert!(root["origin"]["name"].is_string(), "{what}: origin name");
        let avail = root["availability_topic"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: availability"));
        assert_eq!(avail, status_topic);
        if levels[1] == "device" {
            assert!(
                levels.len() == 4 && id_ok(levels[2]) && levels[3] == "config",
                "{what}"
            );
            for k in root.keys() {
                assert!(ROOT_KEYS.contains(&k.as_str()), "{what}: root key {k:?}");
            }
            let components = root["components"]
                .as_object()
                .unwrap_or_else(|| panic!("{what}: no components"));
            assert!(!components.is_empty());
            for (id, c) in components {
                let c = expand(c.as_object().unwrap(), what);
                let platform = c["platform"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}/{id}: no platform"));
                let mut merged = c.clone();
                for shared in ["qos", "availability_topic"] {
                    if let Some(v) = root.get(shared) {
                        merged.entry(shared).or_insert(v.clone());
                    }
                }
                check_entity(
                    &format!("{what}/{id}"),
                    platform,
                    &merged,
                    &by_topic,
                    &mut unique_ids,
                );
                entities.push((
                    platform.to_owned(),
                    c["unique_id"].as_str().unwrap().to_owned(),
                ));
            }
        } else {
            assert!(
                levels.len() == 5 && id_ok(levels[2]) && id_ok(levels[3]) && levels[4] == "config",
                "{what}"
            );
            let platform = levels[1];
            check_entity(what, platform, &root, &by_topic, &mut unique_ids);
            entities.push((
                platform.to_owned(),
                root["unique_id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    entities
}

fn three_meters() -> Vec<MeterInfo> {
    vec![
        house(),
        MeterInfo::new("cellar.gas", Some("m3")),
        MeterInfo::new("garden", Some("l")),
    ]
}

fn three_readings() -> Vec<Record> {
    let mut gas = reading("cellar.gas", WEEK_START + 1, 4321.5);
    gas.unit = Some("m3".into());
    let mut water = rejected("garden", WEEK_START + 2, 17.0, "a digit is unsure");
    water.unit = Some("l".into());
    vec![reading("house", WEEK_START, 12345.6), gas, water]
}

#[test]
fn discovery_and_state_follow_home_assistant_schema_in_both_modes() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(&broker, "meters");
    spec.commands.read_now = true;
    spec.discovery
        .device_class
        .insert("cellar.gas".into(), DeviceClass::Gas);
    // Litres fit gas and water.
    spec.discovery
        .device_class
        .insert("garden".into(), DeviceClass::Water);
    let filters = ["homeassistant/#", "meters/#"];
    {
        let (mut sink, _handle) = open(&spec, dir.path(), &three_meters());
        write_through(&mut sink, &three_readings());
        let retained = Observer::retained(&broker.url(), &filters);
        let entities = check_discovery(&retained, "meters/status");
        // Three devices of 7 entities (value, raw, confidence, status,
        // problem, last reading, read now).
        assert_eq!(entities.len(), 21, "{entities:?}");
        assert_eq!(
            retained
                .iter()
                .filter(|m| m.topic.starts_with("homeassistant/device/"))
                .count(),
            3
        );
        let configs: Vec<Value> = retained
            .iter()
            .filter(|m| m.topic.starts_with("homeassistant/"))
            .map(Received::json)
            .collect();
        let value_of = |meter: &str| {
            configs
                .iter()
                .find(|c| c["device"]["name"] == meter)
                .map(|c| c["components"]["value"].clone())
                .unwrap()
        };
        assert_eq!(value_of("house")["device_class"], "energy");
        assert_eq!(value_of("house")["unit_of_measurement"], "kWh");
        assert_eq!(value_of("cellar.gas")["device_class"], "gas");
        assert_eq!(value_of("cellar.gas")["unit_of_measurement"], "m³");
        assert_eq!(value_of("garden")["device_class"], "water");
        assert_eq!(value_of("garden")["unit_of_measurement"], "L");

        // Home Assistant restarts: discovery comes again.
        let watcher = Observer::new(&broker.url(), &["homeassistant/device/#"]);
        let live = |r: &[Received]| r.iter().filter(|m| !m.retain).count();
        watcher.publish("homeassistant/status", b"online", false);
        assert!(
            watcher.wait_until(WAIT, |r| live(r) >= 3),
            "no discovery after HA online"
        );
    }
    // Older Home Assistant: one config per entity; the device configs go.
    spec.discovery.per_entity = true;
    let (_sink, _handle) = open(&spec, dir.path(), &three_meters());
    let deadline = Instant::now() + WAIT;
    let retained = loop {
        let r = Observer::retained(&broker.url(), &filters);
        if !r
            .iter()
            .any(|m| m.topic.starts_with("homeassistant/device/"))
            && r.len() >= 25
        {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "per-entity configs did not replace the device ones: {r:?}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let entities = check_discovery(&retained, "meters/status");
    assert_eq!(entities.len(), 21);
}

#[test]
fn state_value_is_always_the_last_stored_one() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&broker, "values");
    let mut meter = house();
    // The service knows a value from before this sink existed.
    meter.last_stored = Some((
        100.0,
        OffsetDateTime::from_unix_timestamp(WEEK_START - 60).unwrap(),
    ));
    meter.model_version = Some("v7".into());
    let (mut sink, handle) = open(&spec, dir.path(), &[meter]);
    let watcher = Observer::new(&broker.url(), &["values/house/state"]);
    let unsure = Record::event(
        "house",
        OffsetDateTime::from_unix_timestamp(WEEK_START + 3).unwrap(),
        NotStored {
            status: EventStatus::Unsure,
            raw: None,
            reason: "digit 3 unsure".into(),
        },
    )
    .with_unit("kWh");
    write_through(
        &mut sink,
        &[rejected("house", WEEK_START, 90.0, "value decreased by 10")],
    );
    write_through(&mut sink, &[reading("house", WEEK_START + 1, 101.5)]);
    handle.set_model_version("house", "v8");
    write_through(
        &mut sink,
        &[
            rejected("house", WEEK_START + 2, 99.0, "value decreased by 2.5"),
            unsure,
        ],
    );
    assert!(watcher.wait_until(WAIT, |r| r.iter().filter(|m| !m.retain).count() >= 4));
    let states: Vec<Value> = watcher
        .received()
        .iter()
        .filter(|m| !m.retain)
        .map(Received::json)
        .collect();
    let summary: Vec<(Value, Value, Value, Value)> = states
        .iter()
        .map(|s| {
            (
                s["value"].clone(),
                s["raw"].clone(),
                s["status"].clone(),
                s["model"].clone(),
            )
        })
        .collect();
    use serde_json::json;
    assert_eq!(
        summary,
        [
            (json!(100.0), json!(90.0), json!("rejected"), json!("v7")),
            (json!(101.5), json!(101.5), json!("stored"), json!("v7")),
            (json!(101.5), json!(99.0), json!("rejected"), json!("v8")),
            (json!(101.5), Value::Null, json!("unsure"), json!("v8")),
        ]
    );
    let first = &states[0];
    assert_eq!(first["reason"], "value decreased by 10");
    assert_eq!(first["time"], time_of(WEEK_START));
    assert_eq!(first["unit"], "kWh");
    assert_eq!(states[1]["rate_per_hour"], 0.5);
    assert!((states[1]["confidence_min"].as_f64().unwrap() - 0.93).abs() < 1e-6);
    assert_eq!(state_of(&broker, "values", "house"), states[3]);
    // A new sink (restart) still knows 101.5 without being told.
    drop(sink);
    let (mut sink, _handle) = open(&spec, dir.path(), &[house()]);
    write_through(
        &mut sink,
        &[rejected("house", WEEK_START + 9, 1.0, "value decreased")],
    );
    assert_eq!(state_of(&broker, "values", "house")["value"], 101.5);
}

#[test]
fn commands_reach_the_service_only_when_enabled() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(&broker, "cmd");
    spec.commands.read_now = true;
    let (mut sink, handle) = open(&spec, dir.path(), &[house()]);
    write_through(&mut sink, &[reading("house", WEEK_START, 1.0)]);
    let client = Observer::new(&broker.url(), &["homeassistant/device/#"]);
    client.publish("cmd/house/read_now", b"PRESS", false);
    let got = handle.commands().recv_timeout(WAIT).unwrap();
    assert_eq!(
        got,
        MqttCommand::ReadNow {
            meter: "house".into()
        }
    );
    // set_value is off: it is not even subscribed. Home Assistant's
    // `online`, published after it, shows when the sink has seen both.
    client.publish("cmd/house/set_value", b"5", false);
    client.publish("cmd/garage/read_now", b"PRESS", false);
    client.publish("homeassistant/status", b"online", false);
    assert!(client.wait_until(WAIT, |r| r.iter().any(|m| !m.retain)));
    assert!(
        handle.commands().try_recv().is_err(),
        "a disabled or unknown command got through"
    );
    drop(sink);

    spec.commands.set_value = true;
    let (mut sink, handle) = open(&spec, dir.path(), &[house()]);
    // Delivered: connected and subscribed.
    write_through(&mut sink, &[reading("house", WEEK_START + 1, 2.0)]);
    client.publish("cmd/house/set_value", br#"{"value": 12345.6}"#, false);
    client.publish("cmd/house/set_value", b"not a number", false);
    client.publish("cmd/house/set_value", b"12346", false);
    let got: Vec<MqttCommand> = (0..2)
        .map(|_| handle.commands().recv_timeout(WAIT).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            MqttCommand::SetValue {
                meter: "house".into(),
                value: 12345.6
            },
            MqttCommand::SetValue {
                meter: "house".into(),
                value: 12346.0
            },
        ]
    );
}

const CHILD_ENV: &str = "METER_SINK_TEST_MQTT_CHILD";

/// The sink process of `last_will_offline_after_sigkill`: publishes one
/// reading, prints `ready`, then waits to be killed.
#[test]
#[ignore = "child process of last_will_offline_after_sigkill; does nothing on its own"]
fn mqtt_sink_child() {
    let Ok(config) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, dir) = config.split_once('\n').unwrap();
    let mut spec = MqttSpec::new(url);
    spec.topic_prefix = "will".into();
    spec.keep_alive_secs = 2;
    let (mut sink, _handle) = mqtt::open(&spec, dir, &[house()]).unwrap();
    write_through(&mut sink, &[reading("house", WEEK_START, 1.0)]);
    println!("ready");
    std::io::stdout().flush().unwrap();
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn last_will_offline_after_sigkill() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let watcher = Observer::new(&broker.url(), &["will/status"]);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mqtt::mqtt_sink_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}\n{}", broker.url(), dir.path().display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // libtest prints `test mqtt::mqtt_sink_child ... ` before the line.
        if BufReader::new(stdout)
            .lines()
            .any(|l| l.is_ok_and(|l| l.ends_with("ready")))
        {
            let _ = tx.send(());
        }
    });
    let ready = rx.recv_timeout(WAIT).is_ok();
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child sink never got ready");
    }
    let status = |r: &[Received]| -> Vec<Vec<u8>> { r.iter().map(|m| m.payload.clone()).collect() };
    assert!(watcher.wait_until(WAIT, |r| status(r).contains(&b"online".to_vec())));
    let killed = Instant::now();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(watcher.wait_until(WAIT, |r| status(r).last() == Some(&b"offline".to_vec())));
    let took = killed.elapsed();
    // Keep-alive 2 s: the broker must notice within 1.5 intervals.
    assert!(
        took <= Duration::from_secs(3),
        "offline came after {took:?}"
    );
    let retained = Observer::retained(&broker.url(), &["will/status"]);
    assert_eq!(retained[0].payload, b"offline", "the will is retained");
}

#[test]
fn broker_killed_and_restarted_10_times_while_writing() {
    let Some(mut broker) = Mosquitto::start() else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let spec = spec(&broker, "restarts");
    // A persistent session: the broker keeps what arrives while this
    // observer reconnects after a restart.
    let observer = Observer::with_session(
        &broker.url(),
        &["restarts/+/state"],
        Some("restart-observer"),
    );
    thread::sleep(Duration::from_millis(100)); // the broker saves the session
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (spec, dir, stop) = (spec.clone(), spool.path().to_owned(), stop.clone());
        thread::spawn(move || {
            let (mut sink, _handle) = open(&spec, &dir, &[house()]);
            let mut written: Vec<Record> = Vec::new();
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                // Every 7th reading is refused with a raw value below the
                // stored one: it must not lower `value`.
                let r = if i % 7 == 6 {
                    rejected("house", WEEK_START + i, i as f64 - 5.0, "value decreased")
                } else {
                    reading("house", WEEK_START + i, i as f64)
                };
                sink.write(std::slice::from_ref(&r))
                    .expect("a down broker must not fail a write");
                written.push(r);
                i += 1;
                thread::sleep(Duration::from_millis(3));
            }
            drain(&mut sink);
            (written, sink.status().appended_since_open)
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    for _ in 0..10 {
        thread::sleep(Duration::from_millis(rng.gen_range(100..300)));
        broker.kill();
        thread::sleep(Duration::from_millis(rng.gen_range(20..200)));
        broker.restart();
    }
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (written, spooled) = writer.join().unwrap();
    eprintln!(
        "mqtt restart test: {} readings written, {spooled} went through the spool",
        written.len()
    );
    assert!(
        spooled > 0,
        "the outages never reached the spool; the test proved nothing"
    );
    let last_time = time_of(written.last().unwrap().timestamp_s());
    assert!(
        observer.wait_until(WAIT, |r| r
            .iter()
            .any(|m| m.json()["time"] == last_time.as_str())),
        "the last reading never arrived\n{}",
        broker.log()
    );
    // What the sink handed to the broker, and whether the broker confirmed
    // it (its trace log).
    let prefix = format!("TRACE meter_sink::mqtt: MQTT {}: sent house ", broker.url());
    let mut outcomes: HashMap<String, Vec<bool>> = HashMap::new();
    for line in captured_logs().lock().unwrap().iter() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let (time, outcome) = rest.split_once(' ').unwrap();
            outcomes
                .entry(time.to_owned())
                .or_default()
                .push(outcome == "confirmed");
        }
    }
    let copies = observer.received();
    assert!(
        copies.iter().all(|m| !m.retain),
        "a persistent session gets no retained replays"
    );
    let states: Vec<Value> = copies.iter().map(Received::json).collect();
    let times: Vec<String> = states
        .iter()
        .map(|v| v["time"].as_str().unwrap().to_owned())
        .collect();
    let values: Vec<f64> = states
        .iter()
        .map(|v| v["value"].as_f64().unwrap())
        .collect();
    let expected: Vec<String> = written.iter().map(|r| time_of(r.timestamp_s())).collect();
    // Every reading, in order of first arrival.
    let mut first: Vec<String> = Vec::new();
    for t in &times {
        if !first.contains(t) {
            first.push(t.clone());
        }
    }
    let missing: Vec<&String> = expected.iter().filter(|t| !first.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "{} readings never published, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(first, expected, "readings out of order");
    // Exactly once, except what QoS 1 cannot tell apart: a reading the
    // broker forwarded and then died before its PUBACK reached the sink and
    // before it saved its retained state; the sink sends that one again.
    // Nothing the broker confirmed is ever sent again.
    let mut repeated = 0;
    for t in &expected {
        let sent = outcomes.get(t).map_or(&[][..], Vec::as_slice);
        let confirmed_at = sent.iter().position(|c| *c);
        assert!(
            confirmed_at.is_none_or(|i| i == sent.len() - 1),
            "reading {t} sent again after the broker confirmed it: {sent:?}"
        );
        let n = times.iter().filter(|x| *x == t).count();
        assert!(
            n <= sent.len().max(1),
            "reading {t} arrived {n} times but was sent {} times",
            sent.len()
        );
        repeated += n - 1;
    }
    eprintln!(
        "mqtt restart test: {repeated} readings arrived twice (sent again after the broker died between forwarding them and confirming or saving them)"
    );
    assert!(
        repeated * 50 <= expected.len(),
        "{repeated} of {} readings arrived twice",
        expected.len()
    );
    // Home Assistant takes any decrease for a meter reset: even the copies
    // sent again never lower the value.
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "a published value went down: {values:?}"
    );
    let last_stored = written
        .iter()
        .rev()
        .find_map(|r| match &r.kind {
            meter_sink::RecordKind::Stored(s) => Some(s.value),
            _ => None,
        })
        .unwrap();
    let retained = state_of(&broker, "restarts", "house");
    assert_eq!(retained["value"], last_stored);
    assert_eq!(retained["time"], last_time);
}

#[test]
fn wrong_password_is_one_clear_error_and_readings_wait() {
    const PASSWORD: &str = "c0rrect-h0rse-batt3ry";
    const WRONG: &str = "wr0ng-pa55word-st4ple";
    let setup = Setup {
        user: Some(("meter".into(), PASSWORD.into())),
        tls: None,
    };
    let Some(broker) = Mosquitto::start_with(setup) else {
        return;
    };
    let logs = captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(&broker, "auth");
    spec.user = Some("meter".into());
    spec.password = Some(WRONG.into());
    let (mut sink, _handle) = open(&spec, dir.path(), &[house()]);
    // Spooled first: the refusal comes back from the flush that waits for
    // delivery.
    for i in 0..5 {
        sink.write(&[reading("house", WEEK_START + i, i as f64)])
            .unwrap();
    }
    let errors: Vec<SinkError> = (0..2).filter_map(|_| sink.flush().err()).collect();
    assert!(!errors.is_empty(), "a wrong password went unnoticed");
    for e in &errors {
        assert!(matches!(e, SinkError::MqttRefused { .. }), "{e:?}");
        let text = format!("{e} {e:?}");
        assert!(
            text.contains("`user` and `password`") && text.contains(&broker.url()),
            "{text}"
        );
        assert!(
            !text.contains(WRONG),
            "the password is in the error: {text}"
        );
    }
    assert!(!errors[0].is_transient());
    assert_eq!(
        sink.status().pending_records,
        5,
        "readings are kept for later"
    );
    drop(sink);
    // Fixed: everything arrives, in order.
    spec.password = Some(PASSWORD.into());
    let (mut sink, _handle) = open(&spec, dir.path(), &[house()]);
    drain(&mut sink);
    drop(sink);
    let lines = logs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for secret in [PASSWORD, WRONG] {
        let leaked: Vec<&String> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaked.is_empty(), "a password is in the log: {leaked:?}");
    }
    let refusals = lines
        .iter()
        .filter(|l| {
            l.starts_with("ERROR")
                && l.contains("refused the connection")
                && l.contains(&broker.url())
        })
        .count();
    assert_eq!(
        refusals, 1,
        "one error line for a refusal, not one per retry: {lines:#?}"
    );
}

#[test]
fn a_replay_after_a_crash_is_not_published_twice() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&broker, "replay");
    let watcher = Observer::new(&broker.url(), &["replay/+/state"]);
    let batch = |from: i64, to: i64| -> Vec<Record> {
        (from..to)
            .map(|i| reading("house", WEEK_START + i, i as f64))
            .collect()
    };
    {
        let (mut sink, _handle) = open(&spec, dir.path(), &[house()]);
        write_through(&mut sink, &batch(0, 5));
    }
    // A crash after the broker's PUBACK, before the spool's ack and the
    // sink's memory: the spool still holds readings 3 and 4.
    std::fs::remove_file(dir.path().join("mqtt-memory.json")).unwrap();
    Spool::open(dir.path(), 1 << 20)
        .unwrap()
        .append(&batch(3, 8))
        .unwrap();
    let (mut sink, _handle) = open(&spec, dir.path(), &[house()]);
    drain(&mut sink);
    assert!(watcher.wait_until(WAIT, |r| r.len() >= 8));
    thread::sleep(Duration::from_millis(200));
    let times: Vec<String> = watcher
        .received()
        .iter()
        .map(|m| m.json()["time"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..8).map(|i| time_of(WEEK_START + i)).collect();
    assert_eq!(times, expected);
}

#[test]
fn config_check_rejects_units_home_assistant_does_not_take() {
    let spec = MqttSpec::new("mqtt://127.0.0.1:1");
    let err = spec
        .check_meter("heat", Some("kW"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("heat") && err.contains("\"kW\""), "{err}");
    let err = MqttSink::new(
        &spec,
        tempfile::tempdir().unwrap().path(),
        &[MeterInfo::new("heat", Some("kW"))],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("heat") && err.contains("kW"), "{err}");
    // Two names that would share one Home Assistant id.
    let err = MqttSink::new(
        &spec,
        tempfile::tempdir().unwrap().path(),
        &[
            MeterInfo::new("a.b", Some("kWh")),
            MeterInfo::new("a_b", Some("kWh")),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("a_b") && err.contains("a.b"), "{err}");
}

/// A private CA and a certificate for 127.0.0.1, by the `openssl` tool.
fn test_certificates(dir: &Path) -> Option<()> {
    let openssl = testkit::servers::binary_from(&["openssl"], "mosquitto.sh")?;
    let run = |args: &[&str]| {
        let ok = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl {args:?} failed");
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=meter-reader test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    Some(())
}

#[test]
fn mqtts_with_a_private_certificate_authority() {
    let certs = tempfile::tempdir().unwrap();
    if test_certificates(certs.path()).is_none() {
        return;
    }
    let setup = Setup {
        user: None,
        tls: Some((
            certs.path().join("server.crt"),
            certs.path().join("server.key"),
        )),
    };
    let Some(broker) = Mosquitto::start_with(setup) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(&broker, "tls");
    assert!(spec.url.starts_with("mqtts://"));
    // Without the CA the broker's certificate is not trusted.
    let (mut sink, _handle) = open(&spec, dir.path(), &[house()]);
    let err = sink.flush().and_then(|()| {
        sink.write(&[reading("house", WEEK_START, 1.0)])?;
        sink.flush()
    });
    assert!(
        err.is_err(),
        "an unknown certificate authority was accepted"
    );
    assert_eq!(sink.status().pending_records, 1);
    drop(sink);
    spec.ca_file = Some(certs.path().join("ca.crt"));
    let (mut sink, _handle) = open(&spec, dir.path(), &[house()]);
    drain(&mut sink);
}
