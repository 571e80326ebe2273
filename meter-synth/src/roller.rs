//! Rolling digits drawn from the glyph masks of any typeface, with the
//! looks that vary between real meters: colours, glyph size and spacing on
//! the roller, the drum's shading and marks beside the digit.
//!
//! The caller supplies the ten glyphs as coverage masks (for example
//! rasterised from a TrueType font), so this crate needs no font files;
//! [`GlyphSet::bitmap`] gives the built-in 5x7 font for tests.

use image::{imageops, GrayImage, Luma, Rgb, RgbImage};

use crate::digit::FONT;
use crate::frame::fill_rect;

/// The ten digit glyphs of one typeface as coverage masks (0 = paper,
/// 255 = ink), each cropped to its ink. Index = digit.
#[derive(Debug, Clone)]
pub struct GlyphSet {
    masks: Vec<GrayImage>,
    tallest: u32,
}

impl GlyphSet {
    /// From ten masks in digit order; `None` unless there are exactly ten
    /// and every one has ink.
    pub fn new(masks: Vec<GrayImage>) -> Option<Self> {
        if masks.len() != 10 {
            return None;
        }
        let masks = masks.iter().map(crop_to_ink).collect::<Option<Vec<_>>>()?;
        let tallest = masks.iter().map(GrayImage::height).max()?;
        Some(Self { masks, tallest })
    }

    /// The built-in 5x7 bitmap font, 8 mask pixels per font pixel.
    pub fn bitmap() -> Self {
        const S: u32 = 8;
        let masks = FONT
            .iter()
            .map(|rows| {
                GrayImage::from_fn(5 * S, 7 * S, |x, y| {
                    let on = rows[(y / S) as usize] & (0x10 >> (x / S)) != 0;
                    Luma([if on { 255 } else { 0 }])
                })
            })
            .collect();
        Self::new(masks).expect("the bitmap font has ten inked glyphs")
    }

    /// The mask of `digit` (0..=9), cropped to its ink.
    pub fn glyph(&self, digit: u8) -> &GrayImage {
        &self.masks[usize::from(digit % 10)]
    }
}

fn crop_to_ink(mask: &GrayImage) -> Option<GrayImage> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in mask.enumerate_pixels() {
        if p[0] > 0 {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    (x0 <= x1).then(|| imageops::crop_imm(mask, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image())
}

/// Which edge of the window something sits at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The left edge.
    Left,
    /// The right edge.
    Right,
}

/// What some meters show beside the digit, inside the crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SideMark {
    /// A column of dots one tenth of a step apart (a scale printed on the
    /// roller), in the foreground colour.
    Dots(Side),
    /// A band of the window frame, `width` as a fraction of the crop width.
    Frame {
        /// Which edge.
        side: Side,
        /// Band width, fraction of the crop width.
        width: f32,
        /// Band colour.
        colour: Rgb<u8>,
    },
}

/// How a roller is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct RollerStyle {
    /// Glyph colour.
    pub foreground: Rgb<u8>,
    /// Roller colour.
    pub background: Rgb<u8>,
    /// Height of the tallest glyph, fraction of the window height.
    pub glyph_height: f32,
    /// Distance between neighbouring glyphs on the roller, fraction of the
    /// window height (1.0: the next glyph enters as the current one leaves).
    pub pitch: f32,
    /// Horizontal stretch of the glyphs (1.0 = the typeface's proportions).
    pub stretch: f32,
    /// Horizontal offset of the glyph centre, fraction of the window width.
    pub shift_x: f32,
    /// Darkening towards the top and bottom edges (the drum's curvature),
    /// 0 = none, 0.5 = edges at half brightness.
    pub shade: f32,
    /// Marks beside the digit.
    pub marks: Vec<SideMark>,
}

impl Default for RollerStyle {
    fn default() -> Self {
        Self {
            foreground: Rgb([235, 235, 235]),
            background: Rgb([25, 25, 25]),
            glyph_height: 0.62,
            pitch: 1.0,
            stretch: 1.0,
            shift_x: 0.0,
            shade: 0.0,
            marks: Vec::new(),
        }
    }
}

/// Renders the roller of `glyphs` at `position` steps (`3.7`: a 3 rolled 70%
/// of the way to 4; taken modulo 10) into a `width` x `height` image.
///
/// Glyph `d` at `d.f` is moved up by `f` pitches and `d+1` enters from
/// below, as on a mechanical counter.
pub fn render_roller(
    glyphs: &GlyphSet,
    position: f32,
    width: u32,
    height: u32,
    style: &RollerStyle,
) -> RgbImage {
    const SS: u32 = 4; // supersampling for anti-aliased edges
    if width == 0 || height == 0 {
        return RgbImage::new(width, height);
    }
    let (sw, sh) = (width * SS, height * SS);
    let position = position.rem_euclid(10.0);
    let first = position.floor();
    let frac = position - first;
    let scale = style.glyph_height * sh as f32 / glyphs.tallest as f32;
    let pitch = style.pitch * sh as f32;
    let mut ink = vec![0u8; (sw * sh) as usize];
    // Enough neighbours to fill the window at the smallest pitch.
    let reach = (1.0 / style.pitch.max(0.2)).ceil() as i32 + 1;
    for k in -reach..=reach {
        let digit = (first as i32 + k).rem_euclid(10) as u8;
        let centre_y = sh as f32 / 2.0 + (k as f32 - frac) * pitch;
        let mask = glyphs.glyph(digit);
        let gw = (mask.width() as f32 * scale * style.stretch)
            .round()
            .max(1.0) as u32;
        let gh = (mask.height() as f32 * scale).round().max(1.0) as u32;
        let top = (centre_y - gh as f32 / 2.0).round() as i64;
        if top >= i64::from(sh) || top + i64::from(gh) <= 0 {
            continue;
        }
        let left = ((sw as f32 - gw as f32) / 2.0 + style.shift_x * sw as f32).round() as i64;
        let g = imageops::resize(mask, gw, gh, imageops::FilterType::Triangle);
        for (x, y, p) in g.enumerate_pixels() {
            let (px, py) = (left + i64::from(x), top + i64::from(y));
            if (0..i64::from(sw)).contains(&px) && (0..i64::from(sh)).contains(&py) {
                let i = (py as u32 * sw + px as u32) as usize;
                ink[i] = ink[i].max(p[0]);
            }
        }
    }
    for mark in &style.marks {
        if let SideMark::Dots(side) = *mark {
            // Tenths of a step: ten dots per pitch, moving with the roller.
            let spacing = pitch / 10.0;
            let r = (spacing * 0.22).max(1.0);
            let cx = match side {
                Side::Left => sw as f32 * 0.07,
                Side::Right => sw as f32 * 0.93,
            };
            let phase = (frac * pitch).rem_euclid(spacing);
            let mut cy = -phase;
            while cy < sh as f32 + spacing {
                disc(&mut ink, sw, sh, cx, cy, r);
                cy += spacing;
            }
        }
    }
    let mut big = RgbImage::from_fn(sw, sh, |x, y| {
        let c = f32::from(ink[(y * sw + x) as usize]) / 255.0;
        let dy = 2.0 * (y as f32 + 0.5) / sh as f32 - 1.0;
        let light = 1.0 - style.shade * dy * dy;
        Rgb(std::array::from_fn(|ch| {
            let v =
                f32::from(style.background[ch]) * (1.0 - c) + f32::from(style.foreground[ch]) * c;
            (v * light).round().clamp(0.0, 255.0) as u8
        }))
    });
    for mark in &style.marks {
        if let SideMark::Frame {
            side,
            width: band,
            colour,
        } = *mark
        {
            let bw = ((band.clamp(0.0, 0.5) * sw as f32).round() as u32).min(sw);
            let x0 = match side {
                Side::Left => 0,
                Side::Right => sw - bw,
            };
            fill_rect(&mut big, x0, 0, bw, sh, colour);
        }
    }
    imageops::resize(&big, width, height, imageops::FilterType::Triangle)
}

fn disc(ink: &mut [u8], w: u32, h: u32, cx: f32, cy: f32, r: f32) {
    let (x0, x1) = (
        (cx - r).floor().max(0.0) as u32,
        ((cx + r).ceil() as u32).min(w),
    );
    let (y0, y1) = (
        (cy - r).floor().max(0.0) as u32,
        ((cy + r).ceil().max(0.0) as u32).min(h),
    );
    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            if dx * dx + dy * dy <= r * r {
                ink[(y * w + x) as usize] = 255;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ink (brightness above the default style's background) in a band of rows.
    fn ink_rows(img: &RgbImage, rows: std::ops::Range<u32>) -> u64 {
        img.enumerate_pixels()
            .filter(|(_, y, _)| rows.contains(y))
            .map(|(_, _, p)| u64::from(p[0].saturating_sub(25)))
            .sum()
    }

    #[test]
    fn glyph_sets_need_ten_inked_masks() {
        let blank = GrayImage::new(4, 4);
        let dot = GrayImage::from_pixel(4, 4, Luma([200]));
        assert!(GlyphSet::new(vec![dot.clone(); 9]).is_none());
        let mut masks = vec![dot.clone(); 10];
        masks[3] = blank;
        assert!(GlyphSet::new(masks).is_none());
        let mut padded = GrayImage::new(10, 12);
        padded.put_pixel(4, 5, Luma([255]));
        padded.put_pixel(6, 8, Luma([255]));
        let set = GlyphSet::new(vec![padded; 10]).expect("ten inked masks");
        assert_eq!(set.glyph(7).dimensions(), (3, 4), "cropped to the ink");
    }

    #[test]
    fn a_settled_digit_sits_in_the_middle_and_a_half_rolled_one_splits() {
        let g = GlyphSet::bitmap();
        let s = RollerStyle::default();
        let settled = render_roller(&g, 3.0, 20, 32, &s);
        let half = render_roller(&g, 3.5, 20, 32, &s);
        let middle = 12..20;
        let edges = |img: &RgbImage| ink_rows(img, 0..6) + ink_rows(img, 26..32);
        assert!(ink_rows(&settled, middle.clone()) > 4 * ink_rows(&half, middle));
        assert!(edges(&half) > 4 * edges(&settled));
    }

    #[test]
    fn the_roller_wraps_and_moves_continuously() {
        let g = GlyphSet::bitmap();
        let s = RollerStyle {
            pitch: 0.8,
            ..RollerStyle::default()
        };
        let diff = |a: f32, b: f32| -> u64 {
            let (x, y) = (
                render_roller(&g, a, 20, 32, &s),
                render_roller(&g, b, 20, 32, &s),
            );
            x.pixels()
                .zip(y.pixels())
                .map(|(p, q)| u64::from(p[0].abs_diff(q[0])))
                .sum()
        };
        assert_eq!(diff(10.0, 0.0), 0);
        assert!(diff(9.9, 0.0) < diff(9.9, 9.0));
        assert!(diff(4.0, 4.05) < diff(4.0, 4.3));
    }

    #[test]
    fn marks_stay_at_their_edge() {
        let g = GlyphSet::bitmap();
        let plain = RollerStyle::default();
        let dotted = RollerStyle {
            marks: vec![SideMark::Dots(Side::Right)],
            ..plain.clone()
        };
        let framed = RollerStyle {
            marks: vec![SideMark::Frame {
                side: Side::Left,
                width: 0.1,
                colour: Rgb([90, 0, 0]),
            }],
            ..plain.clone()
        };
        let a = render_roller(&g, 2.0, 40, 64, &plain);
        for (style, cols) in [(&dotted, 34..40u32), (&framed, 0..6u32)] {
            let b = render_roller(&g, 2.0, 40, 64, style);
            let changed: Vec<u32> = a
                .enumerate_pixels()
                .zip(b.pixels())
                .filter(|((_, _, p), q)| p != q)
                .map(|((x, _, _), _)| x)
                .collect();
            assert!(!changed.is_empty());
            assert!(changed.iter().all(|x| cols.contains(x)), "{changed:?}");
        }
    }

    #[test]
    fn shading_darkens_the_edges_only() {
        let g = GlyphSet::bitmap();
        let bright = RollerStyle {
            foreground: Rgb([0, 0, 0]),
            background: Rgb([200, 200, 200]),
            ..RollerStyle::default()
        };
        let shaded = RollerStyle {
            shade: 0.5,
            ..bright.clone()
        };
        let (a, b) = (
            render_roller(&g, 1.0, 20, 32, &bright),
            render_roller(&g, 1.0, 20, 32, &shaded),
        );
        assert!(u16::from(b.get_pixel(0, 0)[0]) < u16::from(a.get_pixel(0, 0)[0]) * 2 / 3);
        assert!(b.get_pixel(0, 16)[0].abs_diff(a.get_pixel(0, 16)[0]) <= 2);
    }
}
