//! Issue 17's configuration reproductions: every duration and the mark
//! search bounded at load with an error naming the key and the limit (the
//! old code panicked, or passed values that killed a meter's thread later),
//! and errors in the user's words.

use std::collections::HashMap;
use std::time::Duration;

use meter_service::config::{ResolvedConfig, MAX_INTERVAL};
use meter_vision::MeterGeometry;

pub const GOOD: &str = r#"
[[meter]]
name = "house"
source = "http://127.0.0.1:8080/"
interval = "5m"
marks = [{ image = "marks/a.png", x = 64, y = 64 }]
digits = [[170, 200, 40, 64], [220, 200, 40, 64], [270, 200, 40, 64]]
decimals = 1

[[sink]]
type = "jsonl"
path = "out/readings.jsonl"
"#;

/// Loads `text` as a config file; the error as `{:#}` prints it.
pub fn load(text: &str) -> Result<ResolvedConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meter.toml");
    std::fs::write(&path, text).unwrap();
    ResolvedConfig::load_with_env(&path, &HashMap::new()).map_err(|e| format!("{e:#}"))
}

fn error(text: &str) -> String {
    let e = load(text).expect_err("refused");
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(e.contains("meter.toml"), "names the file: {e}");
    e
}

#[test]
fn huge_intervals_are_refused_naming_the_key_and_the_limit() {
    // Item 2 panicked ("cannot convert float seconds to Duration"); item 3
    // (9.2e18 .. 1.8e19 s) passed and killed the meter's thread.
    let limit = format!("{} days", MAX_INTERVAL.as_secs() / 86_400);
    for value in [
        "\"1e30s\"",
        "1e30",
        "1e19",
        "1.5e19",
        "9.3e18",
        "\"400days\"",
        "inf",
    ] {
        let e = error(&GOOD.replace("\"5m\"", value));
        assert!(e.contains("meter[0].interval"), "{value}: {e}");
        if value != "\"1e30s\"" {
            assert!(e.contains(&limit), "{value}: {e}");
        }
    }
    for (key, table) in [
        ("retrain.min_interval", "[retrain]\nmin_interval"),
        ("retrain.check_every", "[retrain]\ncheck_every"),
    ] {
        let e = error(&format!("{GOOD}\n{table} = 1e19\n"));
        assert!(e.contains(key) && e.contains(&limit), "{e}");
    }
    let e = error(&format!("predict_deadline = 1e30\n{GOOD}"));
    assert!(e.contains("predict_deadline") && e.contains(&limit), "{e}");
    // The limit itself is fine.
    let year = format!("\"{}s\"", MAX_INTERVAL.as_secs());
    let c = load(&GOOD.replace("\"5m\"", &year)).unwrap();
    assert_eq!(c.meters[0].interval, MAX_INTERVAL);
    let c = load(&GOOD.replace("\"5m\"", "0.5")).unwrap();
    assert_eq!(c.meters[0].interval, Duration::from_millis(500));
}

#[test]
fn an_interval_of_the_wrong_type_names_no_internal_type() {
    for value in ["true", "[1, 2]", "{ a = 1 }"] {
        let e = error(&GOOD.replace("\"5m\"", value));
        assert!(e.contains("meter[0].interval"), "{e}");
        assert!(!e.contains("untagged") && !e.contains("Raw"), "{e}");
        assert!(e.contains("\"30s\""), "says what is expected: {e}");
    }
}

#[test]
fn the_mark_search_radius_is_bounded() {
    // Item 4: the search's time grows with the square of the radius.
    let max = MeterGeometry::MAX_SEARCH_RADIUS;
    let e = error(&GOOD.replace("decimals = 1", "decimals = 1\nsearch_radius = 100000"));
    assert!(e.contains("meter[0].search_radius"), "{e}");
    assert!(e.contains(&format!("{max} px")), "{e}");
    let ok = GOOD.replace(
        "decimals = 1",
        &format!("decimals = 1\nsearch_radius = {max}"),
    );
    assert_eq!(load(&ok).unwrap().meters[0].geometry.search_radius, max);
}

#[test]
fn too_many_digit_boxes_are_blamed_on_the_boxes() {
    // Item 8: 200 boxes were blamed on `meter[0].decimals`.
    let boxes: Vec<String> = (0..200)
        .map(|i| format!("[{}, 200, 3, 64]", i * 3))
        .collect();
    let text = GOOD.replace(
        "digits = [[170, 200, 40, 64], [220, 200, 40, 64], [270, 200, 40, 64]]",
        &format!("digits = [{}]", boxes.join(", ")),
    );
    let e = error(&text);
    assert!(e.contains("meter[0].digits"), "{e}");
    assert!(!e.contains("decimals"), "{e}");
    let e = error(&GOOD.replace(
        "digits = [[170, 200, 40, 64], [220, 200, 40, 64], [270, 200, 40, 64]]",
        "counter = { window = [0, 200, 600, 64], count = 20 }",
    ));
    assert!(e.contains("meter[0].counter.count"), "{e}");
    // Decimals still answer for themselves.
    let e = error(&GOOD.replace("decimals = 1", "decimals = 4"));
    assert!(e.contains("meter[0].decimals"), "{e}");
}

#[test]
fn a_state_dir_that_is_a_file_is_said_so() {
    // Item 8: `set-value` said "File exists (os error 17)".
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state");
    std::fs::write(&file, "not a folder").unwrap();
    let cfg = load(GOOD).unwrap();
    let meter = &cfg.meters[0];
    for state_dir in [file.clone(), file.join("below")] {
        let e = meter_service::state::set_value(&state_dir, meter, "12.5").unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("is a file, not a folder"), "{e}");
        assert!(e.contains(&file.display().to_string()), "{e}");
        assert!(!e.contains("os error"), "{e}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");
}
