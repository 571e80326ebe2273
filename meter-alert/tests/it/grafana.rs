//! `grafana/provisioning/alerting/*.yaml`: a schema test (unknown fields
//! refused, the provisioner's invariants checked), and every rule's InfluxQL
//! run against a real influxd on simulated meters, with Grafana's reduce
//! and threshold steps applied, asserting which meters would fire. Grafana
//! itself is not run (no binary obtainable here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use meter_sink::{DigitValue, Health, InfluxSink, Record, Sink, StoredValue};
use serde::Deserialize;
use serde_json::Value;

use testkit::servers::Influxd;

fn repo_file(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

// The provisioning file schema (apiVersion 1), as far as these files use
// it; unknown fields are refused so that a typo cannot pass silently.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlertingFile {
    api_version: u32,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    contact_points: Vec<ContactPoint>,
    #[serde(default)]
    policies: Vec<Policy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Group {
    org_id: u32,
    name: String,
    folder: String,
    interval: String,
    rules: Vec<AlertRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AlertRule {
    uid: String,
    title: String,
    condition: String,
    data: Vec<Query>,
    no_data_state: String,
    exec_err_state: String,
    #[serde(rename = "for")]
    for_: String,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    is_paused: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Query {
    ref_id: String,
    relative_time_range: Option<TimeRange>,
    datasource_uid: String,
    model: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeRange {
    from: u64,
    to: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContactPoint {
    org_id: u32,
    name: String,
    receivers: Vec<Receiver>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Receiver {
    uid: String,
    #[serde(rename = "type")]
    kind: String,
    settings: BTreeMap<String, Value>,
    disable_resolve_message: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    #[serde(rename = "orgId")]
    org_id: Option<u32>,
    receiver: String,
    #[serde(default)]
    group_by: Vec<String>,
    group_wait: Option<String>,
    group_interval: Option<String>,
    repeat_interval: Option<String>,
    #[serde(default)]
    object_matchers: Vec<[String; 3]>,
    #[serde(rename = "continue", default)]
    continue_: bool,
    #[serde(default)]
    routes: Vec<Policy>,
}

fn load() -> Vec<(String, AlertingFile)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../grafana/provisioning/alerting");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let file: AlertingFile =
                serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, file)
        })
        .collect()
}

fn rules() -> Vec<AlertRule> {
    load()
        .into_iter()
        .flat_map(|(_, f)| f.groups)
        .flat_map(|g| g.rules)
        .collect()
}

fn seconds(d: &str) -> u64 {
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("duration {d:?}"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => panic!("duration {d:?}"),
    }
}

#[test]
fn alerting_files_pass_the_provisioners_invariants() {
    let datasource = repo_file("grafana/provisioning/datasources/influxdb.yaml");
    assert!(datasource.contains("uid: meter-influxdb"));
    let files = load();
    let mut uids = BTreeSet::new();
    let mut contact_points = BTreeSet::new();
    let mut receiver_uids = BTreeSet::new();
    let mut policies = Vec::new();
    for (name, f) in &files {
        assert_eq!(f.api_version, 1, "{name}");
        for g in &f.groups {
            assert_eq!(g.org_id, 1);
            assert!(!g.folder.is_empty() && !g.name.is_empty());
            assert_eq!(
                seconds(&g.interval) % 10,
                0,
                "{name}: interval a multiple of 10 s"
            );
            let mut titles = BTreeSet::new();
            for r in &g.rules {
                let at = format!("{name}: rule {}", r.uid);
                assert!(
                    titles.insert(&r.title),
                    "{at}: title repeated in the folder"
                );
                assert!(
                    r.uid.len() <= 40
                        && r.uid
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                    "{at}: uid"
                );
                assert!(uids.insert(r.uid.clone()), "{at}: uid repeated");
                assert!(
                    ["Alerting", "NoData", "OK", "KeepLast"].contains(&r.no_data_state.as_str()),
                    "{at}"
                );
                assert!(
                    ["Alerting", "Error", "OK", "KeepLast"].contains(&r.exec_err_state.as_str()),
                    "{at}"
                );
                seconds(&r.for_);
                assert!(!r.is_paused, "{at}");
                assert_eq!(
                    r.labels.get("source").map(String::as_str),
                    Some("meter-reader"),
                    "{at}: routed by label"
                );
                assert!(r.annotations.contains_key("summary"), "{at}");
                let refs: BTreeSet<&str> = r.data.iter().map(|q| q.ref_id.as_str()).collect();
                assert_eq!(refs.len(), r.data.len(), "{at}: refIds repeated");
                assert!(
                    refs.contains(r.condition.as_str()),
                    "{at}: condition {} is no refId",
                    r.condition
                );
                for q in &r.data {
                    assert_eq!(q.model["refId"], q.ref_id.as_str(), "{at}");
                    match q.datasource_uid.as_str() {
                        "meter-influxdb" => {
                            let range = q
                                .relative_time_range
                                .as_ref()
                                .expect("a query needs a time range");
                            assert!(range.from > range.to, "{at}");
                            assert_eq!(q.model["rawQuery"], true, "{at}");
                            let text = q.model["query"].as_str().unwrap();
                            let vars: Vec<&str> =
                                text.match_indices('$').map(|(i, _)| &text[i..]).collect();
                            for v in vars {
                                assert!(
                                    v.starts_with("$timeFilter") || v.starts_with("$__interval"),
                                    "{at}: {v:?}: dashboard variables do not exist in alert rules"
                                );
                            }
                        }
                        "__expr__" => {
                            let input = q.model["expression"].as_str().unwrap();
                            assert!(refs.contains(input), "{at}: expression {input} is no refId");
                            match q.model["type"].as_str().unwrap() {
                                "reduce" => assert!(
                                    ["last", "mean", "min", "max", "sum", "count"]
                                        .contains(&q.model["reducer"].as_str().unwrap()),
                                    "{at}"
                                ),
                                "threshold" => {
                                    let e = &q.model["conditions"][0]["evaluator"];
                                    assert!(
                                        ["gt", "lt", "within_range", "outside_range"]
                                            .contains(&e["type"].as_str().unwrap()),
                                        "{at}"
                                    );
                                    assert!(e["params"][0].is_number(), "{at}");
                                }
                                other => panic!("{at}: expression type {other} not used here"),
                            }
                        }
                        other => panic!("{at}: unknown data source {other}"),
                    }
                }
            }
        }
        for c in &f.contact_points {
            assert_eq!(c.org_id, 1);
            assert!(
                contact_points.insert(c.name.clone()),
                "{name}: contact point {} repeated",
                c.name
            );
            for r in &c.receivers {
                assert!(
                    receiver_uids.insert(r.uid.clone()),
                    "{name}: receiver uid {} repeated",
                    r.uid
                );
                let required: &[&str] = match r.kind.as_str() {
                    "telegram" => &["bottoken", "chatid"],
                    "webhook" => &["url"],
                    other => panic!("{name}: receiver type {other} not used here"),
                };
                for k in required {
                    assert!(r.settings.contains_key(*k), "{name}: {} needs {k}", r.uid);
                }
                // Secrets come from Grafana's environment, never the file.
                for (k, v) in &r.settings {
                    if ["bottoken", "url", "chatid"].contains(&k.as_str()) {
                        assert!(
                            v.as_str().unwrap().starts_with('$'),
                            "{name}: {k} must be an environment variable"
                        );
                    }
                }
                assert!(!r.disable_resolve_message);
            }
        }
        policies.extend(&f.policies);
    }
    assert_eq!(policies.len(), 1, "one policy tree");
    fn receivers<'a>(p: &'a Policy, out: &mut Vec<&'a str>) {
        out.push(&p.receiver);
        for r in &p.routes {
            assert!(r
                .object_matchers
                .iter()
                .all(|m| ["=", "!=", "=~", "!~"].contains(&m[1].as_str())));
            receivers(r, out);
        }
    }
    let mut used = Vec::new();
    receivers(policies[0], &mut used);
    for r in used {
        assert!(
            contact_points.contains(r),
            "policy receiver {r} is no contact point"
        );
    }
    let p = policies[0];
    assert!(p.group_by.iter().any(|g| g == "meter"));
    assert!(p.routes.iter().filter(|r| r.continue_).count() >= 1);
    assert!(
        p.org_id == Some(1)
            && p.group_wait.is_some()
            && p.group_interval.is_some()
            && p.repeat_interval.is_some()
    );
    let mut got: Vec<String> = uids.into_iter().collect();
    got.sort();
    assert_eq!(
        got,
        [
            "meter-camera-silent",
            "meter-continuous-flow",
            "meter-daily-max",
            "meter-refusal-streak",
            "meter-silent"
        ]
    );
}

#[test]
fn unknown_fields_are_refused() {
    let text = repo_file("grafana/provisioning/alerting/rules.yaml")
        .replace("noDataState: OK", "noDataStat: OK");
    let e = serde_norway::from_str::<AlertingFile>(&text)
        .unwrap_err()
        .to_string();
    assert!(e.contains("noDataStat"), "{e}");
}

// The scenario: simulated meters written relative to the real clock (the
// rules use now()).

const MIN: i64 = 60;
const HOUR: i64 = 3600;

fn reading(meter: &str, ts: i64, value: f64) -> Record {
    Record::stored(
        meter,
        time::OffsetDateTime::from_unix_timestamp(ts).unwrap(),
        StoredValue {
            value,
            raw: value,
            rate_per_hour: None,
            confidence_min: 0.99,
            digits: vec![DigitValue {
                tenths: "1".parse().unwrap(),
                confidence: 0.99,
            }],
        },
    )
}

fn health(meter: &str, ts: i64, since_frame: f64, refused: u32) -> Record {
    Record::health(
        meter,
        time::OffsetDateTime::from_unix_timestamp(ts).unwrap(),
        Health {
            seconds_since_frame: Some(since_frame),
            seconds_since_stored: Some(since_frame),
            not_stored_in_a_row: refused,
        },
    )
}

/// The rule evaluated as Grafana would: query A with `$timeFilter` from the
/// relative time range, reduce B per series, threshold C. `None` for no
/// data.
fn firing(server: &Influxd, db: &str, rule: &AlertRule) -> Option<BTreeSet<String>> {
    let by_ref = |r: &str| rule.data.iter().find(|q| q.ref_id == r).unwrap();
    let threshold = by_ref(&rule.condition);
    let reduce = by_ref(threshold.model["expression"].as_str().unwrap());
    let query = by_ref(reduce.model["expression"].as_str().unwrap());
    let range = query.relative_time_range.as_ref().unwrap();
    let q = query.model["query"].as_str().unwrap().replace(
        "$timeFilter",
        &format!(
            "time >= now() - {}s and time <= now() - {}s",
            range.from, range.to
        ),
    );
    let v = server.query(Some(db), &q);
    let series = v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if series.is_empty() {
        return None;
    }
    let evaluator = &threshold.model["conditions"][0]["evaluator"];
    let limit = evaluator["params"][0].as_f64().unwrap();
    let mut out = BTreeSet::new();
    for s in series {
        let meter = s["tags"]["meter"].as_str().unwrap().to_owned();
        let values: Vec<f64> = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r[1].as_f64())
            .collect();
        let reduced = match reduce.model["reducer"].as_str().unwrap() {
            "last" => values.last().copied(),
            "min" => values.iter().copied().reduce(f64::min),
            "max" => values.iter().copied().reduce(f64::max),
            "sum" => Some(values.iter().sum()),
            other => panic!("reducer {other}"),
        };
        let Some(x) = reduced else { continue };
        let fires = match evaluator["type"].as_str().unwrap() {
            "gt" => x > limit,
            "lt" => x < limit,
            other => panic!("evaluator {other}"),
        };
        if fires {
            out.insert(meter);
        }
    }
    Some(out)
}

#[test]
fn every_rule_fires_for_its_meter_on_real_influxd() {
    let Some(server) = Influxd::start() else {
        return;
    };
    let mut now = time::OffsetDateTime::now_utc().unix_timestamp();
    let midnight = now.div_euclid(86_400) * 86_400;
    if now - midnight < 10 * MIN {
        // "Today" must have room for the heavy meter's use.
        std::thread::sleep(std::time::Duration::from_secs(
            (midnight + 10 * MIN - now) as u64 + 1,
        ));
        now = time::OffsetDateTime::now_utc().unix_timestamp();
    }
    if now.rem_euclid(HOUR) > HOUR - MIN {
        // "dripping" ticks 30 s past now's minute of every hour.
        std::thread::sleep(std::time::Duration::from_secs(MIN as u64 + 1));
        now = time::OffsetDateTime::now_utc().unix_timestamp();
    }
    // dripping: 1 litre an hour, each litre at now's minute of the hour and
    // 30 s, so the hour before now's hour holds its litre after the moment
    // `now - 1h`; a rule that cut that hour at `now - 1h` sees no use in it.
    let tick = now.rem_euclid(HOUR) + 30;
    let ticks = |t: i64| (t - tick).div_euclid(HOUR);
    server.create_database("meters");
    let mut sink = InfluxSink::v1(&server.url(), "meters").build().unwrap();
    let mut records = Vec::new();
    let start = now - 48 * HOUR;
    let mut t = start;
    while t <= now {
        let hours = (t - start) as f64 / HOUR as f64;
        // house: 0.3 an hour, nothing from 01:00 to 05:00 UTC.
        let house: f64 = (0..((t - start) / (10 * MIN)))
            .map(|i| start + i * 10 * MIN)
            .filter(|&s| !(1..5).contains(&(s.rem_euclid(86_400) / HOUR)))
            .count() as f64
            * 0.05;
        records.push(reading("house", t, 1000.0 + house));
        // leaky: 2 litres an hour, a counter in litres.
        records.push(reading(
            "leaky",
            t,
            ((50.0 + 0.002 * hours) * 1000.0).round() / 1000.0,
        ));
        records.push(reading(
            "dripping",
            t,
            (20_000 + ticks(t) - ticks(start)) as f64 / 1000.0,
        ));
        // heavy: 20 at once, today.
        let jump = if t >= midnight + (now - midnight) / 2 {
            20.0
        } else {
            0.0
        };
        records.push(reading("heavy", t, 300.0 + jump));
        t += 10 * MIN;
    }
    for m in (0..=180).rev() {
        let t = now - m * MIN;
        records.push(health("house", t, 30.0, 0));
        records.push(health("leaky", t, 30.0, 0));
        records.push(health("heavy", t, 30.0, 0));
        records.push(health("refused", t, 30.0, if m < 5 { 25 } else { 3 }));
        records.push(health("blind", t, if m < 5 { 3600.0 } else { 30.0 }, 0));
        // silent: the reader stopped writing its health 40 minutes ago.
        if m > 40 {
            records.push(health("silent", t, 30.0, 0));
        }
    }
    for chunk in records.chunks(1000) {
        sink.write(chunk).unwrap();
    }
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("meter-daily-max", &["heavy"][..]),
        ("meter-continuous-flow", &["dripping", "leaky"][..]),
        ("meter-refusal-streak", &["refused"][..]),
        ("meter-silent", &["silent"][..]),
        ("meter-camera-silent", &["blind"][..]),
    ]);
    let all = rules();
    assert_eq!(all.len(), expected.len());
    for rule in &all {
        let got =
            firing(&server, "meters", rule).unwrap_or_else(|| panic!("{}: no data", rule.uid));
        let want: BTreeSet<String> = expected[rule.uid.as_str()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, want, "{}: {}", rule.uid, server.log());
    }

    // A reader that died a day ago has no health series at all: the
    // silence rule gets no data, and its noDataState fires.
    server.create_database("dead");
    let mut sink = InfluxSink::v1(&server.url(), "dead").build().unwrap();
    sink.write(&[
        health("house", now - 30 * HOUR, 30.0, 0),
        reading("house", now - 30 * HOUR, 1.0),
    ])
    .unwrap();
    let silent = all.iter().find(|r| r.uid == "meter-silent").unwrap();
    assert_eq!(firing(&server, "dead", silent), None);
    assert_eq!(silent.no_data_state, "Alerting");
    let daily = all.iter().find(|r| r.uid == "meter-daily-max").unwrap();
    assert_eq!(
        daily.no_data_state, "OK",
        "no readings is the silence rules' business"
    );
}
