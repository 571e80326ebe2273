//! The model commands: `meter retrain` and `meter model` (promotion only
//! when not worse, numbered versions, rollback), `meter train`'s options and
//! `meter eval`'s JSON.

use std::path::{Path, PathBuf};

use meter_core::Tenths;
use meter_model::{Dataset, DigitModel, TrainConfig};

use crate::helpers::{assert_error, meter, rolling, run, s, sim_meter, stderr, stdout};

/// A user's folder: config and a dataset of synthetic digits (`per_label`
/// images of each whole digit, in varied colours and sizes).
fn user(per_label: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_digits(&dir.path().join("dataset"), per_label);
    let config = dir.path().join("meter.toml");
    std::fs::write(
        &config,
        "[[meter]]\nname = \"house\"\nsource = \"frames\"\ndigits = [[0, 0, 20, 32]]\n",
    )
    .unwrap();
    (dir, config)
}

/// Fills `dataset` with `per_label` synthetic images of each whole digit
/// at the shipped model's input size.
fn write_digits(dataset: &Path, per_label: usize) {
    meter_synth::write_whole_digits(dataset, DigitModel::shipped().input_size(), per_label)
        .unwrap();
}

/// Points `config`'s `[model] path` at `model`.
fn use_model(config: &Path, model: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, format!("[model]\npath = {:?}\n\n{text}", s(model))).unwrap();
}

fn registry(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("models/registry.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A model fine-tuned on `dataset` with every label moved by `shift`
/// digits: 0 makes a model that reads it well, 3 one that reads it wrong.
fn tuned_model(dataset: &Path, shift: i64, out: &Path) {
    let mut data = Dataset::load(dataset, DigitModel::shipped().input_size()).unwrap();
    for s in &mut data.samples {
        s.label = Tenths::wrapping(i64::from(s.label.index()) + 10 * shift);
    }
    let cfg = TrainConfig::builder()
        .init(DigitModel::shipped(), "shipped")
        .epochs(8)
        .batch_size(16)
        .learning_rate(3e-3)
        .validation_fraction(0.0)
        .augment(None)
        .build()
        .unwrap();
    let outcome = meter_model::train(&data, &cfg, &mut |_| {}).unwrap();
    outcome.model.save(out).unwrap();
}

#[test]
fn a_worse_candidate_is_refused_with_the_numbers() {
    let (dir, config) = user(6);
    // The current model reads these digits well (whatever the shipped model
    // makes of synthetic digits); the candidate was taught wrong labels.
    let good = dir.path().join("good.safetensors");
    tuned_model(&dir.path().join("dataset"), 0, &good);
    use_model(&config, &good);
    let bad = dir.path().join("bad.safetensors");
    tuned_model(&dir.path().join("dataset"), 3, &bad);
    let o = run(&["retrain", "--config", s(&config), "--candidate", s(&bad)]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{out}\n{}",
        crate::helpers::stderr(&o)
    );
    assert!(out.contains("refused"), "{out}");
    // Both scores, with their numbers.
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in {out}"))
            .to_owned()
    };
    let exact = |l: &str| -> f64 {
        let after = l.split("exact").nth(1).unwrap().trim_start();
        after.split('%').next().unwrap().trim().parse().unwrap()
    };
    let (cur, cand) = (exact(&line("current")), exact(&line("candidate    :")));
    assert!(cand < cur, "candidate {cand} vs current {cur}: {out}");
    // Nothing promoted; the attempt is remembered as refused.
    let reg = registry(dir.path());
    assert_eq!(reg["versions"].as_array().unwrap().len(), 0);
    assert_eq!(reg["last_attempt"]["promoted"], false);
    assert!(!dir.path().join("models/v0001.safetensors").exists());
    let list = stdout(&run(&["model", "list", "--config", s(&config)]));
    assert!(list.contains("* v0"), "{list}");
    assert!(list.contains("refused"), "{list}");
}

#[test]
fn a_candidate_no_worse_is_promoted_listed_and_rolled_back() {
    let (dir, config) = user(3);
    let same = dir.path().join("same.safetensors");
    DigitModel::shipped().save(&same).unwrap();
    let o = run(&["retrain", "--config", s(&config), "--candidate", s(&same)]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("promoted: v1"), "{out}");
    // The synthetic digits make counters: the reading-level check ran.
    assert!(
        out.contains("reading check: readings composed from the validation images"),
        "{out}"
    );
    assert!(dir.path().join("models/v0001.safetensors").is_file());
    let reg = registry(dir.path());
    assert_eq!(reg["current"], 1);
    assert_eq!(reg["versions"][0]["parent"], 0);
    let list = stdout(&run(&["model", "list", "--config", s(&config)]));
    assert!(list.contains("* v1"), "{list}");
    assert!(list.contains("validation: exact"), "{list}");

    let o = run(&["model", "use", "0", "--config", s(&config)]);
    assert_eq!(o.status.code(), Some(0));
    let list = stdout(&run(&["model", "list", "--config", s(&config)]));
    assert!(list.contains("* v0"), "{list}");
    assert!(list.contains("  v1"), "{list}");
    assert_error(
        &run(&["model", "use", "7", "--config", s(&config)]),
        &["no version 7", "registry.json"],
    );
    // A second promotion is v2, made from v0 (the one in use).
    let o = run(&["retrain", "--config", s(&config), "--candidate", s(&same)]);
    assert!(stdout(&o).contains("promoted: v2"), "{}", stdout(&o));
    assert_eq!(registry(dir.path())["versions"][1]["parent"], 0);
    // Reading commands use the registry's current version: with its file
    // gone, predict fails naming it rather than silently using another model.
    std::fs::remove_file(dir.path().join("models/v0002.safetensors")).unwrap();
    let frame = dir.path().join("dataset/0.0/img0.png");
    assert_error(
        &run(&["predict", "--config", s(&config), "--frame", s(&frame)]),
        &["v0002.safetensors"],
    );
}

/// A current model that stores the dataset's own composed readings wrong is
/// reported, whatever becomes of the candidate.
#[test]
fn a_current_model_storing_wrong_readings_is_reported() {
    let (dir, config) = user(6);
    let bad = dir.path().join("bad.safetensors");
    tuned_model(&dir.path().join("dataset"), 3, &bad);
    // Sure of its wrong readings.
    let model = DigitModel::load(&bad).unwrap();
    let mut meta = model.metadata().clone();
    meta.temperature = 0.1;
    model.with_metadata(meta).unwrap().save(&bad).unwrap();
    use_model(&config, &bad);
    let good = dir.path().join("good.safetensors");
    tuned_model(&dir.path().join("dataset"), 0, &good);
    let o = run(&["retrain", "--config", s(&config), "--candidate", s(&good)]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(matches!(o.status.code(), Some(0 | 2)), "{out}\n{err}");
    let warning = err
        .lines()
        .find(|l| l.contains("readings composed from the dataset's validation digits wrong"))
        .unwrap_or_else(|| panic!("no warning in {err}\n{out}"));
    assert!(
        warning.contains("v0 (base model) stores") && warning.contains("meter classify"),
        "{warning}"
    );
    // The good model reads them right: no warning once it is current.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(s(&bad), s(&good))).unwrap();
    let o = run(&["retrain", "--config", s(&config), "--candidate", s(&good)]);
    assert!(
        !stderr(&o).contains("validation digits wrong"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn retrain_fine_tunes_and_runs_only_when_due() {
    let (dir, config) = user(4);
    // Scheduled: 40 images, threshold 1000: not due, nothing happens.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("[retrain]\nafter_new_images = 1000\n\n{text}"),
    )
    .unwrap();
    let o = run(&["retrain", "--config", s(&config), "--if-due"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(crate::helpers::stderr(&o).contains("no retrain due"));
    assert!(!dir.path().join("models/registry.json").exists());
    // A real (short) fine-tune: trains, evaluates both, decides.
    let kept = dir.path().join("kept.safetensors");
    let o = run(&[
        "retrain",
        "--config",
        s(&config),
        "--epochs",
        "2",
        "--keep-candidate",
        s(&kept),
    ]);
    let out = stdout(&o);
    assert!(matches!(o.status.code(), Some(0 | 2)), "{out}");
    // The candidate is kept for inspection whatever was decided.
    DigitModel::load(&kept).expect("the kept candidate loads");
    assert!(out.contains("current   v0 (base model): exact"), "{out}");
    assert!(out.contains("candidate    : exact"), "{out}");
    // 32 training images: too few to refit the temperature on.
    assert!(
        out.contains("candidate: fine-tuned (blend ") && out.contains("temperature 0.70\n"),
        "{out}"
    );
    let reg = registry(dir.path());
    assert_eq!(reg["last_attempt"]["dataset_images"], 40);
    // With replay images: a fifth of them is held back as a forgetting check.
    let (other, _) = user(5);
    let o = run(&[
        "retrain",
        "--config",
        s(&config),
        "--epochs",
        "1",
        "--replay",
        s(&other.path().join("dataset")),
    ]);
    let out = stdout(&o);
    assert!(matches!(o.status.code(), Some(0 | 2)), "{out}");
    assert!(out.contains("replay check, current  : exact"), "{out}");
    assert!(out.contains("replay check, candidate: exact"), "{out}");
}

#[test]
fn too_few_images_is_a_clear_error() {
    let (dir, config) = user(1);
    assert_error(
        &run(&["retrain", "--config", s(&config)]),
        &["too few", "meter classify", s(&dir.path().join("dataset"))],
    );
}

#[test]
fn run_retrains_in_the_background_when_due() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "200ms", "");
    write_digits(&sim.dir.path().join("dataset"), 3);
    let text = std::fs::read_to_string(&sim.config).unwrap();
    std::fs::write(
        &sim.config,
        format!("{text}\n[retrain]\nafter_new_images = 10\nin_run = true\n"),
    )
    .unwrap();
    let o = meter()
        .env("RUST_LOG", "info")
        .args(["run", "--config", s(&sim.config), "--count", "3"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{}\n{err}", stdout(&o));
    assert_eq!(
        stdout(&o).lines().count(),
        3,
        "three readings: {}",
        stdout(&o)
    );
    // The check at the start found 30 images (10 needed) and the run waited
    // for the retrain to decide before exiting.
    let reg = registry(sim.dir.path());
    let attempt = &reg["last_attempt"];
    assert!(attempt["dataset_images"].as_u64().unwrap() >= 30, "{reg}");
    let promoted = attempt["promoted"].as_bool().unwrap();
    let decision = if promoted { "promoted" } else { "refused" };
    assert!(
        err.contains(&format!("retrain decision={decision}")),
        "{err}"
    );
    assert_eq!(
        sim.dir.path().join("models/v0001.safetensors").exists(),
        promoted
    );

    // Not due again right away (min_interval): a second run leaves the
    // attempt as it was.
    let o = run(&["run", "--config", s(&sim.config), "--count", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(registry(sim.dir.path())["last_attempt"], *attempt);
}

/// Replay images of meters the current model never trained on (the held-out
/// sources its metadata names) are its forgetting check, are not trained on,
/// and stay recorded as held out in the candidate.
#[test]
fn replay_images_of_unseen_meters_are_the_forgetting_check() {
    let (dir, config) = user(4);
    let replay = dir.path().join("elsewhere");
    write_digits(&replay, 3);
    let shipped = DigitModel::shipped();
    let mut meta = shipped.metadata().clone();
    meta.training.as_mut().unwrap().holdout_sources = vec!["elsewhere".into()];
    let base = dir.path().join("base.safetensors");
    shipped.with_metadata(meta).unwrap().save(&base).unwrap();
    use_model(&config, &base);
    let kept = dir.path().join("kept.safetensors");
    let o = meter()
        .env("RUST_LOG", "info")
        .args([
            "retrain",
            "--config",
            s(&config),
            "--epochs",
            "1",
            "--replay",
            s(&replay),
            "--keep-candidate",
            s(&kept),
        ])
        .output()
        .unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(matches!(o.status.code(), Some(0 | 2)), "{out}\n{err}");
    assert!(
        err.contains(
            "forgetting check: 30 images of 1 meter(s) the current model never trained on"
        ),
        "{err}"
    );
    assert!(out.contains("replay check, paired   : exact:"), "{out}");
    let candidate = DigitModel::load(&kept).unwrap();
    let training = candidate.metadata().training.as_ref().unwrap();
    assert_eq!(training.holdout_sources, vec!["elsewhere".to_owned()]);
    // Only the training part of the user's 40 images (the replay has no
    // other images to balance them against): none of the 30.
    assert!(
        (1..40).contains(&training.train_images),
        "{}",
        training.train_images
    );
}

#[test]
fn eval_json_is_one_object_with_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("dataset");
    write_digits(&dataset, 3);
    let o = run(&["eval", "--data", s(&dataset), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["n"], 30, "{r}");
    for key in ["exact", "within_0_1", "settled_digit", "mean_confidence"] {
        let v = r[key].as_f64().unwrap_or_else(|| panic!("{key} in {r}"));
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert_eq!(r["settled_n"], 30);
    assert!(r["us_per_digit"].as_f64().unwrap() > 0.0);
    assert!(r["per_source"].as_object().is_some_and(|m| !m.is_empty()));
    assert!(r["confusions"].is_array());
    // Fewer predictions at each higher confidence level, each counted once.
    let levels = r["by_confidence"].as_array().unwrap();
    assert_eq!(levels.len(), 5, "{r}");
    let mut last = (0.0, 31);
    for l in levels {
        let (level, n) = (
            l["min_confidence"].as_f64().unwrap(),
            l["n"].as_u64().unwrap(),
        );
        assert!(level > last.0 && n <= last.1, "{levels:?}");
        assert!((l["share"].as_f64().unwrap() - n as f64 / 30.0).abs() < 1e-9);
        if n > 0 {
            let within = l["within_0_1"].as_f64().unwrap();
            assert!(within >= l["exact"].as_f64().unwrap(), "{l}");
        }
        last = (level, n);
    }
    // A bar above what it reads fails, naming it.
    let o = run(&[
        "eval",
        "--data",
        s(&dataset),
        "--json",
        "--min-exact",
        "1.01",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("below the required accuracy: exact"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn train_makes_the_shipped_shape_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("dataset");
    write_digits(&dataset, 3);
    let shape = |extra: &[&str]| {
        let out = dir.path().join("m.safetensors");
        let mut args = vec!["train", "--data", s(&dataset), "--epochs", "1"];
        args.extend_from_slice(&["--batch-size", "8", "--threads", "1", "--out", s(&out)]);
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let m = DigitModel::load(&out).unwrap();
        (m.input_size(), m.metadata().architecture.channels)
    };
    let shipped = DigitModel::shipped();
    assert_eq!(
        shape(&[]),
        (
            shipped.input_size(),
            shipped.metadata().architecture.channels
        )
    );
    let args = ["--input-size", "20x32", "--channels", "8,8,16"];
    assert_eq!(shape(&args), ((20, 32), [8, 8, 16]));
}

#[test]
fn train_rejects_label_smoothing_outside_0_to_1() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("dataset");
    write_digits(&dataset, 3);
    let out = dir.path().join("m.safetensors");
    let o = run(&[
        "train",
        "--data",
        s(&dataset),
        "--epochs",
        "1",
        "--label-smoothing",
        "1.5",
        "--out",
        s(&out),
    ]);
    assert_error(&o, &["label_smoothing", "0..1"]);
    assert!(!out.exists(), "no model written");
}
