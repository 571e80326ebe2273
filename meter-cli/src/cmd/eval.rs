//! `meter eval`: accuracy and speed of a model on labelled digit images;
//! with `--counters`, what users get: readings of whole counters composed
//! from each meter's labelled digits (`meter_service::counters`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use meter_core::DecisionRule;
use meter_model::{evaluate, Dataset, DigitModel, EvalReport};
use meter_service::counters::{
    evaluate_counters, CounterEval, CounterReport, Floors, Plan, StreamKind, Tally,
};

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
    /// Evaluate readings instead of digits: counters of 5 to 8 rollers
    /// composed from each source's labelled digits (odometer-consistent, half
    /// the draws at a carry), read as `meter predict` reads a frame, single
    /// frames and rising histories with the state kept as `meter run` keeps
    /// it. Reports per meter: stored, stored but wrong, unsure, raw right.
    #[arg(long)]
    pub counters: bool,
    /// Single frames per meter [default: 200].
    #[arg(long, value_name = "N", requires = "counters")]
    pub singles: Option<usize>,
    /// Histories per meter [default: 10].
    #[arg(long, value_name = "N", requires = "counters")]
    pub histories: Option<usize>,
    /// Frames per history [default: 50].
    #[arg(long, value_name = "N", requires = "counters")]
    pub len: Option<usize>,
    /// Seed of every draw [default: 1].
    #[arg(long, value_name = "S", requires = "counters")]
    pub seed: Option<u64>,
    /// The decision rule the meters are configured with.
    #[arg(long, value_enum, default_value_t = RuleArg::Reading, requires = "counters")]
    pub rule: RuleArg,
    /// The meters' `max_rate_per_hour` (default: none, only the monotonic veto).
    #[arg(long, value_name = "UNITS", requires = "counters")]
    pub max_rate: Option<f64>,
    /// The meters' `min_confidence` (default: the config's default, 0.95).
    #[arg(long, value_name = "P", requires = "counters")]
    pub min_confidence: Option<f32>,
    /// Read every digit also shifted one pixel up and down and average the
    /// three readings (test-time agreement).
    #[arg(long, requires = "counters")]
    pub agreement: bool,
    /// File the digits of stored readings into this dataset folder, as
    /// `meter run` files them (self-training without labels).
    #[arg(long, value_name = "DIR", requires = "counters")]
    pub file_dataset: Option<PathBuf>,
    /// Fail when fewer single frames than this fraction are stored.
    #[arg(long, value_name = "FRACTION", requires = "counters")]
    pub min_stored_single: Option<f64>,
    /// Fail when fewer history frames than this fraction are stored.
    #[arg(long, value_name = "FRACTION", requires = "counters")]
    pub min_stored_history: Option<f64>,
    /// Fail when more frames than this are stored wrong.
    #[arg(long, value_name = "N", requires = "counters")]
    pub max_wrong: Option<usize>,
    /// Write every misread image here, named `<label>_as_<predicted>__<source>__<file>.png`
    /// (at the model's input size), to see what the model gets wrong.
    #[arg(long, value_name = "DIR")]
    pub misreads: Option<PathBuf>,
}

/// `--rule`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleArg {
    /// The reading's probability under the odometer model (the default).
    Reading,
    /// Every digit sure on its own (the seed's rule); named as in the
    /// config's `decision`.
    #[value(name = "per_digit", alias = "per-digit")]
    PerDigit,
}

impl From<RuleArg> for DecisionRule {
    fn from(r: RuleArg) -> Self {
        match r {
            RuleArg::Reading => DecisionRule::Reading,
            RuleArg::PerDigit => DecisionRule::PerDigit,
        }
    }
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
    // A user's dataset/: each meter's images are its own source, read at
    // its own temperature.
    meter_service::files::sources_by_meter(&mut data, None);
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
    if args.counters {
        return run_counters(&args, &model, &data, &sources);
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

/// `--counters`.
fn run_counters(
    args: &Args,
    model: &DigitModel,
    data: &Dataset,
    sources: &[String],
) -> anyhow::Result<Outcome> {
    let defaults = Plan::default();
    if let Some(p) = args.min_confidence {
        anyhow::ensure!(
            p > 0.0 && p <= 1.0,
            "--min-confidence {p}: must be a probability in (0, 1]"
        );
    }
    let options = CounterEval {
        plan: Plan {
            seed: args.seed.unwrap_or(defaults.seed),
            single_frames: args.singles.unwrap_or(defaults.single_frames),
            histories: args.histories.unwrap_or(defaults.histories),
            history_len: args.len.unwrap_or(defaults.history_len),
            ..defaults
        },
        rule: args.rule.into(),
        max_rate_per_hour: args.max_rate,
        min_confidence: args.min_confidence,
        file_dataset: args.file_dataset.clone(),
    };
    let model = model.clone().with_agreement(args.agreement);
    let report = evaluate_counters(&model, data, sources, &options)?;
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        print_counters(&report);
    }
    let below = report.below(&Floors {
        single_stored: args.min_stored_single,
        history_stored: args.min_stored_history,
        max_wrong: args.max_wrong,
    });
    anyhow::ensure!(
        below.is_empty(),
        "below the required readings: {}",
        below.join(", ")
    );
    Ok(Outcome::Done)
}

fn print_counters(r: &CounterReport) {
    outln!(
        "counters: rule {:?}, seed {}, {} single frames and {} histories of {} frames per meter",
        r.rule,
        r.seed,
        r.singles,
        r.histories,
        r.history_len
    );
    outln!(
        "{:<32} {:<8} {:>6} {:>8} {:>6} {:>8} {:>8}",
        "meter",
        "kind",
        "frames",
        "stored",
        "wrong",
        "unsure",
        "raw ok"
    );
    let row = |name: &str, kind: StreamKind, t: &Tally| {
        let share = |n: usize| 100.0 * n as f64 / t.frames.max(1) as f64;
        let kind = match kind {
            StreamKind::Single => "single",
            StreamKind::History => "history",
        };
        outln!(
            "{name:<32} {kind:<8} {:>6} {:>7.1}% {:>6} {:>7.1}% {:>7.1}%",
            t.frames,
            share(t.stored),
            t.stored_wrong,
            share(t.unsure),
            share(t.raw_right)
        );
    };
    for (meter, kinds) in &r.report.meters {
        for (kind, t) in kinds {
            row(meter, *kind, t);
        }
    }
    for (kind, t) in &r.report.overall {
        row("ALL", *kind, t);
    }
    for (meter, frames) in &r.report.wrong {
        for w in frames {
            outln!(
                "stored wrong: {meter} {:?} counter {} frame {}: {} stored as {}",
                w.kind,
                w.stream,
                w.index,
                w.truth,
                w.stored
            );
        }
    }
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
