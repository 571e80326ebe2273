//! The HTTP sinks against real servers: schema, idempotency, and the 4xx
//! errors (with the data kept in the spool).

use std::time::Duration;

use meter_sink::{InfluxSink, Sink, SinkError, SpoolingSink};
use serde_json::json;

use crate::{reading, rejected, WEEK_START};
use testkit::servers::{Influxd, VictoriaMetrics};

#[test]
fn v1_schema_round_trip_and_replay_is_idempotent() {
    let Some(server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    let mut sink = InfluxSink::v1(&server.url(), "meters").build().unwrap();
    let records = vec![
        reading("house", WEEK_START, 1234.5),
        reading("house", WEEK_START + 60, 1234.9),
        rejected("house", WEEK_START + 120, 1200.0, "value decreased by 34.9"),
    ];
    sink.write(&records).unwrap();
    // A replay (crash between write and acknowledgement) must not double.
    sink.write(&records).unwrap();

    let (columns, rows) = server.rows_f64(
        "meters",
        "SELECT value, raw, rate_per_hour, confidence_min, digit_0, digit_5, meter, unit FROM meter_reading",
    );
    assert_eq!(
        columns,
        [
            "time",
            "value",
            "raw",
            "rate_per_hour",
            "confidence_min",
            "digit_0",
            "digit_5",
            "meter",
            "unit"
        ]
    );
    let digit = |ts: i64, i: i64| meter_core::Tenths::wrapping(ts / 10 + i).index() as f64 / 10.0;
    assert_eq!(
        rows,
        vec![
            vec![
                json!(WEEK_START as f64),
                json!(1234.5),
                json!(1234.5),
                json!(0.5),
                json!(0.93),
                json!(digit(WEEK_START, 0)),
                json!(digit(WEEK_START, 5)),
                json!("house"),
                json!("kWh")
            ],
            vec![
                json!((WEEK_START + 60) as f64),
                json!(1234.9),
                json!(1234.9),
                json!(0.5),
                json!(0.93),
                json!(digit(WEEK_START + 60, 0)),
                json!(digit(WEEK_START + 60, 5)),
                json!("house"),
                json!("kWh")
            ],
        ]
    );
    let (_, events) = server.rows_f64("meters", "SELECT reason, raw, status FROM meter_event");
    assert_eq!(
        events,
        vec![vec![
            json!((WEEK_START + 120) as f64),
            json!("value decreased by 34.9"),
            json!(1200.0),
            json!("rejected")
        ]]
    );
    // Field types: all numbers are floats, so later values never conflict.
    let (_, keys) = server.rows("meters", "SHOW FIELD KEYS FROM meter_reading");
    assert!(keys.iter().all(|k| k[1] == json!("float")), "{keys:?}");
}

#[test]
fn v1_retention_policy_is_honoured() {
    let Some(server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    server.query(
        None,
        "CREATE RETENTION POLICY \"keep\" ON \"meters\" DURATION INF REPLICATION 1",
    );
    let mut sink = InfluxSink::v1(&server.url(), "meters")
        .retention_policy("keep")
        .build()
        .unwrap();
    sink.write(&[reading("house", WEEK_START, 1.0)]).unwrap();
    let (_, in_rp) = server.rows("meters", "SELECT value FROM \"keep\".meter_reading");
    let (_, in_default) = server.rows("meters", "SELECT value FROM \"autogen\".meter_reading");
    assert_eq!((in_rp.len(), in_default.len()), (1, 0));
}

#[test]
fn v1_missing_database_is_a_clear_error_and_data_is_kept() {
    let Some(server) = Influxd::start() else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let influx = InfluxSink::v1(&server.url(), "nosuchdb").build().unwrap();
    let mut sink = SpoolingSink::builder(influx, spool.path()).build().unwrap();
    let records: Vec<_> = (0..5)
        .map(|i| reading("house", WEEK_START + i * 60, 10.0 + i as f64))
        .collect();
    // Accepted (spooled) at once; the refusal comes from the delivery.
    sink.write(&records).unwrap();
    let err = sink.flush().unwrap_err();
    match &err {
        SinkError::DatabaseNotFound {
            target, message, ..
        } => {
            assert_eq!(target, "nosuchdb");
            assert!(message.contains("database not found"), "{message}");
        }
        other => panic!("expected DatabaseNotFound, got {other:?}"),
    }
    assert!(err.to_string().contains("nosuchdb"), "{err}");
    assert!(!err.is_transient());
    assert_eq!(sink.status().pending_records, 5);
    let failing = sink.status().last_error.unwrap();
    assert!(failing.contains("nosuchdb"), "{failing}");
    // Still refused (and kept) on the next flush.
    sink.write(&[reading("house", WEEK_START + 600, 20.0)])
        .unwrap();
    assert!(matches!(
        sink.flush(),
        Err(SinkError::DatabaseNotFound { .. })
    ));
    assert_eq!(sink.status().pending_records, 6);
    drop(sink);

    server.create_database("nosuchdb");
    let influx = InfluxSink::v1(&server.url(), "nosuchdb").build().unwrap();
    let mut sink = SpoolingSink::builder(influx, spool.path()).build().unwrap();
    let status = sink.status();
    assert_eq!(
        status.pending_records as u64 + status.delivered,
        6,
        "spool survives a restart"
    );
    sink.flush().unwrap();
    assert_eq!(sink.status().pending_records, 0);
    let (_, rows) = server.rows("nosuchdb", "SELECT count(value) FROM meter_reading");
    assert_eq!(rows[0][1], json!(6));
}

#[test]
fn v1_wrong_password_is_a_clear_error_and_data_is_kept() {
    let Some(server) = Influxd::start_with_auth() else {
        return;
    };
    server.create_database("meters");
    server.query(None, "CREATE USER meter WITH PASSWORD 'right'");
    server.query(None, "GRANT WRITE ON meters TO meter");
    let spool = tempfile::tempdir().unwrap();
    let records: Vec<_> = (0..3)
        .map(|i| reading("house", WEEK_START + i * 60, 10.0 + i as f64))
        .collect();

    let influx = InfluxSink::v1(&server.url(), "meters")
        .credentials("meter", "wrong")
        .build()
        .unwrap();
    let mut sink = SpoolingSink::builder(influx, spool.path()).build().unwrap();
    sink.write(&records).unwrap();
    let err = sink.flush().unwrap_err();
    assert!(
        matches!(err, SinkError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("credentials") && text.contains("401"),
        "{text}"
    );
    assert!(
        !text.contains("wrong"),
        "the password must not be shown: {text}"
    );
    assert_eq!(sink.status().pending_records, 3);
    drop(sink);

    // No credentials at all: the same clear error.
    let mut bare = InfluxSink::v1(&server.url(), "meters").build().unwrap();
    assert!(matches!(
        bare.write(&records),
        Err(SinkError::Unauthorized { status: 401, .. })
    ));

    let influx = InfluxSink::v1(&server.url(), "meters")
        .credentials("meter", "right")
        .build()
        .unwrap();
    let mut sink = SpoolingSink::builder(influx, spool.path()).build().unwrap();
    sink.flush().unwrap();
    let (_, rows) = server.rows("meters", "SELECT value FROM meter_reading");
    assert_eq!(rows.len(), 3);
}

#[test]
fn v1_bad_line_names_the_conflict_and_data_is_kept() {
    let Some(server) = Influxd::start() else {
        return;
    };
    server.create_database("meters");
    // Someone stored `value` as a string before: InfluxDB refuses floats now.
    // (Same shard as the reading below: 1.x checks types per weekly shard.)
    let other = InfluxSink::v1(&server.url(), "meters").build().unwrap();
    other
        .write_lines(
            format!(
                "meter_reading,meter=house value=\"12\" {}\n",
                (WEEK_START + 30) * 1000
            )
            .as_bytes(),
        )
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let mut sink = SpoolingSink::builder(
        InfluxSink::v1(&server.url(), "meters").build().unwrap(),
        spool.path(),
    )
    .build()
    .unwrap();
    sink.write(&[reading("house", WEEK_START, 13.0)]).unwrap();
    let err = sink.flush().unwrap_err();
    match &err {
        SinkError::BadLine { message, .. } => {
            assert!(message.contains("field type conflict"), "{message}")
        }
        other => panic!("expected BadLine, got {other:?}"),
    }
    assert_eq!(sink.status().pending_records, 1);
}

#[test]
fn v2_write_api_round_trip_on_victoria_metrics() {
    let Some(vm) = VictoriaMetrics::start(None) else {
        return;
    };
    let mut sink = InfluxSink::v2(&vm.url(), "home", "meters", "any-token")
        .build()
        .unwrap();
    let records = vec![
        reading("house", WEEK_START, 1234.5),
        reading("house", WEEK_START + 60, 1234.9),
        rejected("house", WEEK_START + 120, 1200.0, "value decreased"),
    ];
    sink.write(&records).unwrap();
    let series = vm.export(r#"{__name__="meter_reading_value"}"#);
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0]["metric"]["meter"], json!("house"));
    assert_eq!(series[0]["metric"]["unit"], json!("kWh"));
    assert_eq!(series[0]["values"], json!([1234.5, 1234.9]));
    assert_eq!(
        series[0]["timestamps"],
        json!([WEEK_START * 1000, (WEEK_START + 60) * 1000])
    );
    let events = vm.export(r#"{__name__="meter_event_raw"}"#);
    assert_eq!(events[0]["metric"]["status"], json!("rejected"));
}

#[test]
fn v2_bad_token_is_a_clear_error_and_data_is_kept() {
    let Some(vm) = VictoriaMetrics::start(Some("good-token")) else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let records: Vec<_> = (0..4)
        .map(|i| reading("house", WEEK_START + i * 60, 10.0 + i as f64))
        .collect();
    let bad = InfluxSink::v2(&vm.auth_url(), "home", "meters", "bad-token")
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut sink = SpoolingSink::builder(bad, spool.path()).build().unwrap();
    sink.write(&records).unwrap();
    let err = sink.flush().unwrap_err();
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("token"), "{err}");
    assert_eq!(sink.status().pending_records, 4);
    drop(sink);

    let good = InfluxSink::v2(&vm.auth_url(), "home", "meters", "good-token")
        .build()
        .unwrap();
    let mut sink = SpoolingSink::builder(good, spool.path()).build().unwrap();
    sink.flush().unwrap();
    let series = vm.export(r#"{__name__="meter_reading_value"}"#);
    assert_eq!(series[0]["values"], json!([10, 11, 12, 13]));
}

#[test]
fn v1_server_error_is_transient_and_spooled_until_the_server_recovers() {
    // A real 5xx: influxd refuses writes beyond its cache size.
    let Some(mut server) = Influxd::start_with_data_settings("  cache-max-memory-size = 1") else {
        return;
    };
    server.create_database("meters");
    let spool = tempfile::tempdir().unwrap();
    let records: Vec<_> = (0..3)
        .map(|i| reading("house", WEEK_START + i * 60, i as f64))
        .collect();
    let mut direct = InfluxSink::v1(&server.url(), "meters").build().unwrap();
    let err = direct.write(&records).unwrap_err();
    assert!(
        matches!(err, SinkError::ServerError { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(
        err.to_string().contains("cache"),
        "the server's reason is shown: {err}"
    );

    let mut sink = SpoolingSink::builder(
        InfluxSink::v1(&server.url(), "meters").build().unwrap(),
        spool.path(),
    )
    .build()
    .unwrap();
    sink.write(&records)
        .expect("a 5xx is not the caller's problem: spooled");
    assert_eq!(sink.status().pending_records, 3);
    assert!(
        sink.flush().is_err(),
        "flush reports that the data is not delivered yet"
    );
    drop(sink);

    server.reconfigure("");
    let mut sink = SpoolingSink::builder(
        InfluxSink::v1(&server.url(), "meters").build().unwrap(),
        spool.path(),
    )
    .build()
    .unwrap();
    sink.flush().unwrap();
    let (_, rows) = server.rows("meters", "SELECT value FROM meter_reading");
    assert_eq!(rows.len(), 3);
}
