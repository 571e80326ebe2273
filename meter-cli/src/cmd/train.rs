//! `meter train`: train the digit model on labelled digit folders.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use meter_model::{Dataset, DigitModel, TrainConfig, TrainEvent};

use super::roi::parse_size;
use crate::Outcome;

/// Arguments of `meter train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset folder(s): sub-folders named by label (`N` or `N.M`) or a
    /// `manifest.csv`. Default: $METER_DIGITS_DIR, else ../shared/data/meter-digits.
    #[arg(long = "data", value_name = "DIR")]
    pub data: Vec<PathBuf>,
    /// Fine-tune this model instead of training from scratch.
    #[arg(long, value_name = "MODEL")]
    pub init: Option<PathBuf>,
    /// Maximum epochs.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Random seed (split, shuffling, augmentation, initial weights).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the trained model.
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
    /// A file listing sources (one per line, `#` comments) held out for validation.
    #[arg(long, value_name = "FILE")]
    pub holdout_file: Option<PathBuf>,
    /// A source held out for validation (repeatable).
    #[arg(long = "holdout", value_name = "SOURCE")]
    pub holdout: Vec<String>,
    /// Fraction of the other images drawn at random for validation.
    #[arg(long, default_value_t = 0.05)]
    pub val_fraction: f64,
    /// Stop after this many epochs without improvement.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Peak learning rate (default 3e-3, or 1e-3 with --init).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Probability moved from each label to its two neighbouring tenths
    /// (labellers differ by a tenth on where a digit is settled). Default 0.1.
    #[arg(long, value_name = "EPS")]
    pub label_smoothing: Option<f32>,
    /// Use only this many images (drawn with the seed), e.g. for a quick check.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Train on the images as they are, without augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Keep the last step's weights instead of their moving average.
    #[arg(long)]
    pub no_ema: bool,
    /// Output channels of the three conv blocks of a new model (default: the
    /// shipped model's; `--init` keeps its model's shape). More channels run
    /// slower.
    #[arg(
        long,
        value_name = "A,B,C",
        value_delimiter = ',',
        conflicts_with = "init"
    )]
    pub channels: Option<Vec<usize>>,
    /// Input size of a new model, `WIDTHxHEIGHT` (default: the shipped
    /// model's, 24x40); digit images are resized to it. Larger sees more
    /// detail and runs slower.
    #[arg(long, value_name = "WxH", value_parser = parse_size, conflicts_with = "init")]
    pub input_size: Option<(u32, u32)>,
    /// Compute threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the validation report (JSON) here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// The dataset folders given, or the default one.
pub fn data_dirs(given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    if let Some(dir) = std::env::var_os("METER_DIGITS_DIR") {
        return vec![PathBuf::from(dir)];
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/meter-digits");
    if repo.is_dir() {
        return vec![repo];
    }
    vec![PathBuf::from("../shared/data/meter-digits")]
}

/// Reads a list of sources: one per line, blank lines and `#` comments ignored.
pub fn read_source_list(path: &Path) -> anyhow::Result<Vec<String>> {
    // The library's error names the file.
    meter_model::read_source_list(path).context("reading a source list")
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if let Some(n) = args.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        // candle's CPU kernels size their pools from this variable.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let started = Instant::now();
    let init = args
        .init
        .as_ref()
        .map(|p| DigitModel::load(p).with_context(|| format!("loading --init {}", p.display())))
        .transpose()?;
    // A new model has the shipped model's shape unless told otherwise, so
    // that retraining the shipped recipe needs no shape flags.
    let mut arch = DigitModel::shipped().metadata().architecture.clone();
    if let Some(c) = &args.channels {
        anyhow::ensure!(
            c.len() == 3,
            "--channels takes three numbers (e.g. 16,32,48), got {}",
            c.len()
        );
        arch.channels = [c[0], c[1], c[2]];
    }
    if let Some((w, h)) = args.input_size {
        (arch.width, arch.height) = (w, h);
    }
    let size = init
        .as_ref()
        .map_or((arch.width, arch.height), DigitModel::input_size);
    let mut holdout = args.holdout.clone();
    if let Some(f) = &args.holdout_file {
        holdout.extend(read_source_list(f)?);
    }
    let mut builder = TrainConfig::builder()
        .epochs(args.epochs)
        .seed(args.seed)
        .holdout_sources(holdout.clone())
        .validation_fraction(args.val_fraction)
        .patience(args.patience)
        .batch_size(args.batch_size);
    if let Some(eps) = args.label_smoothing {
        builder = builder.label_smoothing(eps);
    }
    if let Some(lr) = args.lr {
        builder = builder.learning_rate(lr);
    }
    if args.no_augment {
        builder = builder.augment(None);
    }
    if args.no_ema {
        builder = builder.ema_decay(None);
    }
    if args.init.is_none() {
        builder = builder.architecture(arch);
    }
    if let (Some(m), Some(p)) = (init, &args.init) {
        builder = builder.init(m, p.display().to_string());
    }
    let cfg = builder.build()?;
    // Settings are checked above, before the (slow) data load.
    let dirs = data_dirs(&args.data);
    let mut data = Dataset::load_many(&dirs, size)
        .with_context(|| format!("loading training data from {dirs:?}"))?;
    for p in &data.problems {
        log::warn!("skipped: {p}");
    }
    if let Some(limit) = args.limit {
        data.subsample(limit, args.seed);
    }
    eprintln!(
        "loaded {} images from {} source(s) ({} skipped) in {:.1}s",
        data.len(),
        data.sources().len(),
        data.problems.len(),
        started.elapsed().as_secs_f64()
    );
    let known = data.sources();
    for s in &holdout {
        if !known.contains(s.as_str()) {
            log::warn!("held-out source {s:?} has no images in the data");
        }
    }

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ETA {eta} {msg}",
        )?
        .progress_chars("=> "),
    );
    let mut last_val = String::from("val -");
    let mut epochs_total = args.epochs;
    let outcome = meter_model::train(&data, &cfg, &mut |ev| match ev {
        TrainEvent::Started {
            epochs,
            batches_per_epoch,
            train,
            validation,
        } => {
            epochs_total = epochs;
            bar.set_length((epochs * batches_per_epoch) as u64);
            bar.suspend(|| {
                eprintln!(
                    "training on {train} images, validating on {validation}, up to {epochs} epochs"
                )
            });
        }
        TrainEvent::Batch { epoch, loss, .. } => {
            bar.set_prefix(format!("epoch {epoch}/{epochs_total}"));
            bar.set_message(format!("loss {loss:.3} {last_val}"));
            bar.inc(1);
        }
        TrainEvent::Epoch(s) => {
            if let Some(v) = &s.validation {
                last_val = format!("val exact {:.2}%", 100.0 * v.exact);
            }
            let line = format!(
                "epoch {:>2}: loss {:.4}, {}{} ({:.0}s)",
                s.epoch,
                s.train_loss,
                s.validation
                    .as_ref()
                    .map_or("no validation".into(), |v| format!(
                        "val exact {:.2}% within 0.1 {:.2}% settled {}",
                        100.0 * v.exact,
                        100.0 * v.within_0_1,
                        v.settled_digit
                            .map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
                    )),
                if s.improved { " *" } else { "" },
                s.seconds
            );
            // Printed even when the bar is hidden (not a terminal), e.g. in logs.
            bar.suspend(|| eprintln!("{line}"));
        }
        _ => {}
    })?;
    bar.finish_and_clear();
    let mut meta = outcome.model.metadata().clone();
    if let Some(t) = &mut meta.training {
        t.data = dirs.iter().map(|d| d.display().to_string()).collect();
    }
    let model = outcome.model.with_metadata(meta)?;
    model.save(&args.out)?;
    if let (Some(path), Some(report)) = (&args.report, &outcome.validation) {
        std::fs::write(path, serde_json::to_string_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "kept epoch {} of {}{}; wrote {} in {:.0}s",
        outcome.best_epoch,
        outcome.history.len(),
        if outcome.stopped_early {
            " (stopped early)"
        } else {
            ""
        },
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(v) = &outcome.validation {
        eprintln!(
            "validation: n {} exact {:.2}% within 0.1 {:.2}% settled {} temperature {:.2}",
            v.n,
            100.0 * v.exact,
            100.0 * v.within_0_1,
            v.settled_digit
                .map_or("-".into(), |x| format!("{:.2}%", 100.0 * x)),
            model.metadata().temperature
        );
    }
    Ok(Outcome::Done)
}
