//! Whole synthetic meter frames: a counter window of rolling digits, two
//! reference marks, and the disturbances of a real ESP32-CAM shot (rotation,
//! jitter, sensor noise, a flash hot-spot), with the truth kept alongside.

use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{warp, Interpolation, Projection};
use meter_core::{Counter, Tenths};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::digit::{render_digit_into, DigitStyle};

/// Where things are in the aligned (upright, unshifted) frame.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterLayout {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Digit boxes `[x, y, w, h]`, most significant first.
    pub digits: Vec<[u32; 4]>,
    /// Reference mark boxes `[x, y, w, h]`; each holds a distinct pattern.
    pub marks: Vec<[u32; 4]>,
    /// How the digits are drawn.
    pub style: DigitStyle,
}

impl Default for MeterLayout {
    /// A 640x480 frame with six 40x64 digits and two 32x32 marks.
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            digits: (0..6).map(|i| [170 + i * 50, 200, 40, 64]).collect(),
            marks: vec![[64, 64, 32, 32], [544, 384, 32, 32]],
            style: DigitStyle::default(),
        }
    }
}

/// The disturbances of one shot.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameParams {
    /// Counter value in steps of the last digit (e.g. 12345.6 means the
    /// last roller shows 5 rolled 60% towards 6). Quantised to tenths.
    pub counter: f64,
    /// Rotation of the camera image relative to the aligned frame, degrees,
    /// counter-clockwise positive, about the frame centre.
    pub rotation_deg: f32,
    /// Shift of the image relative to the aligned frame, pixels.
    pub shift: (f32, f32),
    /// Standard deviation of additive Gaussian-like sensor noise (0..255).
    pub noise: f32,
    /// Flash hot-spot: centre in the aligned frame, radius, peak brightening.
    pub hotspot: Option<((f32, f32), f32, f32)>,
    /// Seed for the noise.
    pub seed: u64,
}

impl Default for FrameParams {
    fn default() -> Self {
        Self {
            counter: 0.0,
            rotation_deg: 0.0,
            shift: (0.0, 0.0),
            noise: 0.0,
            hotspot: None,
            seed: 0,
        }
    }
}

/// A rendered frame and the truth about it.
#[derive(Debug, Clone)]
pub struct SyntheticFrame {
    /// The frame as the camera would deliver it (before JPEG).
    pub image: RgbImage,
    /// The counter value shown, in last-digit steps, quantised to tenths.
    pub counter: f64,
    /// Each roller's position, most significant first.
    pub digits: Vec<Tenths>,
}

impl MeterLayout {
    /// Each roller's position for a counter value in last-digit steps
    /// (an odometer: a digit turns only while all lower digits pass 9).
    pub fn digit_positions(&self, counter: f64) -> Vec<Tenths> {
        // Empty for a layout of more rollers than a counter has.
        Counter::new(self.digits.len(), 0)
            .map(|c| {
                let ticks = (counter.rem_euclid(c.modulus() as f64 / 10.0) * 10.0 + 1e-6).floor();
                c.positions(ticks as u64)
            })
            .unwrap_or_default()
    }

    /// Renders the aligned, undisturbed frame for a counter value.
    pub fn render_aligned(&self, counter: f64) -> RgbImage {
        self.render_aligned_with(counter, &mut |_, t, cell| {
            render_digit_into(cell, t, &self.style)
        })
    }

    /// As [`MeterLayout::render_aligned`], with each digit cell painted by
    /// `paint(index, position, cell)` instead of the bitmap font (e.g. from
    /// photos of real digits). `cell` has the digit box's size.
    pub fn render_aligned_with(
        &self,
        counter: f64,
        paint: &mut dyn FnMut(usize, Tenths, &mut RgbImage),
    ) -> RgbImage {
        let mut img = RgbImage::new(self.width, self.height);
        // A meter face: light, with a soft vertical gradient.
        for (_, y, p) in img.enumerate_pixels_mut() {
            let v = 190u8.saturating_sub((y * 40 / self.height.max(1)) as u8);
            *p = Rgb([v, v, v.saturating_sub(8)]);
        }
        // The counter window, a little larger than the digits.
        if let (Some(first), Some(last)) = (self.digits.first(), self.digits.last()) {
            let x0 = first[0].saturating_sub(8);
            let y0 = first[1].saturating_sub(8);
            let x1 = (last[0] + last[2] + 8).min(self.width);
            let y1 = (first[1] + first[3] + 8).min(self.height);
            fill_rect(&mut img, x0, y0, x1 - x0, y1 - y0, Rgb([10, 10, 10]));
        }
        for (i, (b, t)) in self
            .digits
            .iter()
            .zip(self.digit_positions(counter))
            .enumerate()
        {
            let mut cell = RgbImage::new(b[2], b[3]);
            paint(i, t, &mut cell);
            image::imageops::replace(&mut img, &cell, i64::from(b[0]), i64::from(b[1]));
        }
        for (k, m) in self.marks.iter().enumerate() {
            draw_mark(&mut img, *m, k as u64);
        }
        img
    }

    /// Renders one camera shot.
    pub fn render(&self, params: &FrameParams) -> SyntheticFrame {
        self.render_with(params, &mut |_, t, cell| {
            render_digit_into(cell, t, &self.style)
        })
    }

    /// As [`MeterLayout::render`], with digit cells painted by `paint` (see
    /// [`MeterLayout::render_aligned_with`]).
    pub fn render_with(
        &self,
        params: &FrameParams,
        paint: &mut dyn FnMut(usize, Tenths, &mut RgbImage),
    ) -> SyntheticFrame {
        let counter = (params.counter * 10.0 + 1e-6).floor() / 10.0;
        let mut aligned = self.render_aligned_with(counter, paint);
        if let Some(h) = params.hotspot {
            add_hotspot(&mut aligned, h, true);
        }
        let (cx, cy) = (self.width as f32 / 2.0, self.height as f32 / 2.0);
        // Image y points down, so a counter-clockwise rotation is a negative angle here.
        let proj = Projection::translate(cx + params.shift.0, cy + params.shift.1)
            * Projection::rotate(-params.rotation_deg.to_radians())
            * Projection::translate(-cx, -cy);
        let mut image = warp(
            &aligned,
            &proj,
            Interpolation::Bilinear,
            Rgb([120, 120, 120]),
        );
        if params.noise > 0.0 {
            let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
            for p in image.pixels_mut() {
                // Sum of uniforms: cheap and close enough to Gaussian.
                let n: f32 =
                    (0..3).map(|_| rng.gen_range(-1.0f32..1.0)).sum::<f32>() * params.noise;
                for c in p.0.iter_mut() {
                    *c = (f32::from(*c) + n).clamp(0.0, 255.0) as u8;
                }
            }
        }
        SyntheticFrame {
            image,
            counter,
            digits: self.digit_positions(counter),
        }
    }

    /// The pattern of mark `k` as it appears in the aligned frame (for
    /// cutting reference templates).
    pub fn mark_template(&self, k: usize) -> Option<RgbImage> {
        let m = *self.marks.get(k)?;
        let img = self.render_aligned(0.0);
        Some(image::imageops::crop_imm(&img, m[0], m[1], m[2], m[3]).to_image())
    }
}

/// Brightens a Gaussian spot `((cx, cy), radius, peak)`. With `bounded`,
/// pixels where a positive gain stays below 1 (it would truncate away) are
/// skipped: the same output for a fraction of the `exp()` calls.
fn add_hotspot(img: &mut RgbImage, ((cx, cy), r, peak): ((f32, f32), f32, f32), bounded: bool) {
    let reach = if bounded && peak > 0.0 && r > 0.0 && r.is_finite() && peak.is_finite() {
        (2.0 * r * r * peak.max(1.0).ln() * 1.01).sqrt() + 2.0
    } else {
        f32::INFINITY
    };
    for (x, y, p) in img.enumerate_pixels_mut() {
        if (x as f32 - cx).abs() > reach || (y as f32 - cy).abs() > reach {
            continue;
        }
        let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
        let gain = peak * (-d2 / (2.0 * r * r)).exp();
        for c in p.0.iter_mut() {
            *c = (f32::from(*c) + gain).clamp(0.0, 255.0) as u8;
        }
    }
}

/// A random black/white 4x4 checker inside a black border: a sharp, unique
/// peak for normalised cross-correlation.
fn draw_mark(img: &mut RgbImage, b: [u32; 4], k: u64) {
    let [x, y, w, h] = b;
    fill_rect(img, x, y, w, h, Rgb([0, 0, 0]));
    let mut rng = ChaCha8Rng::seed_from_u64(0x4d41_524b ^ k);
    let (cw, ch) = ((w.saturating_sub(4)) / 4, (h.saturating_sub(4)) / 4);
    for i in 0..4 {
        for j in 0..4 {
            if rng.gen_bool(0.5) {
                fill_rect(
                    img,
                    x + 2 + i * cw,
                    y + 2 + j * ch,
                    cw,
                    ch,
                    Rgb([250, 250, 250]),
                );
            }
        }
    }
}

/// Fills a rectangle, clipped to the image.
pub(crate) fn fill_rect(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, c: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    for yy in y.min(ih)..(y + h).min(ih) {
        for xx in x.min(iw)..(x + w).min(iw) {
            img.put_pixel(xx, yy, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Tenths {
        s.parse().unwrap()
    }

    #[test]
    fn odometer_positions() {
        let l = MeterLayout {
            digits: vec![[0, 0, 4, 4]; 4],
            ..MeterLayout::default()
        };
        assert_eq!(
            l.digit_positions(1234.0),
            vec![t("1.0"), t("2.0"), t("3.0"), t("4.0")]
        );
        assert_eq!(
            l.digit_positions(1234.5),
            vec![t("1.0"), t("2.0"), t("3.0"), t("4.5")]
        );
        // 1299.7: the last 9 rolls, so does the tens 9 and the hundreds 2.
        assert_eq!(
            l.digit_positions(1299.7),
            vec![t("1.0"), t("2.7"), t("9.7"), t("9.7")]
        );
        assert_eq!(
            l.digit_positions(1298.7),
            vec![t("1.0"), t("2.0"), t("9.0"), t("8.7")]
        );
        // Wraps past 9999.
        assert_eq!(
            l.digit_positions(10001.0),
            vec![t("0.0"), t("0.0"), t("0.0"), t("1.0")]
        );
    }

    #[test]
    fn render_is_deterministic_and_sized() {
        let l = MeterLayout::default();
        let p = FrameParams {
            counter: 123.4,
            rotation_deg: 2.0,
            shift: (3.0, -2.0),
            noise: 4.0,
            seed: 7,
            ..Default::default()
        };
        let a = l.render(&p);
        let b = l.render(&p);
        assert_eq!(a.image, b.image);
        assert_eq!(a.image.dimensions(), (640, 480));
        assert_eq!(a.digits.len(), 6);
        assert!((a.counter - 123.4).abs() < 1e-9);
        assert_eq!(a.digits[5], t("3.4"));
    }

    #[test]
    fn hotspot_shortcut_changes_no_pixel() {
        let l = MeterLayout::default();
        let base = l.render_aligned(42.0);
        for h in [
            ((300.0, 150.0), 60.0, 90.0),
            ((10.0, 470.0), 30.0, 1.5),
            ((320.0, 240.0), 40.0, 0.5),
            ((320.0, 240.0), 5.0, 250.0),
            ((320.0, 240.0), 50.0, -40.0),
        ] {
            let mut fast = base.clone();
            let mut slow = base.clone();
            add_hotspot(&mut fast, h, true);
            add_hotspot(&mut slow, h, false);
            assert!(fast == slow, "hotspot {h:?}");
        }
    }

    #[test]
    fn marks_are_distinct() {
        let l = MeterLayout::default();
        assert_ne!(l.mark_template(0), l.mark_template(1));
        assert!(l.mark_template(2).is_none());
    }
}
