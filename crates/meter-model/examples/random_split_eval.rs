//! Evaluates a model on the random validation split that `meter train` held
//! back (the same seed, holdout sources and data folders as the training
//! command), i.e. other photos of the meters it trained on. Only images from
//! the first data folder count (the real photos, not synthetic extras).
//!
//! ```sh
//! cargo run -p meter-model --example random_split_eval -- models/digits.safetensors \
//!     models/validation-sources.txt ../shared/data/meter-digits /tmp/synthdata
//! ```
//! The split's seed is the one the model file records (its training summary);
//! the fraction is the default 5%, as in the shipped model's recorded command.

use std::path::{Path, PathBuf};

use meter_model::{evaluate, read_source_list, split, Dataset, DigitModel, TrainConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: random_split_eval MODEL HOLDOUT_FILE DATA_DIR...";
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err(usage.into());
    }
    let model = DigitModel::load(Path::new(&args[0]))?;
    let seed = model
        .metadata()
        .training
        .as_ref()
        .ok_or("the model file records no training run, so its split is unknown")?
        .seed;
    let holdout = read_source_list(Path::new(&args[1]))?;
    let dirs: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
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
    Ok(())
}
