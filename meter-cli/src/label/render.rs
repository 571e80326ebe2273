//! Pictures in the terminal: two pixel rows per character cell with the
//! upper half block `▀`, its foreground the upper pixel and its background
//! the lower one, in 24-bit colour.

use image::{imageops, Rgb, RgbImage};

/// Upper half block.
const HALF: char = '▀';
/// Colour of the frame around the digit being labelled.
const HIGHLIGHT: Rgb<u8> = Rgb([255, 200, 0]);

/// One text line per two pixel rows of `img` (an odd last row gets a black
/// lower half); each line ends with a colour reset.
pub fn half_blocks(img: &RgbImage) -> Vec<String> {
    let (w, h) = img.dimensions();
    let mut lines = Vec::with_capacity(h.div_ceil(2) as usize);
    for y in (0..h).step_by(2) {
        let mut line = String::with_capacity(w as usize * 40);
        for x in 0..w {
            let t = img.get_pixel(x, y);
            let b = if y + 1 < h {
                *img.get_pixel(x, y + 1)
            } else {
                Rgb([0, 0, 0])
            };
            line.push_str(&format!(
                "\x1b[38;2;{};{};{}m\x1b[48;2;{};{};{}m{HALF}",
                t[0], t[1], t[2], b[0], b[1], b[2]
            ));
        }
        line.push_str("\x1b[0m");
        lines.push(line);
    }
    lines
}

/// The digit at `position` among `context` (its neighbours in the frame,
/// left to right), scaled up to fit `cols` x `rows` cells: neighbours dimmed,
/// the digit itself framed. Shows as many neighbours (up to two a side) as
/// leave the digit at least twice its size, else one a side, else none.
pub fn digit_strip(context: &[RgbImage], position: usize, cols: u16, rows: u16) -> RgbImage {
    let dh = context[position].height();
    let max_w = f64::from(cols.max(4));
    let max_h = f64::from(rows.max(2)) * 2.0;
    let fit = |side: usize| -> (f64, usize, usize) {
        let lo = position.saturating_sub(side);
        let hi = (position + side + 1).min(context.len());
        let widths: u32 = context[lo..hi].iter().map(|i| i.width()).sum();
        let frames = 2 * (hi - lo) as u32; // a one-pixel frame around each
        let scale = (max_w / f64::from(widths + frames)).min(max_h / f64::from(dh + 2));
        (scale, lo, hi)
    };
    // Context where it leaves the digit big enough, else the digit alone.
    let (scale, lo, hi) = match (fit(2), fit(1)) {
        (f, _) if f.0 >= 2.0 => f,
        (_, f) if f.0 >= 1.5 => f,
        _ => fit(0),
    };
    let scale = scale.max(0.25);
    // Rounded down, so that the strip stays within the box.
    let sz = |v: u32| ((f64::from(v) * scale).floor() as u32).max(1);
    let border = sz(1);
    let height = sz(dh) + 2 * border;
    let parts: Vec<(RgbImage, bool)> = (lo..hi)
        .map(|i| {
            let img = &context[i];
            let scaled = imageops::resize(
                img,
                sz(img.width()),
                sz(img.height()),
                imageops::FilterType::Nearest,
            );
            (scaled, i == position)
        })
        .collect();
    let width: u32 = parts.iter().map(|(p, _)| p.width() + 2 * border).sum();
    let mut out = RgbImage::new(width.max(1), height);
    let mut x0 = 0;
    for (img, is_cur) in &parts {
        let (w, h) = img.dimensions();
        if *is_cur {
            for y in 0..height {
                for x in x0..x0 + w + 2 * border {
                    out.put_pixel(x, y, HIGHLIGHT);
                }
            }
        }
        let y_off = border + (height - 2 * border).saturating_sub(h) / 2;
        for (x, y, p) in img.enumerate_pixels() {
            let p = if *is_cur {
                *p
            } else {
                Rgb([p[0] / 2, p[1] / 2, p[2] / 2])
            };
            if y + y_off < height {
                out.put_pixel(x0 + border + x, y + y_off, p);
            }
        }
        x0 += w + 2 * border;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_pixel_rows_per_line_in_true_colour() {
        let mut img = RgbImage::new(2, 3);
        img.put_pixel(0, 0, Rgb([255, 0, 0]));
        img.put_pixel(0, 1, Rgb([0, 0, 255]));
        let lines = half_blocks(&img);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("\x1b[38;2;255;0;0m\x1b[48;2;0;0;255m▀"));
        assert_eq!(lines[0].matches('▀').count(), 2);
        assert!(lines[1].ends_with("\x1b[0m"));
    }

    #[test]
    fn strip_fits_the_box_and_frames_the_digit() {
        let digits: Vec<RgbImage> = (0..6)
            .map(|i| RgbImage::from_pixel(20, 32, Rgb([i * 40, 100, 100])))
            .collect();
        for (cols, rows) in [(118u16, 30u16), (60, 20), (200, 60)] {
            let s = digit_strip(&digits, 2, cols, rows);
            assert!(
                s.width() <= u32::from(cols),
                "{cols}x{rows}: {:?}",
                s.dimensions()
            );
            assert!(
                s.height() <= u32::from(rows) * 2,
                "{cols}x{rows}: {:?}",
                s.dimensions()
            );
            // Scaled up, not down.
            assert!(s.height() > 32, "{:?}", s.dimensions());
            // The frame colour appears (the current digit is marked).
            assert!(s.pixels().any(|p| *p == HIGHLIGHT));
        }
        // At the edge there is no left neighbour: still fine.
        let s = digit_strip(&digits, 0, 118, 30);
        assert!(s.width() <= 118);
    }
}
