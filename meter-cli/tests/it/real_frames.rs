//! The whole reading on real camera frames (../shared/data/meter-frames;
//! skipped when absent): each origin's geometry written as our config, then
//! `meter predict` on the frame, against what its rollers show read by eye.
//! These meters' digits are probably among the shipped model's training
//! images (jomjol's collections), so this checks the pipeline on real
//! pictures, not accuracy on unseen meters.

use std::fmt::Write as _;
use std::path::Path;

use crate::helpers::{run, s, stderr, stdout};

struct Case {
    dir: &'static str,
    /// Frames of the same counter state.
    frames: &'static [&'static str],
    rotate: u32,
    /// Mark template file and its top-left corner in the aligned frame.
    marks: &'static [(&'static str, u32, u32)],
    digits: &'static [[u32; 4]],
    /// What the rollers show, as an interval of counter values: a settled
    /// last roller read by eye may sit up to two tenths either side of its
    /// digit; a rolling one anywhere between its two digits.
    by_eye: (f64, f64),
    note: &'static str,
}

const WMSC_MARKS: &[(&str, u32, u32)] = &[
    ("Ref_ZR_x99_y219.jpg", 99, 219),
    ("Ref_m3_x512_y117.jpg", 512, 117),
    ("Ref_x0_x301_y386.jpg", 301, 386),
];
const WMSC_DIGITS: &[[u32; 4]] = &[
    [215, 97, 42, 75],
    [273, 97, 42, 75],
    [332, 97, 42, 75],
    [390, 97, 42, 75],
    [446, 97, 42, 75],
];

const CASES: &[Case] = &[
    Case {
        dir: "wmsc",
        frames: &[
            "SourceImage_2019-09-16_20-08-31__eb46b74.jpg",
            "SourceImage_2019-09-16_20-13-22__ba84625.jpg",
        ],
        rotate: 180,
        marks: WMSC_MARKS,
        digits: WMSC_DIGITS,
        by_eye: (400.8, 401.2),
        note: "00401 (READINGS-by-eye.txt)",
    },
    Case {
        dir: "wmsc",
        frames: &["org.jpg"],
        rotate: 180,
        marks: WMSC_MARKS,
        digits: WMSC_DIGITS,
        by_eye: (452.0, 453.0),
        note: "0045, the last roller between 2 and 3 (read by eye for this test, on alg.jpg)",
    },
    Case {
        dir: "wmic",
        frames: &["org.jpg"],
        rotate: 0,
        marks: &[
            ("Ref_ZR.jpg", 70, 203),
            ("Ref_m3.jpg", 575, 79),
            ("Ref_x0.jpg", 308, 406),
        ],
        digits: &[
            [202, 49, 55, 90],
            [272, 49, 55, 90],
            [346, 49, 55, 90],
            [417, 49, 55, 90],
            [487, 49, 55, 90],
        ],
        by_eye: (391.0, 392.0),
        note: "0039, the last roller from 1 to 2 (the data's README)",
    },
    Case {
        dir: "aoe2020",
        frames: &["reference.jpg"],
        rotate: 0,
        marks: &[("ref0.jpg", 119, 273), ("ref1.jpg", 456, 138)],
        // Its config boxes only the last three of five rollers.
        digits: &[[306, 120, 37, 67], [355, 120, 37, 67], [404, 120, 37, 67]],
        by_eye: (15.8, 16.2),
        note: "00016 (the data's README)",
    },
];

fn config(root: &Path, case: &Case, frame: &str, state: &Path) -> String {
    let dir = root.join(case.dir);
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let marks: Vec<String> = case
        .marks
        .iter()
        .map(|(f, x, y)| format!("{{ image = {:?}, x = {x}, y = {y} }}", path(f)))
        .collect();
    let mut text = String::new();
    writeln!(text, "state_dir = {:?}", s(&state.join("state"))).unwrap();
    writeln!(text, "dataset_dir = {:?}", s(&state.join("dataset"))).unwrap();
    writeln!(text, "[[meter]]\nname = \"real\"").unwrap();
    writeln!(text, "source = {:?}", path(frame)).unwrap();
    writeln!(text, "rotate = {}", case.rotate).unwrap();
    writeln!(text, "marks = [{}]", marks.join(", ")).unwrap();
    writeln!(text, "digits = {:?}", case.digits).unwrap();
    writeln!(text, "decimals = 0").unwrap();
    text
}

#[test]
fn real_frames_read_what_the_rollers_show() {
    let Some(root) = testkit::data::frames_dir() else {
        return;
    };
    let mut wrong = Vec::new();
    for (case, frame) in CASES
        .iter()
        .flat_map(|c| c.frames.iter().map(move |f| (c, *f)))
    {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("meter.toml");
        std::fs::write(&cfg, config(&root, case, frame, tmp.path())).unwrap();
        let o = run(&["predict", "--config", s(&cfg), "--json"]);
        let name = format!("{}/{frame}", case.dir);
        // Exit 0 stored, 2 unsure: either way the rollers were read.
        assert!(
            matches!(o.status.code(), Some(0 | 2)),
            "{name}: {}",
            stderr(&o)
        );
        let r: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        let raw = r["raw"].as_f64().unwrap_or(f64::NAN);
        let (lo, hi) = case.by_eye;
        eprintln!(
            "{name}: read {} ({}, {}); by eye {}",
            r["raw_text"], r["status"], r["reason"], case.note
        );
        if !(lo..=hi).contains(&raw) {
            wrong.push(format!("{name}: read {raw}, by eye {lo}..{hi}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
