//! Labelling in the browser: the `unsure/` queue through the same
//! [`Session`] as `meter classify` (same keys, same filing, same journal),
//! the retrain button, and the model versions.

use std::sync::{Arc, Mutex};

use meter_service::label::{items, Key, LastOutcome, Session, SessionOptions, View};
use meter_service::registry::{self, Registry};
use meter_service::retrain::{self, RetrainOutcome};
use serde::Serialize;

use crate::app::App;
use crate::html::esc;
use crate::http::{Req, Resp};
use crate::pages::layout;

/// The session of the labelling page, shared by every browser tab.
pub struct Labeller {
    session: Session,
    warnings: Vec<String>,
}

type Answer = Result<Resp, Resp>;

fn internal(e: anyhow::Error) -> Resp {
    Resp::error(500, &format!("{e:#}"))
}

/// Opens a session over the `unsure/` queue when none is open.
fn ensure(app: &App) -> Result<std::sync::MutexGuard<'_, Option<Labeller>>, Resp> {
    let mut guard = app.label.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let cfg = app.cfg();
        let model = registry::load_current_model(&cfg).map_err(internal)?;
        let mut warnings = Vec::new();
        let mut list = items::from_unsure(&cfg.unsure_dir, None, &mut |w| warnings.push(w))
            .map_err(internal)?;
        items::add_guesses(&mut list, &model).map_err(internal)?;
        let session =
            Session::new(list, SessionOptions::for_config(&cfg, false)).map_err(internal)?;
        *guard = Some(Labeller { session, warnings });
    }
    Ok(guard)
}

#[derive(Serialize)]
struct ViewJson {
    /// The index of the image asked about.
    shown: Option<usize>,
    meter: Option<String>,
    origin: Option<String>,
    guess: Option<String>,
    guess_confidence: Option<f32>,
    context: usize,
    position_in_frame: usize,
    typed: Option<String>,
    last: Option<String>,
    message: String,
    position: usize,
    total: usize,
    filed: usize,
    skipped: usize,
    earlier: usize,
    warnings: Vec<String>,
}

fn view_json(v: &View<'_>, warnings: &[String]) -> ViewJson {
    let item = v.shown.map(|(_, it)| it);
    ViewJson {
        shown: v.shown.map(|(i, _)| i),
        meter: item.map(|it| it.meter.clone()),
        origin: item.map(|it| it.origin.describe()),
        guess: item.and_then(|it| it.guess.as_ref().map(|g| g.tenths.to_string())),
        guess_confidence: item.and_then(|it| it.guess.as_ref().map(|g| g.confidence)),
        context: item.map_or(0, |it| it.context.len()),
        position_in_frame: item.map_or(0, |it| it.position),
        typed: v.typed_digit.map(|d| format!("{d}._")),
        last: v.last.as_ref().map(|l| match l.outcome {
            LastOutcome::InHand { label, .. } => format!("{label} (in hand)"),
            LastOutcome::Filed(label) => format!("filed as {label}"),
            LastOutcome::Skipped => "skipped".into(),
        }),
        message: v.message.to_owned(),
        position: v.position,
        total: v.total,
        filed: v.filed,
        skipped: v.skipped,
        earlier: v.earlier,
        warnings: warnings.to_vec(),
    }
}

/// `GET /api/label`: what the session shows now.
pub fn view_api(app: &App) -> Answer {
    let guard = ensure(app)?;
    let l = guard.as_ref().expect("ensured");
    Ok(Resp::json(&view_json(&l.session.view(), &l.warnings)))
}

fn parse_key(k: &str) -> Option<Key> {
    match k {
        "Enter" => Some(Key::Enter),
        "Backspace" => Some(Key::Backspace),
        "Escape" | "Esc" => Some(Key::Esc),
        _ => {
            let mut chars = k.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(Key::Char(c)),
                _ => None,
            }
        }
    }
}

/// `POST /api/label {"key": "3"}`: one key, as in `meter classify`
/// (`q` ends the session, filing the answer in hand).
pub fn key_api(app: &App, req: &Req) -> Answer {
    #[derive(serde::Deserialize)]
    struct Body {
        key: String,
    }
    let body: Body = req.json()?;
    let key = parse_key(&body.key)
        .ok_or_else(|| Resp::error(400, &format!("{:?} is not a key", body.key)))?;
    let mut guard = ensure(app)?;
    let l = guard.as_mut().expect("ensured");
    let go_on = l.session.handle(key).map_err(internal)?;
    if !go_on {
        return finish(&mut guard);
    }
    Ok(Resp::json(&view_json(&l.session.view(), &l.warnings)))
}

fn finish(guard: &mut Option<Labeller>) -> Answer {
    let summary = match guard.take() {
        Some(l) => l.session.finish().map_err(internal)?,
        None => Default::default(),
    };
    Ok(Resp::json(&serde_json::json!({
        "finished": true,
        "filed": summary.filed,
        "skipped": summary.skipped,
        "undone": summary.undone,
        "left": summary.left,
    })))
}

/// `POST /api/label/finish`: files the answer in hand and closes the
/// session (the next visit reads the queue again).
pub fn finish_api(app: &App) -> Answer {
    let mut guard = app.label.lock().unwrap_or_else(|e| e.into_inner());
    finish(&mut guard)
}

/// `/api/label/shown/{image.png | K.png}`: the image asked about, or its
/// frame's digit K.
pub fn image(app: &App, file: &str) -> Answer {
    let guard = ensure(app)?;
    let l = guard.as_ref().expect("ensured");
    let view = l.session.view();
    let (_, item) = view
        .shown
        .ok_or_else(|| Resp::not_found("an image: all answered"))?;
    let img = match file {
        "image.png" => &item.image,
        other => other
            .strip_suffix(".png")
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| item.context.get(k))
            .ok_or_else(|| Resp::not_found(file))?,
    };
    let png = meter_service::files::png_bytes(img).map_err(internal)?;
    Ok(Resp::ok("image/png", png))
}

const LABEL_JS: &str = r#"
const $ = id => document.getElementById(id);
function show(v) {
  if (v.finished) { $('info').textContent = 'session closed: filed ' + v.filed + ', skipped ' + v.skipped; $('imgs').innerHTML=''; return; }
  $('progress').textContent = v.position + ' / ' + v.total + ' · filed ' + v.filed + ' · skipped ' + v.skipped + (v.earlier ? ' · ' + v.earlier + ' answered earlier' : '');
  $('last').textContent = v.last ? 'last: ' + v.last : '';
  $('message').textContent = v.message + (v.typed ? ' typing ' + v.typed : '');
  const imgs = $('imgs'); imgs.innerHTML = '';
  if (v.shown == null) { $('info').textContent = v.total ? 'all answered: u undoes' : 'nothing to label'; return; }
  $('info').textContent = (v.meter || '') + ' · ' + (v.origin || '') + ' · guess ' + (v.guess ?? '?') + (v.guess_confidence != null ? ' (' + Math.round(v.guess_confidence * 100) + '%)' : '');
  for (let k = 0; k < v.context; k++) {
    const i = document.createElement('img');
    i.src = '/api/label/shown/' + k + '.png?i=' + v.shown;
    i.className = k === v.position_in_frame ? 'cur' : 'ctx';
    imgs.append(i);
  }
}
async function key(k) {
  try { show(await post('/api/label', {key: k})); } catch (e) { $('message').textContent = e.message; }
}
document.addEventListener('keydown', ev => {
  if (ev.target.tagName === 'INPUT') return;
  const k = ev.key;
  if (/^[0-9.,suq]$/.test(k) || k === 'Enter' || k === 'Backspace' || k === 'Escape') { ev.preventDefault(); key(k); }
});
$('done').addEventListener('click', async () => { try { show(await post('/api/label/finish')); } catch (e) { $('message').textContent = e.message; } });
fetch('/api/label').then(r => r.json()).then(show);
"#;

/// `/label`: the labeller.
pub fn page(app: &App) -> Answer {
    drop(ensure(app)?);
    let body = format!(
        "<style>#imgs img{{height:96px;image-rendering:pixelated;margin:2px;border:3px solid transparent}}\
         #imgs img.cur{{border-color:#1565c0}}</style>\
         <p>Keys as in <code>meter classify</code>: a digit (settled), a digit then <b>.</b> and a \
         tenth (rolling, 3.7), <b>Enter</b> accepts the guess, <b>s</b> skips, <b>u</b> undoes, \
         <b>q</b> ends. A digit is filed when the next key comes.</p>\
         <p id=\"progress\"></p><p id=\"info\"></p><div id=\"imgs\"></div><p id=\"last\"></p>\
         <p class=\"msg\" id=\"message\"></p><button id=\"done\">Done (file the answer in hand)</button>\
         <script>{LABEL_JS}</script>"
    );
    Ok(Resp::html(layout("Label unsure digits", &body)))
}

/// The retrain started from the page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetrainStatus {
    /// `idle`, `running`, `promoted`, `refused`, `failed`.
    pub state: String,
    /// When it started (RFC 3339).
    pub started: Option<String>,
    /// Its outcome with the numbers.
    pub message: String,
}

/// `GET /api/retrain`.
pub fn retrain_status(app: &App) -> Resp {
    let mut s = app
        .retrain
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if s.state.is_empty() {
        s.state = "idle".into();
    }
    Resp::json(&s)
}

/// `POST /api/retrain`: fine-tunes on the dataset in the background and
/// promotes the candidate when it is not worse (as `meter retrain`).
pub fn retrain_start(app: &App) -> Answer {
    let status: Arc<Mutex<RetrainStatus>> = app.retrain.clone();
    {
        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
        if s.state == "running" {
            return Err(Resp::error(409, "a retrain is running already"));
        }
        *s = RetrainStatus {
            state: "running".into(),
            started: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .ok(),
            message: "training on the dataset…".into(),
        };
    }
    let cfg = app.cfg();
    let service = app.service.clone();
    std::thread::Builder::new()
        .name("web-retrain".into())
        .spawn(move || {
            let outcome = retrain::retrain(&cfg, &retrain::Settings::default(), false);
            if let (Ok(RetrainOutcome::Promoted { .. }), Some(service)) = (&outcome, &service) {
                match registry::load_current_model(&cfg) {
                    Ok(m) => service.use_model(m),
                    Err(e) => log::error!("web retrain: {e:#}"),
                }
            }
            let (state, message) = match outcome {
                Ok(RetrainOutcome::Promoted {
                    made,
                    version,
                    parent,
                    current,
                    candidate,
                    ..
                }) => (
                    "promoted",
                    format!(
                        "promoted v{version}, {made}: {} (v{parent}: {})",
                        candidate.describe(),
                        current.describe()
                    ),
                ),
                Ok(RetrainOutcome::Refused {
                    made,
                    parent,
                    current,
                    candidate,
                    ..
                }) => (
                    "refused",
                    format!(
                        "refused, v{parent} kept: candidate ({made}) {} vs {}",
                        candidate.describe(),
                        current.describe()
                    ),
                ),
                Ok(RetrainOutcome::NotDue(why)) => ("refused", why),
                Err(e) => ("failed", format!("{e:#}")),
            };
            log::info!("web retrain: {message}");
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            s.state = state.into();
            s.message = message;
        })
        .map_err(|e| Resp::error(500, &format!("starting the retrain: {e}")))?;
    Ok(retrain_status(app))
}

/// `GET /api/models`: the registry.
pub fn models_api(app: &App) -> Answer {
    let reg = Registry::load(&app.cfg().models_dir).map_err(internal)?;
    Ok(Resp::json(&reg))
}

/// `POST /api/models/{n}/use`.
pub fn use_model(app: &App, n: &str) -> Answer {
    let n: u32 = n
        .strip_prefix('v')
        .unwrap_or(n)
        .parse()
        .map_err(|_| Resp::not_found(&format!("model version {n:?}")))?;
    let cfg = app.cfg();
    registry::use_version(&cfg, n).map_err(|e| Resp::error(400, &format!("{e:#}")))?;
    if let Some(service) = &app.service {
        service.use_model(registry::load_current_model(&cfg).map_err(internal)?);
    }
    log::info!("web: model v{n} made current");
    Ok(Resp::json(&serde_json::json!({ "current": n })))
}

const MODELS_JS: &str = r#"
const $ = id => document.getElementById(id);
async function poll() {
  const s = await (await fetch('/api/retrain')).json();
  $('retrain').textContent = s.state + (s.started ? ' (started ' + s.started + ')' : '') + (s.message ? ': ' + s.message : '');
  if (s.state === 'running') setTimeout(poll, 2000);
}
$('start').addEventListener('click', async () => { try { await post('/api/retrain'); } catch (e) { $('retrain').textContent = e.message; } poll(); });
document.querySelectorAll('button[data-use]').forEach(b => b.addEventListener('click', async () => {
  try { await post('/api/models/' + b.dataset.use + '/use'); location.reload(); } catch (e) { $('retrain').textContent = e.message; }
}));
poll();
"#;

/// `/models`: versions with their scores, "use", and "retrain now".
pub fn models_page(app: &App) -> Answer {
    let cfg = app.cfg();
    let reg = Registry::load(&cfg.models_dir).map_err(internal)?;
    let cur = reg.current_version();
    let mut rows = format!(
        "<table><tr><th>version</th><th>from</th><th>validation</th><th>images</th><th></th></tr>\
         <tr><td>v0{}</td><td>base</td><td></td><td></td><td>{}</td></tr>",
        if cur == 0 { " (in use)" } else { "" },
        if cur != 0 {
            "<button data-use=\"0\">use</button>"
        } else {
            ""
        }
    );
    for v in &reg.versions {
        rows.push_str(&format!(
            "<tr><td>v{0}{1}</td><td>v{2}</td><td>{3}<br><small>v{2} then: {4}</small></td><td>{5}</td><td>{6}</td></tr>",
            v.version,
            if cur == v.version { " (in use)" } else { "" },
            v.parent,
            esc(&v.score.describe()),
            esc(&v.parent_score.describe()),
            v.train_images,
            if cur != v.version {
                format!("<button data-use=\"{}\">use</button>", v.version)
            } else {
                String::new()
            }
        ));
    }
    rows.push_str("</table>");
    let body = format!(
        "{rows}<h2>Retrain</h2><button id=\"start\">Retrain now</button><p id=\"retrain\"></p>\
         <script>{MODELS_JS}</script>"
    );
    Ok(Resp::html(layout("Models", &body)))
}
