//! What a reader needs to be set up for the simulated meter: the layout as
//! JSON, mark templates, a reference frame and a config snippet.

use std::path::{Path, PathBuf};

use meter_synth::MeterLayout;
use serde_json::json;

use crate::SimError;

/// The `/layout` JSON: frame size, digit and mark boxes (`[x, y, w, h]` in
/// the aligned frame, most significant digit first), decimals, and the
/// initial rotation a reader must apply (`null` when the sensor mirrors
/// only one way, which no rotation undoes).
pub fn layout_json(layout: &MeterLayout, decimals: u32, rotate: Option<u32>) -> String {
    json!({
        "width": layout.width,
        "height": layout.height,
        "digits": layout.digits,
        "marks": layout.marks,
        "decimals": decimals,
        "rotate": rotate,
    })
    .to_string()
}

fn clamp_box(b: [u32; 4], (w, h): (u32, u32)) -> [u32; 4] {
    let x = b[0].min(w.saturating_sub(1));
    let y = b[1].min(h.saturating_sub(1));
    [x, y, b[2].min(w - x), b[3].min(h - y)]
}

/// The files [`write_setup`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupFiles {
    /// `mark0.png`, `mark1.png`, ...: reference-mark templates.
    pub marks: Vec<PathBuf>,
    /// `reference.png`: the aligned, undisturbed frame.
    pub reference: PathBuf,
    /// `layout.json`: as `/layout` serves it.
    pub layout: PathBuf,
    /// `meter.toml`: a `[[meter]]` table for the meter config.
    pub config: PathBuf,
}

/// Writes into `dir` (created if missing) the mark templates, the reference
/// frame, `layout.json`, and `meter.toml`, a `[[meter]]` table for this
/// meter whose `source` is `capture_url` and whose mark paths are absolute.
pub fn write_setup(
    dir: &Path,
    layout: &MeterLayout,
    decimals: u32,
    capture_url: &str,
    rotate: Option<u32>,
) -> Result<SetupFiles, SimError> {
    write_setup_at(dir, layout, decimals, capture_url, rotate, None)
}

/// The layout as it appears in frames resized to `size` (boxes scaled and
/// rounded); `None` keeps it.
pub(crate) fn scaled_layout(layout: &MeterLayout, size: Option<(u32, u32)>) -> MeterLayout {
    let Some((w, h)) = size else {
        return layout.clone();
    };
    let sx = f64::from(w) / f64::from(layout.width.max(1));
    let sy = f64::from(h) / f64::from(layout.height.max(1));
    let scale = |b: &[u32; 4]| {
        [
            (f64::from(b[0]) * sx).round() as u32,
            (f64::from(b[1]) * sy).round() as u32,
            ((f64::from(b[2]) * sx).round() as u32).max(1),
            ((f64::from(b[3]) * sy).round() as u32).max(1),
        ]
    };
    MeterLayout {
        width: w,
        height: h,
        digits: layout.digits.iter().map(scale).collect(),
        marks: layout.marks.iter().map(scale).collect(),
        style: layout.style.clone(),
    }
}

/// [`write_setup`] for frames served resized to `size`.
pub(crate) fn write_setup_at(
    dir: &Path,
    native: &MeterLayout,
    decimals: u32,
    capture_url: &str,
    rotate: Option<u32>,
    size: Option<(u32, u32)>,
) -> Result<SetupFiles, SimError> {
    let layout = &scaled_layout(native, size);
    let mut aligned = native.render_aligned(0.0);
    if let Some((w, h)) = size {
        aligned = image::imageops::resize(&aligned, w, h, image::imageops::FilterType::Triangle);
    }
    let werr = |path: &Path| {
        let path = path.to_owned();
        move |source| SimError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(werr(dir))?;
    let dir = dir.canonicalize().map_err(werr(dir))?;
    let save = |img: &image::RgbImage, path: &Path| -> Result<(), SimError> {
        img.save(path).map_err(|e| match e {
            image::ImageError::IoError(io) => SimError::Write {
                path: path.to_owned(),
                source: io,
            },
            other => SimError::Encode(other),
        })
    };
    let mut marks = Vec::new();
    let mut mark_lines = Vec::new();
    for (k, b) in layout.marks.iter().enumerate() {
        let path = dir.join(format!("mark{k}.png"));
        let b = clamp_box(*b, aligned.dimensions());
        save(
            &image::imageops::crop_imm(&aligned, b[0], b[1], b[2], b[3]).to_image(),
            &path,
        )?;
        mark_lines.push(format!(
            "  {{ image = {:?}, x = {}, y = {} }},",
            path.display().to_string(),
            b[0],
            b[1]
        ));
        marks.push(path);
    }
    let reference = dir.join("reference.png");
    save(&aligned, &reference)?;
    let layout_path = dir.join("layout.json");
    std::fs::write(&layout_path, layout_json(layout, decimals, rotate) + "\n")
        .map_err(werr(&layout_path))?;
    let digit_lines: Vec<String> = layout
        .digits
        .iter()
        .map(|b| format!("  [{}, {}, {}, {}],", b[0], b[1], b[2], b[3]))
        .collect();
    let rotate_line = match rotate {
        Some(r) => format!("rotate = {r}"),
        None => "# rotate: the simulator mirrors the image one way only; no rotation undoes it"
            .to_owned(),
    };
    let toml = format!(
        "# A meter reading the camera simulator (written by meter-camsim --write-setup).\n\
         [[meter]]\n\
         name = \"camsim\"\n\
         source = {capture_url:?}\n\
         interval = \"10s\"\n\
         {rotate_line}\n\
         # Reference-mark templates and their top-left corners in the aligned frame.\n\
         marks = [\n{}\n]\n\
         # Digit boxes [x, y, width, height] in the aligned frame, most significant first.\n\
         digits = [\n{}\n]\n\
         decimals = {decimals}\n\
         unit = \"kWh\"\n",
        mark_lines.join("\n"),
        digit_lines.join("\n"),
    );
    let config = dir.join("meter.toml");
    std::fs::write(&config, toml).map_err(werr(&config))?;
    Ok(SetupFiles {
        marks,
        reference,
        layout: layout_path,
        config,
    })
}
