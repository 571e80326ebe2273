//! One meter's reading, composed from the library crates: frame
//! (meter-vision: aligned by the meter's [`Tracker`], which re-finds a
//! camera that moved) -> digit images -> predictions (meter-model) -> the
//! reading-level decision (meter-core's [`judge`]). [`MeterReader::read`]
//! does no I/O but loading the meter's state; [`MeterReader::commit`] saves
//! the next state and files the crops, once the sinks have accepted the
//! reading ([`Store::read_and_store`](crate::Store::read_and_store)).
//!
//! Two things beyond one frame go into the decision:
//! - a frame aligned far from the meter's place whose digit row the tracker
//!   did not confirm is never stored (unsure, [`Reason::AlignmentUnconfirmed`]);
//! - the digit images of the last stored reading (kept beside the state):
//!   a roller whose picture has not changed keeps that reading's position.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use image::RgbImage;
use meter_core::{judge, Decision, DigitPrediction, Evidence, Reading, Reason, State, Tenths};
use meter_model::{picture_change, DigitModel, UNCHANGED_BELOW};
use meter_vision::{Alignment, Frame, Pipeline, Tracker, Tracking};
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
    /// How it was aligned.
    pub alignment: Alignment,
    /// The digit images read (shared with the reading's event and, when
    /// stored, with the reader's copy for the next decision).
    pub crops: Arc<Vec<RgbImage>>,
    /// How the frame was aligned (and whether the camera moved).
    pub tracking: Tracking,
    /// The meter's health once this reading is committed.
    pub health: ReaderHealth,
}

/// A meter's health, as the `meter_health` points of the time-series
/// database carry it every reading (alert rules fire on a silent meter).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReaderHealth {
    /// When a frame was last read.
    pub last_frame: Option<OffsetDateTime>,
    /// When a reading was last stored.
    pub last_stored: Option<OffsetDateTime>,
    /// Unsure or rejected readings since the last stored one.
    pub not_stored_in_a_row: u32,
}

impl ReaderHealth {
    /// The point for the sinks, as of `now`.
    pub fn record(&self, meter: &str, now: OffsetDateTime) -> meter_sink::Record {
        let since = |t: Option<OffsetDateTime>| t.map(|t| (now - t).as_seconds_f64().max(0.0));
        meter_sink::Record::health(
            meter,
            now,
            meter_sink::Health {
                seconds_since_frame: since(self.last_frame),
                seconds_since_stored: since(self.last_stored),
                not_stored_in_a_row: self.not_stored_in_a_row,
            },
        )
    }
}

/// Reads one meter, frame after frame.
pub struct MeterReader {
    meter: MeterConfig,
    tracker: Tracker,
    model: DigitModel,
    state_dir: PathBuf,
    dataset: Arc<ImageFiler>,
    unsure: Arc<ImageFiler>,
    /// Last label filed per digit position: a meter standing still gives
    /// the same picture again and again; only changes are worth filing.
    last_filed: Vec<Option<Tenths>>,
    /// The digit images of the last stored reading.
    stored_crops: Option<StoredCrops>,
    /// The meter's health so far.
    health: ReaderHealth,
}

impl std::fmt::Debug for MeterReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterReader")
            .field("meter", &self.meter.name)
            .finish_non_exhaustive()
    }
}

/// The folders where a process files digit images: `dataset/<label>/` for
/// the digits of stored readings, `unsure/` for those of unsure and
/// rejected ones.
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
        let model_width = model.input_size().0;
        Ok(Self {
            meter: meter.clone(),
            tracker: Tracker::new(pipeline(meter, model.input_size())?),
            model: model.for_meter(&meter.name),
            state_dir: cfg.state_dir.clone(),
            dataset: filers.dataset.clone(),
            unsure: filers.unsure.clone(),
            last_filed: vec![None; usize::from(meter.counter.digits())],
            stored_crops: StoredCrops::load(&cfg.state_dir, &meter.name, model_width),
            health: ReaderHealth {
                last_stored: state::load(&cfg.state_dir, &meter.name, meter.counter)
                    .ok()
                    .and_then(|s| s.stored)
                    .map(|s| s.time),
                ..ReaderHealth::default()
            },
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
        self.model = model.for_meter(&self.meter.name);
        Ok(())
    }

    /// Reads the next frames with `meter`'s geometry (boxes, marks,
    /// rotation saved by the box editor); refused when the counter's shape
    /// changed (its state would not fit).
    pub fn set_geometry(&mut self, meter: MeterConfig) -> anyhow::Result<()> {
        anyhow::ensure!(
            meter.counter == self.meter.counter && meter.name == self.meter.name,
            "meter {}: a new counter shape needs a restart",
            self.meter.name
        );
        self.tracker = Tracker::new(pipeline(&meter, self.model.input_size())?);
        self.meter = meter;
        Ok(())
    }

    /// The vision pipeline (boxes, marks) it cuts digits with.
    pub fn pipeline(&self) -> &Pipeline {
        self.tracker.pipeline()
    }

    /// The model it reads with.
    pub fn model(&self) -> &DigitModel {
        &self.model
    }

    /// The meter's configuration.
    pub fn meter(&self) -> &MeterConfig {
        &self.meter
    }

    /// Reads a frame taken at `time`: aligns, predicts and judges the
    /// reading against the meter's stored state. Nothing is saved: the
    /// caller hands the record to the sinks and then
    /// [`commit`](Self::commit)s, so a reading the sinks refused is not
    /// remembered as stored.
    pub fn read(&mut self, frame: Frame, time: OffsetDateTime) -> anyhow::Result<Taken> {
        let name = self.meter.name.clone();
        let processed = self
            .tracker
            .process_image(frame.image)
            .with_context(|| format!("meter {name}: frame {}", frame.origin))?;
        let preds: Vec<DigitPrediction> = self
            .model
            .predict_batch(&processed.digits)
            .with_context(|| format!("meter {name}: model"))?;
        let state = state::load(&self.state_dir, &name, self.meter.counter)?;
        let unchanged = match (&self.stored_crops, state.stored) {
            (Some(kept), Some(stored)) => kept.unchanged(stored.ticks, &processed.digits),
            _ => Vec::new(),
        };
        let evidence = Evidence {
            predictions: &preds,
            unchanged: &unchanged,
        };
        let mut judged = judge(&state, &self.meter.rules, &evidence, time)
            .with_context(|| format!("meter {name}"))?;
        if !processed.tracking.confirmed {
            judged.decision = Decision::Unsure(Reason::AlignmentUnconfirmed);
            judged.next = state.clone();
        }
        let next = (judged.next != state).then(|| judged.next.clone());
        let report = report(&self.meter, &state, &judged, &preds, time);
        let health = match report.status {
            Status::Stored => ReaderHealth {
                last_frame: Some(time),
                last_stored: Some(time),
                not_stored_in_a_row: 0,
            },
            _ => ReaderHealth {
                last_frame: Some(time),
                not_stored_in_a_row: self.health.not_stored_in_a_row + 1,
                ..self.health
            },
        };
        Ok(Taken {
            report,
            next,
            jpeg: frame.jpeg,
            origin: frame.origin,
            alignment: processed.alignment,
            crops: Arc::new(processed.digits),
            tracking: processed.tracking,
            health,
        })
    }

    /// The meter's health (as of its last committed reading).
    pub fn health(&self) -> ReaderHealth {
        self.health
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
        self.health = taken.health;
        if let Some(ticks) = taken.report.decision.stored_ticks() {
            let kept = StoredCrops {
                ticks,
                crops: taken.crops.clone(),
            };
            // Only a help for the next decision: a failure costs coverage,
            // not correctness.
            if let Err(e) = kept.save(&self.state_dir, &self.meter.name) {
                log::warn!(
                    "meter {}: keeping the stored reading's digits: {e:#}",
                    self.meter.name
                );
            }
            self.stored_crops = Some(kept);
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
            // A rejected reading's digits were read surely, to an
            // implausible value: a misread worth a label, or a real jump
            // the user confirms by labelling.
            Status::Unsure | Status::Rejected => {
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
        }
        Ok(())
    }
}

/// The report of a judged reading.
fn report(
    meter: &MeterConfig,
    state: &State,
    judged: &meter_core::Judgement,
    preds: &[DigitPrediction],
    time: OffsetDateTime,
) -> Report {
    let counter = meter.counter;
    let decision = judged.decision.clone();
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
    let reading: Reading = judged.reading.clone();
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
        probability: judged.probability,
        status: Status::of(&decision),
        reason,
        unit: meter.unit.clone(),
        rate_per_hour,
        decision,
        reading,
    }
}

/// The digit images of a meter's last stored reading, kept beside its
/// state as `<meter>.stored-<ticks>.png` (the images side by side): the
/// ticks name the reading they show, so a value set by hand since is never
/// matched against them.
#[derive(Debug, Clone)]
struct StoredCrops {
    ticks: u64,
    crops: Arc<Vec<RgbImage>>,
}

impl StoredCrops {
    fn prefix(name: &str) -> String {
        format!("{name}.stored-")
    }

    /// Which rollers show the same picture as in the stored reading of
    /// `ticks` (none known when these are of another reading or shape).
    fn unchanged(&self, ticks: u64, crops: &[RgbImage]) -> Vec<bool> {
        let same_shape = self.crops.len() == crops.len()
            && self
                .crops
                .iter()
                .zip(crops)
                .all(|(a, b)| a.dimensions() == b.dimensions());
        if self.ticks != ticks || !same_shape {
            return Vec::new();
        }
        self.crops
            .iter()
            .zip(crops)
            .map(|(a, b)| picture_change(a, b) < UNCHANGED_BELOW)
            .collect()
    }

    /// The kept images of meter `name`, each `width` pixels wide.
    fn load(state_dir: &Path, name: &str, width: u32) -> Option<Self> {
        let prefix = Self::prefix(name);
        let path = std::fs::read_dir(state_dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".png"))
            })?;
        let stem = path.file_stem()?.to_str()?;
        let ticks = stem.strip_prefix(&prefix)?.parse().ok()?;
        let strip = image::open(&path).ok()?.to_rgb8();
        let (w, h) = strip.dimensions();
        if width == 0 || w % width != 0 {
            return None;
        }
        let n = w / width;
        let crops = (0..n)
            .map(|i| image::imageops::crop_imm(&strip, i * width, 0, width, h).to_image())
            .collect();
        Some(Self {
            ticks,
            crops: Arc::new(crops),
        })
    }

    fn save(&self, state_dir: &Path, name: &str) -> anyhow::Result<()> {
        let Some(first) = self.crops.first() else {
            return Ok(());
        };
        let (w, h) = first.dimensions();
        let mut strip = RgbImage::new(w * self.crops.len() as u32, h);
        for (i, c) in self.crops.iter().enumerate() {
            image::imageops::replace(&mut strip, c, i64::from(w) * i as i64, 0);
        }
        let prefix = Self::prefix(name);
        let path = state_dir.join(format!("{prefix}{}.png", self.ticks));
        crate::files::write_atomic(&path, &crate::files::png_bytes(&strip)?)
            .with_context(|| format!("writing {}", path.display()))?;
        for old in std::fs::read_dir(state_dir)?.flatten() {
            let p = old.path();
            let is_old = p != path
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix));
            if is_old {
                let _ = std::fs::remove_file(p);
            }
        }
        Ok(())
    }
}

/// The frame's capture time in UTC.
pub fn capture_time(frame: &Frame) -> OffsetDateTime {
    OffsetDateTime::from(frame.captured_at)
}
