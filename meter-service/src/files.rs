//! The dataset-file conventions, shared by self-training (the reader files
//! the digits of stored readings and the crops of unsure ones) and labelling
//! (`meter classify`, the web page):
//!
//! - **One content hash**: [`image_hash`], 64-bit FNV-1a of an image's size
//!   and pixels.
//! - **One naming rule**: a digit image is `<prefix><hash as 16 hex>.png`,
//!   where the prefix is `<meter>-` in a label folder (`dataset/3.7/`) and
//!   `<meter>-<unix time>-d<position>-read<tenths>-` in `unsure/`. So an
//!   image already filed is found by its name, whoever filed it
//!   ([`dataset_index`]), and is never filed twice.
//! - **One atomic write**: [`write_atomic`] (whole file beside the target,
//!   synced, renamed, folder synced); nothing half written is ever seen.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use image::RgbImage;
use meter_core::Tenths;

/// 64-bit FNV-1a of an image's size and pixels: its identity and file name.
pub fn image_hash(img: &RgbImage) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let (w, ht) = img.dimensions();
    for b in w
        .to_le_bytes()
        .iter()
        .chain(ht.to_le_bytes().iter())
        .chain(img.as_raw().iter())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The file name of a digit image: `<prefix><16 hex digits>.png`.
pub fn digit_file_name(prefix: &str, hash: u64) -> String {
    format!("{prefix}{hash:016x}.png")
}

/// A file name `<prefix>-<16 hex digits>.<ext>` split into the prefix and
/// the hash.
fn split_name(path: &Path) -> Option<(&str, u64)> {
    let stem = path.file_stem()?.to_str()?;
    let (prefix, hex) = stem.rsplit_once('-')?;
    let hash = (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()?;
    Some((prefix, hash))
}

/// The hash in a file name `<anything>-<16 hex digits>.<ext>`.
pub fn hash_of_name(path: &Path) -> Option<u64> {
    split_name(path).map(|(_, hash)| hash)
}

/// The meter a digit image filed by the reader or by `meter classify`
/// belongs to: the prefix of its name `<meter>-<16 hex digits>.<ext>`.
pub fn meter_of_name(path: &Path) -> Option<&str> {
    split_name(path)
        .map(|(meter, _)| meter)
        .filter(|m| !m.is_empty())
}

/// Gives each image of `data` whose name says which meter filed it
/// ([`meter_of_name`]; one of `meters`, or any with `None`) that meter as
/// its source, so that a user's dataset is calibrated and judged meter by
/// meter, as each meter is read. Other images keep the source the dataset
/// gave them.
pub fn sources_by_meter(data: &mut meter_model::Dataset, meters: Option<&[&str]>) {
    for s in &mut data.samples {
        let known = |m: &&str| meters.is_none_or(|ms| ms.contains(m));
        if let Some(m) = meter_of_name(&s.path).filter(known) {
            s.source = m.to_owned();
        }
    }
}

/// The (non-hidden) files in the label folders (`N.M`) of `dataset_dir`;
/// none when it does not exist yet.
pub fn label_files(dataset_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dataset_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dataset_dir.display())),
    };
    for entry in entries {
        let sub = entry
            .with_context(|| format!("reading {}", dataset_dir.display()))?
            .path();
        let is_label = sub
            .file_name()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.parse::<Tenths>().is_ok());
        if is_label && sub.is_dir() {
            files.extend(visible_files(&sub)?);
        }
    }
    Ok(files)
}

/// The non-hidden files of `dir` (none when it does not exist).
fn visible_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files = Vec::new();
    for f in entries {
        let p = f
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if p.is_file() && !hidden {
            files.push(p);
        }
    }
    Ok(files)
}

/// Every image in the label folders of `dataset_dir` by its hash: from the
/// file name, or (files named otherwise, such as those of older versions)
/// from its pixels.
pub fn dataset_index(dataset_dir: &Path) -> anyhow::Result<HashMap<u64, PathBuf>> {
    Ok(index_files(label_files(dataset_dir)?))
}

fn index_files(files: Vec<PathBuf>) -> HashMap<u64, PathBuf> {
    files
        .into_iter()
        .filter_map(|p| {
            let hash = hash_of_name(&p).or_else(|| {
                // Unreadable files cannot be duplicates of anything.
                image::open(&p).ok().map(|i| image_hash(&i.to_rgb8()))
            })?;
            Some((hash, p))
        })
        .collect()
}

/// Writes `bytes` to `path` atomically and durably: a reader sees the old
/// file or the new one, never part of one, and the new one survives a crash
/// once this returns.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = atomic_write_file::AtomicWriteFile::open(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Renames `from` to `to`, copying (then removing) across file systems.
pub fn move_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    let ctx = || format!("moving {} to {}", from.display(), to.display());
    write_atomic(to, &std::fs::read(from).with_context(ctx)?).with_context(ctx)?;
    std::fs::remove_file(from).with_context(ctx)
}

/// `img` as PNG bytes.
pub fn png_bytes(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .context("encoding PNG")?;
    Ok(out.into_inner())
}

/// Files digit images into the sub-folders of one folder (`dataset/<label>/`,
/// or `unsure/` itself), named by the naming rule: never the same picture
/// twice anywhere in the folder, at most `cap` per sub-folder. Shared by all
/// meters of a process.
#[derive(Debug)]
pub struct ImageFiler {
    dir: PathBuf,
    cap: usize,
    inner: Mutex<Option<Filed>>,
}

/// What is in the folder, read at the first filing.
#[derive(Debug)]
struct Filed {
    hashes: HashMap<u64, PathBuf>,
    counts: HashMap<String, usize>,
}

impl ImageFiler {
    /// Files into `dir` (label folders as sub-folders), at most `cap` images each.
    pub fn new(dir: PathBuf, cap: usize) -> Self {
        Self {
            dir,
            cap,
            inner: Mutex::new(None),
        }
    }

    /// Saves `img` as `<dir>/<folder>/<prefix><hash>.png` unless that folder
    /// is full or the same picture is already filed; returns whether it was
    /// written.
    pub fn file(&self, folder: &str, prefix: &str, img: &RgbImage) -> anyhow::Result<bool> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let filed = match &mut *guard {
            Some(f) => f,
            None => guard.insert(self.scan()?),
        };
        let hash = image_hash(img);
        if filed.hashes.contains_key(&hash) {
            return Ok(false);
        }
        let dir = self.dir.join(folder);
        let count = match filed.counts.get(folder) {
            Some(c) => *c,
            None => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                visible_files(&dir)?.len()
            }
        };
        if count >= self.cap {
            filed.counts.insert(folder.to_owned(), count);
            return Ok(false);
        }
        let path = dir.join(digit_file_name(prefix, hash));
        write_atomic(&path, &png_bytes(img)?)
            .with_context(|| format!("writing {}", path.display()))?;
        filed.counts.insert(folder.to_owned(), count + 1);
        filed.hashes.insert(hash, path);
        Ok(true)
    }

    /// Hashes of what the folder holds: its label folders, and its own files.
    fn scan(&self) -> anyhow::Result<Filed> {
        let mut files = label_files(&self.dir)?;
        files.extend(visible_files(&self.dir)?);
        Ok(Filed {
            hashes: index_files(files),
            counts: HashMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(v: u8) -> RgbImage {
        RgbImage::from_pixel(4, 4, image::Rgb([v, v, v]))
    }

    #[test]
    fn filer_dedups_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        let filer = ImageFiler::new(dir.path().to_path_buf(), 2);
        assert!(filer.file("3.7", "m-", &img(1)).unwrap());
        assert!(!filer.file("3.7", "m-", &img(1)).unwrap(), "same picture");
        assert!(
            !filer.file("3.8", "m-", &img(1)).unwrap(),
            "same picture, other label"
        );
        assert!(filer.file("3.7", "m-", &img(2)).unwrap());
        assert!(!filer.file("3.7", "m-", &img(3)).unwrap(), "folder full");
        assert!(filer.file("3.8", "m-", &img(3)).unwrap());
        let n = std::fs::read_dir(dir.path().join("3.7")).unwrap().count();
        assert_eq!(n, 2);
        // A new process knows what is there.
        let again = ImageFiler::new(dir.path().to_path_buf(), 5);
        assert!(!again.file("4.0", "m-", &img(2)).unwrap(), "filed earlier");
        assert!(again.file("4.0", "m-", &img(4)).unwrap());
    }

    #[test]
    fn the_meter_is_read_back_from_the_name() {
        let name = digit_file_name("house-", 0xab);
        assert_eq!(meter_of_name(Path::new(&name)), Some("house"));
        assert_eq!(
            meter_of_name(Path::new("3.7/water-cold-00000000000000ff.jpg")),
            Some("water-cold")
        );
        for other in [
            "powermeter-betar-1__ea0656bb5a30.jpg",
            "m-ab.png",
            "-00000000000000ff.png",
            "m-00000000000000fg.png",
        ] {
            assert_eq!(meter_of_name(Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn names_follow_one_rule_and_index_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let filer = ImageFiler::new(dir.path().to_path_buf(), 10);
        assert!(filer.file("1.0", "house-", &img(9)).unwrap());
        let index = dataset_index(dir.path()).unwrap();
        let path = &index[&image_hash(&img(9))];
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            digit_file_name("house-", image_hash(&img(9)))
        );
        // A file of an older naming is indexed by its pixels.
        let legacy = dir.path().join("2.0/house-0a1b2c3d.png");
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        img(7).save(&legacy).unwrap();
        let index = dataset_index(dir.path()).unwrap();
        assert_eq!(index[&image_hash(&img(7))], legacy);
    }

    #[test]
    fn atomic_write_replaces_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
