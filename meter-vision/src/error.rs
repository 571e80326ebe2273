//! The typed errors of meter-vision.

use std::path::PathBuf;

/// What is wrong with a JPEG that must not reach the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JpegDefect {
    /// Fewer bytes than the smallest possible JPEG.
    #[error("too short ({len} bytes)")]
    TooShort {
        /// Length of the data.
        len: usize,
    },
    /// The data does not start with the JPEG start-of-image marker.
    #[error("no start-of-image marker (starts with {got:02x?})")]
    NoStartMarker {
        /// The first bytes found.
        got: [u8; 2],
    },
    /// The data does not end with the end-of-image marker: the transfer was
    /// cut (the typical ESP32-CAM fault).
    #[error("no end-of-image marker: truncated after {len} bytes")]
    NoEndMarker {
        /// Length of the data.
        len: usize,
    },
    /// The decoder rejected the data.
    #[error("does not decode: {message}")]
    Undecodable {
        /// The decoder's message.
        message: String,
    },
    /// The picture decodes, but its bottom rows (top rows, for a frame
    /// saved after a 180-degree turn) are one flat grey: data the camera
    /// never captured.
    #[error("{rows} of {height} rows at the bottom or top are flat grey (truncated capture)")]
    GreyBottom {
        /// Number of flat rows at the bottom.
        rows: u32,
        /// Frame height.
        height: u32,
    },
}

/// Errors of acquisition, alignment and cropping.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VisionError {
    /// A file, folder or stream could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file concerned (`-` for stdin).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A frame is not a sound JPEG; it was kept in `rejected` if a rejected
    /// folder was given.
    #[error("{origin}: corrupt JPEG: {defect}{}", kept.as_ref().map(|p| format!(" (kept as {})", p.display())).unwrap_or_default())]
    CorruptJpeg {
        /// Where the frame came from (file path or URL).
        origin: String,
        /// What is wrong with it.
        defect: JpegDefect,
        /// Where the bad frame was kept for inspection.
        kept: Option<PathBuf>,
    },
    /// An image (template, frame) could not be decoded.
    #[error("{origin}: cannot decode image: {message}")]
    Decode {
        /// Where the image came from.
        origin: String,
        /// The decoder's message.
        message: String,
    },
    /// An HTTP request failed after all retries.
    #[error("{url}: {message}{}", after(*attempts))]
    Http {
        /// The URL requested.
        url: String,
        /// The last failure.
        message: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The caller's [`StopSignal`](crate::source::StopSignal) fired (a stop,
    /// or its deadline) while a request was in flight or waiting for a
    /// retry; the request was abandoned.
    #[error("{url}: abandoned, the reading was stopped")]
    Stopped {
        /// The URL requested.
        url: String,
    },
    /// A frame source description is unusable.
    #[error("source {spec:?}: {reason}")]
    InvalidSource {
        /// The source as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// The camera answered with an HTTP error status.
    #[error("{url}: HTTP status {status}{}", after(*attempts))]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The camera answered with something that is not a JPEG.
    #[error("{url}: expected content-type image/jpeg, got {got:?}")]
    ContentType {
        /// The URL requested.
        url: String,
        /// The content type received (empty when missing).
        got: String,
    },
    /// The response body was larger than allowed.
    #[error("{url}: body larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The URL requested.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A JSON answer could not be parsed.
    #[error("{url}: bad JSON: {message}")]
    Json {
        /// The URL requested.
        url: String,
        /// The parser's message.
        message: String,
    },
    /// A frame is too small for the configured marks: wrong camera
    /// resolution (`framesize`) for this configuration.
    #[error(
        "frame is {got:?}; mark {index} at ({x}, {y}) needs an aligned frame of at least {need:?}"
    )]
    FrameSize {
        /// Width and height of the aligned frame.
        got: (u32, u32),
        /// The mark that does not fit.
        index: usize,
        /// Its top-left x in the aligned frame.
        x: f32,
        /// Its top-left y in the aligned frame.
        y: f32,
        /// The smallest aligned frame that holds the mark.
        need: (u32, u32),
    },
    /// The camera client's settings are unusable.
    #[error("camera {url:?}: {reason}")]
    InvalidCamera {
        /// The base URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A reference mark was not found well enough: alignment failed.
    #[error("alignment failed: mark {index} at ({x}, {y}) matched with score {score:.3}, below the minimum {min_score:.3}")]
    MarkNotFound {
        /// Index of the mark in the configuration.
        index: usize,
        /// Expected top-left x in the aligned frame.
        x: f32,
        /// Expected top-left y in the aligned frame.
        y: f32,
        /// Best normalised cross-correlation found.
        score: f32,
        /// The minimum accepted.
        min_score: f32,
    },
    /// The found marks do not fit one transform (a mark matched the wrong
    /// place, or the camera moved far more than allowed).
    #[error("alignment failed: {reason}")]
    InconsistentMarks {
        /// What was inconsistent.
        reason: String,
    },
    /// The geometry (marks, boxes, sizes) is unusable.
    #[error("invalid geometry: {reason}")]
    InvalidGeometry {
        /// What is wrong.
        reason: String,
    },
    /// A region lies (partly) outside the frame.
    #[error("region {index} {rect:?} lies outside the {width}x{height} frame")]
    RegionOutside {
        /// Index of the region.
        index: usize,
        /// The region `[x, y, w, h]` in the aligned frame.
        rect: [u32; 4],
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
    },
}

/// ` (after 3 attempts)`, or nothing for a single attempt.
fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}
