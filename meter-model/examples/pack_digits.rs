//! Packs a dataset at a model input size into two flat files, so that tools
//! outside this workspace (the PyTorch experiments in `scripts/experiments/`)
//! see exactly the images, resizing and split that `meter train` sees:
//!
//! - `pixels.u8`: every image as `height x width x 3` bytes (RGB, row-major),
//!   one after another, in the order `Dataset::load` reads them;
//! - `meta.csv`: one line per image, `label_index,split,source,kind`, where
//!   `label_index` is the label in tenths (0..=99) and `split` is 0 (training),
//!   1 (the random validation split) or 2 (a held-out source), as
//!   `meter_model::split` draws them with the given seed and the default 5%.
//!
//! ```sh
//! cargo run --release -p meter-model --example pack_digits -- \
//!     ../shared/data/meter-digits models/validation-sources.txt 24x40 1 /tmp/packed
//! ```
//! The images stay outside the repository: write the output elsewhere.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use meter_model::{read_source_list, split, Dataset, TrainConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: pack_digits DATA_DIR HOLDOUT_FILE WIDTHxHEIGHT SEED OUT_DIR";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, holdout_file, size, seed, out] = args.as_slice() else {
        return Err(usage.into());
    };
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| format!("{size:?} is not WIDTHxHEIGHT; {usage}"))?;
    let seed: u64 = seed
        .parse()
        .map_err(|e| format!("seed {seed:?}: {e}; {usage}"))?;

    let data = Dataset::load(Path::new(data_dir), (w, h))?;
    for p in &data.problems {
        eprintln!("skipped: {p}");
    }
    let holdout = read_source_list(Path::new(holdout_file))?;
    let cfg = TrainConfig::builder()
        .seed(seed)
        .holdout_sources(holdout.clone())
        .build()?;
    let (_, val) = split(&data, &cfg);
    let val: HashSet<usize> = val.into_iter().collect();
    let held: HashSet<&str> = holdout.iter().map(String::as_str).collect();

    let out = Path::new(out);
    std::fs::create_dir_all(out)?;
    let mut pixels = BufWriter::new(File::create(out.join("pixels.u8"))?);
    let mut meta = BufWriter::new(File::create(out.join("meta.csv"))?);
    for (i, s) in data.samples.iter().enumerate() {
        pixels.write_all(s.image.as_raw())?;
        let part = if held.contains(s.source.as_str()) {
            2
        } else if val.contains(&i) {
            1
        } else {
            0
        };
        let kind = s.kind.as_deref().unwrap_or("");
        writeln!(meta, "{},{part},{},{kind}", s.label.index(), s.source)?;
    }
    pixels.flush()?;
    meta.flush()?;
    eprintln!(
        "{} images ({} skipped) at {w}x{h} written to {}",
        data.samples.len(),
        data.problems.len(),
        out.display()
    );
    Ok(())
}
