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
        if let Some(img) = layout.mark_template(k) {
            save(&img, &path)?;
        }
        mark_lines.push(format!(
            "  {{ image = {:?}, x = {}, y = {} }},",
            path.display().to_string(),
            b[0],
            b[1]
        ));
        marks.push(path);
    }
    let reference = dir.join("reference.png");
    save(&layout.render_aligned(0.0), &reference)?;
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
