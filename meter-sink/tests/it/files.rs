//! CSV and JSON-lines sinks.

use meter_sink::{CsvSink, JsonLinesSink, Record, Sink, SinkError};

use crate::{reading, rejected, WEEK_START};

#[test]
fn csv_has_one_header_and_one_row_per_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readings.csv");
    let mut sink = CsvSink::create(&path).unwrap();
    sink.write(&[reading("house", WEEK_START, 12.5)]).unwrap();
    drop(sink);
    // Reopened: appends, no second header.
    let mut sink = CsvSink::create(&path).unwrap();
    sink.write(&[rejected(
        "house",
        WEEK_START + 60,
        11.0,
        "went \"down\", by 1.5",
    )])
    .unwrap();
    sink.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let digits = (0..6)
        .map(|i| meter_core::Tenths::wrapping(WEEK_START / 10 + i).to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        text,
        format!(
            "time,meter,unit,status,value,raw,rate_per_hour,confidence_min,digits,reason\n\
             2026-03-02T00:00:00Z,house,kWh,stored,12.5,12.5,0.5,0.93,{digits},\n\
             2026-03-02T00:01:00Z,house,kWh,rejected,,11,,,,\"went \"\"down\"\", by 1.5\"\n"
        )
    );
}

#[test]
fn json_lines_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readings.jsonl");
    let records = vec![
        reading("house", WEEK_START, 12.5),
        rejected("house", WEEK_START + 60, 11.0, "down"),
    ];
    let mut sink = JsonLinesSink::create(&path).unwrap();
    sink.write(&records).unwrap();
    sink.flush().unwrap();
    let back: Vec<Record> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, records);
}

#[test]
fn invalid_records_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readings.jsonl");
    let mut bad = reading("house", WEEK_START + 60, f64::INFINITY);
    bad.meter = "house".into();
    let mut sink = JsonLinesSink::create(&path).unwrap();
    let err = sink
        .write(&[reading("house", WEEK_START, 1.0), bad])
        .unwrap_err();
    assert!(matches!(err, SinkError::InvalidRecord { .. }), "{err:?}");
    assert!(err.to_string().contains("value"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
}

#[test]
fn unwritable_path_is_an_error_naming_it() {
    let err = CsvSink::create("/nonexistent-dir/readings.csv").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent-dir/readings.csv"),
        "{err}"
    );
}
