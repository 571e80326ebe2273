//! Bad input: each a one-line error naming the cause, exit code 1, no
//! panic, and nothing lost (the stored state is untouched).

use crate::helpers::{assert_error, rolling, run, s, sim_meter, stdout};

#[test]
fn missing_config() {
    let o = run(&["predict", "--config", "/nonexistent/meter.toml"]);
    assert_error(&o, &["/nonexistent/meter.toml", "No such file"]);
}

#[test]
fn malformed_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("meter.toml");
    std::fs::write(&p, "[[meter]\nname = \"x\"\n").unwrap();
    let o = run(&["predict", "--config", s(&p)]);
    assert_error(&o, &["meter.toml"]);
}

#[test]
fn unknown_key() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "1s", "colour = \"red\"");
    let o = run(&["predict", "--config", s(&sim.config)]);
    assert_error(&o, &["meter.toml", "colour"]);
}

#[test]
fn invalid_value_names_the_key() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "1s", "accept_after = 1");
    let o = run(&["predict", "--config", s(&sim.config)]);
    assert_error(&o, &["meter.toml", "meter[0].accept_after"]);
}

#[test]
fn missing_model_file() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "1s", "");
    let text = std::fs::read_to_string(&sim.config).unwrap();
    std::fs::write(
        &sim.config,
        format!("[model]\npath = \"no-such-model.safetensors\"\n{text}"),
    )
    .unwrap();
    let o = run(&["predict", "--config", s(&sim.config)]);
    assert_error(&o, &["no-such-model.safetensors", "model.path"]);
}

#[test]
fn unreachable_camera_loses_nothing() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "1s", "");
    let o = run(&[
        "set-value",
        "--config",
        s(&sim.config),
        "--meter",
        "camsim",
        "99.5",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let state_file = sim.dir.path().join("state/camsim.json");
    let before = std::fs::read(&state_file).unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    let text = std::fs::read_to_string(&sim.config).unwrap();
    let url = sim.server.url();
    std::fs::write(
        &sim.config,
        text.replace(url.as_str(), "http://127.0.0.1:9"),
    )
    .unwrap();
    let o = run(&["predict", "--config", s(&sim.config)]);
    assert_error(&o, &["camsim", "http://127.0.0.1:9"]);
    assert_eq!(
        std::fs::read(&state_file).unwrap(),
        before,
        "state untouched"
    );
    let o = run(&["run", "--config", s(&sim.config), "--count", "2"]);
    assert_eq!(o.status.code(), Some(0), "run keeps going: {}", stdout(&o));
    assert_eq!(
        std::fs::read(&state_file).unwrap(),
        before,
        "state untouched"
    );
}

#[test]
fn wrong_size_frame() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "1s", "");
    // A sound JPEG of a textured scene, but a quarter of the expected size:
    // the marks and digit boxes lie outside it.
    let small = sim.dir.path().join("small.jpg");
    let img = image::RgbImage::from_fn(160, 120, |x, y| {
        let v = ((x * 7 + y * 13) % 200) as u8 + 20;
        image::Rgb([v, v, v])
    });
    img.save(&small).unwrap();
    let o = run(&["predict", "--config", s(&sim.config), "--frame", s(&small)]);
    assert_error(&o, &["camsim", "small.jpg"]);
    assert!(!sim.dir.path().join("state/camsim.json").exists());
}

#[test]
fn truncated_frame_is_kept_in_rejected() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "1s", "");
    let frame = sim.server.render_frame(0).unwrap();
    let cut = sim.dir.path().join("cut.jpg");
    std::fs::write(&cut, &frame.jpeg[..frame.jpeg.len() / 2]).unwrap();
    let o = run(&["predict", "--config", s(&sim.config), "--frame", s(&cut)]);
    assert_error(&o, &["cut.jpg"]);
    let kept = std::fs::read_dir(sim.dir.path().join("rejected"))
        .unwrap()
        .count();
    assert_eq!(kept, 1, "the bad frame is kept for inspection");
}

#[test]
fn unknown_meter_and_bad_values() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "1s", "");
    let o = run(&["predict", "--config", s(&sim.config), "--meter", "garage"]);
    assert_error(&o, &["garage", "camsim"]);
    let o = run(&[
        "set-value",
        "--config",
        s(&sim.config),
        "--meter",
        "camsim",
        "12.345",
    ]);
    assert_error(&o, &["12.345"]);
    let o = run(&[
        "set-value",
        "--config",
        s(&sim.config),
        "--meter",
        "camsim",
        "-5",
    ]);
    assert_error(&o, &["-5"]);
}

#[test]
fn predict_from_a_folder_reads_its_newest_frame() {
    let sim = sim_meter(rolling(100.0, 0.0, 1), "1s", "");
    let frames = sim.dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let good = sim.server.render_frame(0).unwrap().jpeg;
    std::fs::write(frames.join("b-old.jpg"), &good).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Newest by time (not by name): a truncated one, which must be the one read.
    std::fs::write(frames.join("a-new.jpg"), &good[..good.len() / 2]).unwrap();
    let text = std::fs::read_to_string(&sim.config).unwrap();
    let url = sim.server.capture_url();
    std::fs::write(&sim.config, text.replace(url.as_str(), s(&frames))).unwrap();
    let o = run(&["predict", "--config", s(&sim.config)]);
    assert_error(&o, &["a-new.jpg"]);
}

#[test]
fn a_sink_that_cannot_write_leaves_the_state_alone() {
    let sim = sim_meter(rolling(13_579.4, 0.0, 1), "1s", "");
    let o = run(&[
        "set-value",
        "--config",
        s(&sim.config),
        "--meter",
        "camsim",
        "13000",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let state_file = sim.dir.path().join("state/camsim.json");
    let before = std::fs::read(&state_file).unwrap();
    // A disk that is full: every write fails (ENOSPC).
    let text = std::fs::read_to_string(&sim.config).unwrap();
    std::fs::write(
        &sim.config,
        text.replace("path = \"readings.jsonl\"", "path = \"/dev/full\""),
    )
    .unwrap();
    let o = run(&["predict", "--config", s(&sim.config)]);
    assert_error(&o, &["sink", "/dev/full"]);
    assert_eq!(
        std::fs::read(&state_file).unwrap(),
        before,
        "a reading no sink took is not remembered as stored"
    );
}
