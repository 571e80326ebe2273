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
    /// Maximum horizontal shear (x shift per pixel of height): slanted fonts.
    pub max_shear: f32,
    /// Largest horizontal stretch or squeeze (1.5: up to 1.5 times wider or
    /// narrower, log-uniform). Users frame their counters' windows at very
    /// different aspect ratios (0.35 .. 0.84 in the real data), and every
    /// crop is resized to the network's input, so a narrow crop's digits
    /// arrive stretched sideways.
    pub max_aspect: f32,
    /// Probability of a stroke-weight change (a soft horizontal min or max
    /// filter): thinner or bolder fonts than the training meters have.
    pub p_stroke: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            max_rotation_deg: 6.0,
            max_scale: 0.12,
            max_shift_x: 2.0,
            max_shift_y: 0.7,
            p_blur: 0.2,
            p_occlusion: 0.15,
            p_jpeg: 0.2,
            p_channel_swap: 0.1,
            max_shear: 0.12,
            max_aspect: 1.5,
            p_stroke: 0.25,
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
    if rng.gen_bool(cfg.p_stroke) {
        stroke_weight(&mut buf, w as usize, rng.gen_bool(0.5));
    }
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
    let shear = rng.gen_range(-cfg.max_shear..=cfg.max_shear);
    // Only the width: changing the height too read new meters as well but
    // known ones worse (the glyph's size against the crop is a cue to the
    // rolling position; models/README.md).
    let ln_aspect = cfg.max_aspect.max(1.0).ln();
    let sx = sx * rng.gen_range(-ln_aspect..=ln_aspect).exp();
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
            let u = (cos * dx + sin * dy) / sx + shear * dy + cx - 0.5;
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

/// Moves each pixel half-way towards the darkest (`thicken_dark`) or the
/// lightest of its horizontal neighbours: dark strokes grow or shrink by about
/// a pixel, whichever way round digit and background are.
fn stroke_weight(buf: &mut [f32], w: usize, thicken_dark: bool) {
    let luma = |p: &[f32]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let src = buf.to_vec();
    for (row_out, row) in buf.chunks_exact_mut(w * 3).zip(src.chunks_exact(w * 3)) {
        for x in 0..w {
            let mut best = x;
            for n in [x.saturating_sub(1), (x + 1).min(w - 1)] {
                let (a, b) = (
                    luma(&row[n * 3..n * 3 + 3]),
                    luma(&row[best * 3..best * 3 + 3]),
                );
                if (thicken_dark && a < b) || (!thicken_dark && a > b) {
                    best = n;
                }
            }
            for c in 0..3 {
                row_out[x * 3 + c] = 0.5 * (row[x * 3 + c] + row[best * 3 + c]);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5-pixel grey row with a dark pixel in the middle.
    fn row_with_dark_pixel() -> Vec<f32> {
        let mut row = vec![200.0; 5 * 3];
        row[6..9].copy_from_slice(&[0.0, 0.0, 0.0]);
        row
    }

    #[test]
    fn stroke_weight_thickens_and_thins_dark_strokes() {
        let dark_count = |b: &[f32]| b.chunks(3).filter(|p| p[0] < 150.0).count();
        let mut bold = row_with_dark_pixel();
        stroke_weight(&mut bold, 5, true);
        assert_eq!(dark_count(&bold), 3, "{bold:?}");
        let mut thin = row_with_dark_pixel();
        stroke_weight(&mut thin, 5, false);
        assert_eq!(dark_count(&thin), 1, "{thin:?}");
        assert!(thin[6] > 50.0, "lighter than before: {thin:?}");
    }

    /// A white `n` x `n` image with a black box over `xs` x `ys`.
    fn dark_box(n: u32, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> RgbImage {
        RgbImage::from_fn(n, n, |x, y| {
            if xs.contains(&x) && ys.contains(&y) {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        })
    }

    /// Only shear and the aspect change; no rotation, scale or shift.
    fn geometry_only(max_shear: f32, max_aspect: f32) -> AugmentConfig {
        AugmentConfig {
            max_rotation_deg: 0.0,
            max_scale: 0.0,
            max_shift_x: 0.0,
            max_shift_y: 0.0,
            max_shear,
            max_aspect,
            ..AugmentConfig::default()
        }
    }

    #[test]
    fn shear_moves_the_top_and_bottom_rows_opposite_ways() {
        // A vertical bar in column 5 of an 11x11 image, sheared only.
        let img = dark_box(11, 5..6, 0..11);
        let cfg = geometry_only(0.3, 1.0);
        let darkest_x = |buf: &[f32], y: usize| {
            (0..11)
                .min_by(|&a, &b| buf[(y * 11 + a) * 3].total_cmp(&buf[(y * 11 + b) * 3]))
                .unwrap()
        };
        let slant = |max_shear: f32, seed: u64| {
            let cfg = AugmentConfig {
                max_shear,
                ..cfg.clone()
            };
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            let buf = warp(&img, &cfg, &mut rng);
            darkest_x(&buf, 0) as i32 - darkest_x(&buf, 10) as i32
        };
        let slants: Vec<i32> = (0..20).map(|seed| slant(0.3, seed)).collect();
        assert!(slants.iter().any(|&s| s >= 2), "{slants:?}");
        assert!(slants.iter().any(|&s| s <= -2), "{slants:?}");
        assert!(slants.iter().all(|&s| s.abs() <= 4), "{slants:?}");
        assert!((0..20).all(|seed| slant(0.0, seed) == 0));
    }

    #[test]
    fn aspect_changes_widen_or_narrow_a_glyph() {
        // A 7-pixel-wide dark box in a 21x21 image, aspect change only.
        let img = dark_box(21, 7..14, 4..17);
        let cfg = geometry_only(0.0, 2.0);
        let dark = |buf: &[f32], along_x: bool| {
            (0..21)
                .filter(|&i| {
                    let (x, y) = if along_x { (i, 10) } else { (10, i) };
                    buf[(y * 21 + x) * 3] < 128.0
                })
                .count() as f32
        };
        let ratios: Vec<f32> = (0..30)
            .map(|seed| {
                let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
                let buf = warp(&img, &cfg, &mut rng);
                (dark(&buf, true) / 7.0) / (dark(&buf, false) / 13.0)
            })
            .collect();
        assert!(ratios.iter().any(|&r| r > 1.3), "{ratios:?}");
        assert!(ratios.iter().any(|&r| r < 0.77), "{ratios:?}");
        assert!(
            ratios.iter().all(|&r| (0.4..2.5).contains(&r)),
            "{ratios:?}"
        );
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        let same = AugmentConfig {
            max_aspect: 1.0,
            ..cfg
        };
        let buf = warp(&img, &same, &mut rng);
        assert_eq!((dark(&buf, true), dark(&buf, false)), (7.0, 13.0));
    }
}
