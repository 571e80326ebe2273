//! Writes a labelled training set of rolling digits rendered from the
//! TrueType/OpenType fonts installed on this machine, with the looks that
//! vary between meters (colours, glyph size and spacing, drum shading, scale
//! dots and frame edges beside the digit, JPEG quality), filed as
//! `<out>/<label>/<font>__<n>.jpg` (so each font is a `source`).
//!
//! Real meter photos come from a few dozen meters, so a model trained on
//! them alone knows few typefaces; a new meter's font (a flagged 1, an open
//! 6) is then misread. These digits teach the shapes; the photos teach the
//! camera.
//!
//! ```sh
//! cargo run -p meter-cli --example font_digits -- /tmp/fontdigits 8000 7 \
//!     /usr/share/fonts/truetype/dejavu /usr/share/fonts/opentype/urw-base35 \
//!     /usr/share/fonts/truetype/noto
//! ```
//! (Debian packages fonts-dejavu-core, fonts-dejavu-extra, fonts-urw-base35,
//! fonts-noto-mono.)

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontVec};
use anyhow::{bail, Context};
use image::{GrayImage, Luma, Rgb};
use meter_synth::{render_roller, GlyphSet, RollerStyle, Side, SideMark};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Faces that are not digits meant for reading (symbols, script, maths,
/// CJK fallback) or slanted (meter fonts are upright; training shears a little).
const SKIP: [&str; 8] = [
    "Symbol", "Dingbats", "Z003", "D050000L", "Math", "Fallback", "Italic", "Oblique",
];

fn main() -> anyhow::Result<()> {
    let usage = "usage: font_digits OUT_DIR COUNT SEED FONT_DIR...";
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().context(usage)?);
    let count: usize = args.next().context(usage)?.parse()?;
    let seed: u64 = args.next().context(usage)?.parse()?;
    let dirs: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if dirs.is_empty() {
        bail!("{usage}");
    }
    let mut fonts = Vec::new();
    for dir in &dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading font folder {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.sort();
        for file in files {
            let name = stem(&file);
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "ttf" | "otf") || SKIP.iter().any(|s| name.contains(s)) {
                continue;
            }
            match glyphs(&file) {
                Ok(g) => fonts.push((name, g)),
                Err(e) => eprintln!("skipping {}: {e:#}", file.display()),
            }
        }
    }
    if fonts.is_empty() {
        bail!("no usable fonts in {dirs:?}");
    }
    eprintln!("{} fonts", fonts.len());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in 0..count {
        let (name, glyphs) = &fonts[rng.gen_range(0..fonts.len())];
        let class: u8 = rng.gen_range(0..100);
        // The labels of real data are rounded roller positions.
        let position = f32::from(class) / 10.0 + rng.gen_range(-0.04..0.04);
        let (w, h) = match rng.gen_range(0..10) {
            0..=5 => (20, 32),
            6 | 7 => (24, 40),
            8 => (30, 48),
            _ => (40, 64),
        };
        let img = render_roller(glyphs, position, w, h, &style(&mut rng));
        let dir = out.join(format!("{}.{}", class / 10, class % 10));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}__{n}.jpg"));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        image::codecs::jpeg::JpegEncoder::new_with_quality(
            std::io::BufWriter::new(file),
            rng.gen_range(60..=95),
        )
        .encode_image(&img)?;
    }
    eprintln!("wrote {count} digits to {}", out.display());
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().replace("__", "_"))
        .unwrap_or_default()
}

/// Rasterises 0..=9 of the font at `path` into coverage masks.
fn glyphs(path: &Path) -> anyhow::Result<GlyphSet> {
    let font = FontVec::try_from_vec(std::fs::read(path)?)?;
    let masks = ('0'..='9')
        .map(|c| {
            let id = font.glyph_id(c);
            if id.0 == 0 {
                bail!("no glyph for {c}");
            }
            let outlined = font
                .outline_glyph(id.with_scale(96.0))
                .with_context(|| format!("no outline for {c}"))?;
            let b = outlined.px_bounds();
            let mut mask = GrayImage::new(b.width().ceil() as u32, b.height().ceil() as u32);
            outlined.draw(|x, y, c| {
                if x < mask.width() && y < mask.height() {
                    mask.put_pixel(x, y, Luma([(c.clamp(0.0, 1.0) * 255.0).round() as u8]));
                }
            });
            Ok(mask)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    GlyphSet::new(masks).context("a digit without ink")
}

fn style(rng: &mut ChaCha8Rng) -> RollerStyle {
    // Mostly brightness; a little tint (real counters are not pastel).
    let jitter = |rng: &mut ChaCha8Rng, c: [u8; 3], r: i16| {
        let shift = rng.gen_range(-r..=r);
        Rgb(c.map(|v| (i16::from(v) + shift + rng.gen_range(-8..=8)).clamp(0, 255) as u8))
    };
    // Colour schemes of real counters: white on black (most power meters),
    // black on white, red on white, white on red (water meters' decimals).
    let (fg, bg) = match rng.gen_range(0..20) {
        0..=7 => (
            jitter(rng, [225, 225, 225], 30),
            jitter(rng, [30, 30, 30], 25),
        ),
        8..=13 => (
            jitter(rng, [25, 25, 25], 25),
            jitter(rng, [215, 215, 210], 35),
        ),
        14..=16 => (
            jitter(rng, [190, 35, 35], 30),
            jitter(rng, [215, 215, 210], 35),
        ),
        17 | 18 => (
            jitter(rng, [230, 230, 230], 20),
            jitter(rng, [170, 30, 30], 30),
        ),
        _ => (
            jitter(rng, [30, 30, 30], 20),
            jitter(rng, [210, 190, 120], 40),
        ),
    };
    let pitch = rng.gen_range(0.75..1.25);
    let mut marks = Vec::new();
    let side = |rng: &mut ChaCha8Rng| {
        if rng.gen_bool(0.5) {
            Side::Left
        } else {
            Side::Right
        }
    };
    if rng.gen_bool(0.1) {
        marks.push(SideMark::Dots(side(rng)));
    }
    if rng.gen_bool(0.25) {
        let v = rng.gen_range(0..120);
        marks.push(SideMark::Frame {
            side: side(rng),
            width: rng.gen_range(0.03..0.15),
            colour: Rgb([v, v, v]),
        });
    }
    RollerStyle {
        foreground: fg,
        background: bg,
        glyph_height: rng.gen_range(0.5f32..0.8).min(pitch * 0.85),
        pitch,
        stretch: rng.gen_range(0.75..1.3),
        shift_x: rng.gen_range(-0.08..0.08),
        shade: if rng.gen_bool(0.5) {
            rng.gen_range(0.0..0.5)
        } else {
            0.0
        },
        marks,
    }
}
