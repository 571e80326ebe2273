//! Evaluates a model on the random validation split that `meter train` held
//! back, i.e. other photos of the meters it trained on. Give the training
//! command's data folders; only images from the first one count (the real
//! photos, not synthetic extras).
//!
//! ```sh
//! cargo run -p meter-model --example random_split_eval -- models/digits.safetensors \
//!     ../shared/data/meter-digits /tmp/synthdata
//! ```
//! The split's seed and held-out sources are the ones the model file records
//! (its training summary); the fraction is the default 5%, as in the shipped
//! model's recorded command.

use std::path::{Path, PathBuf};

use meter_model::{evaluate, split, Dataset, DigitModel, TrainConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: random_split_eval MODEL DATA_DIR...";
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err(usage.into());
    }
    let model = DigitModel::load(Path::new(&args[0]))?;
    let training = model
        .metadata()
        .training
        .clone()
        .ok_or("the model file records no training run, so its split is unknown")?;
    let (seed, holdout) = (training.seed, training.holdout_sources);
    let dirs: Vec<PathBuf> = args[1..].iter().map(PathBuf::from).collect();
    let data = Dataset::load_many(&dirs, model.input_size())?;
    let cfg = TrainConfig::builder()
        .seed(seed)
        .holdout_sources(holdout.clone())
        .build()?;
    let (_, val) = split(&data, &cfg);
    let random = Dataset {
        samples: val
            .iter()
            .map(|&i| &data.samples[i])
            .filter(|s| !holdout.contains(&s.source) && s.path.starts_with(&dirs[0]))
            .cloned()
            .collect(),
        problems: Vec::new(),
    };
    let r = evaluate(&model, &random)?;
    println!(
        "random split (seed {seed}): n {}  exact {:.2}%  within 0.1 {:.2}%  settled digit {}",
        r.n,
        100.0 * r.exact,
        100.0 * r.within_0_1,
        r.settled_digit
            .map_or("-".to_owned(), |s| format!("{:.2}%", 100.0 * s)),
    );
    for c in &r.by_confidence {
        let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.2}%", 100.0 * v));
        println!(
            "  confidence >= {:.2}: keeps {:.2}% ({}), exact {}, within 0.1 {}",
            c.min_confidence,
            100.0 * c.share,
            c.n,
            pct(c.exact),
            pct(c.within_0_1)
        );
    }
    Ok(())
}
