//! `meter retrain`: fine-tune the current model on the user's dataset and
//! promote the result only if it is not worse (see
//! [`meter_service::retrain`]). Exit code 2 when the candidate is refused.

use std::path::PathBuf;
use std::time::Instant;

use meter_service::config::ResolvedConfig;
use meter_service::registry::Score;
use meter_service::retrain::{
    retrain, version_name, ReadingCheck, ReplayCheck, RetrainOutcome, Settings, OWN_SHARE,
};

use crate::Outcome;

/// Arguments of `meter retrain`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Passes over the training images (default: about 200 optimiser steps,
    /// 1 to 60 epochs).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Random seed (shuffling, augmentation).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Judge this model file instead of training one (e.g. a model trained
    /// elsewhere); promoted under the same rule.
    #[arg(long, value_name = "MODEL")]
    pub candidate: Option<PathBuf>,
    /// Only retrain when the `[retrain]` schedule says enough new images
    /// arrived (for cron); otherwise exit 0 at once.
    #[arg(long)]
    pub if_due: bool,
    /// Compute threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// General labelled images (folders or a manifest, e.g. the data the
    /// shipped model learnt from) mixed into training so that the model
    /// does not forget other meters; never used for validation.
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,
    /// How many images to draw from --replay (seeded).
    #[arg(long, default_value_t = 8000)]
    pub replay_count: usize,
    /// Blend weight of the fine-tuned weights (1 = the fine-tuned model
    /// alone, 0.25 = a quarter of the way from the current model) instead of
    /// the best of 1, 0.75, 0.5 and 0.25 on the validation images.
    #[arg(long, value_name = "ALPHA", value_parser = parse_blend)]
    pub blend: Option<f32>,
    /// With --replay: the share of the dataset's own images in what
    /// fine-tuning sees (they are repeated to reach it). Higher learns the
    /// meter faster and moves the readings of other meters more.
    #[arg(long, value_name = "FRACTION", default_value_t = OWN_SHARE, value_parser = parse_share)]
    pub own_share: f32,
    /// Also write the candidate here, promoted or not (to inspect a refused one).
    #[arg(long, value_name = "MODEL")]
    pub keep_candidate: Option<PathBuf>,
}

fn parse_share(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(a) if a > 0.0 && a < 1.0 => Ok(a),
        Ok(a) => Err(format!("{a} is not in (0, 1)")),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_blend(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(a) if a > 0.0 && a <= 1.0 => Ok(a),
        Ok(a) => Err(format!("{a} is not in (0, 1]")),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if let Some(n) = args.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let cfg = ResolvedConfig::load(&args.config)?;
    let settings = Settings {
        epochs: args.epochs,
        lr: args.lr,
        seed: args.seed,
        candidate: args.candidate.clone(),
        replay: args.replay.clone(),
        replay_count: args.replay_count,
        blend: args.blend,
        keep_candidate: args.keep_candidate.clone(),
        own_share: args.own_share,
    };
    let started = Instant::now();
    let scores = |parent: u32,
                  current: &Score,
                  candidate: &Score,
                  general: &Option<ReplayCheck>,
                  readings: &Option<ReadingCheck>| {
        outln!("current   {}: {}", version_name(parent), current.describe());
        outln!("candidate    : {}", candidate.describe());
        if let Some(g) = general {
            outln!("replay check, current  : {}", g.current.describe());
            outln!("replay check, candidate: {}", g.candidate.describe());
            outln!("replay check, paired   : {}", g.describe());
        }
        match readings {
            Some(r) => outln!("reading check: {}", r.describe()),
            None => outln!("reading check: the validation images cannot make a counter"),
        }
    };
    match retrain(&cfg, &settings, args.if_due)? {
        RetrainOutcome::NotDue(why) => {
            eprintln!("no retrain due ({why})");
            Ok(Outcome::Done)
        }
        RetrainOutcome::Refused {
            made,
            parent,
            current,
            candidate,
            general,
            readings,
            why,
        } => {
            outln!("candidate: {made}");
            scores(parent, &current, &candidate, &general, &readings);
            outln!(
                "refused: the candidate is worse than {} {why}; keeping {}",
                version_name(parent),
                version_name(parent)
            );
            Ok(Outcome::NotStored)
        }
        RetrainOutcome::Promoted {
            made,
            version,
            path,
            parent,
            current,
            candidate,
            general,
            readings,
        } => {
            outln!("candidate: {made}");
            scores(parent, &current, &candidate, &general, &readings);
            outln!(
                "promoted: v{version} ({}) is now current ({:.0} s); `meter model use {parent}` rolls back",
                path.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(Outcome::Done)
        }
    }
}
