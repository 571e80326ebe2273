//! `meter classify`: in a real terminal (tmux) and with piped answers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use meter_synth::{FrameParams, MeterLayout};

use crate::helpers::{run_with_input, s};

/// A meter of synthetic frames on disk: `frames/`, config, mark templates.
pub struct FramesMeter {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub frames: PathBuf,
}

/// Renders `counters.len()` frames of the default synthetic layout (six
/// digits) as JPEGs and writes a config with the layout's marks and boxes.
pub fn frames_meter(counters: &[f64]) -> FramesMeter {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let layout = MeterLayout::default();
    for (i, c) in counters.iter().enumerate() {
        let shot = layout.render(&FrameParams {
            counter: *c,
            rotation_deg: 0.5 * i as f32,
            shift: (2.0, -1.0),
            noise: 3.0,
            seed: i as u64,
            ..Default::default()
        });
        shot.image
            .save(frames.join(format!("frame{i:03}.jpg")))
            .unwrap();
    }
    let setup =
        firmware::camsim::write_setup(&dir.path().join("setup"), &layout, 1, s(&frames), Some(0))
            .unwrap();
    let table = std::fs::read_to_string(&setup.config).unwrap();
    let config = dir.path().join("meter.toml");
    std::fs::write(&config, table).unwrap();
    FramesMeter {
        config,
        frames,
        dir,
    }
}

/// Image files under each label folder: (label, count), sorted.
pub fn label_counts(dataset: &Path) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dataset) {
        for e in rd.flatten() {
            let n = std::fs::read_dir(e.path())
                .unwrap()
                .flatten()
                .filter(|f| !f.file_name().to_string_lossy().starts_with('.'))
                .count();
            if n > 0 {
                out.push((e.file_name().to_string_lossy().into_owned(), n));
            }
        }
    }
    out.sort();
    out
}

fn counts(v: &[(&str, usize)]) -> Vec<(String, usize)> {
    v.iter().map(|(l, n)| (l.to_string(), *n)).collect()
}

#[test]
fn piped_answers_file_crops_and_a_second_run_resumes() {
    let m = frames_meter(&[123.4, 567.8]);
    let run = |input: &str| {
        run_with_input(
            &[
                "classify",
                "--config",
                s(&m.config),
                "--frames",
                s(&m.frames),
            ],
            input,
        )
    };
    // Digit 1: 0, digit 2: 1 (as 1.0), digit 3: 2.7 rolling, skip, undo the
    // skip, 9, then quit.
    let o = run("0\n1\n2.7\ns\nu\n9\nq\n");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("filed 4, skipped 0, undone 1, left 8"),
        "{out}"
    );
    let dataset = m.dir.path().join("dataset");
    assert_eq!(
        label_counts(&dataset),
        counts(&[("0.0", 1), ("1.0", 1), ("2.7", 1), ("9.0", 1)])
    );
    // Resumed: the first four are not asked again; Enter accepts guesses.
    let o = run("\n\nq\n");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("filed 2, skipped 0, undone 0, left 6"),
        "{out}"
    );
    assert!(out.contains("4 answered in earlier sessions"), "{out}");
    let total: usize = label_counts(&dataset).iter().map(|c| c.1).sum();
    assert_eq!(total, 6);
}

struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        c
    }

    fn keys(&self, keys: &[&str]) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", "label"])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok, "send-keys {keys:?}");
    }

    fn screen(&self) -> String {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-e", "-t", "label"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Waits (up to 30 s) until the screen contains `text`.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let plain = self
                    .cmd()
                    .args(["capture-pane", "-p", "-t", "label"])
                    .output()
                    .unwrap();
                panic!(
                    "{text:?} never appeared; screen:\n{}",
                    String::from_utf8_lossy(&plain.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only this test's own server, by its socket.
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[test]
fn tmux_shows_the_picture_and_prompt_files_answers_and_undoes() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup/tmux.sh installs it)");
        return;
    }
    let m = frames_meter(&[123.4, 567.8]);
    let tmux = Tmux {
        socket: m.dir.path().join("tmux.sock"),
    };
    let script = format!(
        "RUST_LOG=warn '{}' classify --config '{}' --frames '{}'; echo EXITED $?; sleep 60",
        env!("CARGO_BIN_EXE_meter"),
        s(&m.config),
        s(&m.frames)
    );
    let ok = tmux
        .cmd()
        .args(["new-session", "-d", "-s", "label", "-x", "120", "-y", "40"])
        .arg(&script)
        .env_remove("TMUX")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tmux new-session");
    let screen = tmux.wait_for("answer>");
    // The digit as a true-colour half-block picture, the guess and the keys.
    assert!(screen.contains("38;2;"), "24-bit colour:\n{screen}");
    assert!(screen.matches('▀').count() > 300, "picture:\n{screen}");
    assert!(screen.contains("guess"), "{screen}");
    assert!(screen.contains("confidence"), "{screen}");
    assert!(screen.contains("frame frame000.jpg digit 1"), "{screen}");
    assert!(screen.contains("progress 0/12"), "{screen}");

    // 3 . 7: rolling; the prompt shows the tenth being typed.
    tmux.keys(&["3", "."]);
    tmux.wait_for("answer> 3._");
    tmux.keys(&["7"]);
    tmux.wait_for("-> 3.7");
    // 5 files #1 as 3.7 and holds 5 for #2; s files it and skips #3.
    tmux.keys(&["5", "s"]);
    tmux.wait_for("digit 3 skipped");
    let dataset = m.dir.path().join("dataset");
    assert_eq!(label_counts(&dataset), counts(&[("3.7", 1), ("5.0", 1)]));
    // u undoes the skip, u again takes #2 out of 5.0.
    tmux.keys(&["u"]);
    tmux.wait_for("undone: skip");
    tmux.keys(&["u"]);
    tmux.wait_for("undone: 5.0");
    assert_eq!(label_counts(&dataset), counts(&[("3.7", 1)]));
    // #2 again as 8; Enter accepts the guesses for the other ten.
    tmux.keys(&["8"]);
    tmux.wait_for("-> 8.0");
    assert_eq!(label_counts(&dataset), counts(&[("3.7", 1)]));
    tmux.keys(&["Enter"; 10]);
    tmux.wait_for("all 12 images answered");
    tmux.keys(&["q"]);
    let end = tmux.wait_for("EXITED");
    assert!(end.contains("EXITED 0"), "{end}");
    assert!(
        end.contains("filed 12, skipped 0, undone 2, left 0"),
        "{end}"
    );
    let filed = label_counts(&dataset);
    assert_eq!(filed.iter().map(|c| c.1).sum::<usize>(), 12, "{filed:?}");
    assert!(filed.contains(&("3.7".to_owned(), 1)), "{filed:?}");
}

#[test]
fn unsure_crops_of_predict_are_labelled_and_moved() {
    let m = frames_meter(&[123.4]);
    // Nothing is ever confident enough: every reading is unsure.
    let text = std::fs::read_to_string(&m.config).unwrap();
    std::fs::write(
        &m.config,
        format!("[model]\nmin_confidence = 0.99999\n\n{text}"),
    )
    .unwrap();
    let frame = m.frames.join("frame000.jpg");
    let o = crate::helpers::run(&["predict", "--config", s(&m.config), "--frame", s(&frame)]);
    assert_eq!(o.status.code(), Some(2), "{}", crate::helpers::stderr(&o));
    let unsure = m.dir.path().join("unsure");
    let queued = || std::fs::read_dir(&unsure).unwrap().flatten().count();
    assert_eq!(queued(), 6, "one crop per digit");
    let o = run_with_input(
        &["classify", "--config", s(&m.config), "--unsure"],
        "0\n1\n2\nq\n",
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("filed 3, skipped 0, undone 0, left 3"),
        "{out}"
    );
    // Moved, not copied: three left in the queue, three in the dataset.
    assert_eq!(queued(), 3);
    assert_eq!(
        label_counts(&m.dir.path().join("dataset")),
        counts(&[("0.0", 1), ("1.0", 1), ("2.0", 1)])
    );
    // The screen showed the crop among its frame's other digits.
    assert!(out.contains("unsure camsim-"), "{out}");
}

#[test]
fn a_missing_frames_folder_is_an_error_naming_it() {
    let m = frames_meter(&[1.0]);
    let missing = m.dir.path().join("nowhere");
    crate::helpers::assert_error(
        &crate::helpers::run(&[
            "classify",
            "--config",
            s(&m.config),
            "--frames",
            s(&missing),
        ]),
        &["nowhere"],
    );
}
