//! Following a camera that moves: one [`Tracker`] per meter, fed every
//! frame, keeps the meter's reference transform and re-finds the meter
//! when the local search fails.
//!
//! Per frame:
//! 1. **Local**: the marks in their windows around the reference
//!    ([`Aligner::align_near`]). Trusted as before; every
//!    `check_every`-th frame the digit row must also be where the boxes
//!    are, or the wide search is asked for a second opinion.
//! 2. **Wide**: the marks over the whole frame, turned and scaled
//!    ([`Aligner::align_wide`]). Confirmed only when the digit row is where
//!    the boxes are ([`check_row`]).
//! 3. **Row**: no marks agree; the digit row itself, found through the
//!    allowed turns, places the boxes. Confirmed by the same row check.
//!
//! An alignment that is not confirmed still yields digit images, but a
//! reading from it must not be stored ([`Tracking::confirmed`]).
//!
//! A confirmed alignment that puts the boxes more than `move_px` from
//! where the reference puts them starts a candidate; after
//! `confirm_frames` consistent frames the candidate becomes the reference
//! and the frame reports the move ([`Tracking::moved`]).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::Alignment;
use crate::error::VisionError;
use crate::geometry::Affine;
use crate::jpeg::decode_jpeg;
use crate::pipeline::{Pipeline, Processed};
use crate::row::{anchor_on_row, check_row, RowCheck, Turns};
use crate::wide::WideSearch;

/// How a frame was aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlignMethod {
    /// The marks near the reference (the usual case).
    Local,
    /// The marks found over the whole frame.
    Wide,
    /// The digit row itself, no marks.
    Row,
}

/// A change of the meter's reference: where the meter's picture went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CameraMove {
    /// Shift of the camera frame's centre point, pixels (x right).
    pub dx: f64,
    /// Shift of the camera frame's centre point, pixels (y down).
    pub dy: f64,
    /// Turn, degrees counter-clockwise.
    pub angle_deg: f64,
    /// Change of scale (1.0: same distance).
    pub scale: f64,
    /// The reference before (aligned frame to camera frame).
    pub from: Affine,
    /// The reference after.
    pub to: Affine,
}

impl CameraMove {
    /// The move that takes reference `from` to `to` in a camera frame of
    /// `size`.
    pub fn between(from: &Affine, to: &Affine, size: (u32, u32)) -> Option<Self> {
        // Camera to camera: back through the old reference, on through the new.
        let m = from.inverse()?.then(to);
        let c = (
            (f64::from(size.0) - 1.0) / 2.0,
            (f64::from(size.1) - 1.0) / 2.0,
        );
        let moved = m.apply(c);
        Some(Self {
            dx: moved.0 - c.0,
            dy: moved.1 - c.1,
            angle_deg: m.rotation_deg(),
            scale: m.scale(),
            from: *from,
            to: *to,
        })
    }
}

/// How one frame was aligned, and what it did to the meter's reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracking {
    /// Which search found the alignment.
    pub method: AlignMethod,
    /// Whether a reading from this frame may be stored. False for a wide
    /// or row alignment the digit row did not confirm.
    pub confirmed: bool,
    /// The digit-row check, when one was made on this frame.
    pub row: Option<RowCheck>,
    /// Consistent frames seen so far at a place that is not yet the
    /// reference (0 when the camera is where the reference says).
    pub pending: u32,
    /// Set on the frame where the reference moved.
    pub moved: Option<CameraMove>,
}

impl Tracking {
    /// A local alignment without a row check (what [`Pipeline`] reports).
    pub fn local() -> Self {
        Self {
            method: AlignMethod::Local,
            confirmed: true,
            row: None,
            pending: 0,
            moved: None,
        }
    }
}

/// Settings of a [`Tracker`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerSettings {
    /// Consistent confirmed frames before a new place becomes the
    /// reference (default 3).
    pub confirm_frames: u32,
    /// Every this many frames a local alignment is checked against the
    /// digit row too (default 10; 0: never).
    pub check_every: u32,
    /// A confirmed alignment that puts a box corner farther than this from
    /// the reference's place starts a move (default 8 px).
    pub move_px: f64,
    /// Frames agree when their box corners lie within this (default 4 px).
    pub agree_px: f64,
    /// Bounds of the wide search and the row anchor.
    pub wide: WideSearch,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            confirm_frames: 3,
            check_every: 10,
            move_px: 8.0,
            agree_px: 4.0,
            wide: WideSearch::default(),
        }
    }
}

/// Aligns the frames of one meter, following its camera; see the module
/// documentation. Hold one per meter and feed it every frame in order.
///
/// ```
/// use meter_synth::{FrameParams, MeterLayout};
/// use meter_vision::{AlignMethod, Aligner, Mark, Pipeline, Regions, Tracker};
///
/// let layout = MeterLayout::default();
/// let mut aligner = Aligner::builder();
/// for (k, m) in layout.marks.iter().enumerate() {
///     let template = image::imageops::grayscale(&layout.mark_template(k).unwrap());
///     aligner = aligner.mark(Mark { template, x: m[0].into(), y: m[1].into() });
/// }
/// let pipeline = Pipeline::builder()
///     .aligner(aligner.build().unwrap())
///     .regions(Regions::Boxes(layout.digits.clone()))
///     .build()
///     .unwrap();
/// let mut tracker = Tracker::new(pipeline);
/// // The camera was bumped: turned 10 degrees and shifted 45 px.
/// let shot = |seed| layout.render(&FrameParams {
///     counter: 4711.0, rotation_deg: 10.0, shift: (30.0, 34.0), seed, ..Default::default()
/// });
/// let mut moves = Vec::new();
/// for seed in 0..3 {
///     let out = tracker.process_image(shot(seed).image).unwrap();
///     assert_eq!(out.tracking.method, AlignMethod::Wide);
///     assert!(out.tracking.confirmed); // the digit row is where the boxes are
///     moves.extend(out.tracking.moved);
/// }
/// assert!((moves[0].angle_deg - 10.0).abs() < 0.5);
/// // From now on the local search finds it.
/// let out = tracker.process_image(shot(9).image).unwrap();
/// assert_eq!(out.tracking.method, AlignMethod::Local);
/// ```
#[derive(Debug, Clone)]
pub struct Tracker {
    pipeline: Pipeline,
    settings: TrackerSettings,
    /// The reference and the frame size it is for.
    reference: Option<(Affine, (u32, u32))>,
    /// A new place and how many consistent frames saw it.
    candidate: Option<(Affine, u32)>,
    frames: u64,
}

impl Tracker {
    /// A tracker with default settings, starting from the configured
    /// initial rotation.
    pub fn new(pipeline: Pipeline) -> Self {
        Self::with_settings(pipeline, TrackerSettings::default())
    }

    /// A tracker with the given settings.
    pub fn with_settings(pipeline: Pipeline, settings: TrackerSettings) -> Self {
        Self {
            pipeline,
            settings,
            reference: None,
            candidate: None,
            frames: 0,
        }
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The current reference (aligned frame to camera frame) and the frame
    /// size it is for; `None` until the first frame, or while it is the
    /// configured initial rotation.
    pub fn reference(&self) -> Option<(Affine, (u32, u32))> {
        self.reference
    }

    /// Restores a reference kept from an earlier run (for frames of `size`).
    pub fn set_reference(&mut self, reference: Affine, size: (u32, u32)) {
        self.reference = Some((reference, size));
        self.candidate = None;
    }

    /// Decodes (rejecting truncated JPEGs), aligns and cuts one frame.
    pub fn process_jpeg(&mut self, bytes: &[u8], origin: &str) -> Result<Processed, VisionError> {
        let image = decode_jpeg(bytes, origin)?;
        self.process_image(image)
    }

    /// Aligns (local, wide or row search) and cuts one frame, and updates
    /// the reference. Fails as [`Pipeline::process_image`] does when no
    /// search finds the meter; see [`Tracking`] for what a success means.
    pub fn process_image(&mut self, image: RgbImage) -> Result<Processed, VisionError> {
        let (alignment, mut tracking) = self.align(&image)?;
        tracking.pending = self.candidate.map_or(0, |c| c.1);
        if tracking.confirmed {
            tracking.moved = self.follow(&alignment, image.dimensions());
            tracking.pending = self.candidate.map_or(0, |c| c.1);
        }
        self.pipeline.cut(image, alignment, tracking)
    }

    /// The reference for a frame of `size`.
    fn reference_for(&mut self, size: (u32, u32)) -> Affine {
        match self.reference {
            Some((r, s)) if s == size => r,
            _ => {
                // A new frame size (another camera resolution): start over.
                let (initial, _) = self.pipeline.aligner().initial(size);
                self.reference = Some((initial, size));
                self.candidate = None;
                initial
            }
        }
    }

    fn align(&mut self, image: &RgbImage) -> Result<(Alignment, Tracking), VisionError> {
        let size = image.dimensions();
        let reference = self.reference_for(size);
        self.frames += 1;
        let aligner = self.pipeline.aligner();
        let boxes = self.pipeline.regions().boxes();
        let check_now = self.settings.check_every > 0
            && self
                .frames
                .is_multiple_of(u64::from(self.settings.check_every));
        let tracking = |method, row: Option<RowCheck>, confirmed| Tracking {
            method,
            confirmed,
            row,
            pending: 0,
            moved: None,
        };
        let mut checked_local = None;
        let mut local_error = None;
        match aligner.align_near(image, &reference) {
            Ok(a) if !check_now => return Ok((a, Tracking::local())),
            Ok(a) => {
                let row = check_row(image, &a.transform, a.aligned_size, &boxes);
                if row.confirmed {
                    return Ok((a, tracking(AlignMethod::Local, Some(row), true)));
                }
                checked_local = Some((a, row));
            }
            Err(e) => local_error = Some(e),
        }
        let wide = aligner.align_wide(image, &reference, &self.settings.wide);
        if let Ok(a) = &wide {
            let row = check_row(image, &a.transform, a.aligned_size, &boxes);
            // The row disagreed with a local alignment: the wide search
            // decides. Finding the same place means the marks are where
            // they always were, and the row is hidden (glare) or unusual.
            if let Some((l, lrow)) = checked_local.take() {
                let same =
                    corner_distance(&boxes, &l.transform, &a.transform) <= self.settings.agree_px;
                if same || !row.confirmed {
                    return Ok((l, tracking(AlignMethod::Local, Some(lrow), true)));
                }
            }
            return Ok((
                a.clone(),
                tracking(AlignMethod::Wide, Some(row), row.confirmed),
            ));
        }
        if let Some((l, lrow)) = checked_local {
            return Ok((l, tracking(AlignMethod::Local, Some(lrow), true)));
        }
        let turns = Turns {
            max_deg: self.settings.wide.max_rotation_deg,
            step_deg: 5.0,
        };
        let (initial, aligned_size) = aligner.initial(size);
        if let Some(t) = anchor_on_row(
            image,
            &reference,
            aligned_size,
            &boxes,
            turns,
            self.settings.wide.max_scale,
        ) {
            let row = check_row(image, &t, aligned_size, &boxes);
            let a = Alignment {
                transform: t,
                aligned_size,
                initial,
                marks: Vec::new(),
            };
            return Ok((a, tracking(AlignMethod::Row, Some(row), row.confirmed)));
        }
        // Nothing found: the local search's error says best what is wrong.
        Err(
            local_error.unwrap_or_else(|| VisionError::InconsistentMarks {
                reason: "no search found the meter".into(),
            }),
        )
    }

    /// Moves the reference after enough consistent confirmed frames away
    /// from it; returns the move on the frame where it happens.
    fn follow(&mut self, alignment: &Alignment, size: (u32, u32)) -> Option<CameraMove> {
        let boxes = self.pipeline.regions().boxes();
        let reference = self.reference_for(size);
        let t = alignment.transform;
        if corner_distance(&boxes, &reference, &t) <= self.settings.move_px {
            self.candidate = None;
            return None;
        }
        let count = match self.candidate {
            Some((c, k)) if corner_distance(&boxes, &c, &t) <= self.settings.agree_px => k + 1,
            _ => 1,
        };
        if count < self.settings.confirm_frames.max(1) {
            self.candidate = Some((t, count));
            return None;
        }
        self.candidate = None;
        self.reference = Some((t, size));
        CameraMove::between(&reference, &t, size)
    }
}

/// Farthest distance between where two transforms put a corner of the
/// boxes.
fn corner_distance(boxes: &[[u32; 4]], a: &Affine, b: &Affine) -> f64 {
    boxes
        .iter()
        .flat_map(|r| [(r[0], r[1]), (r[0] + r[2], r[1] + r[3])])
        .map(|(x, y)| {
            let p = (f64::from(x), f64::from(y));
            let (e, f) = (a.apply(p), b.apply(p));
            (e.0 - f.0).hypot(e.1 - f.1)
        })
        .fold(0.0, f64::max)
}
