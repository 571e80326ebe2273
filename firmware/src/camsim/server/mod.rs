//! The HTTP server: one thread accepting requests, one short-lived thread
//! per request (so a held `timeout` fault blocks nobody).

use std::collections::VecDeque;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use meter_synth::MeterLayout;
use tiny_http::{Header, Method, Request, Response};

mod capture;

use self::capture::capture;
use super::setup::{layout_json, scaled_layout, write_setup_at, SetupFiles};
use super::source::Source;
use super::truth::FrameTruth;
use super::{FaultKind, FaultSpec, SimConfig};
use crate::api::{CameraRequest, Query};
use crate::settings::{FrameSize, SensorSettings};
use crate::SimError;

/// Most faults one `/fault` request may queue.
const MAX_FAULT_COUNT: u32 = 10_000;

/// A frame as `/capture` would serve it.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// The JPEG bytes.
    pub jpeg: Vec<u8>,
    /// What it shows (synthetic sources only).
    pub truth: Option<FrameTruth>,
}

struct State {
    settings: SensorSettings,
    next_seq: u64,
    faults: VecDeque<FaultSpec>,
}

struct Shared {
    state: Mutex<State>,
    source: Source,
    started: Instant,
    /// The frame size at start: frames are served at their own size until
    /// `framesize` changes, then resized to it.
    native_framesize: u8,
    flash_warmup: Duration,
    slow_delay: Duration,
    timeout_hold: Duration,
    fault_every: Option<(u32, FaultKind)>,
    stopping: Mutex<bool>,
    wake: Condvar,
    frames_served: AtomicU64,
    leds_on: AtomicU32,
}

/// A running simulator; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    http: Arc<tiny_http::Server>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Prepares the frame source and starts serving on `config.addr`
    /// (loopback only; port 0 picks a free port, see [`Server::addr`]).
    pub fn start(config: SimConfig) -> Result<Server, SimError> {
        if !config.addr.ip().is_loopback() {
            return Err(SimError::NotLoopback { addr: config.addr });
        }
        let source = Source::prepare(&config.source)?;
        let mut settings = config.settings;
        // The camera starts at the frame size the meter is drawn at, when
        // the sensor has one of that size.
        if let Some((layout, _)) = source.layout() {
            if let Some(fs) = FrameSize::for_dimensions(layout.width, layout.height) {
                settings.framesize = fs.index();
            }
        }
        let native_framesize = settings.framesize;
        let http = tiny_http::Server::http(config.addr).map_err(|e| SimError::Bind {
            addr: config.addr,
            reason: e.to_string(),
        })?;
        let addr = http.server_addr().to_ip().ok_or_else(|| SimError::Bind {
            addr: config.addr,
            reason: "not an IP socket".into(),
        })?;
        let http = Arc::new(http);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                settings,
                next_seq: 0,
                faults: config.faults.into_iter().collect(),
            }),
            source,
            started: Instant::now(),
            native_framesize,
            flash_warmup: config.flash_warmup,
            slow_delay: config.slow_delay,
            timeout_hold: config.timeout_hold,
            fault_every: config.fault_every.filter(|(n, _)| *n > 0),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            frames_served: AtomicU64::new(0),
            leds_on: AtomicU32::new(0),
        });
        let acceptor = {
            let http = Arc::clone(&http);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("camsim-accept".into())
                .spawn(move || accept_loop(&http, &shared))
                .map_err(|e| SimError::Bind {
                    addr,
                    reason: format!("cannot start thread: {e}"),
                })?
        };
        log::info!("camera simulator listening on http://{addr}");
        Ok(Server {
            addr,
            shared,
            http,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The capture URL, `http://127.0.0.1:PORT/capture`.
    pub fn capture_url(&self) -> String {
        format!("{}/capture", self.url())
    }

    /// The synthetic meter's layout in aligned-frame pixels of the frames
    /// served now (scaled when `framesize` was changed from the start-up
    /// size) and its number of decimals; `None` for a folder source.
    pub fn layout(&self) -> Option<(MeterLayout, u32)> {
        let out = self.shared.out_size(&self.settings());
        self.shared
            .source
            .layout()
            .map(|(l, d)| (scaled_layout(l, out), d))
    }

    /// The camera settings now.
    pub fn settings(&self) -> SensorSettings {
        self.shared.lock().settings.clone()
    }

    /// Queues `count` faults for the next captures (after those queued).
    pub fn inject(&self, fault: FaultSpec, count: u32) {
        let mut st = self.shared.lock();
        st.faults.extend(std::iter::repeat_n(fault, count as usize));
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Captures answered with a complete frame so far (counted as the
    /// answer starts).
    pub fn frames_served(&self) -> u64 {
        self.shared.frames_served.load(Ordering::Relaxed)
    }

    /// Captures whose flash is on right now (0 when idle: the LED is never
    /// left on).
    pub fn leds_on(&self) -> u32 {
        self.shared.leds_on.load(Ordering::Relaxed)
    }

    /// Renders the frame with sequence number `seq` under the current
    /// settings, without serving it or advancing the sequence (for
    /// benchmarks and checks). In [`super::Advance::PerHour`] mode the
    /// value is that of now.
    pub fn render_frame(&self, seq: u64) -> Result<CapturedFrame, SimError> {
        let settings = self.settings();
        let frame = self.shared.source.frame(
            seq,
            self.shared.started.elapsed(),
            &settings,
            settings.led_intensity,
            self.shared.out_size(&settings),
        )?;
        Ok(CapturedFrame {
            jpeg: frame.jpeg,
            truth: frame.truth,
        })
    }

    /// Writes the reference-mark templates, the aligned reference frame, the
    /// layout JSON and a meter config snippet pointing at this server into
    /// `dir` (see [`super::write_setup`]).
    pub fn write_setup(&self, dir: &Path) -> Result<SetupFiles, SimError> {
        let (layout, decimals) = self.shared.source.layout().ok_or(SimError::InvalidConfig {
            field: "source",
            reason: "a folder source has no layout".into(),
        })?;
        let s = self.settings();
        write_setup_at(
            dir,
            layout,
            decimals,
            &self.capture_url(),
            rotation_of(&s),
            self.shared.out_size(&s),
        )
    }

    /// Stops accepting, wakes held requests and waits for the acceptor.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        *self
            .shared
            .stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        self.http.unblock();
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The initial rotation a reader needs: 180 when the sensor flips both ways.
pub(crate) fn rotation_of(s: &SensorSettings) -> Option<u32> {
    match (s.hmirror != 0, s.vflip != 0) {
        (false, false) => Some(0),
        (true, true) => Some(180),
        _ => None,
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take the simulator down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The size to resize frames to under `settings`, if any.
    fn out_size(&self, settings: &SensorSettings) -> Option<(u32, u32)> {
        (settings.framesize != self.native_framesize).then(|| settings.frame_size().dimensions())
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `d`; false when woken by a stop.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopping.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopping| !*stopping)
            .unwrap_or_else(|e| e.into_inner());
        !*guard
    }
}

fn accept_loop(http: &tiny_http::Server, shared: &Arc<Shared>) {
    loop {
        match http.recv() {
            Ok(req) => {
                if shared.is_stopping() {
                    let _ = req.respond(Response::empty(503));
                    break;
                }
                let shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("camsim-request".into())
                    .spawn(move || handle(&shared, req));
                if let Err(e) = spawned {
                    log::error!("cannot start request thread: {e}");
                }
            }
            Err(e) => {
                if shared.is_stopping() {
                    break;
                }
                // A broken client connection must not end the server.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if shared.is_stopping() {
            break;
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    // Names are constants and values are ASCII we format ourselves.
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|()| Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).expect("valid"))
}

fn text(status: u16, body: impl Into<String>) -> Response<Cursor<Vec<u8>>> {
    Response::from_string(body.into())
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
        .with_header(header("Access-Control-Allow-Origin", "*"))
}

fn json(body: String) -> Response<Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Access-Control-Allow-Origin", "*"))
}

fn handle(shared: &Shared, req: Request) {
    if *req.method() != Method::Get && *req.method() != Method::Head {
        let _ = req.respond(text(405, "only GET is supported\n"));
        return;
    }
    let url = req.url().to_owned();
    let result = match CameraRequest::parse(&url) {
        Ok(Some(CameraRequest::Capture)) => return capture(shared, req),
        Ok(Some(CameraRequest::Status)) => req.respond(json(shared.lock().settings.to_json())),
        Ok(Some(CameraRequest::Control { var, val })) => {
            let applied = shared.lock().settings.apply(&var, &val);
            req.respond(match applied {
                Ok(_) => text(200, ""),
                Err(e) => text(e.http_status(), format!("{e}\n")),
            })
        }
        Err(e) => req.respond(text(e.http_status(), format!("{e}\n"))),
        Ok(None) => {
            let q = Query::parse(&url);
            match q.path() {
                "/layout" => match shared.source.layout() {
                    Some((layout, decimals)) => {
                        let settings = shared.lock().settings.clone();
                        let layout = scaled_layout(layout, shared.out_size(&settings));
                        let rotate = rotation_of(&settings);
                        req.respond(json(layout_json(&layout, decimals, rotate)))
                    }
                    None => req.respond(text(404, "a folder source has no layout\n")),
                },
                "/fault" => req.respond(fault(shared, &q)),
                "/" => req.respond(text(
                    200,
                    "meter-camsim: GET /capture /status /control?var=&val= /layout \
                     /fault?kind=truncate|slow|error500|timeout|clear&count=N&delay_ms=MS\n",
                )),
                path => req.respond(text(404, format!("no such endpoint: {path}\n"))),
            }
        }
    };
    if let Err(e) = result {
        log::debug!("{url}: client went away: {e}");
    }
}

fn fault(shared: &Shared, pairs: &Query) -> Response<Cursor<Vec<u8>>> {
    let Some(kind) = pairs.get("kind") else {
        return text(400, "missing query parameter \"kind\"\n");
    };
    if kind == "clear" {
        shared.lock().faults.clear();
        return json(r#"{"queued":0,"pending":0}"#.into());
    }
    let Some(kind) = FaultKind::from_name(kind) else {
        return text(
            400,
            format!("unknown fault kind {kind:?}: expected truncate, slow, error500, timeout, drip or clear\n"),
        );
    };
    let count = match pairs.get("count").map(str::parse::<u32>) {
        None => 1,
        Some(Ok(n)) if (1..=MAX_FAULT_COUNT).contains(&n) => n,
        Some(_) => {
            return text(
                400,
                format!("count must be an integer in 1..={MAX_FAULT_COUNT}\n"),
            )
        }
    };
    let delay = match pairs.get("delay_ms").map(str::parse::<u64>) {
        None => None,
        Some(Ok(ms)) if ms <= 3_600_000 => Some(Duration::from_millis(ms)),
        Some(_) => return text(400, "delay_ms must be an integer in 0..=3600000\n"),
    };
    let mut st = shared.lock();
    st.faults.extend(std::iter::repeat_n(
        FaultSpec { kind, delay },
        count as usize,
    ));
    json(format!(
        r#"{{"queued":{count},"pending":{}}}"#,
        st.faults.len()
    ))
}
