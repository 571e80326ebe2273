//! The labelling session drawn in the terminal. Pictures use two pixel rows
//! per character cell with the upper half block `▀`, its foreground the
//! upper pixel and its background the lower one, in 24-bit colour.

use image::{imageops, Rgb, RgbImage};
use meter_service::label::{LastOutcome, View};

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

/// The whole screen for `view` in a terminal of `cols` x `rows` cells:
/// the digit among its neighbours, the guess, the answer being typed, the
/// last answer, the progress and the keys.
pub fn screen(view: &View<'_>, cols: u16, rows: u16) -> String {
    let n = view.total;
    let mut s = String::from("\x1b[H\x1b[2J");
    let nl = "\x1b[K\r\n";
    let pic_rows = rows.saturating_sub(8).max(4);
    let pic_cols = cols.saturating_sub(2).max(8);
    match view.shown {
        Some((i, it)) => {
            s += &format!(
                "\x1b[1mmeter classify\x1b[0m  {}  {}  ({} of {}){nl}",
                it.meter,
                it.origin.describe(),
                i + 1,
                n
            );
            let strip = digit_strip(&it.context, it.position, pic_cols, pic_rows);
            for line in half_blocks(&strip) {
                s += " ";
                s += &line;
                s += nl;
            }
            s += &match &it.guess {
                Some(g) => {
                    let also: Vec<String> = g
                        .top
                        .iter()
                        .skip(1)
                        .take(3)
                        .map(|(t, p)| format!("{t} {:.0}%", 100.0 * p))
                        .collect();
                    format!(
                        "guess \x1b[1m{}\x1b[0m  confidence {:.0}%   also: {}{nl}",
                        g.tenths,
                        100.0 * g.confidence,
                        also.join(", ")
                    )
                }
                None => format!("guess -{nl}"),
            };
        }
        None => s += &format!("\x1b[1mmeter classify\x1b[0m  all {n} images answered{nl}"),
    }
    let typed = view
        .typed_digit
        .map(|d| format!("{d}._  (type the tenth)"))
        .unwrap_or_default();
    s += &format!("answer> {typed}{nl}");
    match &view.last {
        Some(last) => {
            let what = match last.outcome {
                LastOutcome::InHand { label, amendable } => format!(
                    "-> {label}{}",
                    if amendable {
                        "  (`.` and a tenth make it rolling)"
                    } else {
                        ""
                    }
                ),
                LastOutcome::Filed(label) => format!("filed as {label}"),
                LastOutcome::Skipped => "skipped".into(),
            };
            s += &format!("last: {} {what}{nl}", last.item.origin.describe());
        }
        None => s += nl,
    }
    let speed = match (view.per_image, view.left) {
        (Some(per), Some(left)) => format!(
            " · {:.1} s/image · ~{:.0} min left",
            per.as_secs_f64(),
            (left.as_secs_f64() / 60.0).ceil()
        ),
        _ => String::new(),
    };
    s += &format!(
        "progress {}/{n} · filed {} · skipped {}{}{speed}{nl}",
        view.position,
        view.filed,
        view.skipped,
        if view.earlier > 0 {
            format!(" · {} done earlier", view.earlier)
        } else {
            String::new()
        },
    );
    s += &format!(
        "keys: 0-9 digit · 3 . 7 rolling 3.7 · Enter accept guess · s skip · u undo · q quit{nl}"
    );
    if !view.message.is_empty() {
        s += &format!("\x1b[33m{}\x1b[0m{nl}", view.message);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;

    use meter_core::DigitPrediction;
    use meter_service::files::image_hash;
    use meter_service::label::{Item, Key, Origin, Session, SessionOptions};

    #[test]
    fn the_screen_shows_picture_guess_progress_and_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Arc::new(
            (0..5u8)
                .map(|i| {
                    RgbImage::from_fn(20, 32, |x, y| Rgb([i * 37, (x * 10) as u8, (y * 7) as u8]))
                })
                .collect::<Vec<_>>(),
        );
        let items = (0..5)
            .map(|i| Item {
                hash: image_hash(&ctx[i]),
                meter: "house".into(),
                image: ctx[i].clone(),
                context: ctx.clone(),
                position: i,
                origin: Origin::Frame {
                    frame: PathBuf::from("f1.jpg"),
                    digit: i,
                },
                guess: Some(DigitPrediction::with_confidence(
                    meter_core::Tenths::new(i as u8 * 10).unwrap(),
                    0.9,
                )),
            })
            .collect();
        let opts = SessionOptions {
            dataset_dir: dir.path().join("dataset"),
            journal: dir.path().join("journal"),
            revisit_skipped: false,
        };
        let mut text = String::new();
        Session::new(items, opts)
            .unwrap()
            .run([Ok(Key::Char('3')), Ok(Key::Char('.'))], |v| {
                text += &screen(v, 100, 30);
                Ok(())
            })
            .unwrap();
        assert!(text.contains("\x1b[38;2;"), "true colour");
        assert!(text.matches('▀').count() > 500, "a scaled-up picture");
        assert!(text.contains("guess \x1b[1m0.0\x1b[0m  confidence 90%"));
        assert!(text.contains("answer> 3._"), "the typed answer");
        assert!(text.contains("progress 1/5"));
        assert!(text.contains("frame f1.jpg digit 1"));
    }

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
