//! The HTML pages (maud escapes every value put in them): the overview and
//! a meter's detail; the layout they share.

use meter_service::config::MeterConfig;

use crate::app::{App, MeterJson};
use crate::history;
use crate::html::{esc, seg};
use crate::http::{Req, Resp};

const CSS: &str = r#"
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
nav{background:#223;padding:.5em 1em}nav a{color:#fff;margin-right:1.2em;text-decoration:none}
main{padding:1em}h1{font-size:1.3em}.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{background:#fff;border-radius:6px;padding:.8em;box-shadow:0 1px 3px #0002;max-width:680px}
.card h2{font-size:1.1em;margin:.1em 0 .5em}.frame{max-width:100%;display:block}
.digits{display:flex;gap:4px;margin:.5em 0}.digits figure{margin:0;text-align:center;font-size:.8em}
.digits img{height:48px;image-rendering:pixelated;display:block}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}
.stored{color:#080}.unsure{color:#b60}.rejected{color:#c00}.err{color:#c00}
button{padding:.3em .8em}.msg{min-height:1.4em;color:#555}
"#;

/// A page with the navigation bar; `body` is HTML already escaped.
pub fn layout(title: &str, body: &str) -> String {
    let t = esc(title);
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{t} · meter</title><style>{CSS}</style><script>{COMMON_JS}</script></head><body>\
         <nav><a href=\"/\">Overview</a><a href=\"/label\">Label</a><a href=\"/models\">Models</a>\
         <a href=\"/metrics\">Metrics</a></nav><main><h1>{t}</h1>{body}</main></body></html>"
    )
}

/// Shared by the pages: POST JSON to this server.
const COMMON_JS: &str = r#"
async function post(url, body) {
  const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                              body: JSON.stringify(body || {})});
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}
"#;

/// Seconds as "12 s", "5 min", "3 h", "2 d".
pub fn age(s: f64) -> String {
    match s {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.0} h", s / 3600.0),
        s => format!("{:.0} d", s / 86400.0),
    }
}

fn status_class(m: &MeterJson) -> &'static str {
    m.last.as_ref().map_or("", |r| r.status.as_str())
}

fn card(m: &MeterJson) -> String {
    let name = esc(&m.name);
    let base = format!("/api/meters/{}", seg(&m.name));
    let last = m.last.as_ref();
    let stamp = last.map(|r| r.time.unix_timestamp()).unwrap_or(0);
    let mut out = format!(
        "<div class=\"card\" data-m=\"{name}\"><h2><a href=\"/meter/{}\">{name}</a></h2>",
        seg(&m.name)
    );
    match last {
        Some(r) => {
            out.push_str(&format!(
                "<img class=\"frame\" data-f=\"frame\" src=\"{base}/frame.jpg?t={stamp}\" alt=\"last frame\">\
                 <div class=\"digits\" data-f=\"digits\">"
            ));
            for (k, d) in r.digits.iter().enumerate() {
                out.push_str(&format!(
                    "<figure><img src=\"{base}/digits/{k}.png?t={stamp}\" alt=\"digit {k}\">\
                     <figcaption>{:.1}<br>{:.0}%</figcaption></figure>",
                    d.value,
                    d.confidence * 100.0
                ));
            }
            out.push_str("</div>");
        }
        None => out.push_str(if m.running {
            "<p class=\"msg\">no reading yet</p>"
        } else {
            "<p class=\"msg\">not read by this process: live frames are shown inside \
             <code>meter run</code> with [serve]</p>"
        }),
    }
    let row = |label: &str, field: &str, class: &str, value: String| {
        format!(
            "<tr><th>{label}</th><td data-f=\"{field}\" class=\"{class}\">{}</td></tr>",
            esc(&value)
        )
    };
    out.push_str("<table>");
    out.push_str(&row(
        "stored value",
        "stored",
        "",
        format!(
            "{} {}",
            m.stored_text.as_deref().unwrap_or("none"),
            m.unit.as_deref().unwrap_or("")
        ),
    ));
    out.push_str(&row(
        "read",
        "age",
        "",
        m.age_s
            .map(|a| format!("{} ago", age(a)))
            .unwrap_or_else(|| "never".into()),
    ));
    out.push_str(&row(
        "last reading",
        "raw",
        "",
        last.map(|r| r.raw_text.clone()).unwrap_or_default(),
    ));
    out.push_str(&row(
        "status",
        "status",
        status_class(m),
        last.map(|r| r.status.as_str().to_owned())
            .unwrap_or_default(),
    ));
    out.push_str(&row(
        "probability",
        "probability",
        "",
        last.map(|r| format!("{:.3}", r.probability))
            .unwrap_or_default(),
    ));
    out.push_str(&row(
        "reason",
        "reason",
        "",
        last.and_then(|r| r.reason.clone()).unwrap_or_default(),
    ));
    out.push_str(&row(
        "camera",
        "camera",
        if m.last_error.is_some() { "err" } else { "" },
        camera_text(m),
    ));
    out.push_str(&format!(
        "</table><p><a href=\"/meter/{0}\">history</a> · <a href=\"/editor/{0}\">box editor</a></p></div>",
        seg(&m.name)
    ));
    out
}

/// The camera's health in words.
pub fn camera_text(m: &MeterJson) -> String {
    let mut s = match &m.last_error {
        Some(e) => e.clone(),
        None if m.running => "ok".into(),
        None => String::new(),
    };
    if m.capture_failures > 0 {
        s.push_str(&format!(" ({} capture failures)", m.capture_failures));
    }
    if let Some(t) = &m.camera_moved {
        s.push_str(&format!(" (moved {t})"));
    }
    s
}

const OVERVIEW_JS: &str = r#"
function ago(s){return s<120?Math.round(s)+' s':s<7200?Math.round(s/60)+' min':s<172800?Math.round(s/3600)+' h':Math.round(s/86400)+' d';}
async function refresh(){
  let ms; try { ms = await (await fetch('/api/meters')).json(); } catch(e) { return; }
  for (const m of ms) {
    const c = document.querySelector('[data-m="' + CSS.escape(m.name) + '"]'); if (!c) continue;
    const set = (f, t) => { const e = c.querySelector('[data-f="' + f + '"]'); if (e) e.textContent = t; };
    set('stored', (m.stored_text ?? 'none') + ' ' + (m.unit ?? ''));
    set('age', m.age_s == null ? 'never' : ago(m.age_s) + ' ago');
    const r = m.last;
    if (r) {
      set('raw', r.raw_text); set('status', r.status); set('probability', r.probability.toFixed(3));
      set('reason', r.reason ?? '');
      const st = c.querySelector('[data-f="status"]'); if (st) st.className = r.status;
      const t = Math.floor(Date.parse(r.time) / 1000);
      const f = c.querySelector('[data-f="frame"]');
      if (f && !f.src.endsWith('t=' + t)) {
        if (f) f.src = '/api/meters/' + encodeURIComponent(m.name) + '/frame.jpg?t=' + t;
        c.querySelectorAll('[data-f="digits"] figure').forEach((fig, k) => {
          const d = r.digits[k]; if (!d) return;
          fig.querySelector('img').src = '/api/meters/' + encodeURIComponent(m.name) + '/digits/' + k + '.png?t=' + t;
          fig.querySelector('figcaption').innerHTML = '';
          fig.querySelector('figcaption').append(d.value.toFixed(1), document.createElement('br'), Math.round(d.confidence * 100) + '%');
        });
      }
    }
  }
}
setInterval(refresh, 3000);
"#;

/// `/`: every meter.
pub fn overview(app: &App) -> Resp {
    let meters = app.meters_json();
    let cards: String = meters.iter().map(card).collect();
    Resp::html(layout(
        "Meters",
        &format!("<div class=\"cards\">{cards}</div><script>{OVERVIEW_JS}</script>"),
    ))
}

const DETAIL_JS: &str = r#"
document.getElementById('set').addEventListener('submit', async ev => {
  ev.preventDefault();
  const msg = document.getElementById('setmsg');
  try {
    const j = await post(ev.target.dataset.url, {value: ev.target.value.value});
    msg.textContent = 'stored value set to ' + j.value + (j.previous ? ' (was ' + j.previous + ')' : '');
  } catch (e) { msg.textContent = e.message; }
});
"#;

/// `/meter/{name}`: the stored value, set value, the history.
pub fn detail(app: &App, m: &MeterConfig, req: &Req) -> Result<Resp, Resp> {
    let cfg = app.cfg();
    let json = app
        .meters_json()
        .into_iter()
        .find(|j| j.name == m.name)
        .ok_or_else(|| Resp::not_found(&m.name))?;
    let days: i64 = req
        .query
        .get("days")
        .and_then(|d| d.parse().ok())
        .filter(|d| (1..=3660).contains(d))
        .unwrap_or(30);
    let max_per_day: Option<f64> = req
        .query
        .get("max_per_day")
        .and_then(|v| v.trim().parse().ok())
        .filter(|v: &f64| v.is_finite() && *v > 0.0);
    let to = time::OffsetDateTime::now_utc();
    let from = to - time::Duration::days(days);
    let hist = history::load(&cfg, &m.name, Some(from), Some(to));
    let body = format!(
        "<div class=\"cards\">{}</div><h2>Set the stored value</h2>\
         <form id=\"set\" data-url=\"/api/meters/{}/set-value\">\
         <input name=\"value\" placeholder=\"12345.6\" required> <button>Set</button></form>\
         <p class=\"msg\" id=\"setmsg\"></p><h2>History, last {days} days</h2>{}<script>{DETAIL_JS}</script>",
        card(&json),
        seg(&m.name),
        history::section(&hist, m, max_per_day, &crate::kept::unsure_crops(&cfg, &m.name))
    );
    Ok(Resp::html(layout(&m.name, &body)))
}
