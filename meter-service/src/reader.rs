//! One meter's reading, composed from the library crates: frame
//! (meter-vision) -> digit images -> predictions (meter-model) -> assembled
//! value and decision (meter-core). [`MeterReader::read`] does no I/O but
//! loading the meter's state; [`MeterReader::commit`] saves the next state
//! and files the crops, once the sinks have accepted the reading
//! ([`Store::read_and_store`](crate::Store::read_and_store)).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use image::RgbImage;
use meter_core::{assemble, decide, Decision, DigitPrediction, Reading, State, Tenths};
use meter_model::DigitModel;
use meter_vision::{Alignment, Frame, Pipeline};
use time::OffsetDateTime;

use crate::config::{MeterConfig, ResolvedConfig};
use crate::files::ImageFiler;
use crate::report::{DigitReport, Report, Status};
use crate::state;

/// A reading taken but not yet committed.
#[derive(Debug)]
pub struct Taken {
    /// What it gave.
    pub report: Report,
    /// The meter's next state, when it changes.
    pub next: Option<State>,
    /// The frame as received.
    pub jpeg: Vec<u8>,
    /// Where it came from.
    pub origin: String,
    /// The decoded frame.
    pub image: RgbImage,
    /// How it was aligned.
    pub alignment: Alignment,
    /// The digit images read.
    pub crops: Vec<RgbImage>,
}

/// Reads one meter, frame after frame.
pub struct MeterReader {
    meter: MeterConfig,
    pipeline: Pipeline,
    model: DigitModel,
    state_dir: PathBuf,
    dataset: Arc<ImageFiler>,
    unsure: Arc<ImageFiler>,
    /// Last label filed per digit position: a meter standing still gives
    /// the same picture again and again; only changes are worth filing.
    last_filed: Vec<Option<Tenths>>,
}

impl std::fmt::Debug for MeterReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterReader")
            .field("meter", &self.meter.name)
            .finish_non_exhaustive()
    }
}

/// The folders where a process files digit images: `dataset/<label>/` for
/// the digits of stored readings, `unsure/` for those of unsure ones.
#[derive(Debug, Clone)]
pub struct Filers {
    /// Self-training images.
    pub dataset: Arc<ImageFiler>,
    /// Images to label.
    pub unsure: Arc<ImageFiler>,
}

impl Filers {
    /// The filers of `cfg`'s folders (unsure images capped at ten times
    /// `dataset_cap`: they wait for a person).
    pub fn new(cfg: &ResolvedConfig) -> Self {
        Self {
            dataset: Arc::new(ImageFiler::new(cfg.dataset_dir.clone(), cfg.dataset_cap)),
            unsure: Arc::new(ImageFiler::new(
                cfg.unsure_dir.clone(),
                cfg.dataset_cap * 10,
            )),
        }
    }
}

/// The vision pipeline of `meter`, cutting digits at `digit_size`.
pub fn pipeline(meter: &MeterConfig, digit_size: (u32, u32)) -> anyhow::Result<Pipeline> {
    let ctx = || format!("meter {}", meter.name);
    let aligner = meter.geometry.aligner(Path::new("/")).with_context(ctx)?;
    let regions = meter.geometry.regions().with_context(ctx)?;
    Pipeline::builder()
        .aligner(aligner)
        .regions(regions)
        .digit_size(digit_size.0, digit_size.1)
        .build()
        .with_context(ctx)
}

impl MeterReader {
    /// Builds the vision pipeline (loading the mark templates).
    pub fn new(
        cfg: &ResolvedConfig,
        meter: &MeterConfig,
        model: DigitModel,
        filers: &Filers,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            meter: meter.clone(),
            pipeline: pipeline(meter, model.input_size())?,
            model,
            state_dir: cfg.state_dir.clone(),
            dataset: filers.dataset.clone(),
            unsure: filers.unsure.clone(),
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
    pub fn model(&self) -> &DigitModel {
        &self.model
    }

    /// The meter's configuration.
    pub fn meter(&self) -> &MeterConfig {
        &self.meter
    }

    /// Reads a frame taken at `time`: aligns, predicts, assembles and
    /// decides against the meter's stored state. Nothing is saved: the
    /// caller hands the record to the sinks and then
    /// [`commit`](Self::commit)s, so a reading the sinks refused is not
    /// remembered as stored.
    pub fn read(&self, frame: Frame, time: OffsetDateTime) -> anyhow::Result<Taken> {
        let name = &self.meter.name;
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
        let report = report(&self.meter, &state, reading, decision, &preds, time);
        Ok(Taken {
            report,
            next,
            jpeg: frame.jpeg,
            origin: frame.origin,
            image: processed.image,
            alignment: processed.alignment,
            crops: processed.digits,
        })
    }

    /// Saves the state [`read`](Self::read) computed, then files the crops:
    /// unsure readings' into `unsure/` for labelling, and the digits of
    /// stored readings that fully agree with the odometer (residual 0,
    /// confident) into `dataset/<label>/`. Filing failures are logged, not
    /// returned: the reading itself is done.
    pub fn commit(&mut self, taken: &Taken) -> anyhow::Result<()> {
        if let Some(s) = &taken.next {
            state::save(&self.state_dir, &self.meter.name, s)?;
        }
        if let Err(e) = self.file_crops(&taken.report, &taken.crops) {
            log::warn!("meter {}: filing digit images: {e:#}", self.meter.name);
        }
        Ok(())
    }

    fn file_crops(&mut self, report: &Report, crops: &[RgbImage]) -> anyhow::Result<()> {
        let name = &self.meter.name;
        let digits = report.reading.digits.iter().zip(crops).enumerate();
        match report.status {
            Status::Unsure => {
                let stamp = report.time.unix_timestamp();
                for (i, (d, img)) in digits {
                    let prefix = format!("{name}-{stamp}-d{i}-read{}-", d.observed);
                    self.unsure.file("", &prefix, img)?;
                }
            }
            Status::Stored => {
                for (i, (d, img)) in digits {
                    let worth = d.residual == 0
                        && d.confidence >= self.meter.rules.min_confidence
                        && self.last_filed[i] != Some(d.expected);
                    if worth
                        && self
                            .dataset
                            .file(&d.expected.to_string(), &format!("{name}-"), img)?
                    {
                        self.last_filed[i] = Some(d.expected);
                    }
                }
            }
            Status::Rejected => {}
        }
        Ok(())
    }
}

/// The report of a decided reading.
fn report(
    meter: &MeterConfig,
    state: &State,
    reading: Reading,
    decision: Decision,
    preds: &[DigitPrediction],
    time: OffsetDateTime,
) -> Report {
    let counter = meter.counter;
    let stored = decision.stored_ticks();
    let rate_per_hour = match (stored, state.stored) {
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
    Report {
        meter: meter.name.clone(),
        time,
        value: stored.map(|t| counter.to_units(t)),
        raw: reading.value(),
        raw_text: reading.to_string(),
        digits: preds
            .iter()
            .map(|p| DigitReport {
                value: p.tenths.value(),
                confidence: p.confidence,
            })
            .collect(),
        status: Status::of(&decision),
        reason,
        unit: meter.unit.clone(),
        rate_per_hour,
        decision,
        reading,
    }
}

/// The frame's capture time in UTC.
pub fn capture_time(frame: &Frame) -> OffsetDateTime {
    OffsetDateTime::from(frame.captured_at)
}
