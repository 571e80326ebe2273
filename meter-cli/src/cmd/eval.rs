//! `meter eval`: accuracy and speed of a model on labelled digit images.

use std::path::{Path, PathBuf};

use anyhow::Context;
use meter_model::{evaluate, Dataset, DigitModel, EvalReport};

use crate::cmd::train::{data_dirs, read_source_list};
use crate::Outcome;

/// Arguments of `meter eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model file (default: the built-in model).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// Dataset folder(s). Default: $METER_DIGITS_DIR, else ../shared/data/meter-digits.
    #[arg(long = "data", value_name = "DIR")]
    pub data: Vec<PathBuf>,
    /// Print exactly one JSON object (the report) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Evaluate only these sources (repeatable).
    #[arg(long = "source", value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Evaluate only the sources listed in this file (one per line).
    #[arg(long, value_name = "FILE")]
    pub sources_file: Option<PathBuf>,
    /// Fail (exit 1) when `exact` is below this fraction.
    #[arg(long, value_name = "FRACTION")]
    pub min_exact: Option<f64>,
    /// Fail when `within_0_1` is below this fraction.
    #[arg(long, value_name = "FRACTION")]
    pub min_within: Option<f64>,
    /// Fail when `settled_digit` is below this fraction.
    #[arg(long, value_name = "FRACTION")]
    pub min_settled: Option<f64>,
    /// Write every misread image here, named `<label>_as_<predicted>__<source>__<file>.png`
    /// (at the model's input size), to see what the model gets wrong.
    #[arg(long, value_name = "DIR")]
    pub misreads: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let model = match &args.model {
        Some(p) => DigitModel::load(p)?,
        None => DigitModel::shipped(),
    };
    let dirs = data_dirs(&args.data);
    let mut data = Dataset::load_many(&dirs, model.input_size())
        .with_context(|| format!("loading evaluation data from {dirs:?}"))?;
    for p in &data.problems {
        log::warn!("skipped: {p}");
    }
    let mut sources = args.sources.clone();
    if let Some(f) = &args.sources_file {
        sources.extend(read_source_list(f)?);
    }
    if !sources.is_empty() {
        let known = data.sources();
        let missing: Vec<&String> = sources
            .iter()
            .filter(|s| !known.contains(s.as_str()))
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "no images of source(s) {missing:?} in {dirs:?}"
        );
        data = data.with_sources(&sources);
    }
    let report = evaluate(&model, &data)?;
    if let Some(dir) = &args.misreads {
        let n = write_misreads(&model, &data, dir)?;
        log::info!("{n} misread images written to {}", dir.display());
    }
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    let mut failures = Vec::new();
    let mut check = |name: &str, got: Option<f64>, min: Option<f64>| {
        if let Some(min) = min {
            match got {
                Some(v) if v >= min => {}
                Some(v) => failures.push(format!("{name} {:.2}% < {:.2}%", 100.0 * v, 100.0 * min)),
                None => failures.push(format!("{name} undefined (no such labels)")),
            }
        }
    };
    check("exact", Some(report.exact), args.min_exact);
    check("within_0_1", Some(report.within_0_1), args.min_within);
    check("settled_digit", report.settled_digit, args.min_settled);
    anyhow::ensure!(
        failures.is_empty(),
        "below the required accuracy: {}",
        failures.join(", ")
    );
    Ok(Outcome::Done)
}

/// Writes the images whose prediction is not exact into `dir`; returns how many.
fn write_misreads(model: &DigitModel, data: &Dataset, dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    for chunk in data.samples.chunks(meter_model::EVAL_BATCH) {
        let images: Vec<_> = chunk.iter().map(|s| s.image.clone()).collect();
        for (s, p) in chunk.iter().zip(model.predict_batch(&images)?) {
            if p.tenths == s.label {
                continue;
            }
            let file = s
                .path
                .file_stem()
                .map_or_else(|| "image".into(), |f| f.to_string_lossy().into_owned());
            let name = format!(
                "{}_as_{}__{}__{}.png",
                s.label,
                p.tenths,
                s.source.replace(['/', ' '], "_"),
                file
            );
            let path = dir.join(name);
            s.image
                .save(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            written += 1;
        }
    }
    Ok(written)
}

fn pct(v: f64) -> String {
    format!("{:6.2}%", 100.0 * v)
}

fn print_report(r: &EvalReport) {
    let settled = |s: Option<f64>| s.map_or("     -".into(), pct);
    outln!(
        "n {}  exact {}  within 0.1 {}  settled digit {}  ({:.1} µs/digit, batch 8, one thread)",
        r.n,
        pct(r.exact),
        pct(r.within_0_1),
        settled(r.settled_digit),
        r.us_per_digit
    );
    for (title, groups) in [("kind", &r.per_kind), ("source", &r.per_source)] {
        if groups.is_empty() {
            continue;
        }
        outln!("\nper {title}:");
        for (name, m) in groups {
            outln!(
                "  {:<48} n {:>5}  exact {}  within {}  settled {}",
                name,
                m.n,
                pct(m.exact),
                pct(m.within_0_1),
                settled(m.settled_digit)
            );
        }
    }
    outln!("\nat or above a confidence (calibrated: the chance of being within 0.1):");
    for c in &r.by_confidence {
        let of = |v: Option<f64>| v.map_or("      -".into(), pct);
        outln!(
            "  >= {:.2}  keeps {} ({:>5})  exact {}  within {}",
            c.min_confidence,
            pct(c.share),
            c.n,
            of(c.exact),
            of(c.within_0_1)
        );
    }
    if !r.confusions.is_empty() {
        outln!("\ntop confusions (label -> predicted: count):");
        for c in &r.confusions {
            outln!("  {} -> {}: {}", c.label, c.predicted, c.count);
        }
    }
}
