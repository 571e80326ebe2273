//! The reading-level evaluation (`meter eval --counters`): what a user gets
//! from a meter, measured on labelled digits.
//!
//! Counters of 5 to 8 rollers are composed from one meter's (one source's)
//! labelled photos at a time by [`meter_synth::Plan`] (odometer-consistent,
//! biased towards carries in progress), rendered as frames and read through
//! exactly the path of `meter predict`: JPEG checks, the meter's
//! [`MeterReader`] (tracker, crops, model, the decision with the stored
//! crops of unmoved rollers) and [`Store::read_and_store`] (no sinks), the
//! state persisted in a scratch folder. A single frame is read by a fresh
//! reader with no state, as `meter predict` reads one; a history is read
//! in order by one reader, the state kept, as `meter run` keeps it.
//!
//! The result is a [`meter_synth::Report`]: per meter and overall, per kind
//! (single frames, histories), frames stored, stored but wrong (more than
//! one tick off), unsure, and raw right (the assembled reading within one
//! tick, before the decision).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use image::RgbImage;
use meter_core::{DecisionRule, Rules};
use meter_model::{Dataset, DigitModel};
use meter_synth::{evaluate, CropBank, MeterLayout, Outcome, Stream};
use meter_vision::{FileSource, FrameSource, MarkSpec, MeterGeometry, SourceSpec};
use serde::Serialize;

use crate::config::{defaults, MeterConfig, ResolvedConfig};
use crate::events::Bus;
use crate::reader::{Filers, MeterReader};
use crate::report::Status;
use crate::store::Store;

pub use meter_synth::{Plan, Report, StreamKind, Tally, WrongFrame};

/// JPEG quality of the composed frames (a camera's usual setting).
const JPEG_QUALITY: u8 = 90;

/// How to evaluate.
#[derive(Debug, Clone)]
pub struct CounterEval {
    /// What to compose (seed, counts, carry bias).
    pub plan: Plan,
    /// The decision rule the meters are configured with.
    pub rule: DecisionRule,
    /// `max_rate_per_hour` of the meters (none: only the monotonic veto).
    pub max_rate_per_hour: Option<f64>,
    /// `min_confidence` of the meters (none: the default).
    pub min_confidence: Option<f32>,
    /// File the digits of stored readings here, as `meter run` files them
    /// into `dataset_dir` (none: nothing is filed).
    pub file_dataset: Option<PathBuf>,
}

impl Default for CounterEval {
    /// [`Plan::default`], the reading rule, no rate limit, no filing.
    fn default() -> Self {
        Self {
            plan: Plan::default(),
            rule: DecisionRule::default(),
            max_rate_per_hour: None,
            min_confidence: None,
            file_dataset: None,
        }
    }
}

/// The evaluation's result: the settings and the tallies.
#[derive(Debug, Clone, Serialize)]
pub struct CounterReport {
    /// The decision rule.
    pub rule: DecisionRule,
    /// The seed of every draw.
    pub seed: u64,
    /// Single frames per meter.
    pub singles: usize,
    /// Histories per meter.
    pub histories: usize,
    /// Frames per history.
    pub history_len: usize,
    /// The tallies.
    #[serde(flatten)]
    pub report: Report,
}

/// Least shares stored and most frames stored wrong (a CI check).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Floors {
    /// Least share of single frames stored.
    pub single_stored: Option<f64>,
    /// Least share of history frames stored.
    pub history_stored: Option<f64>,
    /// Most frames stored wrong, of both kinds.
    pub max_wrong: Option<usize>,
}

impl CounterReport {
    /// Both kinds together.
    pub fn total(&self, kind: StreamKind) -> Tally {
        self.report.overall.get(&kind).copied().unwrap_or_default()
    }

    /// What falls short of `floors`, one phrase each (empty: nothing).
    pub fn below(&self, floors: &Floors) -> Vec<String> {
        let (s, h) = (
            self.total(StreamKind::Single),
            self.total(StreamKind::History),
        );
        let mut out = Vec::new();
        for (name, t, floor) in [
            ("single frames", s, floors.single_stored),
            ("history frames", h, floors.history_stored),
        ] {
            if let Some(f) = floor {
                if t.frames > 0 && t.stored_share() < f {
                    out.push(format!(
                        "{name} stored {:.1}% < {:.1}%",
                        100.0 * t.stored_share(),
                        100.0 * f
                    ));
                }
            }
        }
        let wrong = s.stored_wrong + h.stored_wrong;
        if let Some(max) = floors.max_wrong {
            if wrong > max {
                out.push(format!("{wrong} frames stored wrong > {max}"));
            }
        }
        out
    }
}

/// Evaluates `model` on counters composed from the photos of each of
/// `sources` in `data` (every source of `data` when empty), in order.
pub fn evaluate_counters(
    model: &DigitModel,
    data: &Dataset,
    sources: &[String],
    options: &CounterEval,
) -> anyhow::Result<CounterReport> {
    let size = model.input_size();
    let sources: Vec<String> = if sources.is_empty() {
        data.sources().into_iter().map(str::to_owned).collect()
    } else {
        sources.to_vec()
    };
    let scratch = tempfile::Builder::new()
        .prefix("meter-eval-counters-")
        .tempdir()
        .context("creating a scratch folder for the meters' state")?;
    let mut report = Report::default();
    for source in &sources {
        let photos = data
            .samples
            .iter()
            .filter(|s| &s.source == source)
            .map(|s| (s.label, s.image.clone()));
        let bank = CropBank::new(source.clone(), size, photos)?;
        let streams = options.plan.compose(&bank)?;
        let dir = scratch.path().join(file_name(source));
        let meter = Meter::new(&dir, options)?;
        let started = std::time::Instant::now();
        // A source is one meter: read at that meter's own temperature when
        // the model has one.
        let model = &model.for_meter(source);
        let mut reader = None;
        evaluate(&bank, &streams, &mut report, |f| {
            let stream = &streams[f.stream];
            if f.index == 0 {
                reader = Some(meter.reader(model, stream, f.stream)?);
            }
            let reader = reader.as_mut().context("no reader")?;
            let outcome = meter.read(reader, f.image, f.time)?;
            if stream.kind == StreamKind::Single {
                // `meter predict` starts afresh every time.
                meter.forget(f.stream)?;
            }
            Ok::<_, anyhow::Error>(outcome)
        })
        .with_context(|| format!("meter {source}"))?;
        log::info!(
            "meter {source}: {} counters read in {:.1} s",
            streams.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(CounterReport {
        rule: options.rule,
        seed: options.plan.seed,
        singles: options.plan.single_frames,
        histories: options.plan.histories,
        history_len: options.plan.history_len,
        report,
    })
}

/// `source` as a file name (`powermeter/betar/1` -> `powermeter_betar_1`).
fn file_name(source: &str) -> String {
    source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One source's scratch configuration: a meter per composed counter.
struct Meter {
    dir: PathBuf,
    name: String,
    cfg: ResolvedConfig,
    filers: Filers,
    store: Store,
    rules: Rules,
}

impl Meter {
    fn new(dir: &Path, options: &CounterEval) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (dataset_dir, dataset_cap) = match &options.file_dataset {
            Some(d) => (d.clone(), defaults::DATASET_CAP),
            None => (dir.join("dataset"), 0),
        };
        let cfg = ResolvedConfig {
            path: dir.join("meter.toml"),
            model_path: None,
            state_dir: dir.join("state"),
            dataset_dir,
            unsure_dir: dir.join("unsure"),
            rejected_dir: dir.join("rejected"),
            spool_dir: dir.join("spool"),
            dataset_cap,
            models_dir: dir.join("models"),
            retrain: None,
            meters: Vec::new(),
            sinks: Vec::new(),
            alerts: None,
            notify: Vec::new(),
            base_dir: dir.to_path_buf(),
            predict_deadline: defaults::PREDICT_DEADLINE,
            serve: None,
        };
        let name = dir
            .file_name()
            .map_or_else(|| "meter".into(), |n| n.to_string_lossy().into_owned());
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            filers: Filers::new(&cfg),
            cfg,
            store: Store::new(Vec::new(), Arc::new(Bus::new())),
            rules: Rules {
                decision: options.rule,
                max_rate_per_hour: options.max_rate_per_hour,
                min_confidence: options
                    .min_confidence
                    .unwrap_or(Rules::default().min_confidence),
                ..Rules::default()
            },
        })
    }

    /// The meter name of stream `s`.
    fn meter_name(&self, s: usize) -> String {
        format!("{}-c{s}", self.name)
    }

    /// A fresh reader of stream `s`, configured as a user would configure
    /// its meter: the layout's marks (written as template files) and boxes.
    fn reader(&self, model: &DigitModel, stream: &Stream, s: usize) -> anyhow::Result<MeterReader> {
        self.forget(s)?;
        let marks = self.marks(&stream.layout)?;
        let meter = MeterConfig {
            name: self.meter_name(s),
            source: SourceSpec::File(self.frame_path()),
            interval: defaults::INTERVAL,
            geometry: MeterGeometry {
                rotate: 0.0,
                marks,
                digits: stream.layout.digits.clone(),
                counter: None,
                search_radius: MeterGeometry::DEFAULT_SEARCH_RADIUS,
                max_rotation: MeterGeometry::DEFAULT_MAX_ROTATION,
                min_mark_score: MeterGeometry::DEFAULT_MIN_MARK_SCORE,
            },
            counter: stream.counter,
            unit: None,
            rules: self.rules.clone(),
        };
        MeterReader::new(&self.cfg, &meter, model.clone(), &self.filers)
    }

    /// The mark template files of `layout` (one set per frame width).
    fn marks(&self, layout: &MeterLayout) -> anyhow::Result<Vec<MarkSpec>> {
        let mut out = Vec::with_capacity(layout.marks.len());
        for (k, m) in layout.marks.iter().enumerate() {
            let path = self.dir.join(format!("mark-{}-{k}.png", layout.width));
            if !path.exists() {
                let template = layout
                    .mark_template(k)
                    .with_context(|| format!("mark {k} of the composed layout"))?;
                image::imageops::grayscale(&template)
                    .save(&path)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            out.push(MarkSpec {
                image: path,
                x: m[0],
                y: m[1],
            });
        }
        Ok(out)
    }

    /// Reads one frame as `meter predict --frame` reads a camera's JPEG.
    fn read(
        &self,
        reader: &mut MeterReader,
        image: RgbImage,
        time: time::OffsetDateTime,
    ) -> anyhow::Result<Outcome> {
        // The camera overwrites one file, `meter predict --frame` reads it.
        let path = self.frame_path();
        std::fs::write(&path, jpeg(&image)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let frame = FileSource::new(&path, None)
            .next_frame()?
            .with_context(|| format!("{}: no frame", path.display()))?;
        let report = self.store.read_and_store(reader, frame, time)?;
        Ok(Outcome {
            stored: report.decision.stored_ticks(),
            unsure: report.status == Status::Unsure,
            raw: report.reading.ticks,
        })
    }

    /// Where the frame being read is written.
    fn frame_path(&self) -> PathBuf {
        self.dir.join("frame.jpg")
    }

    /// Removes stream `s`'s state (its state file and kept crops).
    fn forget(&self, s: usize) -> anyhow::Result<()> {
        let prefix = format!("{}.", self.meter_name(s));
        let Ok(entries) = std::fs::read_dir(&self.cfg.state_dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                std::fs::remove_file(e.path())
                    .with_context(|| format!("removing {}", e.path().display()))?;
            }
        }
        Ok(())
    }
}

/// `image` as a JPEG, as a camera sends it.
fn jpeg(image: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(image)
        .context("encoding a composed frame as JPEG")?;
    Ok(out)
}
