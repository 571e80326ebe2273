//! `meter-camsim`: a host ESP32-CAM simulator serving the CameraWebServer
//! HTTP API (see the `firmware` crate docs) on a loopback port.
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use firmware::camsim::{Advance, FaultKind, FaultSpec, Frames, Server, SimConfig, SyntheticConfig};

/// Serve simulated meter frames (or a folder of frames) over the ESP32-CAM
/// HTTP API: GET /capture, /status, /control, plus /layout and /fault.
/// RUST_LOG=debug logs the true value of every frame served.
#[derive(Debug, Parser)]
#[command(name = "meter-camsim", version)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one (printed on start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Loopback address to bind.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Serve the image files of this folder in name order, looping,
    /// instead of synthetic frames.
    #[arg(long, value_name = "DIR")]
    frames: Option<PathBuf>,
    /// Counter value at the start, meter units.
    #[arg(long, default_value_t = 1234.5)]
    start: f64,
    /// Counter advance in meter units per hour of wall-clock time.
    #[arg(long, default_value_t = 36.0, conflicts_with = "step_per_frame")]
    rate_per_hour: f64,
    /// Advance a fixed step per frame instead (deterministic).
    #[arg(long, value_name = "UNITS")]
    step_per_frame: Option<f64>,
    /// Digits after the decimal point (of the 6 rollers).
    #[arg(long, default_value_t = 1)]
    decimals: u32,
    /// Sensor noise amplitude, 0..255.
    #[arg(long, default_value_t = 4.0)]
    noise: f32,
    /// Largest shift between shots, pixels.
    #[arg(long, default_value_t = 3.0)]
    jitter: f32,
    /// Largest rotation between shots, degrees.
    #[arg(long, default_value_t = 1.0)]
    rotation: f32,
    /// No flash reflection.
    #[arg(long)]
    no_hotspot: bool,
    /// Take digits from photos in DIR/LABEL/, LABEL being 0.0 .. 9.9 (e.g.
    /// ../shared/data/meter-digits).
    #[arg(long, value_name = "DIR")]
    digit_crops: Option<PathBuf>,
    /// Only crops whose file name contains this text.
    #[arg(long, requires = "digit_crops")]
    crop_filter: Option<String>,
    /// Draw the disturbances from N variants and reuse rendered frames
    /// (cheap serving of a slowly turning meter to many readers).
    #[arg(long, value_name = "N")]
    variants: Option<u32>,
    /// Seed of all random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Flash PWM duty at start, 0..=255 (also settable via /control).
    #[arg(long, default_value_t = 160)]
    led_intensity: u8,
    /// Flash warm-up before each grab, ms (the firmware uses 150).
    #[arg(long, default_value_t = 0)]
    flash_warmup_ms: u64,
    /// Deliver frames upside down (sensor vflip + hmirror), as a camera
    /// mounted the wrong way round.
    #[arg(long)]
    upside_down: bool,
    /// Faults for the first captures, in order: KIND or KIND:COUNT with
    /// KIND one of truncate, slow, error500, timeout, drip. Repeatable.
    #[arg(long, value_name = "KIND[:COUNT]")]
    fault: Vec<String>,
    /// A standing fault: every N-th capture fails as KIND (e.g. 10:truncate).
    #[arg(long, value_name = "N:KIND")]
    fault_every: Option<String>,
    /// Write mark templates, reference frame, layout.json and a meter.toml
    /// pointing at this server into DIR before serving.
    #[arg(long, value_name = "DIR")]
    write_setup: Option<PathBuf>,
    /// Exit after --write-setup instead of serving.
    #[arg(long, requires = "write_setup")]
    setup_only: bool,
    /// Stop after this many seconds (default: serve until killed).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
}

fn parse_fault(text: &str) -> anyhow::Result<(FaultSpec, u32)> {
    let (kind, count) = match text.split_once(':') {
        Some((k, c)) => (
            k,
            c.parse::<u32>()
                .with_context(|| format!("--fault {text}: count {c:?} is not a number"))?,
        ),
        None => (text, 1),
    };
    let kind = FaultKind::from_name(kind).with_context(|| {
        format!("--fault {text}: unknown kind {kind:?} (truncate, slow, error500, timeout, drip)")
    })?;
    Ok((kind.into(), count))
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut faults = Vec::new();
    for f in &args.fault {
        let (spec, n) = parse_fault(f)?;
        faults.extend(std::iter::repeat_n(spec, n as usize));
    }
    let fault_every = match &args.fault_every {
        None => None,
        Some(text) => {
            let (n, kind) = text
                .split_once(':')
                .with_context(|| format!("--fault-every {text}: expected N:KIND"))?;
            let n: u32 =
                n.parse().ok().filter(|n| *n > 0).with_context(|| {
                    format!("--fault-every {text}: N must be a positive integer")
                })?;
            let kind = FaultKind::from_name(kind).with_context(|| {
                format!("--fault-every {text}: unknown kind {kind:?} (truncate, slow, error500, timeout, drip)")
            })?;
            Some((n, kind))
        }
    };
    let mut config = SimConfig {
        fault_every,
        addr: SocketAddr::new(args.bind, args.port),
        flash_warmup: Duration::from_millis(args.flash_warmup_ms),
        faults,
        ..SimConfig::default()
    };
    config.settings.led_intensity = args.led_intensity;
    if args.upside_down {
        config.settings.vflip = 1;
        config.settings.hmirror = 1;
    }
    config.source = match &args.frames {
        Some(dir) => Frames::Folder { dir: dir.clone() },
        None => {
            let defaults = SyntheticConfig::default();
            Frames::Synthetic(Box::new(SyntheticConfig {
                decimals: args.decimals,
                start: args.start,
                advance: match args.step_per_frame {
                    Some(s) => Advance::PerFrame(s),
                    None => Advance::PerHour(args.rate_per_hour),
                },
                noise: args.noise,
                jitter_px: args.jitter,
                max_rotation_deg: args.rotation,
                hotspot: if args.no_hotspot {
                    None
                } else {
                    defaults.hotspot
                },
                digit_crops: args.digit_crops.clone(),
                crop_filter: args.crop_filter.clone(),
                seed: args.seed,
                variants: args.variants,
                ..defaults
            }))
        }
    };
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            bail!("--duration {d}: must be a positive number of seconds");
        }
    }
    let server = Server::start(config).context("starting the camera simulator")?;
    if let Some(dir) = &args.write_setup {
        let files = server
            .write_setup(dir)
            .with_context(|| format!("--write-setup {}", dir.display()))?;
        println!("setup written: {}", files.config.display());
        if args.setup_only {
            server.stop();
            return Ok(());
        }
    }
    println!("listening on {}", server.url());
    std::io::stdout().flush().context("writing to stdout")?;
    match args.duration {
        Some(d) => {
            std::thread::sleep(Duration::from_secs_f64(d));
            println!("served {} frames", server.frames_served());
            server.stop();
        }
        None => loop {
            std::thread::park();
        },
    }
    Ok(())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = run() {
        eprintln!("meter-camsim: error: {e:#}");
        std::process::exit(1);
    }
}
