//! Where frames come from: the camera over HTTP, a file, a folder, stdin,
//! all behind [`FrameSource`]; [`SourceSpec`] is a meter's `source` key and
//! opens the right one.
//!
//! Every source checks each JPEG ([`decode_jpeg`]) before handing it out; a
//! bad one is copied into the caller's `rejected/` folder (when given; at
//! most [`defaults::REJECTED_CAP`] files, the oldest dropped) and reported
//! as [`VisionError::CorruptJpeg`], never returned as a frame.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use image::RgbImage;

use crate::error::VisionError;
use crate::jpeg::decode_jpeg;

pub mod defaults;
mod http;
mod spec;
mod stop;

pub use http::{FlashMode, HttpCamera, HttpCameraBuilder};
pub use spec::{SourceOptions, SourceSpec};
pub use stop::StopSignal;

/// One checked, decoded camera frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The JPEG as received.
    pub jpeg: Vec<u8>,
    /// The decoded picture.
    pub image: RgbImage,
    /// When it was taken (received, for the camera; modified, for files).
    pub captured_at: SystemTime,
    /// Where it came from: URL or file path.
    pub origin: String,
}

/// A supply of frames.
pub trait FrameSource {
    /// The next frame; `Ok(None)` when a finite source (file, folder,
    /// stdin) is used up. A bad frame is an error; a folder source moves on
    /// past it, so the next call gives the following file.
    fn next_frame(&mut self) -> Result<Option<Frame>, VisionError>;
}

/// Checks and decodes `jpeg`; on a defect, keeps a copy in `rejected` (when
/// given) and returns the error naming the copy.
pub fn check_frame(
    jpeg: Vec<u8>,
    origin: &str,
    captured_at: SystemTime,
    rejected: Option<&Path>,
) -> Result<Frame, VisionError> {
    match decode_jpeg(&jpeg, origin) {
        Ok(image) => Ok(Frame {
            jpeg,
            image,
            captured_at,
            origin: origin.to_string(),
        }),
        Err(VisionError::CorruptJpeg { origin, defect, .. }) => {
            let kept = rejected.and_then(|dir| keep_rejected(dir, &origin, &jpeg));
            Err(VisionError::CorruptJpeg {
                origin,
                defect,
                kept,
            })
        }
        Err(e) => Err(e),
    }
}

/// Writes a rejected frame into `dir` under a unique name derived from the
/// time and its origin, first removing the oldest ones beyond
/// [`defaults::REJECTED_CAP`] (a camera that cuts every frame must not
/// fill the disk; the newest frames tell what is wrong now). Failure to
/// keep it is logged, not fatal: the frame is bad anyway and the error
/// still reports it.
pub fn keep_rejected(dir: &Path, origin: &str, bytes: &[u8]) -> Option<PathBuf> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        log::warn!("cannot create rejected folder {}: {e}", dir.display());
        return None;
    }
    make_room(dir, defaults::REJECTED_CAP);
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let tail: String = origin
        .rsplit(['/', '\\'])
        .find(|s| !s.is_empty())
        .unwrap_or("frame")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let stem = tail.trim_end_matches(".jpg").trim_end_matches(".jpeg");
    for n in 0..1000u32 {
        let name = if n == 0 {
            format!("{stamp}_{stem}.jpg")
        } else {
            format!("{stamp}_{stem}_{n}.jpg")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write;
                return match f.write_all(bytes) {
                    Ok(()) => Some(path),
                    Err(e) => {
                        log::warn!("cannot write {}: {e}", path.display());
                        None
                    }
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                log::warn!("cannot write {}: {e}", path.display());
                return None;
            }
        }
    }
    None
}

/// Removes the oldest `.jpg` files of `dir` (names start with the time in
/// milliseconds, so name order is age order) until fewer than `cap` remain.
fn make_room(dir: &Path, cap: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut kept: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    // Room for the one about to be written.
    let Some(excess) = (kept.len() + 1).checked_sub(cap).filter(|&n| n > 0) else {
        return;
    };
    kept.sort();
    for old in kept.iter().take(excess) {
        if let Err(e) = std::fs::remove_file(old) {
            log::warn!("cannot remove old rejected frame {}: {e}", old.display());
        }
    }
}

fn read_file(path: &Path) -> Result<(Vec<u8>, SystemTime), VisionError> {
    let io = |source| VisionError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let time = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    Ok((bytes, time))
}

/// One JPEG file: once, or read afresh on every call.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    rejected: Option<PathBuf>,
    repeat: bool,
    done: bool,
}

impl FileSource {
    /// Reads `path` once; bad frames are copied into `rejected` when given.
    pub fn new(path: impl Into<PathBuf>, rejected: Option<PathBuf>) -> Self {
        Self {
            path: path.into(),
            rejected,
            repeat: false,
            done: false,
        }
    }

    /// Reads `path` afresh on every call, never used up (a camera that
    /// overwrites one file).
    pub fn repeating(path: impl Into<PathBuf>, rejected: Option<PathBuf>) -> Self {
        Self {
            repeat: true,
            ..Self::new(path, rejected)
        }
    }
}

impl FrameSource for FileSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, VisionError> {
        if self.done {
            return Ok(None);
        }
        self.done = !self.repeat;
        let (bytes, time) = read_file(&self.path)?;
        check_frame(
            bytes,
            &self.path.display().to_string(),
            time,
            self.rejected.as_deref(),
        )
        .map(Some)
    }
}

/// The order in which a folder is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FolderOrder {
    /// By file name (timestamped names sort in time order).
    #[default]
    Name,
    /// By modification time, then name.
    ModifiedTime,
}

/// Every `.jpg`/`.jpeg` file of a folder (not recursive), in order.
#[derive(Debug, Clone)]
pub struct FolderSource {
    files: std::vec::IntoIter<PathBuf>,
    rejected: Option<PathBuf>,
}

impl FolderSource {
    /// Lists `dir` now; files added later are not seen.
    pub fn new(
        dir: &Path,
        order: FolderOrder,
        rejected: Option<PathBuf>,
    ) -> Result<Self, VisionError> {
        let mut files = list_jpegs(dir)?;
        match order {
            FolderOrder::Name => files.sort_by(|a, b| a.1.cmp(&b.1)),
            FolderOrder::ModifiedTime => files.sort(),
        }
        Ok(Self {
            files: files
                .into_iter()
                .map(|f| f.1)
                .collect::<Vec<_>>()
                .into_iter(),
            rejected,
        })
    }

    /// Files not yet read.
    pub fn remaining(&self) -> usize {
        self.files.len()
    }
}

impl FrameSource for FolderSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, VisionError> {
        let Some(path) = self.files.next() else {
            return Ok(None);
        };
        let (bytes, time) = read_file(&path)?;
        check_frame(
            bytes,
            &path.display().to_string(),
            time,
            self.rejected.as_deref(),
        )
        .map(Some)
    }
}

/// The `.jpg`/`.jpeg` files of `dir` (not recursive) with their
/// modification times.
fn list_jpegs(dir: &Path) -> Result<Vec<(SystemTime, PathBuf)>, VisionError> {
    let io = |source| VisionError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_jpeg = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
        if is_jpeg && path.is_file() {
            let mtime = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            files.push((mtime, path));
        }
    }
    Ok(files)
}

/// The most recently modified `.jpg`/`.jpeg` file of `dir` (the last by
/// name among equals): a camera that uploads into a folder, read once.
pub fn newest_jpeg(dir: &Path) -> Result<PathBuf, VisionError> {
    list_jpegs(dir)?
        .into_iter()
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| VisionError::InvalidSource {
            spec: dir.display().to_string(),
            reason: "no .jpg frame in this folder".into(),
        })
}

/// One JPEG read to the end of a stream (stdin by default), once.
#[derive(Debug)]
pub struct StdinSource<R = std::io::Stdin> {
    reader: R,
    rejected: Option<PathBuf>,
    max_bytes: u64,
    done: bool,
}

impl StdinSource<std::io::Stdin> {
    /// Reads standard input.
    pub fn new(rejected: Option<PathBuf>) -> Self {
        Self::from_reader(std::io::stdin(), rejected)
    }
}

impl<R: Read> StdinSource<R> {
    /// Reads any stream (for tests and pipes).
    pub fn from_reader(reader: R, rejected: Option<PathBuf>) -> Self {
        Self {
            reader,
            rejected,
            max_bytes: defaults::STDIN_MAX_BYTES,
            done: false,
        }
    }
}

impl<R: Read> FrameSource for StdinSource<R> {
    fn next_frame(&mut self) -> Result<Option<Frame>, VisionError> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        let mut bytes = Vec::new();
        (&mut self.reader)
            .take(self.max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| VisionError::Io {
                path: PathBuf::from("-"),
                source,
            })?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(VisionError::BodyTooLarge {
                url: "stdin".into(),
                limit: self.max_bytes,
            });
        }
        check_frame(bytes, "stdin", SystemTime::now(), self.rejected.as_deref()).map(Some)
    }
}
