//! The digit images to label: cut from frames with a meter's geometry, or
//! read from the `unsure/` queue, with the model's guesses.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use image::RgbImage;
use meter_model::{fit_to_input, DigitModel};
use meter_vision::{FolderOrder, FolderSource, FrameSource};

use super::{Item, Origin};
use crate::config::MeterConfig;
use crate::files::image_hash;

/// Cuts every JPEG frame of `dir` (in name order) into digits with the
/// meter's geometry at the model's input size. Frames that cannot be read
/// or aligned are reported through `warn` and left out.
pub fn from_frames(
    dir: &Path,
    meter: &MeterConfig,
    size: (u32, u32),
    warn: &mut dyn FnMut(String),
) -> anyhow::Result<Vec<Item>> {
    let pipeline = crate::reader::pipeline(meter, size)?;
    let mut source = FolderSource::new(dir, FolderOrder::Name, None)
        .with_context(|| format!("frames folder {}", dir.display()))?;
    let mut items = Vec::new();
    loop {
        let frame = match source.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                warn(format!("skipped a frame: {e}"));
                continue;
            }
        };
        let processed = match pipeline.process_image(frame.image) {
            Ok(p) => p,
            Err(e) => {
                warn(format!("skipped frame {}: {e}", frame.origin));
                continue;
            }
        };
        let context = Arc::new(processed.digits);
        for (i, img) in context.iter().enumerate() {
            items.push(Item {
                hash: image_hash(img),
                meter: meter.name.clone(),
                image: img.clone(),
                context: Arc::clone(&context),
                position: i,
                origin: Origin::Frame {
                    frame: frame.origin.clone().into(),
                    digit: i,
                },
                guess: None,
            });
        }
    }
    Ok(items)
}

/// What an unsure file's name says: `<meter>-<time>-d<i>-read<x>-<hash>.png`
/// as `meter run` writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsureName {
    /// Meter name.
    pub meter: String,
    /// Capture time stamp (groups the digits of one frame).
    pub stamp: String,
    /// Digit position.
    pub digit: usize,
}

/// Parses an unsure file name; `None` for names of another shape.
pub fn parse_unsure_name(name: &str) -> Option<UnsureName> {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let mut parts = stem.rsplitn(4, '-');
    let _hash = parts.next()?;
    let read = parts.next()?;
    let digit = parts.next()?;
    let rest = parts.next()?;
    if !read.starts_with("read") {
        return None;
    }
    let digit: usize = digit.strip_prefix('d')?.parse().ok()?;
    let (meter, stamp) = rest.rsplit_once('-')?;
    if meter.is_empty() || stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(UnsureName {
        meter: meter.to_owned(),
        stamp: stamp.to_owned(),
        digit,
    })
}

/// Every image file of the `unsure/` queue (of meter `only`, when given),
/// in name order; the other digits of the same frame are its context.
/// Unreadable files are reported through `warn` and left in place.
pub fn from_unsure(
    dir: &Path,
    only: Option<&str>,
    warn: &mut dyn FnMut(String),
) -> anyhow::Result<Vec<Item>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let ext = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                let hidden = p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                p.is_file()
                    && !hidden
                    && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg" | "bmp"))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(e).with_context(|| format!("reading unsure folder {}", dir.display()))
        }
    };
    files.sort();
    // (meter, stamp) -> [(digit, image)] for the context strips.
    let mut groups: BTreeMap<(String, String), Vec<(usize, RgbImage)>> = BTreeMap::new();
    let mut loaded = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = parse_unsure_name(&name);
        let meter = parsed
            .as_ref()
            .map_or_else(|| "unsure".to_owned(), |p| p.meter.clone());
        if only.is_some_and(|m| m != meter) {
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                warn(format!("skipped {}: {e}", path.display()));
                continue;
            }
        };
        let image = match image::load_from_memory(&bytes) {
            Ok(i) => i.to_rgb8(),
            Err(e) => {
                warn(format!("skipped {}: unreadable image: {e}", path.display()));
                continue;
            }
        };
        if let Some(p) = &parsed {
            groups
                .entry((p.meter.clone(), p.stamp.clone()))
                .or_default()
                .push((p.digit, image.clone()));
        }
        loaded.push((path, bytes, image, meter, parsed));
    }
    let mut contexts: BTreeMap<(String, String), Arc<Vec<RgbImage>>> = BTreeMap::new();
    let mut positions: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (key, mut digits) in groups {
        digits.sort_by_key(|d| d.0);
        positions.insert(key.clone(), digits.iter().map(|d| d.0).collect());
        contexts.insert(key, Arc::new(digits.into_iter().map(|d| d.1).collect()));
    }
    let mut items = Vec::with_capacity(loaded.len());
    for (path, bytes, image, meter, parsed) in loaded {
        let (context, position) = match parsed {
            Some(p) => {
                let key = (p.meter, p.stamp);
                let pos = positions[&key]
                    .iter()
                    .position(|d| *d == p.digit)
                    .unwrap_or(0);
                (Arc::clone(&contexts[&key]), pos)
            }
            None => (Arc::new(vec![image.clone()]), 0),
        };
        items.push(Item {
            hash: image_hash(&image),
            meter,
            image,
            context,
            position,
            origin: Origin::Unsure { path, bytes },
            guess: None,
        });
    }
    Ok(items)
}

/// Fills in the model's guess for each item.
pub fn add_guesses(items: &mut [Item], model: &DigitModel) -> anyhow::Result<()> {
    let (w, h) = model.input_size();
    for chunk in items.chunks_mut(64) {
        let imgs: Vec<RgbImage> = chunk
            .iter()
            .map(|it| fit_to_input(&it.image, w, h).into_owned())
            .collect();
        let preds = model.predict_batch(&imgs).context("model")?;
        for (it, p) in chunk.iter_mut().zip(preds) {
            it.guess = Some(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unsure_names() {
        assert_eq!(
            parse_unsure_name("my-meter-1732550000-d3-read4.7-0a1b2c3d.png"),
            Some(UnsureName {
                meter: "my-meter".into(),
                stamp: "1732550000".into(),
                digit: 3
            })
        );
        assert_eq!(parse_unsure_name("holiday.png"), None);
        assert_eq!(parse_unsure_name("a-b-c-d.png"), None);
        assert_eq!(parse_unsure_name("m-123-dx-read1.0-ff.png"), None);
    }
}
