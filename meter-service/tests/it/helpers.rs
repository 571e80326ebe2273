//! A synthetic meter on disk: frames rendered by meter-synth into a folder,
//! and a config reading them.

use std::path::{Path, PathBuf};

use meter_service::config::ResolvedConfig;
use meter_synth::{FrameParams, MeterLayout};

/// A meter whose frames are in a folder.
pub struct FolderMeter {
    /// Its folder (temporary).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
}

impl FolderMeter {
    /// The config, loaded.
    pub fn load(&self) -> ResolvedConfig {
        ResolvedConfig::load_with_env(&self.config, &Default::default()).unwrap()
    }

    /// The state folder.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

/// Renders one frame per value of `counters` (named in order) and writes a
/// config for meter `name` reading that folder, with `sinks` appended
/// (TOML `[[sink]]` tables) and `extra` top-level keys.
pub fn folder_meter(name: &str, counters: &[f64], extra: &str, sinks: &str) -> FolderMeter {
    let frames: Vec<FrameParams> = counters
        .iter()
        .enumerate()
        .map(|(i, c)| FrameParams {
            counter: *c,
            seed: i as u64,
            ..FrameParams::default()
        })
        .collect();
    folder_meter_of(name, &frames, extra, sinks)
}

/// As [`folder_meter`], with each frame's rendering given.
pub fn folder_meter_of(name: &str, shots: &[FrameParams], extra: &str, sinks: &str) -> FolderMeter {
    let dir = tempfile::tempdir().unwrap();
    let layout = MeterLayout::default();
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for (i, params) in shots.iter().enumerate() {
        let shot = layout.render(params);
        shot.image
            .save(frames.join(format!("f{i:04}.jpg")))
            .unwrap();
    }
    let setup = firmware::camsim::write_setup(
        &dir.path().join("setup"),
        &layout,
        1,
        frames.to_str().unwrap(),
        None,
    )
    .unwrap();
    let table = std::fs::read_to_string(&setup.config)
        .unwrap()
        .replace("name = \"camsim\"", &format!("name = \"{name}\""))
        .replace("interval = \"10s\"", "interval = \"10ms\"");
    let config = dir.path().join("meter.toml");
    std::fs::write(&config, format!("{extra}\n{table}\n{sinks}\n")).unwrap();
    FolderMeter { dir, config }
}

/// Lines of a file (empty when missing).
pub fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}
