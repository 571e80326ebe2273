//! prepare, set-value, predict and run on the simulator.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::helpers::{meter, rolling, run, s, sim_meter, stderr, stdout};

#[test]
fn prepare_makes_the_layout_and_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("meters");
    let o = run(&["prepare", "--root", s(&root), "--meter", "gas"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [
        "frames",
        "dataset/0.0",
        "dataset/9.9",
        "unsure",
        "rejected",
        "models",
        "state",
    ] {
        assert!(root.join(f).is_dir(), "{f}");
    }
    let text = std::fs::read_to_string(root.join("meter.toml")).unwrap();
    assert!(text.contains(&format!(
        "state_dir = \"{}/state\"",
        root.canonicalize().unwrap().display()
    )));
    assert!(text.contains("name = \"gas\""));
    // Not overwritten by accident.
    let o = run(&["prepare", "--root", s(&root)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--force"));
    // The config is valid: set-value works with it.
    let o = run(&[
        "set-value",
        "--config",
        s(&root.join("meter.toml")),
        "--meter",
        "gas",
        "1234.5",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("gas: stored value set to 1234.5"));
}

#[test]
fn predict_json_has_the_documented_fields() {
    // 13579.4: glyphs any digit model reads confidently (the simulator's
    // bitmap 0 is slashed, unlike a real roller's); the CLI, not the model,
    // is under test here.
    let sim = sim_meter(rolling(13_579.4, 0.0, 3), "1s", "");
    let o = run(&["predict", "--config", s(&sim.config), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["meter"], "camsim");
    assert_eq!(v["status"], "stored");
    assert_eq!(v["value"].as_f64(), Some(13_579.4));
    assert_eq!(v["raw"].as_f64(), Some(13_579.4));
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    let digits = v["digits"].as_array().unwrap();
    assert_eq!(digits.len(), 6);
    assert!(digits[0]["value"].is_number() && digits[0]["confidence"].is_number());
    assert!(v.get("reason").is_some());
    // The sink got it, the state has it, the digits went to the dataset.
    let line = std::fs::read_to_string(sim.dir.path().join("readings.jsonl")).unwrap();
    assert!(line.contains("\"value\":13579.4"), "{line}");
    assert!(sim.dir.path().join("state/camsim.json").is_file());
    let filed = std::fs::read_dir(sim.dir.path().join("dataset"))
        .unwrap()
        .count();
    assert!(filed >= 4, "digits filed into label folders: {filed}");
}

#[test]
fn set_value_then_a_lower_reading_is_rejected_with_exit_2() {
    let sim = sim_meter(rolling(13_579.4, 0.0, 4), "1s", "accept_after = 3");
    let cfg = s(&sim.config);
    let o = run(&["set-value", "--config", cfg, "--meter", "camsim", "20000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["predict", "--config", cfg, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["value"], Value::Null);
    assert_eq!(v["raw"].as_f64(), Some(13_579.4));
    assert_eq!(v["reason"], "value went down from 20000 to 13579.4");
    // No stuck state: the third consistent reading replaces the hand-set value.
    let o = run(&["predict", "--config", cfg, "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["predict", "--config", cfg, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["value"].as_f64(), Some(13_579.4));
    assert!(v["reason"]
        .as_str()
        .unwrap()
        .starts_with("accepted after 3 consistent readings"));
}

#[test]
fn run_stops_cleanly_on_sigterm_and_flushes() {
    let sim = sim_meter(rolling(100.0, 0.01, 5), "200ms", "");
    let mut child = meter()
        .args(["run", "--config", s(&sim.config), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        let l = lines.next().unwrap().unwrap();
        assert!(l.contains("\"meter\":\"camsim\""), "{l}");
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest = lines.count();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let printed = 3 + rest;
    let stored = std::fs::read_to_string(sim.dir.path().join("readings.jsonl")).unwrap();
    assert_eq!(
        stored.lines().count(),
        printed,
        "every reading printed is in the sink"
    );
}

#[test]
fn a_slow_camera_does_not_delay_the_other_meter() {
    use firmware::camsim::{FaultKind, FaultSpec};
    let slow = sim_meter(rolling(100.0, 0.0, 6), "100ms", "");
    let fast = sim_meter(rolling(200.0, 0.0, 7), "100ms", "");
    slow.server.inject(
        FaultSpec {
            kind: FaultKind::Slow,
            delay: Some(std::time::Duration::from_secs(4)),
        },
        100,
    );
    // Two meters in one config: the fast one renamed.
    let slow_text = std::fs::read_to_string(&slow.config).unwrap();
    let fast_text = std::fs::read_to_string(&fast.config).unwrap();
    let fast_table = fast_text
        .split("[[sink]]")
        .next()
        .unwrap()
        .replace("name = \"camsim\"", "name = \"fast\"");
    std::fs::write(&slow.config, format!("{fast_table}\n{slow_text}")).unwrap();
    let o = run(&[
        "run",
        "--config",
        s(&slow.config),
        "--duration",
        "3s",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let fast_n = out
        .lines()
        .filter(|l| l.contains("\"meter\":\"fast\""))
        .count();
    let slow_n = out
        .lines()
        .filter(|l| l.contains("\"meter\":\"camsim\""))
        .count();
    // Its one reading in hand is finished after the stop, not abandoned.
    assert!(slow_n <= 1, "the slow camera answers every 4 s: {slow_n}");
    assert!(fast_n >= 5, "fast meter read {fast_n} times in 3 s");
}

#[test]
fn environment_overrides_the_config() {
    let sim = sim_meter(rolling(100.0, 0.0, 8), "1s", "");
    let elsewhere = sim.dir.path().join("elsewhere");
    let o = meter()
        .args([
            "set-value",
            "--config",
            s(&sim.config),
            "--meter",
            "camsim",
            "42.5",
        ])
        .env("METER_STATE_DIR", &elsewhere)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(elsewhere.join("camsim.json").is_file());
    assert!(!sim.dir.path().join("state/camsim.json").exists());
    // A bad value in the environment names the variable's key.
    let o = meter()
        .args(["predict", "--config", s(&sim.config)])
        .env("METER_MODEL__MIN_CONFIDENCE", "lots")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("min_confidence"), "{}", stderr(&o));
}

/// Regression: `meter ... | head` made `println!` panic on the closed pipe.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("meters");
    let mut child = meter()
        .args(["prepare", "--root", s(&root)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the command writes anything.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        root.join("meter.toml").is_file(),
        "the work itself was done"
    );
}

/// A reading is remembered as stored only once every sink accepted it: a
/// sink that cannot write (a full disk) leaves the state as it was.
#[test]
fn run_commits_the_state_only_after_the_sinks_accepted() {
    let sim = crate::helpers::sim_meter(crate::helpers::rolling(1000.0, 0.1, 3), "10ms", "");
    let text = std::fs::read_to_string(&sim.config).unwrap();
    std::fs::write(
        &sim.config,
        text.replace("path = \"readings.jsonl\"", "path = \"/dev/full\""),
    )
    .unwrap();
    let o = crate::helpers::run(&[
        "run",
        "--config",
        crate::helpers::s(&sim.config),
        "--count",
        "2",
    ]);
    let err = crate::helpers::stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("sink jsonl-0"),
        "the refusal is reported: {err}"
    );
    assert!(
        !sim.dir.path().join("state/camsim.json").exists(),
        "a reading no sink stored was remembered as stored"
    );
}
