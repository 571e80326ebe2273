//! Shared helpers: running the binary, a simulated meter set up on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use firmware::camsim::{Advance, Frames, Server, SimConfig, SyntheticConfig};

/// The `meter` binary, with a quiet log and no `METER_*` configuration
/// leaking in from the environment.
pub fn meter() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meter"));
    for (k, _) in std::env::vars() {
        if k.starts_with("METER_") && k != "METER_MODEL__PATH" {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

/// Runs `meter ARGS` and returns its output.
pub fn run(args: &[&str]) -> Output {
    meter().args(args).output().expect("the meter binary runs")
}

/// Runs `meter ARGS` with `input` on its standard input (closed after it).
pub fn run_with_input(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = meter()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the meter binary runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("stdin takes the input");
    child.wait_with_output().expect("the meter binary ends")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failed run: exit code 1, one line on stderr that starts with
/// `error:` and contains each of `words`, no panic.
pub fn assert_error(o: &Output, words: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    // Log lines (`[time LEVEL target] ...`) aside, stderr is one line.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('['))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    eprintln!("{}", lines[0]);
    for w in words {
        assert!(lines[0].contains(w), "{w:?} not in {:?}", lines[0]);
    }
}

/// A simulated meter: the simulator and a config file reading it.
pub struct SimMeter {
    /// The running simulator.
    pub server: Server,
    /// The config file.
    pub config: PathBuf,
    /// Its folder (temporary).
    pub dir: tempfile::TempDir,
}

/// Starts the simulator with `synthetic` and writes `meter.toml` for it:
/// the simulator's own `[[meter]]` table, `interval`, `extra` meter keys,
/// state and training folders under the temp dir and a JSON-lines sink.
pub fn sim_meter(synthetic: SyntheticConfig, interval: &str, extra: &str) -> SimMeter {
    let server = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(synthetic)),
        ..SimConfig::default()
    })
    .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let setup = server.write_setup(&dir.path().join("sim")).unwrap();
    let table = std::fs::read_to_string(&setup.config).unwrap();
    let table = table.replace(
        "interval = \"10s\"",
        &format!("interval = {interval:?}\n{extra}"),
    );
    let config = dir.path().join("meter.toml");
    std::fs::write(
        &config,
        format!("{table}\n[[sink]]\ntype = \"jsonl\"\npath = \"readings.jsonl\"\n"),
    )
    .unwrap();
    SimMeter {
        server,
        config,
        dir,
    }
}

/// A deterministic rolling counter: `step` units per frame.
pub fn rolling(start: f64, step: f64, seed: u64) -> SyntheticConfig {
    SyntheticConfig {
        start,
        advance: Advance::PerFrame(step),
        seed,
        ..SyntheticConfig::default()
    }
}

/// A path as text.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
