//! Labelled digit images: folders named by label (`N` or `N.M`), or a
//! `manifest.csv` (`file,label[,source[,kind,...]]`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use image::RgbImage;
use meter_core::{LabelError, Tenths};

use crate::preprocess::fit_to_input;
use crate::ModelError;

/// The manifest file name looked for in a dataset folder.
pub const MANIFEST: &str = "manifest.csv";

/// One labelled image, already at the model's input size.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The image at the input size.
    pub image: RgbImage,
    /// Its label.
    pub label: Tenths,
    /// The meter or collection it came from (the manifest's `source`, else the
    /// file name's prefix before `__`, else the dataset folder's name).
    pub source: String,
    /// The manifest's `kind` (powermeter, watermeter, ...), if any.
    pub kind: Option<String>,
    /// The file it was read from.
    pub path: PathBuf,
}

/// Something skipped while loading; the rest still loads.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A folder name or manifest label is not a valid label.
    #[error("{path}: bad label {text:?}: {error}")]
    BadLabel {
        /// The folder or manifest.
        path: PathBuf,
        /// The offending text.
        text: String,
        /// Why it is invalid.
        error: LabelError,
    },
    /// An image could not be read or decoded.
    #[error("{path}: unreadable image: {message}")]
    UnreadableImage {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
}

/// Labelled images plus what could not be loaded.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The loaded images.
    pub samples: Vec<Sample>,
    /// What was skipped, with paths.
    pub problems: Vec<Problem>,
}

struct Entry {
    path: PathBuf,
    label: Tenths,
    source: String,
    kind: Option<String>,
}

impl Dataset {
    /// Loads a dataset folder, resizing each image to `size` (width, height).
    pub fn load(dir: &Path, size: (u32, u32)) -> Result<Self, ModelError> {
        let mut problems = Vec::new();
        let manifest = dir.join(MANIFEST);
        let entries = if manifest.is_file() {
            read_manifest(dir, &manifest, &mut problems)?
        } else {
            scan_folders(dir, &mut problems)?
        };
        if entries.is_empty() && problems.is_empty() {
            return Err(ModelError::EmptyDataset {
                path: dir.to_owned(),
            });
        }
        let (samples, unreadable) = decode_all(entries, size);
        problems.extend(unreadable);
        Ok(Self { samples, problems })
    }

    /// Loads and concatenates several dataset folders.
    pub fn load_many(dirs: &[PathBuf], size: (u32, u32)) -> Result<Self, ModelError> {
        let mut all = Self::default();
        for dir in dirs {
            let d = Self::load(dir, size)?;
            all.samples.extend(d.samples);
            all.problems.extend(d.problems);
        }
        Ok(all)
    }

    /// Keeps `limit` samples drawn at random (seeded), in their original order.
    pub fn subsample(&mut self, limit: usize, seed: u64) {
        use rand::seq::index::sample;
        use rand::SeedableRng;
        if limit >= self.samples.len() {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut keep = sample(&mut rng, self.samples.len(), limit).into_vec();
        keep.sort_unstable();
        let mut all: Vec<Option<Sample>> = self.samples.drain(..).map(Some).collect();
        self.samples = keep.into_iter().filter_map(|i| all[i].take()).collect();
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The distinct sources, sorted.
    pub fn sources(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.source.as_str()).collect()
    }

    /// Only the samples whose source is in `sources`.
    pub fn with_sources(&self, sources: &[String]) -> Self {
        Self {
            samples: self
                .samples
                .iter()
                .filter(|s| sources.contains(&s.source))
                .cloned()
                .collect(),
            problems: Vec::new(),
        }
    }
}

/// Reads a list of sources (e.g. the meters held out for validation): one per
/// line; blank lines and `#` comments, whole-line or trailing, are ignored.
pub fn read_source_list(path: &Path) -> Result<Vec<String>, ModelError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_manifest(
    dir: &Path,
    manifest: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Vec<Entry>, ModelError> {
    let bad = |line: u64, message: String| ModelError::Manifest {
        path: manifest.to_owned(),
        line,
        message,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(manifest)
        .map_err(|e| bad(0, e.to_string()))?;
    let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(file_col), Some(label_col)) = (col("file"), col("label")) else {
        return Err(bad(1, "expected columns `file` and `label`".into()));
    };
    let (source_col, kind_col) = (col("source"), col("kind"));
    let default_source = folder_name(dir);
    let mut entries = Vec::new();
    for record in rdr.records() {
        let record =
            record.map_err(|e| bad(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let (Some(file), Some(label)) = (record.get(file_col), record.get(label_col)) else {
            return Err(bad(line, "missing `file` or `label` field".into()));
        };
        let path = dir.join(file);
        let label = match label.trim().parse::<Tenths>() {
            Ok(l) => l,
            Err(error) => {
                problems.push(Problem::BadLabel {
                    path: path.clone(),
                    text: label.to_owned(),
                    error,
                });
                continue;
            }
        };
        let field = |c: Option<usize>| {
            c.and_then(|c| record.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        entries.push(Entry {
            source: field(source_col).unwrap_or_else(|| default_source.clone()),
            kind: field(kind_col),
            path,
            label,
        });
    }
    Ok(entries)
}

fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(dir)
        .file_name()
        .map_or_else(
            || "dataset".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        )
}

fn scan_folders(dir: &Path, problems: &mut Vec<Problem>) -> Result<Vec<Entry>, ModelError> {
    let default_source = folder_name(dir);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut entries = Vec::new();
    for sub in dirs {
        let name = sub
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with('.') {
            continue;
        }
        let label = match name.parse::<Tenths>() {
            Ok(l) => l,
            Err(error) => {
                problems.push(Problem::BadLabel {
                    path: sub.clone(),
                    text: name,
                    error,
                });
                continue;
            }
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&sub)
            .map_err(io_err(&sub))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        for path in files {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            let source = stem
                .split_once("__")
                .map_or_else(|| default_source.clone(), |(s, _)| s.to_owned());
            entries.push(Entry {
                path,
                label,
                source,
                kind: None,
            });
        }
    }
    Ok(entries)
}

/// Decodes on a few threads; order follows `entries`.
fn decode_all(entries: Vec<Entry>, size: (u32, u32)) -> (Vec<Sample>, Vec<Problem>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let chunk = entries.len().div_ceil(threads).max(1);
    let decoded: Vec<Vec<Result<Sample, Problem>>> = std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|e| decode(e, size)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut samples = Vec::with_capacity(entries.len());
    let mut problems = Vec::new();
    for r in decoded.into_iter().flatten() {
        match r {
            Ok(s) => samples.push(s),
            Err(p) => problems.push(p),
        }
    }
    (samples, problems)
}

fn decode(e: &Entry, (w, h): (u32, u32)) -> Result<Sample, Problem> {
    let img = image::ImageReader::open(&e.path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|err| err.to_string())
        .and_then(|r| r.decode().map_err(|err| err.to_string()))
        .map_err(|message| Problem::UnreadableImage {
            path: e.path.clone(),
            message,
        })?;
    let rgb = img.to_rgb8();
    if rgb.width() == 0 || rgb.height() == 0 {
        return Err(Problem::UnreadableImage {
            path: e.path.clone(),
            message: "image has no pixels".into(),
        });
    }
    Ok(Sample {
        image: fit_to_input(&rgb, w, h).into_owned(),
        label: e.label,
        source: e.source.clone(),
        kind: e.kind.clone(),
        path: e.path.clone(),
    })
}
