//! Opening the configured sinks and the meters' frame sources.

use std::path::PathBuf;

use anyhow::Context;
use meter_sink::mqtt::{MeterInfo, MqttHandle};
use meter_vision::{SourceOptions, StopSignal};

use crate::config::{MeterConfig, ResolvedConfig};
use crate::registry::Registry;
use crate::run::Shard;
use crate::state;
use crate::store::NamedSink;

/// The sinks of a process, with the handles of its MQTT sinks.
#[derive(Default)]
pub struct Sinks {
    /// Every sink, named (`influx_v1-0`).
    pub sinks: Vec<NamedSink>,
    /// The MQTT sinks' commands and model-version settings.
    pub mqtt: Vec<MqttHandle>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sinks.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Sinks").field("sinks", &names).finish()
    }
}

/// The spool folder of a process: one per shard, so processes sharing a
/// config never share a spool.
pub fn spool_root(cfg: &ResolvedConfig, shard: Option<Shard>) -> PathBuf {
    match shard {
        None => cfg.spool_dir.clone(),
        Some(s) => cfg.spool_dir.join(format!("shard{}of{}", s.index, s.count)),
    }
}

/// Opens every configured sink for the readings of `meters`; database and
/// broker sinks sit behind durable spools.
pub fn open_sinks(
    cfg: &ResolvedConfig,
    meters: &[&MeterConfig],
    shard: Option<Shard>,
) -> anyhow::Result<Sinks> {
    let version = format!("v{}", Registry::load(&cfg.models_dir)?.current_version());
    let infos: Vec<MeterInfo> = meters
        .iter()
        .map(|m| MeterInfo {
            name: m.name.clone(),
            unit: m.unit.clone(),
            // An unreadable state is reported when the meter is read.
            last_stored: state::load(&cfg.state_dir, &m.name, m.counter)
                .ok()
                .and_then(|s| s.stored)
                .map(|t| (m.counter.to_units(t.ticks), t.time)),
            model_version: Some(version.clone()),
        })
        .collect();
    let root = spool_root(cfg, shard);
    let mut out = Sinks::default();
    for (i, spec) in cfg.sinks.iter().enumerate() {
        let opened = spec
            .open(i, &cfg.base_dir, &root, &infos)
            .with_context(|| format!("config {}", cfg.path.display()))?;
        out.sinks.push((spec.label(i), opened.sink));
        out.mqtt.extend(opened.mqtt);
    }
    Ok(out)
}

/// How the meters' sources are opened: frames that fail the checks kept
/// in `rejected_dir`, camera requests abandoned when `stop` fires.
pub fn source_options(cfg: &ResolvedConfig, stop: &StopSignal) -> SourceOptions {
    SourceOptions {
        rejected_dir: Some(cfg.rejected_dir.clone()),
        stop: stop.clone(),
        frame_interval: None,
    }
}
