//! JPEG bytes to model-ready digit images, in one call.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::{Aligner, Alignment, Mark};
use crate::error::VisionError;
use crate::jpeg::decode_jpeg;
use crate::regions::{extract_digits, Regions};
use crate::sample::Resample;
use crate::track::Tracking;

/// A reference mark as configured: template image file and the top-left
/// corner of the mark in the aligned frame (issue 4's `{ image, x, y }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkSpec {
    /// Template image file (relative paths are taken from the config's
    /// folder).
    pub image: PathBuf,
    /// Top-left x in the aligned frame.
    pub x: u32,
    /// Top-left y in the aligned frame.
    pub y: u32,
}

/// A counter window split into equal digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterWindow {
    /// `[x, y, width, height]` in the aligned frame.
    pub window: [u32; 4],
    /// Number of digits.
    pub count: u32,
}

/// The geometry of one meter: the part of a `[[meter]]` config table that
/// vision uses, with the same field names (`rotate`, `marks`, `digits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterGeometry {
    /// Initial rotation, degrees counter-clockwise, applied first.
    #[serde(default)]
    pub rotate: f64,
    /// Up to three reference marks.
    #[serde(default)]
    pub marks: Vec<MarkSpec>,
    /// Digit boxes `[x, y, width, height]` in the aligned frame, most
    /// significant first. Empty when `counter` is used.
    #[serde(default)]
    pub digits: Vec<[u32; 4]>,
    /// Instead of `digits`: a counter window and a digit count.
    #[serde(default)]
    pub counter: Option<CounterWindow>,
    /// Mark search window half-size in pixels.
    #[serde(default = "default_search_radius")]
    pub search_radius: u32,
    /// Largest rotation looked for after `rotate`, degrees.
    #[serde(default = "default_max_rotation")]
    pub max_rotation: f64,
    /// Lowest acceptable mark score (ZNCC, -1..1).
    #[serde(default = "default_min_score")]
    pub min_mark_score: f32,
}

fn default_search_radius() -> u32 {
    MeterGeometry::DEFAULT_SEARCH_RADIUS
}
fn default_max_rotation() -> f64 {
    MeterGeometry::DEFAULT_MAX_ROTATION
}
fn default_min_score() -> f32 {
    MeterGeometry::DEFAULT_MIN_MARK_SCORE
}

impl MeterGeometry {
    /// `search_radius` when not given, pixels.
    pub const DEFAULT_SEARCH_RADIUS: u32 = 20;
    /// The largest `search_radius`, pixels. The search's time grows with the
    /// square of the radius, and a camera that moved further is found by
    /// the wide search ([`crate::Tracker`]) anyway.
    pub const MAX_SEARCH_RADIUS: u32 = 1000;
    /// `max_rotation` when not given, degrees.
    pub const DEFAULT_MAX_ROTATION: f64 = 5.0;
    /// `min_mark_score` when not given.
    pub const DEFAULT_MIN_MARK_SCORE: f32 = 0.5;

    /// The digit regions: `digits` boxes, or the `counter` window split
    /// equally. Exactly one of them must be given.
    pub fn regions(&self) -> Result<Regions, VisionError> {
        match (&self.counter, self.digits.is_empty()) {
            (None, false) => Ok(Regions::Boxes(self.digits.clone())),
            (Some(c), true) => {
                if c.count == 0 {
                    return Err(VisionError::InvalidGeometry {
                        reason: "counter.count is 0".into(),
                    });
                }
                Ok(Regions::Window {
                    window: c.window,
                    count: c.count,
                })
            }
            (None, true) => Err(VisionError::InvalidGeometry {
                reason: "neither `digits` nor `counter` given".into(),
            }),
            (Some(_), false) => Err(VisionError::InvalidGeometry {
                reason: "both `digits` and `counter` given; use one".into(),
            }),
        }
    }

    /// Loads the mark templates (paths relative to `base_dir`) and builds
    /// the aligner.
    pub fn aligner(&self, base_dir: &Path) -> Result<Aligner, VisionError> {
        let mut b = Aligner::builder()
            .rotate_deg(self.rotate)
            .search_radius(self.search_radius)
            .max_rotation_deg(self.max_rotation)
            .min_score(self.min_mark_score);
        for spec in &self.marks {
            let path = base_dir.join(&spec.image);
            let bytes = std::fs::read(&path).map_err(|source| VisionError::Io {
                path: path.clone(),
                source,
            })?;
            let template = image::load_from_memory(&bytes)
                .map_err(|e| VisionError::Decode {
                    origin: path.display().to_string(),
                    message: e.to_string(),
                })?
                .to_luma8();
            b = b.mark(Mark {
                template,
                x: f64::from(spec.x),
                y: f64::from(spec.y),
            });
        }
        b.build()
    }
}

/// Builds a [`Pipeline`]; see [`Pipeline::builder`].
#[derive(Debug, Clone)]
pub struct PipelineBuilder {
    aligner: Option<Aligner>,
    regions: Option<Regions>,
    digit_size: (u32, u32),
    resample: Resample,
}

impl PipelineBuilder {
    /// The aligner (required).
    pub fn aligner(mut self, aligner: Aligner) -> Self {
        self.aligner = Some(aligner);
        self
    }
    /// The digit regions (required).
    pub fn regions(mut self, regions: Regions) -> Self {
        self.regions = Some(regions);
        self
    }
    /// Size of each digit image, as the model's metadata says (default 20x32).
    pub fn digit_size(mut self, width: u32, height: u32) -> Self {
        self.digit_size = (width, height);
        self
    }
    /// Resampling filter (default area averaging).
    pub fn resample(mut self, mode: Resample) -> Self {
        self.resample = mode;
        self
    }
    /// Checks the settings.
    pub fn build(self) -> Result<Pipeline, VisionError> {
        let invalid = |reason: &str| VisionError::InvalidGeometry {
            reason: reason.into(),
        };
        let aligner = self
            .aligner
            .ok_or_else(|| invalid("pipeline has no aligner"))?;
        let regions = self
            .regions
            .ok_or_else(|| invalid("pipeline has no regions"))?;
        if regions.boxes().is_empty() {
            return Err(invalid("no digit boxes"));
        }
        if self.digit_size.0 == 0 || self.digit_size.1 == 0 {
            return Err(invalid("digit size is empty"));
        }
        Ok(Pipeline {
            aligner,
            regions,
            digit_size: self.digit_size,
            resample: self.resample,
        })
    }
}

/// JPEG bytes -> decoded, checked frame -> alignment -> digit images.
///
/// ```
/// use meter_vision::{Aligner, Pipeline, Regions};
/// let pipeline = Pipeline::builder()
///     .aligner(Aligner::builder().build().unwrap())
///     .regions(Regions::Window { window: [10, 10, 80, 30], count: 4 })
///     .digit_size(20, 32)
///     .build()
///     .unwrap();
/// let frame = image::RgbImage::from_pixel(100, 60, image::Rgb([40, 40, 40]));
/// let out = pipeline.process_image(frame).unwrap();
/// assert_eq!(out.digits.len(), 4);
/// assert_eq!(out.digits[0].dimensions(), (20, 32));
/// ```
#[derive(Debug, Clone)]
pub struct Pipeline {
    aligner: Aligner,
    regions: Regions,
    digit_size: (u32, u32),
    resample: Resample,
}

/// What the pipeline made of one frame.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The decoded camera frame.
    pub image: RgbImage,
    /// How it was aligned.
    pub alignment: Alignment,
    /// The digit images, most significant first.
    pub digits: Vec<RgbImage>,
    /// How the frame was aligned; a reading may be stored only when
    /// `tracking.confirmed` (always so from [`Pipeline`], which searches
    /// locally only; a [`crate::Tracker`] also searches wide).
    pub tracking: Tracking,
}

impl Pipeline {
    /// Starts a builder.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder {
            aligner: None,
            regions: None,
            digit_size: (20, 32),
            resample: Resample::Area,
        }
    }

    /// The regions.
    pub fn regions(&self) -> &Regions {
        &self.regions
    }

    /// The aligner.
    pub fn aligner(&self) -> &Aligner {
        &self.aligner
    }

    /// Decodes (rejecting truncated JPEGs), aligns and cuts one frame;
    /// `origin` names the frame in errors.
    pub fn process_jpeg(&self, bytes: &[u8], origin: &str) -> Result<Processed, VisionError> {
        let image = decode_jpeg(bytes, origin)?;
        self.process_image(image)
    }

    /// Aligns and cuts an already decoded frame.
    pub fn process_image(&self, image: RgbImage) -> Result<Processed, VisionError> {
        let alignment = self.aligner.align(&image)?;
        self.cut(image, alignment, Tracking::local())
    }

    /// Cuts the digits of an aligned frame.
    pub(crate) fn cut(
        &self,
        image: RgbImage,
        alignment: Alignment,
        tracking: Tracking,
    ) -> Result<Processed, VisionError> {
        let digits = extract_digits(
            &image,
            &alignment,
            &self.regions,
            self.digit_size,
            self.resample,
        )?;
        Ok(Processed {
            image,
            alignment,
            digits,
            tracking,
        })
    }
}
