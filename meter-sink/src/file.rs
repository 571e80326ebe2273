//! File sinks: CSV and JSON lines, appended to.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::SinkError;
use crate::record::{Record, RecordKind};
use crate::Sink;

/// The CSV header, one column per field of the InfluxDB schema; `digits` is
/// the digit values separated by spaces, most significant first.
pub const CSV_HEADER: [&str; 10] = [
    "time",
    "meter",
    "unit",
    "status",
    "value",
    "raw",
    "rate_per_hour",
    "confidence_min",
    "digits",
    "reason",
];

fn open_append(path: &Path) -> Result<(File, bool), SinkError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| SinkError::io("cannot open for appending", path, e))?;
    let empty = file
        .metadata()
        .map_err(|e| SinkError::io("cannot stat", path, e))?
        .len()
        == 0;
    Ok((file, empty))
}

/// Appends readings to a CSV file (header written when the file is new).
///
/// Each [`write`](Sink::write) hands the rows to the OS; [`flush`](Sink::flush)
/// also syncs them to disk.
#[derive(Debug)]
pub struct CsvSink {
    path: PathBuf,
    writer: csv::Writer<File>,
}

impl CsvSink {
    /// Opens (creates) `path` for appending.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path = path.into();
        let (file, empty) = open_append(&path)?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        if empty {
            writer
                .write_record(CSV_HEADER)
                .map_err(|source| SinkError::Csv {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(Self { path, writer })
    }
}

/// Flushes a file sink's buffer and syncs the file: a reading the sink
/// acknowledged survives a power cut.
fn synced(flushed: std::io::Result<()>, file: &File, path: &Path) -> Result<(), SinkError> {
    flushed.map_err(|e| SinkError::io("cannot write to", path, e))?;
    file.sync_data()
        .map_err(|e| SinkError::io("cannot sync", path, e))
}

fn time_text(r: &Record) -> String {
    use time::format_description::well_known::Rfc3339;
    let t = r.captured_at.to_offset(time::UtcOffset::UTC);
    // Whole milliseconds, like the database.
    let t = t.replace_millisecond(t.millisecond()).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| r.timestamp_s().to_string())
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

impl Sink for CsvSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        records.iter().try_for_each(Record::validate)?;
        let csv_err = |source| SinkError::Csv {
            path: self.path.clone(),
            source,
        };
        for r in records {
            // The CSV holds readings; health points are for the database.
            if matches!(r.kind, RecordKind::Health(_)) {
                continue;
            }
            let unit = r.unit.clone().unwrap_or_default();
            let row: [String; 10] = match &r.kind {
                RecordKind::Stored(s) => [
                    time_text(r),
                    r.meter.clone(),
                    unit,
                    "stored".into(),
                    s.value.to_string(),
                    s.raw.to_string(),
                    opt(s.rate_per_hour),
                    s.confidence_min.to_string(),
                    s.digits
                        .iter()
                        .map(|d| d.tenths.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    String::new(),
                ],
                RecordKind::Event(e) => [
                    time_text(r),
                    r.meter.clone(),
                    unit,
                    e.status.as_str().into(),
                    String::new(),
                    opt(e.raw),
                    String::new(),
                    String::new(),
                    String::new(),
                    e.reason.clone(),
                ],
                RecordKind::Health(_) => unreachable!("skipped above"),
            };
            self.writer.write_record(&row).map_err(csv_err)?;
        }
        self.writer
            .flush()
            .map_err(|e| SinkError::io("cannot write to", &self.path, e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        synced(self.writer.flush(), self.writer.get_ref(), &self.path)
    }
}

/// Appends readings to a JSON-lines file, one [`Record`] (its serde form)
/// per line.
#[derive(Debug)]
pub struct JsonLinesSink {
    path: PathBuf,
    writer: BufWriter<File>,
}

impl JsonLinesSink {
    /// Opens (creates) `path` for appending.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path = path.into();
        let (file, _) = open_append(&path)?;
        Ok(Self {
            path,
            writer: BufWriter::new(file),
        })
    }
}

impl Sink for JsonLinesSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        records.iter().try_for_each(Record::validate)?;
        let io_err = |e| SinkError::io("cannot write to", &self.path, e);
        // Health points are for the database's alert rules, not the file
        // of readings.
        for r in records
            .iter()
            .filter(|r| !matches!(r.kind, RecordKind::Health(_)))
        {
            serde_json::to_writer(&mut self.writer, r).map_err(|e| io_err(e.into()))?;
            self.writer.write_all(b"\n").map_err(io_err)?;
        }
        self.writer.flush().map_err(io_err)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        synced(self.writer.flush(), self.writer.get_ref(), &self.path)
    }
}
