//! One meter's reading, composed from the library crates: frame
//! (meter-vision) -> digit images -> predictions (meter-model) -> assembled
//! value and decision (meter-core) -> state, training folders, sinks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use image::RgbImage;
use meter_core::{assemble, decide, Decision, DigitPrediction, Reading, Tenths};
use meter_model::DigitModel;
use meter_sink::{CsvSink, InfluxSink, JsonLinesSink, Record, Sink, SpoolingSink};
use meter_vision::{
    FileSource, FolderOrder, FolderSource, Frame, FrameSource, HttpCamera, Pipeline,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::{MeterConfig, ResolvedConfig, SinkConfig, SourceConfig};
use crate::state;

/// Loads the configured model, or the shipped one.
pub fn load_model(cfg: &ResolvedConfig) -> anyhow::Result<DigitModel> {
    match &cfg.model_path {
        Some(p) => {
            // The model error names the file and its cause already; as a
            // message, not a chain, so the cause is not printed twice.
            DigitModel::load(p)
                .map_err(|e| anyhow::anyhow!("model.path in {}: {e}", cfg.path.display()))
        }
        // Parsed here rather than through `DigitModel::shipped()`, which
        // panics on a bad built-in file: this reports it as an error.
        None => DigitModel::from_bytes(DigitModel::shipped_bytes(), "the built-in model").context(
            "the built-in model (models/digits.safetensors) is unusable; set [model] path",
        ),
    }
}

/// Opens every configured sink; database sinks sit behind a durable spool.
pub fn open_sinks(cfg: &ResolvedConfig) -> anyhow::Result<Vec<(String, Box<dyn Sink + Send>)>> {
    let mut out: Vec<(String, Box<dyn Sink + Send>)> = Vec::new();
    for (i, s) in cfg.sinks.iter().enumerate() {
        let label = s.label(i);
        let ctx = || format!("sink[{i}] ({label})");
        let spool_dir = cfg.spool_dir.join(&label);
        let sink: Box<dyn Sink + Send> = match s {
            SinkConfig::InfluxV1 {
                url,
                database,
                credentials,
                retention_policy,
            } => {
                let mut b = InfluxSink::v1(url, database.clone());
                if let Some((u, p)) = credentials {
                    b = b.credentials(u.clone(), p.clone());
                }
                if let Some(rp) = retention_policy {
                    b = b.retention_policy(rp.clone());
                }
                let influx = b.build().with_context(ctx)?;
                Box::new(
                    SpoolingSink::builder(influx, spool_dir)
                        .build()
                        .with_context(ctx)?,
                )
            }
            SinkConfig::InfluxV2 {
                url,
                org,
                bucket,
                token,
            } => {
                let influx = InfluxSink::v2(url, org.clone(), bucket.clone(), token.clone())
                    .build()
                    .with_context(ctx)?;
                Box::new(
                    SpoolingSink::builder(influx, spool_dir)
                        .build()
                        .with_context(ctx)?,
                )
            }
            SinkConfig::Csv(p) => {
                mkparent(p)?;
                Box::new(CsvSink::create(p).with_context(ctx)?)
            }
            SinkConfig::Jsonl(p) => {
                mkparent(p)?;
                Box::new(JsonLinesSink::create(p).with_context(ctx)?)
            }
        };
        out.push((label, sink));
    }
    Ok(out)
}

fn mkparent(p: &Path) -> anyhow::Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    Ok(())
}

/// Opens the meter's frame source.
pub fn open_source(
    meter: &MeterConfig,
    rejected_dir: &Path,
) -> anyhow::Result<Box<dyn FrameSource + Send>> {
    let rejected = Some(rejected_dir.to_path_buf());
    Ok(match &meter.source {
        SourceConfig::Http(url) => {
            // The simulator's set-up names the capture URL; the client wants the base.
            let base = url.strip_suffix("/capture").unwrap_or(url);
            let cam = HttpCamera::builder(base)
                .rejected_dir(rejected_dir)
                .build()
                .with_context(|| format!("meter {}: source", meter.name))?;
            Box::new(Camera(cam))
        }
        SourceConfig::File(p) => Box::new(Repeat {
            path: p.clone(),
            rejected,
        }),
        SourceConfig::Folder(p) => Box::new(
            FolderSource::new(p, FolderOrder::Name, rejected)
                .with_context(|| format!("meter {}: source", meter.name))?,
        ),
    })
}

/// The camera as an endless source.
struct Camera(HttpCamera);

impl FrameSource for Camera {
    fn next_frame(&mut self) -> Result<Option<Frame>, meter_vision::VisionError> {
        self.0.capture().map(Some)
    }
}

/// A file read afresh on every reading (a camera that writes one file).
struct Repeat {
    path: PathBuf,
    rejected: Option<PathBuf>,
}

impl FrameSource for Repeat {
    fn next_frame(&mut self) -> Result<Option<Frame>, meter_vision::VisionError> {
        FileSource::new(&self.path, self.rejected.clone()).next_frame()
    }
}

/// Files digit images into label folders: deduplicated by content hash,
/// at most `cap` per folder. Shared by all meters of a process.
pub struct ImageFiler {
    dir: PathBuf,
    cap: usize,
    counts: Mutex<HashMap<String, usize>>,
}

impl ImageFiler {
    /// Files into sub-folders of `dir`, at most `cap` images each.
    pub fn new(dir: PathBuf, cap: usize) -> Self {
        Self {
            dir,
            cap,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Saves `img` as `<dir>/<folder>/<prefix><hash>.png` unless the folder
    /// is full or holds the same picture; returns whether it was written.
    pub fn file(&self, folder: &str, prefix: &str, img: &RgbImage) -> anyhow::Result<bool> {
        let dir = self.dir.join(folder);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = match counts.get(folder) {
            Some(c) => *c,
            None => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let n = std::fs::read_dir(&dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .filter(|e| {
                        e.as_ref()
                            .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
                    })
                    .count();
                counts.insert(folder.to_owned(), n);
                n
            }
        };
        if count >= self.cap {
            return Ok(false);
        }
        let hash = crc32fast::hash(img.as_raw());
        let path = dir.join(format!("{prefix}{hash:08x}.png"));
        if path.exists() {
            return Ok(false);
        }
        // Written whole then renamed: a trainer never sees half a file.
        let tmp = dir.join(format!(".{prefix}{hash:08x}.png.tmp"));
        img.save_with_format(&tmp, image::ImageFormat::Png)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        counts.insert(folder.to_owned(), count + 1);
        Ok(true)
    }
}

/// One digit in a report.
#[derive(Debug, Clone, Serialize)]
pub struct DigitReport {
    /// The roller position read, in steps (`3.7`).
    pub value: f32,
    /// The model's confidence.
    pub confidence: f32,
}

/// What one reading gave (the `--json` object and the log line).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Meter name.
    pub meter: String,
    /// Capture time, RFC 3339 UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The stored value; `None` when not stored.
    pub value: Option<f64>,
    /// The assembled reading before plausibility.
    pub raw: f64,
    /// The assembled reading as the counter shows it (`001234.56`).
    pub raw_text: String,
    /// Each digit, most significant first.
    pub digits: Vec<DigitReport>,
    /// `stored`, `unsure` or `rejected`.
    pub status: &'static str,
    /// Why it was not stored, or what is worth knowing about a stored one.
    pub reason: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Change per hour since the previous stored value.
    pub rate_per_hour: Option<f64>,
    /// The full decision.
    #[serde(skip)]
    pub decision: Decision,
}

impl Report {
    /// One structured log line.
    pub fn log_line(&self) -> String {
        let digits: Vec<String> = self
            .digits
            .iter()
            .map(|d| format!("{:.1}@{:.2}", d.value, d.confidence))
            .collect();
        let value = self.value.map_or("-".to_owned(), |v| v.to_string());
        let mut line = format!(
            "time={} meter={} status={} value={value} raw={} digits={}",
            self.time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            self.meter,
            self.status,
            self.raw_text,
            digits.join(",")
        );
        if let Some(r) = &self.reason {
            line.push_str(&format!(" reason={r:?}"));
        }
        line
    }

    /// The record for the sinks.
    pub fn record(&self, reading: &Reading) -> Record {
        let rec = Record::from_decision(
            &self.meter,
            self.time,
            reading,
            &self.decision,
            self.rate_per_hour,
        );
        match &self.unit {
            Some(u) => rec.with_unit(u.clone()),
            None => rec,
        }
    }
}

/// Reads one meter, frame after frame.
pub struct MeterReader {
    meter: MeterConfig,
    pipeline: Pipeline,
    model: DigitModel,
    state_dir: PathBuf,
    dataset: std::sync::Arc<ImageFiler>,
    unsure: std::sync::Arc<ImageFiler>,
    /// Last label filed per digit position: a meter standing still gives
    /// the same picture again and again; only changes are worth filing.
    last_filed: Vec<Option<Tenths>>,
}

impl MeterReader {
    /// Builds the vision pipeline (loading the mark templates).
    pub fn new(
        cfg: &ResolvedConfig,
        meter: &MeterConfig,
        model: DigitModel,
        dataset: std::sync::Arc<ImageFiler>,
        unsure: std::sync::Arc<ImageFiler>,
    ) -> anyhow::Result<Self> {
        let ctx = || format!("meter {}", meter.name);
        let aligner = meter.geometry.aligner(Path::new("/")).with_context(ctx)?;
        let regions = meter.geometry.regions().with_context(ctx)?;
        let (w, h) = model.input_size();
        let pipeline = Pipeline::builder()
            .aligner(aligner)
            .regions(regions)
            .digit_size(w, h)
            .build()
            .with_context(ctx)?;
        Ok(Self {
            meter: meter.clone(),
            pipeline,
            model,
            state_dir: cfg.state_dir.clone(),
            dataset,
            unsure,
            last_filed: vec![None; usize::from(meter.counter.digits())],
        })
    }

    /// Reads the next frames with `model` (a retrained version); refused
    /// when its digit size differs from the pipeline's.
    pub fn set_model(&mut self, model: DigitModel) -> anyhow::Result<()> {
        let (have, got) = (self.model.input_size(), model.input_size());
        anyhow::ensure!(
            have == got,
            "meter {}: the new model reads {}x{} digits, the pipeline cuts {}x{}",
            self.meter.name,
            got.0,
            got.1,
            have.0,
            have.1
        );
        self.model = model;
        Ok(())
    }

    /// The model it reads with.
    #[cfg(test)]
    pub fn model(&self) -> &DigitModel {
        &self.model
    }

    /// The meter's configuration.
    pub fn meter(&self) -> &MeterConfig {
        &self.meter
    }

    /// Reads a frame taken at `time`: predicts, decides, files the crops;
    /// returns the report, the reading, and the meter's next state when it
    /// changed. The caller hands the record to the sinks first and then
    /// [`commit`](Self::commit)s the state, so a reading the sinks refused
    /// is not remembered as stored.
    pub fn read(
        &mut self,
        frame: Frame,
        time: OffsetDateTime,
    ) -> anyhow::Result<(Report, Reading, Option<meter_core::State>)> {
        let name = self.meter.name.clone();
        let name = &name;
        let processed = self
            .pipeline
            .process_image(frame.image)
            .with_context(|| format!("meter {name}: frame {}", frame.origin))?;
        let preds: Vec<DigitPrediction> = self
            .model
            .predict_batch(&processed.digits)
            .with_context(|| format!("meter {name}: model"))?;
        let counter = self.meter.counter;
        let reading = assemble(counter, &preds).with_context(|| format!("meter {name}"))?;
        let state = state::load(&self.state_dir, name, counter)?;
        let (decision, next) = decide(&state, &self.meter.rules, &reading, time)
            .with_context(|| format!("meter {name}"))?;
        let next = (next != state).then_some(next);
        let value = decision.stored_ticks().map(|t| counter.to_units(t));
        let rate_per_hour = match (decision.stored_ticks(), state.stored) {
            (Some(now_ticks), Some(prev)) => {
                let hours = (time - prev.time).as_seconds_f64() / 3600.0;
                let delta = counter.to_units(now_ticks) - counter.to_units(prev.ticks);
                (hours > 0.0).then(|| delta / hours)
            }
            _ => None,
        };
        let reason = match &decision {
            Decision::Stored { note, .. } => note.as_ref().map(|n| n.to_string()),
            Decision::Rejected(r) | Decision::Unsure(r) => Some(r.to_string()),
        };
        self.file_crops(&decision, &reading, &processed.digits, time);
        let report = Report {
            meter: name.clone(),
            time,
            value,
            raw: reading.value(),
            raw_text: reading.to_string(),
            digits: preds
                .iter()
                .map(|p| DigitReport {
                    value: p.tenths.value(),
                    confidence: p.confidence,
                })
                .collect(),
            status: decision.status(),
            reason,
            unit: self.meter.unit.clone(),
            rate_per_hour,
            decision,
        };
        Ok((report, reading, next))
    }

    /// Persists the state [`read`](Self::read) returned.
    pub fn commit(&self, next: Option<meter_core::State>) -> anyhow::Result<()> {
        match next {
            Some(s) => state::save(&self.state_dir, &self.meter.name, &s),
            None => Ok(()),
        }
    }

    /// Unsure readings' crops go to `unsure/` for labelling; the digits of
    /// stored readings that fully agree with the odometer (residual 0,
    /// confident) are filed into `dataset/<label>/`. Filing failures are
    /// logged, not fatal: the reading itself is done.
    fn file_crops(
        &mut self,
        decision: &Decision,
        reading: &Reading,
        crops: &[RgbImage],
        time: OffsetDateTime,
    ) {
        let stamp = time.unix_timestamp();
        let name = self.meter.name.clone();
        let name = &name;
        let result = (|| -> anyhow::Result<()> {
            match decision {
                Decision::Unsure(_) => {
                    for (i, (d, img)) in reading.digits.iter().zip(crops).enumerate() {
                        let prefix = format!("{name}-{stamp}-d{i}-read{}-", d.observed);
                        self.unsure.file("", &prefix, img)?;
                    }
                }
                Decision::Stored { .. } => {
                    for (i, (d, img)) in reading.digits.iter().zip(crops).enumerate() {
                        let worth = d.residual == 0
                            && d.confidence >= self.meter.rules.min_confidence
                            && self.last_filed[i] != Some(d.expected);
                        if worth
                            && self.dataset.file(
                                &d.expected.to_string(),
                                &format!("{name}-"),
                                img,
                            )?
                        {
                            self.last_filed[i] = Some(d.expected);
                        }
                    }
                }
                Decision::Rejected(_) => {}
            }
            Ok(())
        })();
        if let Err(e) = result {
            log::warn!("meter {name}: filing digit images: {e:#}");
        }
    }
}

/// The frame's capture time in UTC.
pub fn capture_time(frame: &Frame) -> OffsetDateTime {
    OffsetDateTime::from(frame.captured_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filer_dedups_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        let filer = ImageFiler::new(dir.path().to_path_buf(), 2);
        let img = |v: u8| RgbImage::from_pixel(4, 4, image::Rgb([v, v, v]));
        assert!(filer.file("3.7", "m-", &img(1)).unwrap());
        assert!(!filer.file("3.7", "m-", &img(1)).unwrap(), "same picture");
        assert!(filer.file("3.7", "m-", &img(2)).unwrap());
        assert!(!filer.file("3.7", "m-", &img(3)).unwrap(), "folder full");
        assert!(filer.file("3.8", "m-", &img(3)).unwrap());
        let n = std::fs::read_dir(dir.path().join("3.7")).unwrap().count();
        assert_eq!(n, 2);
        // A new process counts what is there.
        let again = ImageFiler::new(dir.path().to_path_buf(), 2);
        assert!(!again.file("3.7", "m-", &img(4)).unwrap());
    }
}
