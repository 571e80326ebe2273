//! Augmentations suited to camera digits: small geometric jitter, exposure
//! and colour changes, blur, noise, occlusion at the top or bottom edge (as a
//! rolling digit or the window frame shows) and JPEG re-compression.

use image::codecs::jpeg::JpegEncoder;
use image::{ImageDecoder, RgbImage};
use rand::Rng;

/// How strongly to augment. `Default` is what training uses.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AugmentConfig {
    /// Maximum rotation in degrees.
    pub max_rotation_deg: f32,
    /// Maximum relative scale change (0.05 = ±5%).
    pub max_scale: f32,
    /// Maximum horizontal shift, in pixels.
    pub max_shift_x: f32,
    /// Maximum vertical shift, in pixels. Kept small: a vertical shift of a
    /// few pixels is a change of the rolling position, so of the label.
    pub max_shift_y: f32,
    /// Probability of a blur.
    pub p_blur: f64,
    /// Probability of an occluding band at the top or bottom.
    pub p_occlusion: f64,
    /// Probability of JPEG re-compression.
    pub p_jpeg: f64,
    /// Probability of swapping colour channels (hue change, e.g. red digits).
    pub p_channel_swap: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            max_rotation_deg: 4.0,
            max_scale: 0.06,
            max_shift_x: 1.5,
            max_shift_y: 0.7,
            p_blur: 0.2,
            p_occlusion: 0.15,
            p_jpeg: 0.2,
            p_channel_swap: 0.1,
        }
    }
}

/// Returns an augmented copy of `img`: same size, valid 8-bit RGB.
pub fn augment<R: Rng>(img: &RgbImage, cfg: &AugmentConfig, rng: &mut R) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return img.clone();
    }
    let mut buf = warp(img, cfg, rng);
    photometric(&mut buf, rng);
    if rng.gen_bool(cfg.p_blur) {
        blur(&mut buf, w as usize, h as usize);
    }
    if rng.gen_bool(cfg.p_occlusion) {
        occlude(&mut buf, w as usize, h as usize, rng);
    }
    let noise: f32 = rng.gen_range(0.0..5.0);
    for v in &mut buf {
        // Sum of two uniforms: cheap, roughly bell-shaped sensor noise.
        *v += noise * (rng.gen::<f32>() + rng.gen::<f32>() - 1.0) * 1.7;
    }
    let out = RgbImage::from_raw(
        w,
        h,
        buf.iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect(),
    )
    .expect("buffer matches dimensions");
    if rng.gen_bool(cfg.p_jpeg) {
        let quality = rng.gen_range(25..90);
        if let Some(j) = jpeg_round_trip(&out, quality) {
            return j;
        }
    }
    out
}

/// Bilinear affine resampling about the centre, edges clamped.
fn warp<R: Rng>(img: &RgbImage, cfg: &AugmentConfig, rng: &mut R) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let (wf, hf) = (w as f32, h as f32);
    let angle = rng
        .gen_range(-cfg.max_rotation_deg..=cfg.max_rotation_deg)
        .to_radians();
    let sx = 1.0 + rng.gen_range(-cfg.max_scale..=cfg.max_scale);
    let sy = 1.0 + rng.gen_range(-cfg.max_scale..=cfg.max_scale);
    let tx = rng.gen_range(-cfg.max_shift_x..=cfg.max_shift_x);
    let ty = rng.gen_range(-cfg.max_shift_y..=cfg.max_shift_y);
    let (sin, cos) = angle.sin_cos();
    let (cx, cy) = (wf / 2.0, hf / 2.0);
    let raw = img.as_raw();
    let px = |x: i32, y: i32, c: usize| -> f32 {
        let x = x.clamp(0, w as i32 - 1) as usize;
        let y = y.clamp(0, h as i32 - 1) as usize;
        f32::from(raw[(y * w as usize + x) * 3 + c])
    };
    let mut out = vec![0f32; (w * h * 3) as usize];
    for y in 0..h {
        for x in 0..w {
            // Inverse map: output pixel centre -> source coordinates.
            let dx = x as f32 + 0.5 - cx - tx;
            let dy = y as f32 + 0.5 - cy - ty;
            let u = (cos * dx + sin * dy) / sx + cx - 0.5;
            let v = (-sin * dx + cos * dy) / sy + cy - 0.5;
            let (x0, y0) = (u.floor() as i32, v.floor() as i32);
            let (fx, fy) = (u - x0 as f32, v - y0 as f32);
            for c in 0..3 {
                let top = px(x0, y0, c) * (1.0 - fx) + px(x0 + 1, y0, c) * fx;
                let bot = px(x0, y0 + 1, c) * (1.0 - fx) + px(x0 + 1, y0 + 1, c) * fx;
                out[((y * w + x) * 3) as usize + c] = top * (1.0 - fy) + bot * fy;
            }
        }
    }
    out
}

/// Exposure, contrast, per-channel gain (colour cast) and occasional
/// channel permutation or desaturation.
fn photometric<R: Rng>(buf: &mut [f32], rng: &mut R) {
    let n = buf.len() as f32 / 3.0;
    let mean = buf.iter().sum::<f32>() / (n * 3.0);
    let contrast = rng.gen_range(0.6..1.4);
    let brightness = rng.gen_range(-30.0..30.0);
    let gains = [
        rng.gen_range(0.8..1.2f32),
        rng.gen_range(0.8..1.2f32),
        rng.gen_range(0.8..1.2f32),
    ];
    let perm: [usize; 3] = if rng.gen_bool(0.1) {
        [[1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]][rng.gen_range(0..5)]
    } else {
        [0, 1, 2]
    };
    let grey = rng.gen_bool(0.1);
    // Dark-on-light digits (LCDs, some water meters) as well as light-on-dark.
    let invert = rng.gen_bool(0.08);
    for px in buf.chunks_exact_mut(3) {
        let src = [px[perm[0]], px[perm[1]], px[perm[2]]];
        let src = if grey {
            let g = 0.299 * src[0] + 0.587 * src[1] + 0.114 * src[2];
            [g, g, g]
        } else {
            src
        };
        for c in 0..3 {
            let v = if invert { 255.0 - src[c] } else { src[c] };
            let m = if invert { 255.0 - mean } else { mean };
            px[c] = ((v - m) * contrast + m + brightness) * gains[c];
        }
    }
}

/// Separable [1 2 1] / 4 blur, edges clamped.
fn blur(buf: &mut [f32], w: usize, h: usize) {
    let mut tmp = buf.to_vec();
    for y in 0..h {
        for x in 0..w {
            let (l, r) = (x.saturating_sub(1), (x + 1).min(w - 1));
            for c in 0..3 {
                let at = |xx: usize| buf[(y * w + xx) * 3 + c];
                tmp[(y * w + x) * 3 + c] = (at(l) + 2.0 * at(x) + at(r)) / 4.0;
            }
        }
    }
    for y in 0..h {
        let (t, b) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            for c in 0..3 {
                let at = |yy: usize| tmp[(yy * w + x) * 3 + c];
                buf[(y * w + x) * 3 + c] = (at(t) + 2.0 * at(y) + at(b)) / 4.0;
            }
        }
    }
}

/// A dark or light band over a few rows at the top or bottom.
fn occlude<R: Rng>(buf: &mut [f32], w: usize, h: usize, rng: &mut R) {
    let rows = rng.gen_range(1..=(h / 8).max(1));
    let value = if rng.gen_bool(0.7) {
        rng.gen_range(0.0..40.0)
    } else {
        rng.gen_range(150.0..255.0)
    };
    let ys: Box<dyn Iterator<Item = usize>> = if rng.gen_bool(0.5) {
        Box::new(0..rows)
    } else {
        Box::new(h - rows..h)
    };
    for y in ys {
        for v in &mut buf[y * w * 3..(y + 1) * w * 3] {
            *v = value;
        }
    }
}

fn jpeg_round_trip(img: &RgbImage, quality: u8) -> Option<RgbImage> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(img)
        .ok()?;
    let dec = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(bytes)).ok()?;
    let (w, h) = dec.dimensions();
    let mut data = vec![0u8; dec.total_bytes() as usize];
    dec.read_image(&mut data).ok()?;
    let out = RgbImage::from_raw(w, h, data)?;
    (out.dimensions() == img.dimensions()).then_some(out)
}
