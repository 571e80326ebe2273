//! The settings of an [`Aligner`], checked, and its templates prepared.

use crate::align::{Aligner, Mark, PreparedMark};
use crate::error::VisionError;
use crate::geometry::MotionModel;
use crate::sample::Plane;
use crate::zncc::Template;

/// Builds an [`Aligner`]; see [`Aligner::builder`].
#[derive(Debug, Clone)]
pub struct AlignerBuilder {
    rotate_deg: f64,
    marks: Vec<Mark>,
    search_radius: u32,
    max_rotation_deg: f64,
    min_score: f32,
    model: Option<MotionModel>,
    max_residual_px: f64,
    aligned_size: Option<(u32, u32)>,
}

impl Default for AlignerBuilder {
    fn default() -> Self {
        Self {
            rotate_deg: 0.0,
            marks: Vec::new(),
            search_radius: crate::MeterGeometry::DEFAULT_SEARCH_RADIUS,
            max_rotation_deg: crate::MeterGeometry::DEFAULT_MAX_ROTATION,
            min_score: crate::MeterGeometry::DEFAULT_MIN_MARK_SCORE,
            model: None,
            max_residual_px: 4.0,
            aligned_size: None,
        }
    }
}

impl AlignerBuilder {
    /// Initial rotation, degrees counter-clockwise, applied to the camera
    /// frame first (180 for an upside-down camera).
    pub fn rotate_deg(mut self, deg: f64) -> Self {
        self.rotate_deg = deg;
        self
    }
    /// Adds a reference mark.
    pub fn mark(mut self, mark: Mark) -> Self {
        self.marks.push(mark);
        self
    }
    /// Search window half-size in pixels for the shift (default 20).
    pub fn search_radius(mut self, px: u32) -> Self {
        self.search_radius = px;
        self
    }
    /// Largest rotation to look for after the initial rotation (default 5
    /// degrees); widens each mark's window by what such a turn moves it.
    pub fn max_rotation_deg(mut self, deg: f64) -> Self {
        self.max_rotation_deg = deg;
        self
    }
    /// Lowest acceptable ZNCC score of each mark (default 0.5).
    pub fn min_score(mut self, score: f32) -> Self {
        self.min_score = score;
        self
    }
    /// Transform model. Default by the number of marks: one gives a
    /// translation, two a similarity (real cameras drift in distance too,
    /// by a few percent), three an affine map (as AI-on-the-edge does; it
    /// absorbs a slight perspective).
    pub fn model(mut self, model: MotionModel) -> Self {
        self.model = Some(model);
        self
    }
    /// Largest distance between a found mark and the fitted transform
    /// (default 4 px); larger means a mark matched the wrong place.
    pub fn max_residual_px(mut self, px: f64) -> Self {
        self.max_residual_px = px;
        self
    }
    /// Size of the aligned frame (default: the camera frame's, with width
    /// and height swapped for quarter turns).
    pub fn aligned_size(mut self, width: u32, height: u32) -> Self {
        self.aligned_size = Some((width, height));
        self
    }

    /// Checks the settings and prepares the templates.
    pub fn build(self) -> Result<Aligner, VisionError> {
        let invalid = |reason: String| VisionError::InvalidGeometry { reason };
        if !self.rotate_deg.is_finite() {
            return Err(invalid("rotate is not a finite number".into()));
        }
        if !(0.0..=45.0).contains(&self.max_rotation_deg) {
            return Err(invalid(format!(
                "max rotation {} must be within 0..=45 degrees",
                self.max_rotation_deg
            )));
        }
        if !(-1.0..=1.0).contains(&self.min_score) {
            return Err(invalid(format!(
                "min score {} must be within -1..=1",
                self.min_score
            )));
        }
        if self.marks.len() > 3 {
            return Err(invalid(format!(
                "{} marks given, at most 3 are used",
                self.marks.len()
            )));
        }
        let mut marks = Vec::with_capacity(self.marks.len());
        for (index, m) in self.marks.into_iter().enumerate() {
            let (w, h) = m.template.dimensions();
            if w < 4 || h < 4 {
                return Err(invalid(format!(
                    "mark {index} template is {w}x{h}, needs at least 4x4"
                )));
            }
            if !m.x.is_finite() || !m.y.is_finite() {
                return Err(invalid(format!("mark {index} position is not finite")));
            }
            let full = Template::new(&Plane::from_gray(&m.template)).ok_or_else(|| {
                invalid(format!(
                    "mark {index} template is flat (one grey level): nothing to match"
                ))
            })?;
            // A half-resolution copy for the coarse search; a flat one just
            // disables the coarse stage.
            let half = Template::new(&Plane::from_gray(&m.template).half());
            marks.push(PreparedMark {
                x: m.x,
                y: m.y,
                raw: Plane::from_gray(&m.template),
                full,
                half,
            });
        }
        let model = match (self.model, marks.len()) {
            (Some(MotionModel::Affine), n) if n < 3 => {
                return Err(invalid(format!("an affine model needs 3 marks, {n} given")))
            }
            (Some(m), _) => m,
            (None, 0 | 1) => MotionModel::Translation,
            (None, 2) => MotionModel::Similarity,
            (None, _) => MotionModel::Affine,
        };
        Ok(Aligner {
            rotate_deg: self.rotate_deg,
            marks,
            search_radius: self.search_radius,
            max_rotation_deg: self.max_rotation_deg,
            min_score: self.min_score,
            model,
            max_residual_px: self.max_residual_px,
            aligned_size: self.aligned_size,
        })
    }
}
