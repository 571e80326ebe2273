//! How consistent are a dataset's labels with themselves? For every image, its
//! nearest neighbour in the same source (20x32 grey, each image standardised
//! to zero mean and unit variance; distance = mean squared difference, which is
//! 2 * (1 - correlation)). A pair closer than a small distance shows the same
//! rolling position photographed again, so where its two labels differ, that
//! is labelling noise: no reader can be "exact" on both.
//!
//! ```sh
//! cargo run --release -p meter-model --example label_consistency -- \
//!     ../shared/data/meter-digits models/validation-sources.txt
//! ```
//! Prints, per distance band and for the sources in the list (held out from
//! training) and the others, how often the pair's labels agree exactly, differ
//! by one tenth, or by more; then the same per source below distance 0.02
//! (correlation above 0.99).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meter_model::{read_source_list, Dataset};

const SIZE: (u32, u32) = (20, 32);
const BANDS: [f32; 6] = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16];
const PER_SOURCE_BELOW: f32 = 0.02;

/// Agreement counts of nearest-neighbour pairs: exact, one tenth apart, more.
#[derive(Default, Clone, Copy)]
struct Tally([usize; 3]);

impl Tally {
    fn add(&mut self, distance_tenths: u8) {
        self.0[usize::from(distance_tenths).min(2)] += 1;
    }

    fn line(&self) -> String {
        let n: usize = self.0.iter().sum();
        let pct = |k: usize| 100.0 * self.0[k] as f64 / n.max(1) as f64;
        format!(
            "n {n:5}  same {:5.1}%  ±0.1 {:5.1}%  more {:4.1}%",
            pct(0),
            pct(1),
            pct(2)
        )
    }
}

fn standardised_grey(img: &image::RgbImage) -> Vec<f32> {
    let g: Vec<f32> = img
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let n = g.len() as f32;
    let mean = g.iter().sum::<f32>() / n;
    let sd = (g.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt() + 1e-3;
    g.iter().map(|v| (v - mean) / sd).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, held_file] = args.as_slice() else {
        return Err("usage: label_consistency DATA_DIR HELD_OUT_SOURCES_FILE".into());
    };
    let held = read_source_list(Path::new(held_file))?;
    let is_held = |source: &str| held.iter().any(|h| h == source);
    let data = Dataset::load_many(&[PathBuf::from(data_dir)], SIZE)?;
    let vectors: Vec<Vec<f32>> = data
        .samples
        .iter()
        .map(|s| standardised_grey(&s.image))
        .collect();
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in data.samples.iter().enumerate() {
        by_source.entry(s.source.as_str()).or_default().push(i);
    }
    // [held out?][band]
    let mut bands = [[Tally::default(); BANDS.len()]; 2];
    let mut per_source: BTreeMap<&str, Tally> = BTreeMap::new();
    for (source, members) in &by_source {
        let held_index = usize::from(is_held(source));
        // Each pair's distance once, updating both ends' nearest; pairs are
        // visited in increasing index order, so ties go to the first, as a
        // per-image minimum would.
        let mut nearest: Vec<Option<(f32, usize)>> = vec![None; members.len()];
        for (i, &a) in members.iter().enumerate() {
            for (j, &b) in members.iter().enumerate().skip(i + 1) {
                let d: f32 = vectors[a]
                    .iter()
                    .zip(&vectors[b])
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f32>()
                    / vectors[a].len() as f32;
                for (k, other) in [(i, b), (j, a)] {
                    if nearest[k].is_none_or(|(best, _)| d < best) {
                        nearest[k] = Some((d, other));
                    }
                }
            }
        }
        for (&a, nearest) in members.iter().zip(nearest) {
            let Some((d, b)) = nearest else { continue };
            let apart = data.samples[a]
                .label
                .circular_distance(data.samples[b].label);
            if let Some(k) = BANDS.iter().position(|&hi| d < hi) {
                bands[held_index][k].add(apart);
            }
            if d < PER_SOURCE_BELOW {
                per_source.entry(source).or_default().add(apart);
            }
        }
    }
    let mut lo = 0.0;
    for (k, hi) in BANDS.iter().enumerate() {
        println!("distance [{lo}, {hi})");
        println!("  held-out sources  {}", bands[1][k].line());
        println!("  training sources  {}", bands[0][k].line());
        lo = *hi;
    }
    println!("per source, distance below {PER_SOURCE_BELOW}:");
    for (source, tally) in per_source {
        let mark = if is_held(source) { "held" } else { "    " };
        println!("  {source:48} {mark} {}", tally.line());
    }
    Ok(())
}
