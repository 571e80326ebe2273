//! `meter predict` into a real InfluxDB 1.x: the reading arrives; while the
//! database is down readings wait in the spool and arrive, once each, after
//! it is back.

use crate::helpers::{rolling, run, s, sim_meter, stderr, stdout};
use testkit::servers::Influxd;

#[test]
fn readings_reach_influxdb_and_survive_an_outage() {
    let Some(mut db) = Influxd::start() else {
        eprintln!("SKIPPED: no influxd");
        return;
    };
    db.create_database("meters");
    // Glyphs the real-data model reads; see commands.rs.
    let sim = sim_meter(rolling(13_579.4, 0.0, 9), "1s", "");
    let text = std::fs::read_to_string(&sim.config).unwrap();
    std::fs::write(
        &sim.config,
        format!(
            "{text}\n[[sink]]\ntype = \"influx_v1\"\nurl = \"{}\"\ndatabase = \"meters\"\n",
            db.url()
        ),
    )
    .unwrap();
    let predict = || {
        let o = run(&["predict", "--config", s(&sim.config), "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        // Points are per second: one reading a second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    };
    let values = |db: &Influxd| {
        let (_, rows) = db.rows(
            "meters",
            "SELECT value FROM meter_reading WHERE meter = 'camsim'",
        );
        rows.iter()
            .map(|r| r[1].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    predict();
    assert_eq!(values(&db), vec![13_579.4]);
    db.kill();
    predict(); // spooled: the database is away
    predict();
    db.restart();
    predict(); // delivers the spool, then this one
    assert_eq!(values(&db), vec![13_579.4; 4], "every reading once");
    let spool = sim.dir.path().join("state/spool/influx_v1-1");
    assert!(spool.is_dir(), "the spool lives under state_dir");
}

#[test]
fn influxdb_repair_wal_cuts_a_torn_entry_and_names_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("meters/autogen/2");
    std::fs::create_dir_all(&shard).unwrap();
    // One complete write entry, then the header of one a crash cut short.
    let segment = shard.join("_00003.wal");
    std::fs::write(&segment, [1, 0, 0, 0, 2, 7, 7, 1, 0, 0, 0, 9, 7]).unwrap();
    let o = run(&["influxdb-repair-wal", s(dir.path())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "{}: cut a torn last entry (6 bytes, 7 kept)\n",
            segment.display()
        )
    );
    assert_eq!(std::fs::read(&segment).unwrap(), [1, 0, 0, 0, 2, 7, 7]);
    let o = run(&["influxdb-repair-wal", s(dir.path())]);
    assert_eq!(
        stdout(&o),
        format!("{}: no torn entries\n", dir.path().display())
    );
    // Not a directory: a clear error naming it.
    let o = run(&["influxdb-repair-wal", s(&segment)]);
    crate::helpers::assert_error(&o, &["cannot list", "_00003.wal"]);
}
