//! Typed errors of the firmware model and the simulator.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors of the firmware model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirmwareError {
    /// The flash safety limit leaves no time to grab a frame.
    #[error("flash max on-time {max_on_ms} ms must exceed the warm-up {warmup_ms} ms")]
    FlashTiming {
        /// Configured warm-up.
        warmup_ms: u32,
        /// Configured limit.
        max_on_ms: u32,
    },
}

/// Why a `/control` request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// `var` or `val` missing from the query.
    #[error("missing query parameter {name:?}")]
    MissingParameter {
        /// `var` or `val`.
        name: &'static str,
    },
    /// No such variable.
    #[error("unknown control variable {name:?}")]
    UnknownVariable {
        /// The name given.
        name: String,
    },
    /// The value is not a decimal integer.
    #[error("value {value:?} for {var} is not an integer")]
    NotAnInteger {
        /// The variable.
        var: &'static str,
        /// The text given.
        value: String,
    },
    /// The value is outside the variable's range.
    #[error("value {value} for {var} is outside {min}..={max}")]
    OutOfRange {
        /// The variable.
        var: &'static str,
        /// The value given.
        value: i64,
        /// Smallest valid value.
        min: i64,
        /// Largest valid value.
        max: i64,
    },
}

impl ControlError {
    /// The HTTP status the CameraWebServer answers with: 404 for a missing
    /// parameter, 500 when the sensor refuses the setting.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::MissingParameter { .. } => 404,
            _ => 500,
        }
    }
}

/// Errors of the camera simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The simulator only listens on loopback addresses.
    #[error("refusing to listen on {addr}: only loopback addresses are allowed")]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        reason: String,
    },
    /// A folder could not be read.
    #[error("cannot read folder {}", path.display())]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A frame folder holds no image files.
    #[error("no image files (.jpg, .jpeg, .png, .bmp) in {path}")]
    NoFrames {
        /// The folder.
        path: PathBuf,
    },
    /// A digit-crop folder holds no `<label>/` folders with images.
    #[error("no digit crops in {path}: expected <label>/ folders such as 3.7/ holding images")]
    NoDigitCrops {
        /// The folder.
        path: PathBuf,
    },
    /// A frame file could not be read or decoded.
    #[error("cannot read frame {path}: {reason}")]
    ReadFrame {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// A configuration value is invalid.
    #[error("invalid simulator setting {field}: {reason}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A set-up file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// JPEG encoding failed.
    #[error("cannot encode frame")]
    Encode(#[from] image::ImageError),
}

/// Why frame-truth headers could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TruthError {
    /// A header has an unparsable value.
    #[error("header {header}: cannot parse {value:?}")]
    Malformed {
        /// The header name.
        header: &'static str,
        /// Its text.
        value: String,
    },
}
