//! `meter run`: reads every meter on its own interval until stopped (see
//! [`meter_service::Service`]). SIGINT/SIGTERM stop it: each meter finishes
//! the reading in hand and the sinks flush; a second signal exits at once.

use std::path::PathBuf;

use anyhow::Context;
use meter_service::config::{parse_interval, RawInterval, ResolvedConfig};
use meter_service::events::{Event, Subscriber};
use meter_service::{RunOptions, Service, Shard};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::Outcome;

/// Arguments of `meter run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The configuration file.
    #[arg(long, default_value = "meter.toml")]
    pub config: PathBuf,
    /// Print each reading as a JSON object instead of a log line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many readings of each meter (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after this long (`90s`, `5m`).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Read only part of the config's meters: `I/N` (e.g. `2/4`) splits
    /// them among N processes by a hash of their names.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Worker threads (default: one per meter, at most 16).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// Prints each reading on stdout and logs each error.
struct Printer {
    json: bool,
}

impl Subscriber for Printer {
    fn name(&self) -> String {
        "printer".into()
    }

    fn handle(&mut self, event: &Event) -> anyhow::Result<()> {
        match event {
            Event::Reading(r) if self.json => outln!("{}", r.report.to_json()),
            Event::Reading(r) => outln!("{}", r.report.log_line()),
            Event::Error(e) => log::error!("{}", e.message),
            _ => {}
        }
        Ok(())
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cfg = ResolvedConfig::load(&args.config)?;
    let duration = args
        .duration
        .as_ref()
        .map(|d| parse_interval(&RawInterval::Text(d.clone())).context("--duration"))
        .transpose()?;
    if args.workers == Some(0) {
        anyhow::bail!("--workers must be at least 1");
    }
    let cfg_for_web = cfg.clone();
    // One page per config: the first shard serves it.
    let serves = cfg.serve.is_some() && Shard::is_first(args.shard);
    let service = Service::new(
        cfg,
        RunOptions {
            count: args.count,
            duration,
            shard: args.shard,
            workers: args.workers,
            live_without_frames: !serves,
        },
    )?;
    service.subscribe(Box::new(Printer { json: args.json }))?;
    // The web page, when the config has a [serve] table: it reads the live
    // view the service keeps anyway (with each meter's last frame only
    // when served), so serving costs the readings nothing.
    let web = match cfg_for_web.serve.as_ref().filter(|_| serves) {
        Some(serve) => {
            let server = meter_web::Server::start(
                cfg_for_web.clone(),
                serve,
                service.live().clone(),
                Some(service.reconfigure().clone()),
            )?;
            log::info!("web page: {}", server.url());
            Some(server)
        }
        None => None,
    };
    let stop = service.stop_handle();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let signal_handle = signals.handle();
    std::thread::spawn(move || {
        let mut seen = 0;
        for sig in signals.forever() {
            seen += 1;
            if seen > 1 {
                eprintln!("second signal: exiting now");
                std::process::exit(130);
            }
            log::info!("signal {sig}: finishing the readings in hand, then flushing");
            stop.stop();
        }
    });
    let summary = service.run();
    signal_handle.close();
    if let Some(web) = web {
        web.stop();
    }
    let s = summary?;
    log::info!(
        "stopped: {} readings, {} stored, {} unsure, {} rejected, {} errors{}",
        s.readings,
        s.stored,
        s.unsure,
        s.rejected,
        s.errors,
        if s.flushed {
            ""
        } else {
            "; some sink could not flush (spooled records are kept)"
        }
    );
    Ok(Outcome::Done)
}
