//! The `meter-camsim` binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn camsim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meter-camsim"));
    c.env("RUST_LOG", "warn");
    c
}

#[test]
fn setup_only_writes_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = camsim()
        .args(["--write-setup"])
        .arg(dir.path())
        .arg("--setup-only")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "meter.toml",
        "layout.json",
        "mark0.png",
        "mark1.png",
        "reference.png",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let missing = tempfile::tempdir().unwrap().path().join("nope");
    for (args, word) in [
        (
            vec!["--fault".to_owned(), "melt".to_owned()],
            "melt".to_owned(),
        ),
        (
            vec!["--fault".to_owned(), "slow:x".to_owned()],
            "slow:x".to_owned(),
        ),
        (
            vec!["--frames".to_owned(), missing.display().to_string()],
            missing.display().to_string(),
        ),
        (
            vec!["--bind".to_owned(), "0.0.0.0".to_owned()],
            "loopback".to_owned(),
        ),
        (
            vec!["--fault-every".to_owned(), "0:slow".to_owned()],
            "0:slow".to_owned(),
        ),
        (
            vec!["--fault-every".to_owned(), "5:melt".to_owned()],
            "melt".to_owned(),
        ),
        (
            vec!["--decimals".to_owned(), "9".to_owned()],
            "decimals".to_owned(),
        ),
    ] {
        let out = camsim().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].starts_with("meter-camsim: error:"), "{err}");
        assert!(lines[0].contains(&word), "{args:?}: {err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn serves_until_its_duration() {
    let mut child = camsim()
        .args([
            "--step-per-frame",
            "0.5",
            "--start",
            "10",
            "--duration",
            "60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_owned();
    let a = crate::get(&format!("{url}/capture")).truth();
    let b = crate::get(&format!("{url}/capture")).truth();
    assert_eq!(
        (a.value_text(), b.value_text()),
        ("10.00".into(), "10.50".into())
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
