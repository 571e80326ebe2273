//! A host camera simulator serving the ESP32 CameraWebServer HTTP API on a
//! loopback port (see the crate documentation for the API).
//!
//! ```
//! use firmware::camsim::{Advance, Frames, Server, SimConfig, SyntheticConfig};
//! let sim = Server::start(SimConfig {
//!     source: Frames::Synthetic(Box::new(SyntheticConfig {
//!         advance: Advance::PerFrame(0.03),
//!         ..SyntheticConfig::default()
//!     })),
//!     ..SimConfig::default()
//! })?;
//! assert!(sim.url().starts_with("http://127.0.0.1:"));
//! let frame = sim.render_frame(0)?; // the frame a first /capture would get
//! assert_eq!(frame.truth.unwrap().value_text(), "1234.50");
//! sim.stop();
//! # Ok::<(), firmware::SimError>(())
//! ```

mod server;
mod setup;
mod source;
mod truth;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use meter_synth::MeterLayout;

pub use server::{CapturedFrame, Server};
pub use setup::{layout_json, write_setup, SetupFiles};
pub use truth::{
    FrameTruth, HEADER_DECIMALS, HEADER_DIGITS, HEADER_FILE, HEADER_FLASH, HEADER_ROTATION,
    HEADER_SEQ, HEADER_SHIFT, HEADER_VALUE,
};

use crate::settings::SensorSettings;
use crate::SimError;

/// The simulator's configuration.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where frames come from.
    pub source: Frames,
    /// Loopback address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// The camera's settings at start-up (as `/status` reports them).
    pub settings: SensorSettings,
    /// Time between switching the flash on and grabbing the frame when
    /// `led_intensity` > 0. The firmware waits 150 ms; the default 0 keeps
    /// tests fast.
    pub flash_warmup: Duration,
    /// Faults applied to the first captures, in order.
    pub faults: Vec<FaultSpec>,
    /// Delay of a `slow` response when the fault names none.
    pub slow_delay: Duration,
    /// How long a `timeout` fault holds the request before dropping the
    /// connection without an answer, when the fault names none.
    pub timeout_hold: Duration,
    /// A standing fault: every `n`-th capture (`n - 1`, `2n - 1`, ... by
    /// sequence number) fails this way, when no queued fault applies. For
    /// demonstrating and testing a reader against a flaky camera.
    pub fault_every: Option<(u32, FaultKind)>,
}

impl Default for SimConfig {
    /// Synthetic frames (see [`SyntheticConfig::default`]) on a free
    /// loopback port, flash at 160/255.
    fn default() -> Self {
        Self {
            source: Frames::Synthetic(Box::default()),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            settings: SensorSettings {
                led_intensity: 160,
                ..SensorSettings::default()
            },
            flash_warmup: Duration::ZERO,
            faults: Vec::new(),
            slow_delay: Duration::from_secs(2),
            timeout_hold: Duration::from_secs(30),
            fault_every: None,
        }
    }
}

/// Where frames come from.
#[derive(Debug, Clone)]
pub enum Frames {
    /// Rendered meter frames whose true value is known.
    Synthetic(Box<SyntheticConfig>),
    /// Image files of a folder in name order, looping; JPEG files are served
    /// byte for byte.
    Folder {
        /// The folder.
        dir: PathBuf,
    },
}

/// How the synthetic counter advances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Advance {
    /// Meter units per hour of wall-clock time since the simulator started.
    PerHour(f64),
    /// Meter units per frame served (deterministic: frame `n` shows
    /// `start + n * step`).
    PerFrame(f64),
}

/// The flash reflection at full LED intensity (scaled by `led_intensity`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hotspot {
    /// Centre in the aligned frame, pixels (moves by up to 15% of the
    /// radius between shots).
    pub center: (f32, f32),
    /// Radius (standard deviation of the Gaussian), pixels.
    pub radius: f32,
    /// Brightening at the centre, 0..=255.
    pub peak: f32,
}

/// A synthetic meter.
#[derive(Debug, Clone)]
pub struct SyntheticConfig {
    /// Frame size, digit boxes and reference marks of the aligned frame.
    pub layout: MeterLayout,
    /// How many of the last digits are after the decimal point.
    pub decimals: u32,
    /// Counter value at the first frame, meter units.
    pub start: f64,
    /// How it advances.
    pub advance: Advance,
    /// Sensor noise amplitude (0..255).
    pub noise: f32,
    /// Largest shift between shots, pixels, each axis (uniform).
    pub jitter_px: f32,
    /// Largest rotation between shots, degrees (uniform, either way).
    pub max_rotation_deg: f32,
    /// Flash reflection; drawn only when the flash is on.
    pub hotspot: Option<Hotspot>,
    /// Take digits from photos in `<dir>/<label>/` (e.g.
    /// `../shared/data/meter-digits`) instead of the bitmap font; positions
    /// without a photo fall back to the font.
    pub digit_crops: Option<PathBuf>,
    /// Keep only crops whose file name contains this (e.g. one meter's
    /// source name, for a consistent look).
    pub crop_filter: Option<String>,
    /// Seed of every random choice; frame `n` is a pure function of the
    /// seed, `n` and (in [`Advance::PerHour`]) the time.
    pub seed: u64,
    /// Draw the disturbances (jitter, rotation, noise, hot-spot, crop
    /// choice) of frame `n` from `n % variants` instead of from `n`, and
    /// reuse rendered frames: a slowly turning meter then costs one render
    /// per value and variant, so one simulator can feed many readers
    /// cheaply. `None`: every frame is drawn afresh.
    pub variants: Option<u32>,
}

impl Default for SyntheticConfig {
    /// The default 640x480 six-digit layout with one decimal, starting at
    /// 1234.5, 36 units per hour (a digit roll every 10 s), noise 4,
    /// ±3 px jitter, ±1° rotation, a flash reflection above the digits.
    fn default() -> Self {
        Self {
            layout: MeterLayout::default(),
            decimals: 1,
            start: 1234.5,
            advance: Advance::PerHour(36.0),
            noise: 4.0,
            jitter_px: 3.0,
            max_rotation_deg: 1.0,
            hotspot: Some(Hotspot {
                center: (330.0, 150.0),
                radius: 45.0,
                peak: 70.0,
            }),
            digit_crops: None,
            crop_filter: None,
            seed: 1,
            variants: None,
        }
    }
}

impl SyntheticConfig {
    fn validate(&self) -> Result<(), SimError> {
        let bad = |field, reason: String| Err(SimError::InvalidConfig { field, reason });
        let l = &self.layout;
        if l.width == 0 || l.height == 0 {
            return bad("layout", format!("frame size {}x{}", l.width, l.height));
        }
        if l.digits.is_empty() || l.digits.len() > 12 {
            return bad(
                "layout.digits",
                format!("{} digits, expected 1..=12", l.digits.len()),
            );
        }
        for b in l.digits.iter().chain(&l.marks) {
            if b[2] == 0 || b[3] == 0 || b[0] + b[2] > l.width || b[1] + b[3] > l.height {
                return bad(
                    "layout",
                    format!("box {b:?} is empty or outside {}x{}", l.width, l.height),
                );
            }
        }
        if self.decimals as usize >= l.digits.len() {
            return bad(
                "decimals",
                format!("{} decimals for {} digits", self.decimals, l.digits.len()),
            );
        }
        let step = match self.advance {
            Advance::PerFrame(s) | Advance::PerHour(s) => s,
        };
        if !self.start.is_finite() || self.start < 0.0 {
            return bad("start", format!("{}", self.start));
        }
        if !step.is_finite() || step < 0.0 {
            return bad("advance", format!("{step} (must be finite and >= 0)"));
        }
        for (field, v) in [
            ("noise", self.noise),
            ("jitter_px", self.jitter_px),
            ("max_rotation_deg", self.max_rotation_deg),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(field, format!("{v} (must be finite and >= 0)"));
            }
        }
        Ok(())
    }
}

/// A fault to inject into a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 200 with a JPEG cut short (no end-of-image marker), as an ESP32
    /// sends when its frame buffer overflows; `Content-Length` matches the
    /// short body.
    Truncate,
    /// The normal frame, after a delay.
    Slow,
    /// `500 Internal Server Error`, as the firmware answers when the grab
    /// fails.
    Error500,
    /// The request is accepted and never answered; after the hold time the
    /// response is abandoned without a byte written.
    Timeout,
    /// The answer's head at once, then the body one byte per delay
    /// (default one second): a client's whole-request timeout, not its
    /// per-read timeout, is what ends it.
    Drip,
}

impl FaultKind {
    /// The name used by `/fault?kind=`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Truncate => "truncate",
            Self::Slow => "slow",
            Self::Error500 => "error500",
            Self::Timeout => "timeout",
            Self::Drip => "drip",
        }
    }

    /// From a `/fault?kind=` name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Truncate,
            Self::Slow,
            Self::Error500,
            Self::Timeout,
            Self::Drip,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSpec {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Delay (`slow`), hold time (`timeout`) or time per byte (`drip`);
    /// `None` uses the configuration's default (one second for `drip`).
    pub delay: Option<Duration>,
}

impl From<FaultKind> for FaultSpec {
    fn from(kind: FaultKind) -> Self {
        Self { kind, delay: None }
    }
}
