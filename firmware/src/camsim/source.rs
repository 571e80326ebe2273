//! Frame production: synthetic meter frames or a folder of frames.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use image::{imageops, RgbImage};
use meter_core::Tenths;
use meter_synth::{render_digit_into, FrameParams, MeterLayout};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::truth::FrameTruth;
use super::{Advance, Frames, SyntheticConfig};
use crate::settings::SensorSettings;
use crate::SimError;

/// A frame ready to serve.
pub(crate) struct Frame {
    pub jpeg: Vec<u8>,
    pub truth: Option<FrameTruth>,
    pub file: Option<String>,
}

/// The prepared source (folders listed, crops indexed).
pub(crate) enum Source {
    Synthetic {
        config: Box<SyntheticConfig>,
        crops: Option<DigitCrops>,
        cache: Mutex<FrameCache>,
        slots: Slots,
    },
    Folder {
        files: Vec<PathBuf>,
    },
}

const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn list_images(dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    let read = |e| SimError::ReadDir {
        path: dir.to_owned(),
        source: e,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.is_file() && is_image(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

impl Source {
    pub fn prepare(source: &Frames) -> Result<Self, SimError> {
        match source {
            Frames::Folder { dir } => {
                let files = list_images(dir)?;
                if files.is_empty() {
                    return Err(SimError::NoFrames { path: dir.clone() });
                }
                Ok(Self::Folder { files })
            }
            Frames::Synthetic(cfg) => {
                cfg.validate()?;
                let crops = match &cfg.digit_crops {
                    Some(dir) => Some(DigitCrops::load(dir, cfg.crop_filter.as_deref())?),
                    None => None,
                };
                Ok(Self::Synthetic {
                    config: cfg.clone(),
                    crops,
                    cache: Mutex::new(FrameCache::default()),
                    slots: Slots::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
                })
            }
        }
    }

    pub fn layout(&self) -> Option<(&MeterLayout, u32)> {
        match self {
            Self::Synthetic { config, .. } => Some((&config.layout, config.decimals)),
            Self::Folder { .. } => None,
        }
    }

    /// Produces frame `seq`, taken `elapsed` after the simulator started,
    /// with the flash at `flash_duty`.
    pub fn frame(
        &self,
        seq: u64,
        elapsed: Duration,
        settings: &SensorSettings,
        flash_duty: u8,
        out_size: Option<(u32, u32)>,
    ) -> Result<Frame, SimError> {
        match self {
            Self::Folder { files } => {
                let path = &files[(seq % files.len() as u64) as usize];
                let bytes = std::fs::read(path).map_err(|e| SimError::ReadFrame {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let is_jpeg = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg"));
                // Real camera frames are served byte for byte (truncated ones
                // included); other formats are converted.
                let jpeg = if is_jpeg {
                    bytes
                } else {
                    let img = image::load_from_memory(&bytes)
                        .map_err(|e| SimError::ReadFrame {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?
                        .to_rgb8();
                    encode_jpeg(&img, settings.quality)?
                };
                Ok(Frame {
                    jpeg,
                    truth: None,
                    file: path.file_name().map(|n| n.to_string_lossy().into_owned()),
                })
            }
            Self::Synthetic {
                config,
                crops,
                cache,
                slots,
            } => {
                let Some(variants) = config.variants.filter(|v| *v > 0) else {
                    let _slot = slots.acquire();
                    let (img, truth) =
                        render_synthetic(config, crops.as_ref(), seq, seq, elapsed, flash_duty);
                    let img = apply_settings(img, settings, out_size);
                    return Ok(Frame {
                        jpeg: encode_jpeg(&img, settings.quality)?,
                        truth: Some(truth),
                        file: None,
                    });
                };
                let key = CacheKey {
                    tenths: counter_tenths(config, seq, elapsed),
                    variant: seq % u64::from(variants),
                    flash_duty,
                    settings: settings.clone(),
                };
                let hit = lock(cache).get(&key);
                let (jpeg, mut truth) = match hit {
                    Some(hit) => hit,
                    None => {
                        let _slot = slots.acquire();
                        let (img, truth) = render_synthetic(
                            config,
                            crops.as_ref(),
                            seq,
                            key.variant,
                            elapsed,
                            flash_duty,
                        );
                        let img = apply_settings(img, settings, out_size);
                        let jpeg: Arc<[u8]> = encode_jpeg(&img, settings.quality)?.into();
                        lock(cache).insert(key, (Arc::clone(&jpeg), truth.clone()));
                        (jpeg, truth)
                    }
                };
                truth.seq = seq;
                Ok(Frame {
                    jpeg: jpeg.to_vec(),
                    truth: Some(truth),
                    file: None,
                })
            }
        }
    }
}

/// Bounds the renders running at once to the cores (a burst of requests
/// queues instead of holding a frame buffer each).
pub(crate) struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.freed.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    tenths: i64,
    variant: u64,
    flash_duty: u8,
    settings: SensorSettings,
}

/// Recently rendered frames, so that a slowly turning meter read by many
/// clients costs one render per value and disturbance variant.
#[derive(Default)]
pub(crate) struct FrameCache {
    frames: HashMap<CacheKey, (Arc<[u8]>, FrameTruth)>,
    order: VecDeque<CacheKey>,
}

impl FrameCache {
    /// At ~40 kB a frame, a few MB.
    const CAPACITY: usize = 128;

    fn get(&self, key: &CacheKey) -> Option<(Arc<[u8]>, FrameTruth)> {
        self.frames
            .get(key)
            .map(|(j, t)| (Arc::clone(j), t.clone()))
    }

    fn insert(&mut self, key: CacheKey, value: (Arc<[u8]>, FrameTruth)) {
        if self.frames.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.frames.remove(&old);
            }
        }
    }
}

/// The counter in tenths of the last digit's step for frame `seq`.
pub(crate) fn counter_tenths(cfg: &SyntheticConfig, seq: u64, elapsed: Duration) -> i64 {
    let units = match cfg.advance {
        Advance::PerFrame(step) => cfg.start + step * seq as f64,
        Advance::PerHour(rate) => cfg.start + rate * elapsed.as_secs_f64() / 3600.0,
    };
    let scale = 10f64.powi(cfg.decimals as i32 + 1);
    // The epsilon keeps 0.3 * 10 from flooring to 2.
    let tenths = (units * scale + 1e-6).floor() as i64;
    let modulus = 10i64.saturating_pow(cfg.layout.digits.len() as u32 + 1);
    tenths.rem_euclid(modulus)
}

fn symmetric(rng: &mut ChaCha8Rng, max: f32) -> f32 {
    if max > 0.0 {
        rng.gen_range(-max..=max)
    } else {
        0.0
    }
}

/// Renders frame `seq`; its random disturbances are those of number
/// `disturbance` (= `seq`, or the variant when they are drawn from a few).
pub(crate) fn render_synthetic(
    cfg: &SyntheticConfig,
    crops: Option<&DigitCrops>,
    seq: u64,
    disturbance: u64,
    elapsed: Duration,
    flash_duty: u8,
) -> (RgbImage, FrameTruth) {
    let tenths = counter_tenths(cfg, seq, elapsed);
    let mut rng =
        ChaCha8Rng::seed_from_u64(cfg.seed ^ disturbance.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let shift = (
        symmetric(&mut rng, cfg.jitter_px),
        symmetric(&mut rng, cfg.jitter_px),
    );
    let rotation_deg = symmetric(&mut rng, cfg.max_rotation_deg);
    let hotspot = match cfg.hotspot {
        Some(h) if flash_duty > 0 => {
            let wobble = h.radius * 0.15;
            Some((
                (
                    h.center.0 + symmetric(&mut rng, wobble),
                    h.center.1 + symmetric(&mut rng, wobble),
                ),
                h.radius,
                h.peak * f32::from(flash_duty) / 255.0,
            ))
        }
        _ => None,
    };
    let params = FrameParams {
        counter: tenths as f64 / 10.0,
        rotation_deg,
        shift,
        noise: cfg.noise,
        hotspot,
        seed: rng.gen(),
    };
    let frame = match crops {
        Some(crops) => {
            let crop_seed: u64 = rng.gen();
            let style = &cfg.layout.style;
            cfg.layout.render_with(&params, &mut |i, t, cell| {
                if !crops.paint(t, crop_seed ^ i as u64, cell) {
                    render_digit_into(cell, t, style);
                }
            })
        }
        None => cfg.layout.render(&params),
    };
    let truth = FrameTruth {
        seq,
        tenths,
        decimals: cfg.decimals,
        digits: frame.digits,
        shift,
        rotation_deg,
    };
    (frame.image, truth)
}

/// Brightness, contrast, flips and frame size (`out_size`: resize to it),
/// as the sensor applies them.
fn apply_settings(mut img: RgbImage, s: &SensorSettings, out_size: Option<(u32, u32)>) -> RgbImage {
    if s.brightness != 0 || s.contrast != 0 {
        let offset = f32::from(s.brightness) * 20.0;
        let gain = 1.0 + f32::from(s.contrast) * 0.2;
        for p in img.pixels_mut() {
            for c in p.0.iter_mut() {
                *c = ((f32::from(*c) - 128.0) * gain + 128.0 + offset).clamp(0.0, 255.0) as u8;
            }
        }
    }
    if s.hmirror != 0 {
        imageops::flip_horizontal_in_place(&mut img);
    }
    if s.vflip != 0 {
        imageops::flip_vertical_in_place(&mut img);
    }
    if let Some((w, h)) = out_size.filter(|d| *d != img.dimensions()) {
        img = imageops::resize(&img, w, h, imageops::FilterType::Triangle);
    }
    img
}

/// Maps the OV2640's quality scale (0 best ..= 63 worst) to libjpeg-style 1..=100.
pub(crate) fn jpeg_quality(sensor_quality: u8) -> u8 {
    (100 - i32::from(sensor_quality.min(63)) * 3 / 2).clamp(5, 98) as u8
}

pub(crate) fn encode_jpeg(img: &RgbImage, sensor_quality: u8) -> Result<Vec<u8>, SimError> {
    let mut out = Vec::with_capacity(64 * 1024);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, jpeg_quality(sensor_quality))
        .encode_image(img)?;
    Ok(out)
}

/// Photos of real digits filed by label (`<dir>/<label>/*.jpg`, the layout
/// of the meter-digits collection), used instead of the bitmap font.
#[derive(Debug)]
pub(crate) struct DigitCrops {
    by_class: Vec<Vec<PathBuf>>,
}

impl DigitCrops {
    pub fn load(dir: &Path, filter: Option<&str>) -> Result<Self, SimError> {
        let mut by_class = vec![Vec::new(); Tenths::CLASSES];
        let entries = std::fs::read_dir(dir).map_err(|e| SimError::ReadDir {
            path: dir.to_owned(),
            source: e,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(label) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<Tenths>().ok())
            else {
                continue;
            };
            if !path.is_dir() {
                continue;
            }
            let mut files = list_images(&path)?;
            if let Some(f) = filter {
                files.retain(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains(f))
                });
            }
            by_class[usize::from(label.index())].extend(files);
        }
        if by_class.iter().all(Vec::is_empty) {
            return Err(SimError::NoDigitCrops {
                path: dir.to_owned(),
            });
        }
        Ok(Self { by_class })
    }

    /// Paints a crop of position `t` over `cell`; false when there is none
    /// (no photo of that position, or it cannot be decoded).
    pub fn paint(&self, t: Tenths, seed: u64, cell: &mut RgbImage) -> bool {
        let files = &self.by_class[usize::from(t.index())];
        if files.is_empty() {
            return false;
        }
        let pick = ChaCha8Rng::seed_from_u64(seed).gen_range(0..files.len());
        match image::open(&files[pick]) {
            Ok(img) => {
                let (w, h) = cell.dimensions();
                let img = imageops::resize(&img.to_rgb8(), w, h, imageops::FilterType::Triangle);
                cell.copy_from_slice(&img);
                true
            }
            Err(e) => {
                log::warn!("digit crop {}: {e}", files[pick].display());
                false
            }
        }
    }
}
