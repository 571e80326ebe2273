//! The `meter` binary: parses arguments and composes the library crates.
//! Each subcommand lives in its own module under `cmd/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// glibc's malloc gives training's large, short-lived tensors back to the
// kernel and faults them in again (on this machine 1.8 million page faults
// and a third of the run in the kernel for a 3,000-image epoch); mimalloc
// keeps reusing them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` for command output. A closed pipe (`meter eval | head`) ends
/// the process quietly with exit 0, as the default SIGPIPE action would,
/// where `println!` would panic.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::stdout_failed(&e);
        }
    }};
}

mod cmd;
mod render;

/// Read analog utility meters from camera images.
#[derive(Parser, Debug)]
#[command(name = "meter", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the folder layout and a commented config for a meter.
    Prepare(cmd::prepare::Args),
    /// Show the aligned frame with marks and digit boxes, write the crops.
    Roi(cmd::roi::Args),
    /// Label digit images quickly in the terminal.
    Classify(cmd::classify::Args),
    /// Train the digit model.
    Train(cmd::train::Args),
    /// Evaluate a model on labelled digit images.
    Eval(cmd::eval::Args),
    /// Fine-tune on the user's dataset and promote if not worse.
    Retrain(cmd::retrain::Args),
    /// List or select model versions.
    #[command(subcommand)]
    Model(cmd::model::Command),
    /// Read each meter once (cron-friendly).
    Predict(cmd::predict::Args),
    /// Read every meter on its interval until stopped.
    Run(cmd::run::Args),
    /// Serve the web page (overview, history, labelling, box editor).
    Serve(cmd::serve::Args),
    /// Correct a meter's stored value by hand.
    SetValue(cmd::set_value::Args),
    /// After a crash, cut torn entries off InfluxDB 1.x's write-ahead log
    /// (while influxd is stopped), so it cannot lose the next writes.
    #[command(name = "influxdb-repair-wal")]
    InfluxdbRepairWal(cmd::repair_wal::Args),
}

/// What a command decided, mapped to the exit code.
pub enum Outcome {
    /// Everything done (exit 0).
    Done,
    /// Ran fine, but a reading was unsure or rejected (exit 2).
    NotStored,
}

fn run() -> anyhow::Result<Outcome> {
    let cli = Cli::parse();
    match cli.command {
        Command::Prepare(a) => cmd::prepare::run(a),
        Command::Roi(a) => cmd::roi::run(a),
        Command::Classify(a) => cmd::classify::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Retrain(a) => cmd::retrain::run(a),
        Command::Model(c) => cmd::model::run(c),
        Command::Predict(a) => cmd::predict::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::SetValue(a) => cmd::set_value::run(a),
        Command::InfluxdbRepairWal(a) => cmd::repair_wal::run(a),
    }
}

/// Ends the process after a failed write to stdout: quietly when the reader
/// went away, with a message otherwise.
pub(crate) fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(1);
}

fn main() -> ExitCode {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    log::set_max_level(logger.filter());
    // The HTTP client prints URLs and dumps headers at trace: capped, so no
    // password or token reaches a log whatever RUST_LOG says.
    let _ = log::set_logger(Box::leak(Box::new(meter_sink::CapHttpClientLogs(logger))));
    match run() {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NotStored) => ExitCode::from(2),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
