//! A meter's history, read back from the JSON-lines file sinks: the chart
//! (server-side SVG), consumption per day in the local time zone, the
//! readings that were not stored, and `/api/meters/{name}/readings`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

use meter_service::config::{MeterConfig, ResolvedConfig};
use meter_sink::{Record, RecordKind, SinkSpec};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::html::{esc, seg};
use crate::http::{Req, Resp};

/// Kept digit images by reading time (unix seconds) and digit.
pub type KeptCrops = BTreeMap<i64, BTreeMap<usize, PathBuf>>;

/// Most readings returned or drawn (the newest ones).
pub const MAX_POINTS: usize = 100_000;

/// One record as the API gives it.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Capture time (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// `stored`, `unsure`, `rejected`.
    pub status: String,
    /// The stored value.
    pub value: Option<f64>,
    /// The reading before plausibility.
    pub raw: Option<f64>,
    /// Why it was not stored.
    pub reason: Option<String>,
}

/// What could be read.
#[derive(Debug, Default)]
pub struct History {
    /// The files read.
    pub files: Vec<PathBuf>,
    /// Records, oldest first.
    pub points: Vec<Point>,
    /// Files that could not be read, with why.
    pub problems: Vec<String>,
}

/// The JSON-lines sinks' files of `cfg` (CSV and databases are not read
/// back here).
fn files(cfg: &ResolvedConfig) -> Vec<PathBuf> {
    cfg.sinks
        .iter()
        .filter(|s| matches!(s, SinkSpec::Jsonl { .. }))
        .filter_map(|s| s.file(&cfg.base_dir))
        .collect()
}

/// Meter `name`'s records between `from` and `to`.
pub fn load(
    cfg: &ResolvedConfig,
    name: &str,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> History {
    let mut h = History {
        files: files(cfg),
        ..History::default()
    };
    for path in &h.files {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                h.problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let mut bad = 0usize;
        for line in std::io::BufReader::new(file).lines() {
            let Ok(line) = line else {
                bad += 1;
                continue;
            };
            // Cheap filter before parsing: most lines of a shared file
            // belong to other meters.
            if !line.contains(&format!("\"meter\":\"{name}\"")) {
                continue;
            }
            let Ok(r) = serde_json::from_str::<Record>(&line) else {
                bad += 1;
                continue;
            };
            if r.meter != name
                || from.is_some_and(|f| r.captured_at < f)
                || to.is_some_and(|t| r.captured_at > t)
            {
                continue;
            }
            let p = match r.kind {
                RecordKind::Stored(s) => Point {
                    time: r.captured_at,
                    status: "stored".into(),
                    value: Some(s.value),
                    raw: Some(s.raw),
                    reason: None,
                },
                RecordKind::Event(e) => Point {
                    time: r.captured_at,
                    status: e.status.as_str().into(),
                    value: None,
                    raw: e.raw,
                    reason: Some(e.reason),
                },
                RecordKind::Health(_) => continue,
            };
            h.points.push(p);
        }
        if bad > 0 {
            h.problems.push(format!(
                "{}: {bad} unreadable lines skipped",
                path.display()
            ));
        }
    }
    h.points.sort_by_key(|p| p.time);
    if h.points.len() > MAX_POINTS {
        h.points.drain(..h.points.len() - MAX_POINTS);
    }
    h
}

fn parse_time(req: &Req, key: &str) -> Result<Option<OffsetDateTime>, Resp> {
    req.query
        .get(key)
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
                Resp::error(
                    400,
                    &format!("{key}={t:?}: expected an RFC 3339 time such as 2024-01-31T00:00:00Z"),
                )
            })
        })
        .transpose()
}

/// `/api/meters/{name}/readings?from=&to=`.
pub fn readings_api(cfg: &ResolvedConfig, m: &MeterConfig, req: &Req) -> Result<Resp, Resp> {
    let from = parse_time(req, "from")?;
    let to = parse_time(req, "to")?;
    let h = load(cfg, &m.name, from, to);
    if h.files.is_empty() {
        return Err(Resp::error(
            404,
            "no JSON-lines sink in the config: the history cannot be read back here",
        ));
    }
    Ok(Resp::json(&h.points))
}

/// The calendar day of `t` in the local time zone.
fn local_day(tz: &jiff::tz::TimeZone, t: OffsetDateTime) -> String {
    jiff::Timestamp::from_second(t.unix_timestamp())
        .map(|ts| tz.to_datetime(ts).date().to_string())
        .unwrap_or_default()
}

/// Consumption per local day: the last stored value of a day minus the
/// last of the day before (the first day: minus its first).
pub fn per_day(points: &[Point]) -> Vec<(String, f64)> {
    let tz = jiff::tz::TimeZone::system();
    let mut days: Vec<(String, f64, f64)> = Vec::new();
    for p in points {
        let Some(v) = p.value else { continue };
        let day = local_day(&tz, p.time);
        match days.last_mut() {
            Some((d, _, last)) if *d == day => *last = v,
            _ => {
                let first = days.last().map_or(v, |d| d.2);
                days.push((day, first, v));
            }
        }
    }
    days.into_iter().map(|(d, a, b)| (d, b - a)).collect()
}

/// The stored values as an SVG line chart.
pub fn chart(points: &[Point]) -> String {
    let vals: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.value.map(|v| (p.time.unix_timestamp() as f64, v)))
        .collect();
    if vals.len() < 2 {
        return "<p class=\"msg\">fewer than two stored values: nothing to draw</p>".into();
    }
    let (w, h, pad) = (640.0, 220.0, 40.0);
    let (t0, t1) = (vals[0].0, vals[vals.len() - 1].0);
    let (lo, hi) = vals.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, v)| {
        (lo.min(v), hi.max(v))
    });
    let span_t = (t1 - t0).max(1.0);
    let span_v = (hi - lo).max(1e-9);
    let x = |t: f64| pad + (t - t0) / span_t * (w - 2.0 * pad);
    let y = |v: f64| h - pad - (v - lo) / span_v * (h - 2.0 * pad);
    let line: String = vals
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect::<Vec<_>>()
        .join(" ");
    let fmt = |t: f64| {
        OffsetDateTime::from_unix_timestamp(t as i64)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    };
    format!(
        "<svg id=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         xmlns=\"http://www.w3.org/2000/svg\" style=\"background:#fff\">\
         <polyline points=\"{line}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\"/>\
         <text x=\"{pad}\" y=\"{}\" font-size=\"11\">{}</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>\
         <text x=\"4\" y=\"{pad}\" font-size=\"11\">{hi}</text>\
         <text x=\"4\" y=\"{}\" font-size=\"11\">{lo}</text></svg>",
        h - 10.0,
        fmt(t0),
        w - pad,
        h - 10.0,
        fmt(t1),
        h - pad
    )
}

/// Consumption per day as SVG bars, with the contract's maximum per day
/// as red points (as the Grafana dashboard draws it) when given.
pub fn day_chart(days: &[(String, f64)], max_per_day: Option<f64>) -> String {
    if days.is_empty() {
        return String::new();
    }
    let (w, h, pad) = (640.0, 160.0, 20.0);
    let top = days
        .iter()
        .map(|d| d.1)
        .chain(max_per_day)
        .fold(1e-9, f64::max);
    let step = (w - 2.0 * pad) / days.len() as f64;
    let y = |v: f64| h - pad - v.max(0.0) / top * (h - 2.0 * pad);
    let mut out = format!(
        "<svg id=\"daychart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         xmlns=\"http://www.w3.org/2000/svg\" style=\"background:#fff\">"
    );
    for (i, (day, v)) in days.iter().enumerate() {
        let x = pad + i as f64 * step;
        out.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#1565c0\"><title>{} {v:.3}</title></rect>",
            x + step * 0.1,
            y(*v),
            step * 0.8,
            h - pad - y(*v),
            esc(day)
        ));
        if let Some(mx) = max_per_day {
            out.push_str(&format!(
                "<circle class=\"max\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"red\"/>",
                x + step * 0.5,
                y(mx)
            ));
        }
    }
    out.push_str(&format!(
        "<text x=\"4\" y=\"12\" font-size=\"11\">{top:.3}</text></svg>"
    ));
    out
}

/// The history section of a meter's page; `max_per_day`: the contract's
/// maximum consumption per day, drawn as red points; `kept`: the digit
/// images the reader kept of unsure readings, by reading time.
pub fn section(h: &History, m: &MeterConfig, max_per_day: Option<f64>, kept: &KeptCrops) -> String {
    if h.files.is_empty() {
        return "<p class=\"msg\">No JSON-lines sink in the config: the history cannot be read \
                back here (add a [[sink]] with type = \"jsonl\").</p>"
            .into();
    }
    let unit = esc(m.unit.as_deref().unwrap_or(""));
    let mut out = String::new();
    for p in &h.problems {
        out.push_str(&format!("<p class=\"err\">{}</p>", esc(p)));
    }
    out.push_str(&chart(&h.points));
    let days = per_day(&h.points);
    out.push_str("<h3>Consumption per day (local time)</h3>");
    out.push_str(&day_chart(&days, max_per_day));
    out.push_str(&format!(
        "<form method=\"get\">contract maximum per day <input name=\"max_per_day\" size=\"6\" value=\"{}\"> <button>draw</button></form>",
        max_per_day.map(|v| v.to_string()).unwrap_or_default()
    ));
    out.push_str("<table id=\"days\"><tr><th>day</th><th>consumption</th></tr>");
    for (d, c) in days.iter().rev() {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{c:.3} {unit}</td></tr>",
            esc(d)
        ));
    }
    out.push_str("</table><h3>Not stored (newest first)</h3><table id=\"notstored\"><tr><th>time</th><th>status</th><th>raw</th><th>reason</th><th>frame</th></tr>");
    for p in h
        .points
        .iter()
        .rev()
        .filter(|p| p.status != "stored")
        .take(50)
    {
        out.push_str(&format!(
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.time.format(&Rfc3339).unwrap_or_default()),
            esc(&p.status),
            esc(&p.status),
            p.raw.map(|r| r.to_string()).unwrap_or_default(),
            esc(p.reason.as_deref().unwrap_or("")),
            kept_cell(m, p, kept)
        ));
    }
    out.push_str("</table>");
    out
}

/// A not-stored reading's kept digit images, each linked to itself, or
/// "frame not kept" (labelled since, the folder was full, or the same
/// pictures were kept already).
fn kept_cell(m: &MeterConfig, p: &Point, kept: &KeptCrops) -> String {
    let stamp = p.time.unix_timestamp();
    let digits = kept.get(&stamp).filter(|d| !d.is_empty());
    let Some(digits) = digits else {
        return "<span class=\"msg\">frame not kept</span>".into();
    };
    digits
        .keys()
        .map(|k| {
            let url = format!("/api/meters/{}/unsure/{stamp}/{k}.png", seg(&m.name));
            format!(
                "<a href=\"{url}\"><img class=\"kept\" src=\"{url}\" alt=\"digit {}\" height=\"32\"></a>",
                k + 1
            )
        })
        .collect()
}
