//! The set-up files for a reader of the simulated meter.

use firmware::camsim::{layout_json, SyntheticConfig};
use meter_synth::MeterLayout;

use crate::{get, start};

#[test]
fn write_setup_writes_marks_reference_layout_and_config() {
    let sim = start(SyntheticConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let files = sim.write_setup(&dir.path().join("setup")).unwrap();
    let layout = MeterLayout::default();
    assert_eq!(files.marks.len(), layout.marks.len());
    for (k, path) in files.marks.iter().enumerate() {
        let img = image::open(path).unwrap().to_rgb8();
        assert_eq!(Some(img), layout.mark_template(k), "mark {k}");
    }
    let reference = image::open(&files.reference).unwrap().to_rgb8();
    assert_eq!(reference.dimensions(), (layout.width, layout.height));
    let json = std::fs::read_to_string(&files.layout).unwrap();
    assert_eq!(json.trim(), layout_json(&layout, 1, Some(0)));
    assert_eq!(json.trim(), get(&format!("{}/layout", sim.url())).text());

    let toml_text = std::fs::read_to_string(&files.config).unwrap();
    let v: toml::Value = toml::from_str(&toml_text).unwrap();
    let m = &v["meter"][0];
    assert_eq!(m["source"].as_str(), Some(sim.capture_url().as_str()));
    assert_eq!(m["decimals"].as_integer(), Some(1));
    assert_eq!(m["rotate"].as_integer(), Some(0));
    let digits = m["digits"].as_array().unwrap();
    assert_eq!(digits.len(), 6);
    assert_eq!(digits[0].as_array().unwrap()[0].as_integer(), Some(170));
    let marks = m["marks"].as_array().unwrap();
    assert_eq!(marks[1]["x"].as_integer(), Some(544));
    let mark_path = marks[0]["image"].as_str().unwrap();
    assert!(std::path::Path::new(mark_path).is_absolute());
    assert!(std::path::Path::new(mark_path).exists());
}
