//! The routes: what each address answers, and the security checks every
//! request passes first.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};

use meter_service::config::{MeterConfig, ResolvedConfig};
use meter_service::live::{Live, MeterLive};
use meter_service::{overlay, state, Reconfigure};
use serde::Serialize;
use time::OffsetDateTime;

use crate::editor::EditorFrame;
use crate::http::{token_matches, Req, Resp};
use crate::label::Labeller;
use crate::{history, pages};

/// The server's state: the config, what the service saw, the labelling
/// session, the editor's frames.
pub struct App {
    cfg: RwLock<Arc<ResolvedConfig>>,
    pub(crate) live: Arc<Live>,
    token: Option<String>,
    pub(crate) running: bool,
    pub(crate) service: Option<Arc<Reconfigure>>,
    /// Overlaid frames by meter, with the time of the reading drawn.
    frames: Mutex<HashMap<String, DrawnFrame>>,
    pub(crate) label: Mutex<Option<Labeller>>,
    pub(crate) retrain: Arc<Mutex<crate::label::RetrainStatus>>,
    pub(crate) editor: Mutex<HashMap<String, Arc<EditorFrame>>>,
}

type Answer = Result<Resp, Resp>;

/// A reading's time and its frame drawn as JPEG.
type DrawnFrame = (OffsetDateTime, Arc<Vec<u8>>);

impl App {
    /// The state of a server over `cfg`.
    pub fn new(
        cfg: ResolvedConfig,
        live: Arc<Live>,
        token: Option<String>,
        service: Option<Arc<Reconfigure>>,
    ) -> Self {
        Self {
            cfg: RwLock::new(Arc::new(cfg)),
            live,
            token,
            running: service.is_some(),
            service,
            frames: Mutex::default(),
            label: Mutex::default(),
            retrain: Arc::default(),
            editor: Mutex::default(),
        }
    }

    /// The config as it is now (the box editor replaces it).
    pub fn cfg(&self) -> Arc<ResolvedConfig> {
        self.cfg.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_cfg(&self, cfg: ResolvedConfig) {
        *self.cfg.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
    }

    /// Answers one request.
    pub fn handle(&self, mut request: tiny_http::Request) {
        let resp = match Req::read(&mut request) {
            Ok(req) => self.checked(&req),
            Err(e) => Resp::error(400, &e),
        };
        resp.send(request);
    }

    /// The security checks, then the route.
    fn checked(&self, req: &Req) -> Resp {
        if !req.known_method {
            return Resp::error(405, "only GET and POST");
        }
        let mut set_cookie = None;
        if let Some(token) = &self.token {
            match req.token() {
                Some(given) if token_matches(given, token) => {
                    if req.query.contains_key("token") {
                        set_cookie = Some(format!(
                            "meter_token={token}; HttpOnly; SameSite=Strict; Path=/"
                        ));
                    }
                }
                _ => {
                    return Resp::error(
                        401,
                        "this server needs its token: open http://HOST/?token=TOKEN once, \
                         or send Authorization: Bearer TOKEN",
                    )
                }
            }
        }
        if req.post && !req.same_origin() {
            return Resp::error(
                403,
                "a POST must come from this server's own page (its Origin or Referer must \
                 name the Host it was sent to)",
            );
        }
        let resp = self.route(req).unwrap_or_else(|e| e);
        match set_cookie {
            Some(c) => resp.with("Set-Cookie", c),
            None => resp,
        }
    }

    fn route(&self, req: &Req) -> Answer {
        let path = req.path();
        let get = !req.post;
        match (get, path.as_slice()) {
            (true, []) => Ok(pages::overview(self)),
            (true, ["meter", name]) => pages::detail(self, &self.meter(name)?, req),
            (true, ["label"]) => crate::label::page(self),
            (true, ["models"]) => crate::label::models_page(self),
            (true, ["editor", name]) => crate::editor::page(self, &self.meter(name)?, req),
            (true, ["metrics"]) => Ok(self.metrics()),
            (true, ["api", "meters"]) => Ok(Resp::json(&self.meters_json())),
            (true, ["api", "meters", name, "readings"]) => {
                history::readings_api(&self.cfg(), &self.meter(name)?, req)
            }
            (true, ["api", "meters", name, "frame.jpg"]) => self.frame(&self.meter(name)?),
            (true, ["api", "meters", name, "digits", file]) => self.digit(&self.meter(name)?, file),
            (true, ["api", "meters", name, "unsure", time, file]) => {
                crate::kept::unsure_crop(&self.cfg(), &self.meter(name)?, time, file)
            }
            (true, ["api", "meters", name, "editor.jpg"]) => {
                crate::editor::frame_jpeg(self, &self.meter(name)?)
            }
            (true, ["api", "meters", name, "crop.png"]) => {
                crate::editor::crop(self, &self.meter(name)?, req)
            }
            (false, ["api", "meters", name, "preview"]) => {
                crate::editor::preview(self, &self.meter(name)?, req)
            }
            (false, ["api", "meters", name, "propose"]) => {
                crate::editor::propose(self, &self.meter(name)?, req)
            }
            (false, ["api", "meters", name, "boxes"]) => {
                crate::editor::save(self, &self.meter(name)?, req)
            }
            (false, ["api", "meters", name, "set-value"]) => {
                self.set_value(&self.meter(name)?, req)
            }
            (true, ["api", "label"]) => crate::label::view_api(self),
            (false, ["api", "label"]) => crate::label::key_api(self, req),
            (false, ["api", "label", "finish"]) => crate::label::finish_api(self),
            (true, ["api", "label", "shown", file]) => crate::label::image(self, file),
            (true, ["api", "retrain"]) => Ok(crate::label::retrain_status(self)),
            (false, ["api", "retrain"]) => crate::label::retrain_start(self),
            (true, ["api", "models"]) => crate::label::models_api(self),
            (false, ["api", "models", n, "use"]) => crate::label::use_model(self, n),
            _ => {
                let known_other_method = self.route_exists_for(!get, &path);
                if known_other_method {
                    Err(Resp::error(
                        405,
                        if get {
                            "this address changes state: POST it"
                        } else {
                            "this address is read with GET"
                        },
                    ))
                } else {
                    Err(Resp::not_found(&format!("/{}", req.segments.join("/"))))
                }
            }
        }
    }

    /// Whether `path` is a route for the other method (405 rather than 404).
    fn route_exists_for(&self, get: bool, path: &[&str]) -> bool {
        matches!(
            (get, path),
            (
                false,
                [
                    "api",
                    "meters",
                    _,
                    "preview" | "propose" | "boxes" | "set-value"
                ]
            ) | (false, ["api", "label" | "retrain"])
                | (false, ["api", "label", "finish"])
                | (false, ["api", "models", _, "use"])
                | (true, ["api", "label" | "retrain" | "meters" | "models"])
        )
    }

    /// The meter called `name` in the config (404 otherwise): names from
    /// the address are only ever looked up, never used as paths.
    pub(crate) fn meter(&self, name: &str) -> Result<MeterConfig, Resp> {
        self.cfg()
            .meters
            .iter()
            .find(|m| m.name == name)
            .cloned()
            .ok_or_else(|| Resp::not_found(&format!("meter {name:?}")))
    }

    /// What the service saw of `name` (nothing when none runs here).
    pub(crate) fn live_of(&self, name: &str) -> MeterLive {
        self.live.get(name).unwrap_or_default()
    }

    /// Every meter's state and last reading.
    pub(crate) fn meters_json(&self) -> Vec<MeterJson> {
        let cfg = self.cfg();
        let now = OffsetDateTime::now_utc();
        cfg.meters
            .iter()
            .map(|m| meter_json(&cfg, m, &self.live_of(&m.name), now, self.running))
            .collect()
    }

    fn frame(&self, m: &MeterConfig) -> Answer {
        let live = self.live_of(&m.name);
        // A live view without frames (a service that serves no page) has
        // readings but no pictures.
        let Some(ev) = live.last.filter(|ev| !ev.jpeg.is_empty()) else {
            return Err(Resp::not_found(&format!(
                "a frame of meter {}: no reading yet{}",
                m.name,
                if self.running {
                    ""
                } else {
                    " (live frames are shown inside `meter run` with [serve])"
                }
            )));
        };
        let cached = {
            let frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
            frames
                .get(&m.name)
                .filter(|(t, _)| *t == ev.report.time)
                .map(|(_, j)| j.clone())
        };
        let jpeg = match cached {
            Some(j) => j,
            None => {
                let img = overlay::of_reading(&ev, &m.geometry)
                    .and_then(|img| overlay::jpeg(&img))
                    .map_err(|e| Resp::error(500, &format!("meter {}: {e:#}", m.name)))?;
                let j = Arc::new(img);
                self.frames
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(m.name.clone(), (ev.report.time, j.clone()));
                j
            }
        };
        Ok(Resp::ok("image/jpeg", jpeg.as_ref().clone()))
    }

    fn digit(&self, m: &MeterConfig, file: &str) -> Answer {
        let k: usize = file
            .strip_suffix(".png")
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| Resp::not_found(file))?;
        let live = self.live_of(&m.name);
        let crop = live
            .last
            .as_ref()
            .and_then(|ev| ev.crops.get(k).cloned())
            .ok_or_else(|| Resp::not_found(&format!("digit {k} of meter {}", m.name)))?;
        let png = meter_service::files::png_bytes(&crop)
            .map_err(|e| Resp::error(500, &format!("{e:#}")))?;
        Ok(Resp::ok("image/png", png))
    }

    fn set_value(&self, m: &MeterConfig, req: &Req) -> Answer {
        #[derive(serde::Deserialize)]
        struct Body {
            value: String,
        }
        let body: Body = req.json()?;
        let cfg = self.cfg();
        let set = state::set_value(&cfg.state_dir, m, body.value.trim())
            .map_err(|e| Resp::error(400, &format!("{e:#}")))?;
        log::info!(
            "web: meter {} stored value set to {} (was {})",
            m.name,
            set.value,
            set.previous.as_deref().unwrap_or("none")
        );
        Ok(Resp::json(&serde_json::json!({
            "meter": m.name,
            "value": set.value,
            "previous": set.previous,
        })))
    }

    /// `/metrics`: per meter the last stored value, its age, unsure
    /// readings and images waiting, capture failures.
    fn metrics(&self) -> Resp {
        let cfg = self.cfg();
        let meters = self.meters_json();
        let waiting = unsure_waiting(&cfg);
        let mut out = String::new();
        let series: [(&str, &str, &str); 5] = [
            ("meter_value", "gauge", "The last stored value."),
            (
                "meter_value_age_seconds",
                "gauge",
                "Seconds since the last stored value was read.",
            ),
            (
                "meter_unsure_total",
                "counter",
                "Unsure readings since the service started.",
            ),
            (
                "meter_unsure_waiting",
                "gauge",
                "Digit images waiting in unsure/ for labelling.",
            ),
            (
                "meter_capture_failures_total",
                "counter",
                "Frames the camera did not give since the service started.",
            ),
        ];
        for (name, kind, help) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for m in &meters {
                let v = match name {
                    "meter_value" => m.stored,
                    "meter_value_age_seconds" => m.age_s,
                    "meter_unsure_total" => Some(m.unsure as f64),
                    "meter_unsure_waiting" => {
                        Some(waiting.get(&m.name).copied().unwrap_or(0) as f64)
                    }
                    _ => Some(m.capture_failures as f64),
                };
                if let Some(v) = v {
                    let _ = writeln!(out, "{name}{{meter=\"{}\"}} {v}", label_value(&m.name));
                }
            }
        }
        Resp::ok("text/plain; version=0.0.4", out.into_bytes())
    }
}

/// A Prometheus label value, escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Digit images waiting in `unsure/`, by meter (the file name's prefix).
fn unsure_waiting(cfg: &ResolvedConfig) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(&cfg.unsure_dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if let Some(u) = name
            .to_str()
            .and_then(meter_service::label::items::parse_unsure_name)
        {
            *out.entry(u.meter).or_insert(0) += 1;
        }
    }
    out
}

/// One meter in `/api/meters`.
#[derive(Debug, Serialize)]
pub struct MeterJson {
    /// Its name.
    pub name: String,
    /// Its unit.
    pub unit: Option<String>,
    /// The last stored value.
    pub stored: Option<f64>,
    /// The stored value as the counter shows it.
    pub stored_text: Option<String>,
    /// When it was read (RFC 3339).
    pub stored_time: Option<String>,
    /// Seconds since.
    pub age_s: Option<f64>,
    /// The last reading (stored or not), when the service runs here.
    pub last: Option<meter_service::Report>,
    /// Unsure or rejected readings since the last stored one.
    pub not_stored_in_a_row: u32,
    /// Unsure readings since the start.
    pub unsure: u64,
    /// Capture failures since the start.
    pub capture_failures: u64,
    /// The last failure, cleared by the next reading.
    pub last_error: Option<String>,
    /// The last camera move.
    pub camera_moved: Option<String>,
    /// Whether the service reads this meter in this process.
    pub running: bool,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn meter_json(
    cfg: &ResolvedConfig,
    m: &MeterConfig,
    live: &MeterLive,
    now: OffsetDateTime,
    running: bool,
) -> MeterJson {
    // The state file is the truth for the stored value (a hand correction
    // lands there); the live view when the file cannot be read.
    let stored = match state::load(&cfg.state_dir, &m.name, m.counter) {
        Ok(s) => s.stored.map(|t| {
            (
                t.time,
                m.counter.to_units(t.ticks),
                m.counter.format_units(t.ticks),
            )
        }),
        Err(_) => live.last_stored.map(|(t, v)| (t, v, format!("{v}"))),
    };
    MeterJson {
        name: m.name.clone(),
        unit: m.unit.clone(),
        stored: stored.as_ref().map(|s| s.1),
        stored_text: stored.as_ref().map(|s| s.2.clone()),
        stored_time: stored.as_ref().map(|s| rfc3339(s.0)),
        age_s: stored
            .as_ref()
            .map(|s| ((now - s.0).as_seconds_f64() * 10.0).round() / 10.0),
        last: live.last.as_ref().map(|ev| ev.report.clone()),
        not_stored_in_a_row: live.not_stored_in_a_row,
        unsure: live.unsure,
        capture_failures: live.capture_failures,
        last_error: live.last_error.as_ref().map(|e| e.message.clone()),
        camera_moved: live.last_move.as_ref().map(|c| rfc3339(c.time)),
        running,
    }
}
