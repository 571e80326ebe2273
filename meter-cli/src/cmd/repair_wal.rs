//! `meter influxdb-repair-wal`: cuts torn entries off InfluxDB 1.x's
//! write-ahead log after a crash, before `influxd` starts again, so that it
//! does not lose the writes it accepts next (see `meter_sink::influxdb_wal`).

use std::path::PathBuf;

use crate::Outcome;

/// Arguments of `meter influxdb-repair-wal`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// InfluxDB's `[data] wal-dir`. Run only while influxd is stopped, e.g.
    /// as `ExecStartPre=` of its systemd unit.
    #[arg(default_value = "/var/lib/influxdb/wal")]
    pub wal_dir: PathBuf,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cuts = meter_sink::influxdb_wal::cut_torn_wal_tails(&args.wal_dir)?;
    if cuts.is_empty() {
        outln!("{}: no torn entries", args.wal_dir.display());
    }
    for cut in &cuts {
        outln!(
            "{}: cut a torn last entry ({} bytes, {} kept)",
            cut.path.display(),
            cut.cut_bytes,
            cut.kept_bytes
        );
    }
    Ok(Outcome::Done)
}
