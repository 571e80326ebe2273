//! A meter's `source`: what it names, checked and opened here.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{newest_jpeg, FileSource, FolderOrder, FolderSource, Frame, FrameSource, StopSignal};
use super::{HttpCamera, VisionError};

/// Where a meter's frames come from, as written in its `source` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The camera's web server: `http(s)://…`, its base URL or its
    /// `/capture` URL.
    Http(String),
    /// One JPEG file, read afresh on every reading (a camera that
    /// overwrites one file).
    File(PathBuf),
    /// A folder of JPEGs: replayed in name order by [`open`](Self::open);
    /// its newest frame for [`read_once`](Self::read_once).
    Folder(PathBuf),
}

/// What opening a source needs besides the spec.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Where frames that fail the JPEG checks are kept (at most
    /// [`REJECTED_CAP`](super::defaults::REJECTED_CAP), the oldest
    /// dropped first).
    pub rejected_dir: Option<PathBuf>,
    /// Stops camera requests and retry pauses (a stop, or a deadline).
    pub stop: StopSignal,
    /// How often frames will be taken, when known: a camera read less
    /// often than [`KEEP_IDLE`](super::defaults::KEEP_IDLE) keeps no
    /// connection (and its buffers) open between frames.
    pub frame_interval: Option<std::time::Duration>,
}

impl SourceSpec {
    /// Reads a `source` value: an `http://` or `https://` URL, or a path
    /// (relative ones taken from `base_dir`) to a folder or a file. A file
    /// need not exist yet.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, VisionError> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(Self::Http(text.trim_end_matches('/').to_owned()));
        }
        let invalid = |reason: &str| VisionError::InvalidSource {
            spec: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.contains("://") {
            return Err(invalid(
                "only http:// and https:// URLs or file paths are supported",
            ));
        }
        if text.trim().is_empty() {
            return Err(invalid("empty"));
        }
        let path = base_dir.join(text);
        Ok(if path.is_dir() {
            Self::Folder(path)
        } else {
            Self::File(path)
        })
    }

    /// The source of a reading loop: the camera (its retries watching
    /// `options.stop`), the file read afresh each time, or the folder's
    /// frames in name order (then `Ok(None)`).
    pub fn open(
        &self,
        options: &SourceOptions,
    ) -> Result<Box<dyn FrameSource + Send>, VisionError> {
        let rejected = options.rejected_dir.clone();
        Ok(match self {
            Self::Http(url) => Box::new(camera(url, options)?),
            Self::File(path) => Box::new(FileSource::repeating(path, rejected)),
            Self::Folder(dir) => Box::new(FolderSource::new(dir, FolderOrder::Name, rejected)?),
        })
    }

    /// One frame for a one-shot reading (`meter predict` from cron): a
    /// capture, the file, or the folder's newest JPEG.
    pub fn read_once(&self, options: &SourceOptions) -> Result<Frame, VisionError> {
        let rejected = options.rejected_dir.clone();
        let frame = match self {
            Self::Http(url) => return camera(url, options)?.capture(),
            Self::File(path) => FileSource::new(path, rejected).next_frame()?,
            Self::Folder(dir) => FileSource::new(newest_jpeg(dir)?, rejected).next_frame()?,
        };
        // A file source gives its one frame or an error.
        frame.ok_or_else(|| VisionError::InvalidSource {
            spec: self.to_string(),
            reason: "gave no frame".into(),
        })
    }
}

/// The camera client of an `http(s)://` source.
fn camera(url: &str, options: &SourceOptions) -> Result<HttpCamera, VisionError> {
    // The simulator's set-up names the capture URL; the client wants the base.
    let base = url.strip_suffix("/capture").unwrap_or(url);
    let keep_alive = options
        .frame_interval
        .is_none_or(|every| every < super::defaults::KEEP_IDLE);
    let mut builder = HttpCamera::builder(base)
        .stop_signal(options.stop.clone())
        .keep_alive(keep_alive);
    if let Some(dir) = &options.rejected_dir {
        builder = builder.rejected_dir(dir);
    }
    builder.build()
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(url) => f.write_str(&super::http::shown(url)),
            Self::File(p) | Self::Folder(p) => write!(f, "{}", p.display()),
        }
    }
}
