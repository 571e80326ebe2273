//! `meter serve`: the web page without reading (see [`meter_web`]). It
//! shows the stored values, the history, the labeller, the model versions
//! and the box editor (which reads a fresh frame from the camera on
//! demand); the live frames and readings are shown when the page runs
//! inside `meter run` (a `[serve]` table in the config).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use meter_service::config::ResolvedConfig;
use meter_service::live::Live;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::Outcome;

/// Arguments of `meter serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file.
    #[arg(long, default_value = "meter.toml")]
    pub config: PathBuf,
    /// Address to listen on (default: `[serve] listen`, else 127.0.0.1:8090).
    /// Beyond this machine a token is required (`[serve] token_env`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// The `[serve]` settings with `--listen` applied.
pub fn settings(cfg: &ResolvedConfig, listen: Option<&str>) -> meter_service::config::ServeConfig {
    let mut serve = cfg.serve.clone().unwrap_or_default();
    if let Some(l) = listen {
        serve.listen = l.to_owned();
    }
    serve
}

/// Runs the command until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cfg = ResolvedConfig::load(&args.config)?;
    let serve = settings(&cfg, args.listen.as_deref());
    let live = Arc::new(Live::new(cfg.meters.iter().map(|m| m.name.as_str())));
    let server = meter_web::Server::start(cfg, &serve, live, None)?;
    outln!("serving {}", server.url());
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    if let Some(sig) = signals.forever().next() {
        log::info!("signal {sig}: stopping the web page");
    }
    server.stop();
    Ok(Outcome::Done)
}
