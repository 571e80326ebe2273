//! `meter roi`: set up a meter by looking. Writes the aligned frame with the
//! reference marks and digit boxes drawn on it, and the digit crops; with
//! `--auto`, proposes the digit boxes and prints them as config; with
//! `--cut-mark`, cuts reference-mark templates from the aligned frame.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use image::RgbImage;
use meter_model::DigitModel;
use meter_vision::{
    aligned_frame, decode_jpeg, draw_box, extract_digits, propose_digits, propose_rotated_by,
    Aligner, Alignment, MeterGeometry, Oriented, Regions, Resample,
};

use crate::Outcome;
use meter_service::config::ResolvedConfig;
use meter_service::overlay::{draw_geometry, DIGIT_COLOUR, FAILED_COLOUR};

/// Arguments of `meter roi`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The camera frame (JPEG; PNG also accepted).
    #[arg(long)]
    pub frame: PathBuf,
    /// The configuration whose meter geometry (rotate, marks, digits) is
    /// shown.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The meter of the config (needed when it has several).
    #[arg(long)]
    pub meter: Option<String>,
    /// Where the pictures go (created if missing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Propose the counter window and digit boxes, print them as config.
    #[arg(long)]
    pub auto: bool,
    /// With --auto: how many digits the counter has (recommended: without
    /// it, an end slot is added only where it holds ink like a digit's, so
    /// a very faint end digit may be left out and a digit-tall mark beside
    /// the counter taken in).
    #[arg(long)]
    pub digits: Option<usize>,
    /// Initial rotation in degrees (counter-clockwise) when no config is
    /// given (180 for an upside-down camera). With --auto it is a hint:
    /// the rotation is estimated within 45 degrees of it (without it,
    /// within 45 degrees of upright or of upside down).
    #[arg(long, allow_hyphen_values = true)]
    pub rotate: Option<f64>,
    /// Size of the written crops as WxH (default: each box's own size).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// Cut a reference-mark template `X,Y,W,H` from the aligned frame into
    /// the output folder (repeatable, up to 3).
    #[arg(long = "cut-mark", value_parser = parse_rect)]
    pub cut_mark: Vec<[u32; 4]>,
}

/// `WxH` with two positive whole numbers (`meter roi --size`, `meter train --input-size`).
pub(crate) fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected WxH, e.g. 20x32"))?;
    let n = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("{s:?}: {v:?} is not a positive whole number"))
    };
    Ok((n(w)?, n(h)?))
}

fn parse_rect(s: &str) -> Result<[u32; 4], String> {
    let v: Vec<u32> = s
        .split(',')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{s:?}: expected X,Y,W,H in whole pixels"))?;
    match v[..] {
        [x, y, w, h] if w > 0 && h > 0 => Ok([x, y, w, h]),
        _ => Err(format!("{s:?}: expected X,Y,W,H with W and H above 0")),
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let frame = read_frame(&args.frame)?;
    let (geometry, base) = match &args.config {
        Some(path) => (
            Some(meter_geometry(path, args.meter.as_deref())?),
            PathBuf::new(),
        ),
        None => (None, PathBuf::new()),
    };
    if geometry.is_some() && args.rotate.is_some() {
        bail!("--rotate is for frames without --config; the config's `rotate` applies");
    }
    if args.out.is_none() && !args.auto {
        bail!("nothing to do: give --out DIR (pictures) and/or --auto (proposed boxes)");
    }
    if args.cut_mark.len() > 3 {
        bail!("--cut-mark: at most 3 marks, got {}", args.cut_mark.len());
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    // Without a config, --auto finds the rotation and the counter together.
    let mut estimated: Option<Oriented> = None;
    let aligner = match &geometry {
        Some(g) => g.aligner(&base).context("loading the config's marks")?,
        None => {
            let rotate = match args.auto {
                true => estimated.insert(estimate_rotation(&frame, &args)?).rotate,
                false => args.rotate.unwrap_or(0.0),
            };
            Aligner::builder().rotate_deg(rotate).build()?
        }
    };
    let alignment = match aligner.align(&frame) {
        Ok(a) => a,
        Err(e) => {
            // Show where the marks and boxes were expected, then fail.
            let note = match (&args.out, &geometry) {
                (Some(out), Some(g)) => {
                    let (initial, size) = aligner.initial(frame.dimensions());
                    let a = Alignment {
                        transform: initial,
                        aligned_size: size,
                        initial,
                        marks: Vec::new(),
                    };
                    let mut img = aligned_frame(&frame, &a);
                    draw_geometry(&mut img, g, &[], FAILED_COLOUR)?;
                    let path = out.join("unaligned.png");
                    save(&img, &path)?;
                    format!(" (expected places drawn in {})", path.display())
                }
                _ => String::new(),
            };
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("{}: alignment failed{note}", args.frame.display()));
        }
    };
    for m in &alignment.marks {
        outln!(
            "mark {}: expected at ({}, {}), score {:.3}, residual {:.2} px{}",
            m.index,
            m.expected.0,
            m.expected.1,
            m.score,
            m.residual_px,
            if m.used {
                ""
            } else {
                " (NOT USED: lost or disagreeing; check it)"
            }
        );
    }
    if let Some(c) = alignment.correction() {
        let (dx, dy) = c.apply((0.0, 0.0));
        outln!(
            "camera moved by ({dx:+.1}, {dy:+.1}) px, turned {:+.2} deg, scale {:.4} (after rotate)",
            c.rotation_deg(),
            c.scale()
        );
    }
    let aligned = aligned_frame(&frame, &alignment);

    if let Some(out) = &args.out {
        for (k, r) in args.cut_mark.iter().enumerate() {
            let (w, h) = aligned.dimensions();
            if r[0] + r[2] > w || r[1] + r[3] > h {
                bail!("--cut-mark {r:?} lies outside the {w}x{h} aligned frame");
            }
            let tpl = image::imageops::crop_imm(&aligned, r[0], r[1], r[2], r[3]).to_image();
            let path = out.join(format!("mark_{k}.png"));
            save(&tpl, &path)?;
            outln!(
                "marks = [..., {{ image = \"{}\", x = {}, y = {} }}]",
                path.display(),
                r[0],
                r[1]
            );
        }
    }

    if let Some(g) = &geometry {
        let regions = g.regions()?;
        if let Some(out) = &args.out {
            let mut img = aligned.clone();
            draw_geometry(&mut img, g, &regions.boxes(), DIGIT_COLOUR)?;
            save(&img, &out.join("aligned.png"))?;
            write_crops(&frame, &alignment, &regions, args.size, out)?;
            outln!("wrote {}", out.join("aligned.png").display());
        }
    } else if let Some(out) = &args.out {
        save(&aligned, &out.join("aligned.png"))?;
        outln!("wrote {}", out.join("aligned.png").display());
    }

    if args.auto {
        // The estimate's boxes are in the frame turned by its rotation: the
        // aligned frame when no marks moved it and the size is kept (not a
        // quarter turn). Otherwise the row is looked for again.
        let same_frame = alignment.aligned_size == frame.dimensions()
            && alignment.transform == alignment.initial;
        let proposed = match estimated.filter(|_| same_frame) {
            Some(o) => Some(o.proposal),
            None => propose_digits(&aligned, args.digits),
        };
        let Some(p) = proposed else {
            bail!(
                "{}: no row of digit-like glyphs found; set `digits` by hand (see aligned.png)",
                args.frame.display()
            );
        };
        outln!(
            "# proposed by `meter roi --auto` from {} ({} glyphs seen, pitch {:.1} px); check with `meter roi --config`",
            args.frame.display(),
            p.glyphs_seen,
            p.pitch
        );
        let boxes: Vec<String> = p
            .digits
            .iter()
            .map(|b| format!("[{}, {}, {}, {}]", b[0], b[1], b[2], b[3]))
            .collect();
        outln!("digits = [{}]", boxes.join(", "));
        let w = p.window;
        outln!(
            "# or: counter = {{ window = [{}, {}, {}, {}], count = {} }}",
            w[0],
            w[1],
            w[2],
            w[3],
            p.digits.len()
        );
        if let Some(out) = &args.out {
            let mut img = aligned.clone();
            for b in &p.digits {
                draw_box(&mut img, *b, DIGIT_COLOUR, 2);
            }
            save(&img, &out.join("auto.png"))?;
            let regions = Regions::Boxes(p.digits.clone());
            write_crops(&frame, &alignment, &regions, args.size, out)?;
        }
    }
    Ok(Outcome::Done)
}

/// The camera's rotation and the counter, found from the digit rows of the
/// frame and printed as config: of the rows that may be the counter, each
/// either way up (within 45 degrees of the hint, if given), the one the
/// digit model reads most surely.
fn estimate_rotation(frame: &RgbImage, args: &Args) -> anyhow::Result<Oriented> {
    let model = DigitModel::shipped();
    let confidences = |crops: &[RgbImage]| {
        model
            .predict_batch(crops)
            .map(|ps| ps.iter().map(|p| p.confidence).collect())
    };
    let found = propose_rotated_by(
        frame,
        args.digits,
        args.rotate,
        model.input_size(),
        confidences,
    )?;
    let Some(found) = found else {
        bail!(
            "{}: no row of digit-like glyphs found at any rotation{}; set `rotate` and `digits` by hand",
            args.frame.display(),
            args.rotate
                .map(|r| format!(" within 45 degrees of {r}"))
                .unwrap_or_default()
        );
    };
    outln!(
        "rotate = {:.1}  # estimated from the digit row{}",
        found.rotate,
        if args.rotate.is_some() {
            " near --rotate"
        } else {
            ""
        }
    );
    Ok(found)
}

fn read_frame(path: &Path) -> anyhow::Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let is_jpeg = bytes.starts_with(&[0xFF, 0xD8]);
    if is_jpeg {
        Ok(decode_jpeg(&bytes, &path.display().to_string())?)
    } else {
        Ok(image::load_from_memory(&bytes)
            .with_context(|| format!("{}: not a readable image", path.display()))?
            .to_rgb8())
    }
}

fn meter_geometry(path: &Path, meter: Option<&str>) -> anyhow::Result<MeterGeometry> {
    let cfg = ResolvedConfig::load(path)?;
    let m = match meter {
        Some(name) => cfg.meter(name)?,
        None => match &cfg.meters[..] {
            [one] => one,
            [] => bail!("{}: no [[meter]] in the config", path.display()),
            many => bail!(
                "{}: several meters ({}); pick one with --meter",
                path.display(),
                many.iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    Ok(m.geometry.clone())
}

fn write_crops(
    frame: &RgbImage,
    alignment: &Alignment,
    regions: &Regions,
    size: Option<(u32, u32)>,
    out: &Path,
) -> anyhow::Result<()> {
    for (k, b) in regions.boxes().iter().enumerate() {
        let size = size.unwrap_or((b[2], b[3]));
        let one = Regions::Boxes(vec![*b]);
        let crop = extract_digits(frame, alignment, &one, size, Resample::Area)?;
        save(&crop[0], &out.join(format!("digit_{k}.png")))?;
    }
    Ok(())
}

fn save(img: &RgbImage, path: &Path) -> anyhow::Result<()> {
    img.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use meter_synth::{FrameParams, MeterLayout};

    fn args(frame: &Path, out: &Path) -> Args {
        Args {
            frame: frame.to_path_buf(),
            config: None,
            meter: None,
            out: Some(out.to_path_buf()),
            auto: false,
            digits: None,
            rotate: None,
            size: None,
            cut_mark: Vec::new(),
        }
    }

    /// A synthetic upside-down shot, its config, and the set-up steps a
    /// user takes: cut marks, propose boxes, check the config.
    #[test]
    fn set_up_a_synthetic_meter() {
        let dir = tempfile::tempdir().unwrap();
        let layout = MeterLayout::default();
        let shot = layout.render(&FrameParams {
            counter: 31_415.0,
            rotation_deg: 1.0,
            shift: (4.0, -3.0),
            noise: 3.0,
            ..FrameParams::default()
        });
        let frame = dir.path().join("frame.png");
        image::imageops::rotate180(&shot.image)
            .save(&frame)
            .unwrap();

        // 1. Cut the marks from the turned frame and let --auto find digits.
        let out = dir.path().join("setup");
        let mut a = args(&frame, &out);
        a.rotate = Some(180.0);
        a.auto = true;
        a.digits = Some(6);
        a.cut_mark = layout.marks.clone();
        run(a).unwrap();
        assert!(out.join("mark_0.png").exists() && out.join("auto.png").exists());
        assert!(out.join("digit_5.png").exists());

        // 2. A config using them; the aligned overlay and crops appear.
        let cfg = dir.path().join("meter.toml");
        let m = &layout.marks;
        std::fs::write(
            &cfg,
            format!(
                "[[meter]]\nname = \"m\"\nsource = \"{}\"\nrotate = 180\nmarks = [{{ image = \"setup/mark_0.png\", x = {}, y = {} }}, {{ image = \"setup/mark_1.png\", x = {}, y = {} }}]\ndigits = {:?}\n",
                frame.display(),
                m[0][0],
                m[0][1],
                m[1][0],
                m[1][1],
                layout.digits
            ),
        )
        .unwrap();
        let out2 = dir.path().join("check");
        let mut a = args(&frame, &out2);
        a.config = Some(cfg.clone());
        a.size = Some((20, 32));
        run(a).unwrap();
        let crop = image::open(out2.join("digit_0.png")).unwrap();
        assert_eq!((crop.width(), crop.height()), (20, 32));
        assert!(out2.join("aligned.png").exists());

        // 3. A frame where the marks are not: an error, and the picture
        //    of where they were expected.
        let blank = dir.path().join("blank.png");
        RgbImage::from_pixel(640, 480, Rgb([90, 90, 90]))
            .save(&blank)
            .unwrap();
        let out3 = dir.path().join("bad");
        let mut a = args(&blank, &out3);
        a.config = Some(cfg);
        let Err(err) = run(a) else {
            panic!("a blank frame aligned")
        };
        assert!(format!("{err:#}").contains("alignment failed"), "{err:#}");
        assert!(out3.join("unaligned.png").exists());

        // Bad arguments name the problem.
        let mut a = args(&frame, &out);
        a.out = None;
        assert!(run(a).is_err());
        let Err(err) = run(args(&dir.path().join("missing.jpg"), &out)) else {
            panic!("a missing frame was read")
        };
        assert!(format!("{err:#}").contains("missing.jpg"));
    }

    /// Angle difference in degrees, in (-180, 180].
    fn off(a: f64, b: f64) -> f64 {
        let d = (a - b).rem_euclid(360.0);
        if d > 180.0 {
            d - 360.0
        } else {
            d
        }
    }

    /// `roi --auto` without `--rotate`: the camera's rotation, upside down
    /// included, comes from the digit row and the digit model.
    #[test]
    fn auto_estimates_the_rotation_upside_down_too() {
        let dir = tempfile::tempdir().unwrap();
        let layout = MeterLayout::default();
        let mut right = 0;
        let turns = [-40.0f32, -17.0, 0.0, 12.0, 33.0, 180.0, 167.0, -158.0];
        for (k, turn) in turns.into_iter().enumerate() {
            let shot = layout.render(&FrameParams {
                counter: 27_183.0 + 1111.0 * k as f64,
                rotation_deg: turn,
                noise: 3.0,
                seed: k as u64,
                ..FrameParams::default()
            });
            let frame = dir.path().join(format!("turned_{k}.png"));
            shot.image.save(&frame).unwrap();
            let mut a = args(&frame, dir.path());
            a.auto = true;
            a.digits = Some(6);
            let rotate = estimate_rotation(&shot.image, &a).unwrap().rotate;
            // The frame turned by `turn` is upright after `rotate = -turn`.
            let ok = off(rotate, -f64::from(turn)).abs() < 2.0;
            eprintln!(
                "turned {turn}: rotate {rotate:.1} {}",
                if ok { "right" } else { "WRONG" }
            );
            right += usize::from(ok);
        }
        assert!(right * 10 >= turns.len() * 9, "{right}/{}", turns.len());
        // A hint decides which way up.
        let shot = layout.render(&FrameParams {
            counter: 11_111.0,
            rotation_deg: 170.0,
            ..FrameParams::default()
        });
        let mut a = args(&dir.path().join("x.png"), dir.path());
        a.rotate = Some(180.0);
        let rotate = estimate_rotation(&shot.image, &a).unwrap().rotate;
        assert!(off(rotate, -170.0).abs() < 2.0, "{rotate}");
    }

    /// The real upside-down frames of wmsc (../shared/data/meter-frames):
    /// the rotation is estimated as the way the pictures were taken.
    #[test]
    fn auto_finds_real_upside_down_frames() {
        let Some(dir) = testkit::data::frames_dir().map(|d| d.join("wmsc")) else {
            return;
        };
        let mut right = 0;
        // Version-1.1.0's file says (EXIF orientation 3) that it is upside
        // down; the decoder turns it upright, so its rotation is 0.
        let frames = [
            ("SourceImage_2019-09-16_20-08-31__eb46b74.jpg", 180.0),
            ("org.jpg", 180.0),
            ("original.jpg", 180.0),
            ("Version-1.1.0__reference__Referenz__7bc2dcf.jpg", 0.0),
        ];
        for (name, expected) in frames {
            let path = dir.join(name);
            let frame = read_frame(&path).unwrap();
            let mut a = args(&path, &dir);
            a.auto = true;
            a.digits = Some(5);
            let rotate = estimate_rotation(&frame, &a).unwrap().rotate;
            // The camera square to the meter within a few degrees.
            let ok = off(rotate, expected).abs() < 5.0;
            eprintln!(
                "wmsc/{name}: rotate {rotate:.1} {}",
                if ok { "right" } else { "WRONG" }
            );
            right += usize::from(ok);
        }
        let names = frames;
        assert!(right >= 3, "{right}/{}", names.len());
    }

    #[test]
    fn parses_sizes_and_rects() {
        assert_eq!(parse_size("20x32"), Ok((20, 32)));
        assert!(parse_size("20").is_err());
        assert!(parse_size("0x3").is_err());
        assert_eq!(parse_rect("1,2,3,4"), Ok([1, 2, 3, 4]));
        assert!(parse_rect("1,2,3").is_err());
        assert!(parse_rect("1,2,0,4").is_err());
    }
}
