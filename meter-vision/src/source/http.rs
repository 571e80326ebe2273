//! The ESP32-CAM CameraWebServer API over HTTP (ureq).
//!
//! Calls made (as the `firmware` crate's device and simulator serve them):
//! - `GET {base}/capture`: one JPEG; the firmware switches the flash LED on
//!   around the grab at the duty last set with `led_intensity`;
//! - `GET {base}/status`: the sensor settings as JSON;
//! - `GET {base}/control?var=NAME&val=V`: change a setting (`framesize`,
//!   `quality`, `brightness`, `led_intensity`, ...).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use ureq::Agent;

/// Bytes of the HTTP client's read buffer per camera (a response's header
/// must fit).
const CAMERA_INPUT_BUFFER: usize = 16 * 1024;
/// Bytes of its write buffer per camera.
const CAMERA_OUTPUT_BUFFER: usize = 4 * 1024;

use super::{check_frame, defaults, keep_rejected, Frame, FrameSource, StopSignal};
use crate::error::VisionError;

/// What the client does about the flash LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlashMode {
    /// Leave the camera's `led_intensity` as it is (the firmware flashes at
    /// that duty around each capture).
    #[default]
    Keep,
    /// Set `led_intensity` to this duty (0 = no flash) before the first
    /// capture, and again after a failure (a rebooted camera forgets it).
    Intensity(u8),
}

/// Builds an [`HttpCamera`]; see [`HttpCamera::builder`].
#[derive(Debug, Clone)]
pub struct HttpCameraBuilder {
    base_url: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    attempts: u32,
    backoff: Duration,
    max_body: u64,
    flash: FlashMode,
    rejected: Option<PathBuf>,
    stop: StopSignal,
    keep_alive: bool,
}

impl HttpCameraBuilder {
    /// Time allowed to open the connection (default
    /// [`defaults::CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
    /// Time allowed for the answer, headers and body (default
    /// [`defaults::READ_TIMEOUT`]).
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = t;
        self
    }
    /// Attempts per call, first one included (default
    /// [`defaults::ATTEMPTS`]).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n;
        self
    }
    /// Wait before the first retry, doubled for each further one
    /// (default [`defaults::BACKOFF`]).
    pub fn backoff(mut self, t: Duration) -> Self {
        self.backoff = t;
        self
    }
    /// Whether the connection is kept open for the next request, at most
    /// [`defaults::KEEP_IDLE`] (default true). A pooled connection holds
    /// the client's buffers; one that expires before the next frame is
    /// never reused, only closed then, so a camera read once a minute
    /// should not keep it.
    pub fn keep_alive(mut self, keep: bool) -> Self {
        self.keep_alive = keep;
        self
    }
    /// Largest body accepted (default [`defaults::MAX_BODY`]).
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }
    /// The flash policy (default [`FlashMode::Keep`]).
    pub fn flash(mut self, mode: FlashMode) -> Self {
        self.flash = mode;
        self
    }
    /// Folder where corrupt frames are kept for inspection.
    pub fn rejected_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.rejected = Some(dir.into());
        self
    }
    /// A signal that abandons a request in flight or a retry pause
    /// ([`VisionError::Stopped`]), so a hung camera never holds a stop
    /// (default: a signal nobody fires).
    pub fn stop_signal(mut self, stop: StopSignal) -> Self {
        self.stop = stop;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<HttpCamera, VisionError> {
        let invalid = |reason: String| VisionError::InvalidGeometry { reason };
        let base = self.base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(invalid(format!(
                "camera URL {base:?} must start with http://"
            )));
        }
        if self.attempts == 0 {
            return Err(invalid("camera attempts must be at least 1".into()));
        }
        if self.max_body < 4 {
            return Err(invalid("camera max body is too small".into()));
        }
        let mut config = Agent::config_builder().max_idle_age(defaults::KEEP_IDLE);
        if !self.keep_alive {
            config = config
                .max_idle_connections(0)
                .max_idle_connections_per_host(0);
        }
        let agent: Agent = config
            .timeout_connect(Some(self.connect_timeout))
            .timeout_recv_response(Some(self.read_timeout))
            .timeout_recv_body(Some(self.read_timeout))
            .http_status_as_error(false)
            // ureq's 128 KB buffers each way stay allocated with a pooled
            // connection: 256 KB a camera, 500 MB for 2,000 meters. Bodies
            // stream through the input buffer; requests are bare GETs.
            .input_buffer_size(CAMERA_INPUT_BUFFER)
            .output_buffer_size(CAMERA_OUTPUT_BUFFER)
            .build()
            .into();
        Ok(HttpCamera {
            client: Client {
                agent,
                max_body: self.max_body,
                rejected: self.rejected,
            },
            base,
            attempts: self.attempts,
            backoff: self.backoff,
            flash: self.flash,
            flash_set: false,
            stop: self.stop,
        })
    }
}

/// A client of one ESP32-CAM (or the simulator).
///
/// Every call retries what may heal (transport failures, 5xx answers,
/// corrupt JPEGs) with exponential backoff; 4xx answers, a wrong content
/// type, an oversized body, a host name that does not exist and a redirect
/// loop are not retried. Each request runs on a thread of its own, so the
/// [`stop_signal`](HttpCameraBuilder::stop_signal) abandons a hung one at
/// once (the thread ends at its timeout).
#[derive(Debug)]
pub struct HttpCamera {
    client: Client,
    base: String,
    attempts: u32,
    backoff: Duration,
    flash: FlashMode,
    flash_set: bool,
    stop: StopSignal,
}

/// What one request needs, cloned onto its thread.
#[derive(Debug, Clone)]
struct Client {
    agent: Agent,
    max_body: u64,
    rejected: Option<PathBuf>,
}

/// One attempt's failure, and whether another attempt may help.
struct Failure {
    error: VisionError,
    retry: bool,
}

impl HttpCamera {
    /// Starts a builder for the camera at `base_url` (e.g.
    /// `http://192.168.1.50`).
    pub fn builder(base_url: impl Into<String>) -> HttpCameraBuilder {
        HttpCameraBuilder {
            base_url: base_url.into(),
            connect_timeout: defaults::CONNECT_TIMEOUT,
            read_timeout: defaults::READ_TIMEOUT,
            attempts: defaults::ATTEMPTS,
            backoff: defaults::BACKOFF,
            max_body: defaults::MAX_BODY,
            flash: FlashMode::Keep,
            rejected: None,
            stop: StopSignal::new(),
            keep_alive: true,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Takes one frame: `GET /capture`, checked and decoded.
    pub fn capture(&mut self) -> Result<Frame, VisionError> {
        if let (FlashMode::Intensity(duty), false) = (self.flash, self.flash_set) {
            self.control("led_intensity", &duty.to_string())?;
            self.flash_set = true;
        }
        let url = format!("{}/capture", self.base);
        let result = self.with_retries(&url, |client, url| {
            let bytes = get(client, url, Some("image/jpeg"))?;
            check_frame(
                bytes,
                &shown(url),
                SystemTime::now(),
                client.rejected.as_deref(),
            )
            .map_err(|error| Failure {
                error,
                retry: true, // a cut transfer is the camera's usual fault
            })
        });
        if result.is_err() {
            self.flash_set = false;
        }
        result
    }

    /// The sensor settings: `GET /status` as JSON.
    pub fn status(&mut self) -> Result<serde_json::Value, VisionError> {
        let url = format!("{}/status", self.base);
        self.with_retries(&url, |client, url| {
            let bytes = get(client, url, None)?;
            serde_json::from_slice(&bytes).map_err(|e| Failure {
                error: VisionError::Json {
                    url: shown(url),
                    message: e.to_string(),
                },
                retry: false,
            })
        })
    }

    /// Changes one setting: `GET /control?var=NAME&val=V`.
    pub fn control(&mut self, var: &str, val: &str) -> Result<(), VisionError> {
        let url = format!(
            "{}/control?var={}&val={}",
            self.base,
            encode(var),
            encode(val)
        );
        self.with_retries(&url, |client, url| get(client, url, None).map(|_| ()))
    }

    fn with_retries<T: Send + 'static>(
        &mut self,
        url: &str,
        call: fn(&Client, &str) -> Result<T, Failure>,
    ) -> Result<T, VisionError> {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match self.attempt(url, call) {
                Ok(v) => return Ok(v),
                Err(f) if f.retry && attempt < self.attempts => {
                    // The error names the URL.
                    log::warn!(
                        "attempt {attempt}/{} failed: {}; retrying in {wait:?}",
                        self.attempts,
                        f.error
                    );
                    if self.stop.sleep(wait) {
                        return Err(VisionError::Stopped { url: shown(url) });
                    }
                    wait = wait.saturating_mul(2);
                    attempt += 1;
                }
                Err(f) => return Err(with_attempts(f.error, attempt)),
            }
        }
    }

    /// Runs `call` on a thread of its own and waits for it, or for the stop
    /// signal (the request is then abandoned; its thread ends at its
    /// timeout).
    fn attempt<T: Send + 'static>(
        &self,
        url: &str,
        call: fn(&Client, &str) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let stopped = || Failure {
            error: VisionError::Stopped { url: shown(url) },
            retry: false,
        };
        if self.stop.is_stopped() {
            return Err(stopped());
        }
        let (tx, rx) = mpsc::channel();
        let (client, request_url) = (self.client.clone(), url.to_owned());
        let thread = std::thread::Builder::new()
            .name("camera-request".into())
            .spawn(move || {
                // The receiver is gone when the request was abandoned.
                let _ = tx.send(call(&client, &request_url));
            });
        if let Err(e) = thread {
            return Err(transport_failure(url, e.to_string(), true));
        }
        loop {
            match rx.recv_timeout(defaults::STOP_POLL) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Timeout) if self.stop.is_stopped() => {
                    return Err(stopped())
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(transport_failure(url, "request thread died".into(), true))
                }
            }
        }
    }
}

/// `url` as errors and logs show it: a password in it (`http://user:pw@`)
/// replaced by `***`, since errors reach logs and chats.
pub(crate) fn shown(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}

fn transport_failure(url: &str, message: String, retry: bool) -> Failure {
    Failure {
        error: VisionError::Http {
            url: shown(url),
            message,
            attempts: 1,
        },
        retry,
    }
}

/// Whether another attempt may help after a transport failure: not for a
/// host name that does not exist, a bad URL, a redirect loop or TLS.
fn may_heal(e: &ureq::Error) -> bool {
    match e {
        // std's words for glibc's "Name or service not known"; "Temporary
        // failure in name resolution" may heal.
        ureq::Error::Io(io) => !io.to_string().contains("Name or service not known"),
        ureq::Error::HostNotFound
        | ureq::Error::BadUri(_)
        | ureq::Error::TooManyRedirects
        | ureq::Error::RedirectFailed
        | ureq::Error::Tls(_) => false,
        _ => true,
    }
}

/// One GET; returns the body. Partial bodies of a cut transfer are kept as
/// rejected frames when a JPEG was expected.
fn get(client: &Client, url: &str, expect: Option<&str>) -> Result<Vec<u8>, Failure> {
    let mut resp = client
        .agent
        .get(url)
        .call()
        .map_err(|e| transport_failure(url, e.to_string(), may_heal(&e)))?;
    let status = resp.status().as_u16();
    if status >= 400 {
        return Err(Failure {
            error: VisionError::HttpStatus {
                url: shown(url),
                status,
                attempts: 1,
            },
            retry: status >= 500,
        });
    }
    if let Some(want) = expect {
        let got = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let base = got.split(';').next().unwrap_or("").trim();
        if !base.eq_ignore_ascii_case(want) {
            return Err(Failure {
                error: VisionError::ContentType {
                    url: shown(url),
                    got,
                },
                retry: false,
            });
        }
    }
    let too_large = || Failure {
        error: VisionError::BodyTooLarge {
            url: shown(url),
            limit: client.max_body,
        },
        retry: false,
    };
    if let Some(len) = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > client.max_body {
            return Err(too_large());
        }
    }
    let mut bytes = Vec::new();
    let read = resp
        .body_mut()
        .with_config()
        .limit(client.max_body + 1)
        .reader()
        .read_to_end(&mut bytes);
    if bytes.len() as u64 > client.max_body {
        return Err(too_large());
    }
    if let Err(e) = read {
        if let Some(inner) = e.get_ref() {
            if inner.to_string().contains("limit") {
                return Err(too_large());
            }
        }
        // A cut transfer: keep what came for inspection.
        let kept = match (expect, &client.rejected) {
            (Some(_), Some(dir)) if !bytes.is_empty() => keep_rejected(dir, url, &bytes),
            _ => None,
        };
        let note = kept
            .map(|p| format!(" (partial body kept as {})", p.display()))
            .unwrap_or_default();
        return Err(transport_failure(
            url,
            format!("body cut after {} bytes: {e}{note}", bytes.len()),
            true,
        ));
    }
    Ok(bytes)
}

use std::io::Read as _;

impl FrameSource for HttpCamera {
    fn next_frame(&mut self) -> Result<Option<Frame>, VisionError> {
        self.capture().map(Some)
    }
}

fn with_attempts(error: VisionError, attempts: u32) -> VisionError {
    match error {
        VisionError::Http { url, message, .. } => VisionError::Http {
            url,
            message,
            attempts,
        },
        VisionError::HttpStatus { url, status, .. } => VisionError::HttpStatus {
            url,
            status,
            attempts,
        },
        other => other,
    }
}

/// Percent-encodes a query value (the setting names and values are plain
/// words and numbers; anything else is escaped).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shown;

    /// Found by the battery: a camera URL's password reached every retry
    /// warning and error.
    #[test]
    fn a_password_in_a_url_is_never_shown() {
        assert_eq!(
            shown("http://admin:pw@10.0.0.5:81/capture?x=a@b"),
            "http://***@10.0.0.5:81/capture?x=a@b"
        );
        assert_eq!(shown("http://pw@cam/capture"), "http://***@cam/capture");
        assert_eq!(
            shown("http://cam/capture?u=a@b"),
            "http://cam/capture?u=a@b"
        );
        assert_eq!(shown("/frames/a@b.jpg"), "/frames/a@b.jpg");
    }
}
