//! The Grafana dashboard's queries, read from `grafana/dashboards/meter.json`
//! with Grafana's macros and the dashboard variables substituted, run against
//! a real influxd holding a week of simulated readings of two meters.

use std::collections::BTreeMap;
use std::path::Path;

use meter_sink::{InfluxSink, Record, Sink};
use serde_json::Value;

use crate::{reading, rejected, WEEK_START};
use testkit::servers::Influxd;

const STEP: i64 = 600;
const DAY: i64 = 86_400;
const HOUR: i64 = 3600;

fn repo_file(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// kWh per hour at Unix time `ts`: a daily profile, growing by 10% a day.
fn rate(ts: i64) -> f64 {
    let hour = (ts.rem_euclid(DAY)) / HOUR;
    let base = match hour {
        0..=5 => 0.2,
        6..=8 => 1.5,
        9..=16 => 0.5,
        17..=21 => 2.0,
        _ => 0.3,
    };
    let day = (ts - WEEK_START).div_euclid(DAY);
    base * (1.0 + 0.1 * day as f64)
}

/// One reading every 10 minutes for a week: `(ts, value, rate)`.
fn week(start_value: f64, scale: f64) -> Vec<(i64, f64, f64)> {
    let mut value = start_value;
    let mut out = Vec::new();
    for i in 0..(7 * DAY / STEP) {
        let ts = WEEK_START + i * STEP;
        let r = rate(ts - STEP) * scale;
        if i > 0 {
            value += r * STEP as f64 / HOUR as f64;
        }
        out.push((ts, value, r));
    }
    out
}

fn to_records(meter: &str, week: &[(i64, f64, f64)]) -> Vec<Record> {
    week.iter()
        .map(|&(ts, v, r)| {
            let mut rec = reading(meter, ts, v);
            if let meter_sink::RecordKind::Stored(s) = &mut rec.kind {
                s.rate_per_hour = Some(r);
            }
            rec
        })
        .collect()
}

struct Dashboard {
    json: Value,
}

impl Dashboard {
    fn load() -> Self {
        Self {
            json: serde_json::from_str(&repo_file("grafana/dashboards/meter.json")).unwrap(),
        }
    }

    /// A variable's default value.
    fn default_of(&self, name: &str) -> String {
        let vars = self.json["templating"]["list"].as_array().unwrap();
        let var = vars
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        var["current"]["value"].as_str().unwrap().to_owned()
    }

    /// The raw InfluxQL of panel `title`, target `ref_id`.
    fn query(&self, title: &str, ref_id: &str) -> String {
        let panels = self.json["panels"].as_array().unwrap();
        let panel = panels
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        let target = panel["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["refId"] == ref_id)
            .unwrap_or_else(|| panic!("no target {ref_id} in {title:?}"));
        assert_eq!(target["rawQuery"], true, "{title}: raw InfluxQL expected");
        target["query"].as_str().unwrap().to_owned()
    }
}

/// What Grafana does before sending a query: macros and variables.
fn substitute(query: &str, from: i64, to: i64, vars: &[(&str, &str)]) -> String {
    let mut q = query
        .replace("$timeFilter", &format!("time >= {from}s and time <= {to}s"))
        .replace("$__interval", "1h");
    // Longest names first, so `$tz` cannot eat a prefix of another.
    let mut vars = vars.to_vec();
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in vars {
        q = q.replace(&format!("${name}"), value);
    }
    // (A `$` before `/` is the regex anchor.)
    let unsubstituted = q.match_indices('$').any(|(i, _)| {
        q[i + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '{')
    });
    assert!(!unsubstituted, "unsubstituted variable in {q}");
    q
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn provisioning_points_at_the_dashboard_data_source() {
    let ds = repo_file("grafana/provisioning/datasources/influxdb.yaml");
    assert!(
        ds.contains("uid: meter-influxdb") && ds.contains("type: influxdb"),
        "{ds}"
    );
    let providers = repo_file("grafana/provisioning/dashboards/meter-reader.yaml");
    assert!(providers.contains("type: file"), "{providers}");
    let dash = Dashboard::load();
    for panel in dash.json["panels"].as_array().unwrap() {
        assert_eq!(
            panel["datasource"]["uid"], "meter-influxdb",
            "{}",
            panel["title"]
        );
    }
}

#[test]
fn every_panel_query_returns_the_expected_numbers() {
    let Some(server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    let mut sink = InfluxSink::v1(&server.url(), "meters").build().unwrap();
    let house = week(12_345.0, 1.0);
    let garage = week(500.0, 0.25);
    sink.write(&to_records("house", &house)).unwrap();
    sink.write(&to_records("garage", &garage)).unwrap();
    let events = [
        rejected(
            "house",
            WEEK_START + DAY + 12 * HOUR,
            12_000.0,
            "value went down from 12360.2 to 12000",
        ),
        rejected(
            "house",
            WEEK_START + 3 * DAY + 7 * HOUR + 5,
            19_000.0,
            "rate 620 kWh/h above the limit 20",
        ),
        rejected(
            "garage",
            WEEK_START + 2 * DAY,
            1.0,
            "garage event, must not show for house",
        ),
    ];
    sink.write(&events).unwrap();

    let dash = Dashboard::load();
    let contract_max = dash.default_of("contract_max_per_day");
    let (from, to) = (WEEK_START, WEEK_START + 7 * DAY - 1);
    let run = |title: &str, ref_id: &str, tz: &str| {
        let q = substitute(
            &dash.query(title, ref_id),
            from,
            to,
            &[
                ("meter", "house"),
                ("contract_max_per_day", &contract_max),
                ("tz", tz),
            ],
        );
        let v = server.query(Some("meters"), &q);
        let series = v["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            series.len(),
            1,
            "{q}: one series (meter house) expected, got {series:?}"
        );
        if let Some(tags) = series[0].get("tags") {
            assert_eq!(tags["meter"], "house");
        }
        let rows: Vec<Vec<Value>> = series[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect();
        (q, rows)
    };

    // Meter value: the last value of each hour.
    let (q, rows) = run("Meter value", "A", "UTC");
    let mut last_per_hour = BTreeMap::new();
    for &(ts, v, _) in &house {
        last_per_hour.insert(ts.div_euclid(HOUR) * HOUR, v);
    }
    assert_eq!(rows.len(), last_per_hour.len(), "{q}");
    for (row, (hour, v)) in rows.iter().zip(&last_per_hour) {
        assert_eq!(row[0].as_i64(), Some(*hour), "{q}");
        assert!(close(row[1].as_f64().unwrap(), *v), "{q}: {row:?} vs {v}");
    }

    // Consumption per day, in UTC and in a zone east of it.
    let zones: &[(&str, i64)] = if Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        &[("UTC", 0), ("Europe/Berlin", HOUR)] // March 2026: UTC+1 all week
    } else {
        eprintln!("!!! no /usr/share/zoneinfo: consumption per day checked in UTC only");
        &[("UTC", 0)]
    };
    for &(tz, offset) in zones {
        let (q, rows) = run("Consumption per day", "A", tz);
        // Expected: last value of each local day minus the previous day's.
        let mut last_per_day = BTreeMap::new();
        for &(ts, v, _) in &house {
            last_per_day.insert((ts + offset).div_euclid(DAY), v);
        }
        let days: Vec<_> = last_per_day.into_iter().collect();
        let expected: Vec<(i64, f64)> = days
            .windows(2)
            .map(|w| (w[1].0 * DAY - offset, w[1].1 - w[0].1))
            .collect();
        assert!(expected.len() >= 6);
        let got: Vec<(i64, f64)> = rows
            .iter()
            .map(|r| (r[0].as_i64().unwrap(), r[1].as_f64().unwrap()))
            .collect();
        assert_eq!(got.len(), expected.len(), "{q}: {got:?} vs {expected:?}");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g.0, e.0, "{q}: day start");
            assert!(close(g.1, e.1), "{q}: {got:?} vs {expected:?}");
        }
        // Sanity of the simulation itself: Tuesday (day 1, +10%) in UTC.
        if tz == "UTC" {
            let tuesday: f64 = (0..DAY / STEP)
                .map(|i| rate(WEEK_START + DAY + i * STEP - STEP) * STEP as f64 / HOUR as f64)
                .sum();
            assert!(close(got[0].1, tuesday), "{} vs {tuesday}", got[0].1);
        }

        // The contract maximum: one red point per day at the configured value.
        let (q, rows) = run("Consumption per day", "B", tz);
        let local_days: std::collections::BTreeSet<i64> = house
            .iter()
            .map(|&(ts, _, _)| (ts + offset).div_euclid(DAY))
            .collect();
        assert_eq!(rows.len(), local_days.len(), "{q}: {rows:?}");
        for r in &rows {
            assert!(
                close(r[1].as_f64().unwrap(), contract_max.parse().unwrap()),
                "{q}: {r:?}"
            );
        }
    }

    // Rate per hour: the hourly mean of the stored rates.
    let (q, rows) = run("Rate per hour", "A", "UTC");
    let mut per_hour: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for &(ts, _, r) in &house {
        per_hour
            .entry(ts.div_euclid(HOUR) * HOUR)
            .or_default()
            .push(r);
    }
    assert_eq!(rows.len(), per_hour.len(), "{q}");
    for (row, (hour, rates)) in rows.iter().zip(&per_hour) {
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        assert_eq!(row[0].as_i64(), Some(*hour), "{q}");
        assert!(
            close(row[1].as_f64().unwrap(), mean),
            "{q}: {row:?} vs {mean}"
        );
    }

    // Recent rejected readings: newest first, with reasons, this meter only.
    let (q, rows) = run("Recent rejected and unsure readings", "A", "UTC");
    let expected: Vec<(i64, String, String, f64)> = events[..2]
        .iter()
        .rev()
        .map(|e| {
            let meter_sink::RecordKind::Event(ev) = &e.kind else {
                unreachable!()
            };
            (
                e.timestamp_s(),
                ev.status.as_str().to_owned(),
                ev.reason.clone(),
                ev.raw.unwrap(),
            )
        })
        .collect();
    let rows: Vec<(i64, String, String, f64)> = rows
        .iter()
        .map(|r| {
            let text = |v: &Value| v.as_str().unwrap().to_owned();
            (
                r[0].as_i64().unwrap(),
                text(&r[1]),
                text(&r[2]),
                r[3].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, expected, "{q}");
}
