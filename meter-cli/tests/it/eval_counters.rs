//! `meter eval --counters` on a folder of synthetic roller digits of two
//! meters (named by the file prefix before `__`): one JSON object with the
//! tallies per meter and kind, seeded, with floors that fail the command.

use std::path::Path;

use meter_synth::CropBank;

use crate::helpers::{run, s, stderr, stdout};

/// `<dir>/<label>/<meter>__<k>.png` for every position of two meters.
fn write_meters(dir: &Path) {
    for (meter, seed) in [("alpha", 3), ("beta", 4)] {
        let bank = CropBank::synthetic((20, 32), 1, seed);
        for i in 0..100u8 {
            let label = meter_core::Tenths::wrapping(i64::from(i));
            let folder = dir.join(label.to_string());
            std::fs::create_dir_all(&folder).unwrap();
            for (k, img) in bank.photos(label).iter().enumerate() {
                img.save(folder.join(format!("{meter}__{k}.png"))).unwrap();
            }
        }
    }
}

#[test]
fn counters_report_readings_per_meter_as_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("digits");
    write_meters(&data);
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "eval",
            "--counters",
            "--data",
            s(&data),
            "--singles",
            "12",
            "--histories",
            "1",
            "--len",
            "10",
        ];
        a.extend_from_slice(extra);
        a
    };
    let o = run(&args(&["--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["rule"], "reading", "{r}");
    assert_eq!(
        (r["seed"].as_u64(), r["singles"].as_u64()),
        (Some(1), Some(12))
    );
    for meter in ["alpha", "beta"] {
        let single = &r["meters"][meter]["single"];
        assert_eq!(single["frames"], 12, "{r}");
        assert_eq!(r["meters"][meter]["history"]["frames"], 10, "{r}");
        let parts: u64 = ["stored", "unsure", "rejected"]
            .iter()
            .map(|k| single[k].as_u64().unwrap())
            .sum();
        assert_eq!(parts, 12, "{single}");
        assert!(single["raw_right"].as_u64().unwrap() >= 10, "{single}");
    }
    assert_eq!(r["overall"]["single"]["frames"], 24, "{r}");
    assert_eq!(r["overall"]["single"]["stored_wrong"], 0, "{r}");
    // Seeded: the same command prints the same object; another seed not.
    assert_eq!(stdout(&run(&args(&["--json"]))), text);
    let other = stdout(&run(&args(&["--json", "--seed", "2"])));
    assert_ne!(other, text);
    // One meter, the per-digit rule, a table.
    let o = run(&args(&["--source", "beta", "--rule", "per_digit"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("rule PerDigit"), "{table}");
    assert!(
        table.contains("beta") && !table.contains("alpha"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("ALL")), "{table}");
    // Floors fail the command, naming what fell short.
    let o = run(&args(&["--min-stored-history", "1.01"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("history frames stored"),
        "{}",
        stderr(&o)
    );
    // The meters' min_confidence: a stricter one stores fewer (the
    // synthetic digits are read surely, but not all at 1.0); a value that
    // is no probability is refused, naming the flag.
    let stored = |extra: &[&'static str]| -> u64 {
        let o = run(&args(&[&["--json"][..], extra].concat()));
        assert!(o.status.success(), "{}", stderr(&o));
        let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        ["single", "history"]
            .iter()
            .map(|k| r["overall"][k]["stored"].as_u64().unwrap())
            .sum()
    };
    let (default, strict) = (stored(&[]), stored(&["--min-confidence", "1.0"]));
    assert!(strict < default, "{strict} vs {default}");
    let o = run(&args(&["--min-confidence", "1.5"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--min-confidence 1.5"),
        "{}",
        stderr(&o)
    );
    // Counter options need --counters.
    let o = run(&["eval", "--data", s(&data), "--singles", "3"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--counters"), "{}", stderr(&o));
}
