//! `meter model list|use`: the numbered versions made by `meter retrain`.

use std::path::PathBuf;

use crate::Outcome;
use meter_service::config::ResolvedConfig;
use meter_service::registry::Registry;

/// Model version management.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List the model versions with their metrics.
    List {
        /// The config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Make version N current (0: the base model), e.g. to roll back.
    Use {
        /// The config file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The version number.
        version: u32,
    },
}

/// Runs the command.
pub fn run(cmd: Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::List { config } => list(&config),
        Command::Use { config, version } => use_version(&config, version),
    }
}

fn list(config: &std::path::Path) -> anyhow::Result<Outcome> {
    let cfg = ResolvedConfig::load(config)?;
    let reg = Registry::load(&cfg.models_dir)?;
    let cur = reg.current_version();
    let mark = |v: u32| if v == cur { '*' } else { ' ' };
    let base = match &cfg.model_path {
        Some(p) => p.display().to_string(),
        None => "the shipped model".to_owned(),
    };
    outln!("{} v0  base: {base}", mark(0));
    for v in &reg.versions {
        let created = v
            .created
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        outln!(
            "{} v{}  {created}  from v{}, {} training images, {:.0} s",
            mark(v.version),
            v.version,
            v.parent,
            v.train_images,
            v.train_seconds
        );
        outln!("        validation: {}", v.score.describe());
        outln!(
            "        v{} then:    {}",
            v.parent,
            v.parent_score.describe()
        );
    }
    if let Some(a) = &reg.last_attempt {
        outln!(
            "last retrain: {} with {} dataset images, {}",
            a.time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            a.dataset_images,
            if a.promoted { "promoted" } else { "refused" }
        );
    }
    Ok(Outcome::Done)
}

fn use_version(config: &std::path::Path, n: u32) -> anyhow::Result<Outcome> {
    let cfg = ResolvedConfig::load(config)?;
    meter_service::registry::use_version(&cfg, n)?;
    outln!("now using v{n}");
    Ok(Outcome::Done)
}
