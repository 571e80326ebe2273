//! `meter predict` into a real InfluxDB 1.x: the reading arrives; while the
//! database is down readings wait in the spool and arrive, once each, after
//! it is back.

use crate::helpers::{rolling, run, s, sim_meter, stderr, stdout};
use crate::influx_server::Influxd;

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
