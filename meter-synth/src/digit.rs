//! Rolling digits from a 5x7 bitmap font.

use image::{imageops, Rgb, RgbImage};
use meter_core::Tenths;

/// 5x7 glyphs of 0..=9, one row per byte, bit 4 = leftmost column.
pub(crate) const FONT: [[u8; 7]; 10] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
];

/// How a digit is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct DigitStyle {
    /// Glyph colour.
    pub foreground: Rgb<u8>,
    /// Roller colour.
    pub background: Rgb<u8>,
    /// Glyph height as a fraction of the cell height.
    pub glyph_height: f32,
    /// Glyph width as a fraction of the cell width.
    pub glyph_width: f32,
    /// Stroke thickness as a fraction of one font pixel (1.0 = full cells).
    pub stroke: f32,
}

impl Default for DigitStyle {
    fn default() -> Self {
        Self {
            foreground: Rgb([235, 235, 235]),
            background: Rgb([25, 25, 25]),
            glyph_height: 0.62,
            glyph_width: 0.68,
            stroke: 1.0,
        }
    }
}

impl DigitStyle {
    /// The `k`-th of a family of readable styles that differ in colour and
    /// glyph size (k < 32): distinct pictures of one digit for a small
    /// labelled dataset, e.g. in retraining tests.
    pub fn varied(k: usize) -> Self {
        let k8 = (k % 32) as u8;
        Self {
            foreground: Rgb([230 - k8 * 7, 225, 220 - k8 * 3]),
            background: Rgb([20 + k8 * 5, 20, 25 + k8 * 2]),
            glyph_height: 0.6 + 0.02 * (k % 8) as f32,
            glyph_width: 0.6 + 0.02 * (k % 5) as f32,
            ..Self::default()
        }
    }
}

/// Writes `per_label` pictures of each whole digit (0.0 .. 9.0), `width` x
/// `height`, in the [`DigitStyle::varied`] styles, as a labelled dataset:
/// `<dir>/<label>/img<k>.png` (the layout `meter classify` files into).
pub fn write_whole_digits(
    dir: &std::path::Path,
    (width, height): (u32, u32),
    per_label: usize,
) -> image::ImageResult<()> {
    for d in 0..10u8 {
        let label = Tenths::new(d * 10).expect("a whole digit is a position");
        let folder = dir.join(label.to_string());
        std::fs::create_dir_all(&folder).map_err(image::ImageError::IoError)?;
        for k in 0..per_label {
            render_digit(label, width, height, &DigitStyle::varied(k))
                .save(folder.join(format!("img{k}.png")))?;
        }
    }
    Ok(())
}

/// Renders the roller at `value` into a new `width` x `height` image.
pub fn render_digit(value: Tenths, width: u32, height: u32, style: &DigitStyle) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    render_digit_into(&mut img, value, style);
    img
}

/// Renders the roller at `value` over the whole of `img`.
///
/// The roller is a vertical strip of glyphs one cell apart; a value `d.f`
/// shows glyph `d` moved up by `f` tenths of a cell with `d+1` entering from
/// below, as a mechanical counter does.
pub fn render_digit_into(img: &mut RgbImage, value: Tenths, style: &DigitStyle) {
    const SS: u32 = 4; // supersampling for anti-aliased edges
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let (sw, sh) = (w * SS, h * SS);
    let mut big = RgbImage::from_pixel(sw, sh, style.background);
    let glyph_w = sw as f32 * style.glyph_width;
    let glyph_h = sh as f32 * style.glyph_height;
    let px_w = glyph_w / 5.0;
    let px_h = glyph_h / 7.0;
    let left = (sw as f32 - glyph_w) / 2.0;
    let offset = f32::from(value.fraction_tenths()) / 10.0 * sh as f32;
    let first = value.floor_digit();
    for (k, digit) in [first, (first + 1) % 10, (first + 9) % 10]
        .into_iter()
        .enumerate()
    {
        // Cell k=0 is the current digit, 1 the next (below), 2 the previous (above).
        let cell_top = match k {
            0 => -offset,
            1 => sh as f32 - offset,
            _ => -(sh as f32) - offset,
        };
        let top = cell_top + (sh as f32 - glyph_h) / 2.0;
        for (row, bits) in FONT[digit as usize].iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                let inset_x = px_w * (1.0 - style.stroke) / 2.0;
                let inset_y = px_h * (1.0 - style.stroke) / 2.0;
                let x0 = left + col as f32 * px_w + inset_x;
                let y0 = top + row as f32 * px_h + inset_y;
                fill(
                    &mut big,
                    x0,
                    y0,
                    px_w - 2.0 * inset_x,
                    px_h - 2.0 * inset_y,
                    style.foreground,
                );
            }
        }
    }
    let small = imageops::resize(&big, w, h, imageops::FilterType::Triangle);
    img.copy_from_slice(&small);
}

fn fill(img: &mut RgbImage, x: f32, y: f32, w: f32, h: f32, c: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    let x0 = x.round().max(0.0) as u32;
    let y0 = y.round().max(0.0) as u32;
    let x1 = ((x + w).round().max(0.0) as u32).min(iw);
    let y1 = ((y + h).round().max(0.0) as u32).min(ih);
    for yy in y0..y1 {
        for xx in x0..x1 {
            img.put_pixel(xx, yy, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink(img: &RgbImage) -> u64 {
        img.pixels().map(|p| u64::from(p[0])).sum()
    }

    #[test]
    fn digits_differ_and_roll() {
        let s = DigitStyle::default();
        let t = |x: &str| x.parse::<Tenths>().unwrap();
        let a = render_digit(t("1.0"), 20, 32, &s);
        let b = render_digit(t("8.0"), 20, 32, &s);
        assert!(ink(&b) > ink(&a), "8 has more ink than 1");
        // Half-rolled 3 shows parts of both 3 and 4: differs from either.
        let r = render_digit(t("3.5"), 20, 32, &s);
        assert_ne!(r, render_digit(t("3.0"), 20, 32, &s));
        assert_ne!(r, render_digit(t("4.0"), 20, 32, &s));
        // 9.9 is nearly 0.0 (one tenth away), far from 9.0.
        let diff = |x: &RgbImage, y: &RgbImage| -> u64 {
            x.pixels()
                .zip(y.pixels())
                .map(|(p, q)| u64::from(p[0].abs_diff(q[0])))
                .sum()
        };
        let near = diff(
            &render_digit(t("9.9"), 20, 32, &s),
            &render_digit(t("0.0"), 20, 32, &s),
        );
        let far = diff(
            &render_digit(t("9.9"), 20, 32, &s),
            &render_digit(t("9.0"), 20, 32, &s),
        );
        assert!(near < far);
    }
}
