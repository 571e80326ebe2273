//! The ESP32-CAM side of meter-reader: the camera's HTTP API and flash-LED
//! logic as host-testable types, and [`camsim`], a host camera simulator
//! speaking the same API (binary `meter-camsim`).
//!
//! # HTTP API
//!
//! The API is that of Espressif's `CameraWebServer` example (which
//! AI-on-the-edge-style ESP32-CAM set-ups run), so a client written against
//! the simulator works against a real camera. Every endpoint is `GET`
//! (`HEAD` too); anything else gets `405`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /capture` | `200`, `Content-Type: image/jpeg`, one JPEG frame. Query parameters are ignored. The flash is switched on at `led_intensity` before the grab, for a warm-up time (the firmware waits 150 ms; the simulator's [`camsim::SimConfig::flash_warmup`], default 0), and off right after, also when the grab fails. A failed grab answers `500`. Headers: `Content-Disposition: inline; filename=capture.jpg`, `Access-Control-Allow-Origin: *`, `X-Timestamp: <unix s>.<µs>`. |
//! | `GET /status` | `200`, `application/json`: the sensor settings, see [`SensorSettings`] (`{"xclk":20,"pixformat":4,"framesize":8,"quality":12,"brightness":0,...,"led_intensity":0}`). |
//! | `GET /control?var=NAME&val=V` | `200` with an empty body when set; `404` when `var` or `val` is missing; `500` when `NAME` is unknown, `V` is not a decimal integer or is outside the variable's range ([`ControlVar::range`]); the body then says why. Nothing changes on error. |
//!
//! [`CameraRequest`] parses these targets (device, simulator) and writes
//! them (clients): `CameraRequest::Control { var, val }.target()`.
//!
//! Flash: there is no per-request flash parameter (the firmware has none).
//! A client sets `GET /control?var=led_intensity&val=0..255` once (0 = no
//! flash) and every capture after uses it. Frame size (`framesize`, see
//! [`FrameSize`]) and `quality` (0 best ..= 63) work the same way.
//!
//! ## Simulator extensions
//!
//! The simulator adds, on the same port:
//!
//! - Truth headers on `/capture` of synthetic frames: `X-Frame-Seq` (0 for
//!   the first capture; every capture request takes a number, failed ones
//!   too), `X-Meter-Value` (exact decimal text with one more decimal than
//!   the meter shows, e.g. `1234.56`), `X-Meter-Decimals`, `X-Meter-Digits`
//!   (each roller in tenths, most significant first, `0.0,1.0,2.0,3.0,4.5,5.6`),
//!   `X-Frame-Shift` (`dx,dy` px) and `X-Frame-Rotation` (degrees,
//!   counter-clockwise) of the upright image relative to the aligned
//!   frame, and `X-Flash-Duty`. Folder frames carry `X-Frame-Seq` and
//!   `X-Frame-File`. [`camsim::FrameTruth::from_headers`] parses them.
//! - `GET /layout`: JSON `{"width","height","digits":[[x,y,w,h],..],
//!   "marks":[[x,y,w,h],..],"decimals","rotate"}` in aligned-frame pixels
//!   of the frames served now (`404` for a folder source). Synthetic frames
//!   come at the layout's size (`framesize` is set to match at start when
//!   the sensor has that size); after a `framesize` change they are resized
//!   and `/layout` scales with them. Folder frames are served as stored.
//! - `GET /fault?kind=truncate|slow|error500|timeout&count=N&delay_ms=MS`:
//!   the next `N` (default 1, at most 10000) captures fail that way, after
//!   any already queued: `truncate` = `200` with the JPEG cut at 30..80%
//!   (no end-of-image marker; `Content-Length` matches); `slow` = the frame
//!   after `delay_ms` (default 2 s); `error500` = `500`; `timeout` = no
//!   answer at all; after `delay_ms` (default 30 s) the response is
//!   abandoned. `kind=clear` drops the queue. Answers
//!   `{"queued":N,"pending":M}`; bad parameters get `400`.
//!
//! The flash sequence around a grab, and its safety limit, is the pure
//! state machine [`FlashLed`]; the simulator drives one per capture and
//! never leaves the LED on after a fault (see [`camsim::Server::leds_on`]).
//!
//! # Example
//!
//! ```
//! use firmware::{SensorSettings, ControlError};
//! let mut s = SensorSettings::default();
//! s.apply("led_intensity", "128")?;
//! assert_eq!(s.led_intensity, 128);
//! assert_eq!(s.apply("quality", "99").unwrap_err().http_status(), 500);
//! # Ok::<(), ControlError>(())
//! ```
#![deny(missing_docs)]

mod api;
pub mod camsim;
mod error;
mod led;
mod settings;

pub use api::{percent_encode, CameraRequest, Query};
pub use error::{ControlError, FirmwareError, SimError, TruthError};
pub use led::{FlashConfig, FlashConfigBuilder, FlashLed, LedAction, LedEvent, LedPhase, LedStep};
pub use settings::{ControlVar, FrameSize, SensorSettings};
