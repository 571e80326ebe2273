//! The set-up files for a reader of the simulated meter.

use firmware::camsim::{layout_json, SyntheticConfig};
use meter_synth::MeterLayout;

use crate::{get, mean_abs_diff, start};

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

#[test]
fn a_changed_frame_size_scales_frames_layout_and_marks_together() {
    let sim = start(crate::still_meter(0.0));
    assert_eq!(
        get(&format!("{}/control?var=framesize&val=9", sim.url())).status,
        200
    );
    let v: serde_json::Value =
        serde_json::from_slice(&get(&format!("{}/layout", sim.url())).body).unwrap();
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(800), Some(600))
    );
    let marks: Vec<[u32; 4]> = serde_json::from_value(v["marks"].clone()).unwrap();
    assert_eq!(marks[0], [80, 80, 40, 40], "64 * 1.25");
    let (layout, _) = sim.layout().unwrap();
    assert_eq!(layout.marks, marks);

    let dir = tempfile::tempdir().unwrap();
    let files = sim.write_setup(dir.path()).unwrap();
    let frame = image::load_from_memory(&get(&sim.capture_url()).body)
        .unwrap()
        .to_rgb8();
    assert_eq!(frame.dimensions(), (800, 600));
    for (k, m) in marks.iter().enumerate() {
        let template = image::open(&files.marks[k]).unwrap().to_rgb8();
        assert_eq!(template.dimensions(), (m[2], m[3]));
        let at = |x: u32, y: u32| image::imageops::crop_imm(&frame, x, y, m[2], m[3]).to_image();
        let here = mean_abs_diff(&template, &at(m[0], m[1]));
        let off = mean_abs_diff(&template, &at(m[0] + 5, m[1] + 5));
        assert!(
            here < 8.0 && here * 3.0 < off,
            "mark {k}: {here:.1} vs {off:.1}"
        );
    }
}

#[test]
fn a_layout_of_no_sensor_size_is_served_at_its_own_size() {
    let layout = MeterLayout {
        width: 500,
        height: 400,
        digits: (0..4).map(|i| [100 + i * 50, 150, 40, 64]).collect(),
        marks: vec![[20, 20, 32, 32]],
        ..MeterLayout::default()
    };
    let sim = start(SyntheticConfig {
        layout,
        ..crate::still_meter(0.0)
    });
    let frame = image::load_from_memory(&get(&sim.capture_url()).body).unwrap();
    assert_eq!((frame.width(), frame.height()), (500, 400));
    assert_eq!(sim.settings().framesize, 8, "status unchanged");
}
