//! Alignment: an initial rotation by any angle, then reference marks found
//! by zero-mean normalised cross-correlation (ZNCC) in a search window,
//! giving the transform from the aligned frame to the camera frame.
//!
//! Marks are matched on grey levels, coarse-to-fine (a half-resolution
//! search over the whole window, then a full-resolution search of a few
//! pixels and a sub-pixel parabola fit). The first transform is then refined
//! by matching the marks again through it, which takes out the rotation
//! that the upright templates cannot see.

use image::{GrayImage, RgbImage};

use crate::error::VisionError;
use crate::geometry::{Affine, MotionModel};
use crate::sample::{gray_patch, Plane};
use crate::zncc::{best_match, Template};

mod builder;

pub use builder::AlignerBuilder;

/// A reference mark: a small template cut from a reference frame, and where
/// its top-left corner lies in the aligned frame.
#[derive(Debug, Clone)]
pub struct Mark {
    /// The template (grey levels).
    pub template: GrayImage,
    /// Top-left x in the aligned frame.
    pub x: f64,
    /// Top-left y in the aligned frame.
    pub y: f64,
}

/// How well one mark was found.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkMatch {
    /// Index of the mark in the configuration.
    pub index: usize,
    /// Top-left corner where the mark belongs, in the aligned frame.
    pub expected: (f64, f64),
    /// Where the mark's centre was found in the camera frame.
    pub found_in_camera: (f64, f64),
    /// ZNCC score of the final match, -1..1 (1 = identical up to
    /// brightness and contrast).
    pub score: f32,
    /// Distance in pixels between the found centre and where the fitted
    /// transform puts it (near 0 when the marks agree).
    pub residual_px: f64,
    /// Whether the transform used this mark. Of three marks, one that is
    /// lost (score below the minimum) or disagrees with the other two is
    /// left out and reported here; the other two align.
    pub used: bool,
}

/// The result of aligning one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Aligned-frame coordinates to camera-frame coordinates.
    pub transform: Affine,
    /// Size of the aligned frame.
    pub aligned_size: (u32, u32),
    /// The transform before marks were used (initial rotation only).
    pub initial: Affine,
    /// Each mark's match, in configuration order.
    pub marks: Vec<MarkMatch>,
}

impl Alignment {
    /// The lowest score of the marks used (`None` without marks).
    pub fn min_score(&self) -> Option<f32> {
        self.marks
            .iter()
            .filter(|m| m.used)
            .map(|m| m.score)
            .reduce(f32::min)
    }

    /// The correction the marks found on top of the initial rotation, as a
    /// map in the initially rotated frame (identity for a camera that did
    /// not move).
    pub fn correction(&self) -> Option<Affine> {
        Some(self.transform.then(&self.initial.inverse()?))
    }
}

/// Finds the transform from the aligned frame to each camera frame.
#[derive(Debug, Clone)]
pub struct Aligner {
    rotate_deg: f64,
    pub(crate) marks: Vec<PreparedMark>,
    search_radius: u32,
    max_rotation_deg: f64,
    pub(crate) min_score: f32,
    model: MotionModel,
    max_residual_px: f64,
    aligned_size: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedMark {
    pub(crate) x: f64,
    pub(crate) y: f64,
    /// The template's grey levels (the wide search turns and scales them).
    pub(crate) raw: Plane,
    full: Template,
    half: Option<Template>,
}

impl PreparedMark {
    pub(crate) fn centre(&self) -> (f64, f64) {
        (
            self.x + (self.full.width as f64 - 1.0) / 2.0,
            self.y + (self.full.height as f64 - 1.0) / 2.0,
        )
    }
}

impl Aligner {
    /// Starts a builder with defaults: no rotation, no marks, ±20 px window,
    /// up to 5 degrees of rotation, minimum score 0.5, the model chosen by
    /// the number of marks (see [`AlignerBuilder::model`]).
    pub fn builder() -> AlignerBuilder {
        AlignerBuilder::default()
    }

    /// Number of marks.
    pub fn mark_count(&self) -> usize {
        self.marks.len()
    }

    /// The initial rotation as a map from the aligned frame to a camera
    /// frame of `size`, and the aligned frame's size.
    pub fn initial(&self, size: (u32, u32)) -> (Affine, (u32, u32)) {
        let (w, h) = size;
        let quarter = (self.rotate_deg.rem_euclid(180.0) - 90.0).abs() < 1.0;
        let aligned = self
            .aligned_size
            .unwrap_or(if quarter { (h, w) } else { (w, h) });
        let centre = |(w, h): (u32, u32)| ((f64::from(w) - 1.0) / 2.0, (f64::from(h) - 1.0) / 2.0);
        let (ca, cr) = (centre(aligned), centre(size));
        let map = Affine::translation(-ca.0, -ca.1)
            .then(&Affine::rotation_scale(-self.rotate_deg, 1.0))
            .then(&Affine::translation(cr.0, cr.1));
        (map, aligned)
    }

    /// Aligns one camera frame, searching each mark around where the
    /// initial rotation puts it. Fails with [`VisionError::MarkNotFound`]
    /// when a mark scores below the minimum, and with
    /// [`VisionError::InconsistentMarks`] when the marks disagree.
    pub fn align(&self, image: &RgbImage) -> Result<Alignment, VisionError> {
        let (initial, _) = self.initial(image.dimensions());
        self.align_near(image, &initial)
    }

    /// As [`Aligner::align`], but searches each mark around where
    /// `reference` (aligned frame to camera frame) puts it, and bounds the
    /// rotation and scale relative to it: the local search of a camera
    /// whose reference has moved (see [`crate::Tracker`]).
    pub fn align_near(
        &self,
        image: &RgbImage,
        reference: &Affine,
    ) -> Result<Alignment, VisionError> {
        self.align_within(image, reference, self.search_radius, self.max_rotation_deg)
    }

    /// [`Aligner::align_near`] with another window half-size and largest
    /// rotation (the wide search refines its hypotheses with small ones).
    pub(crate) fn align_within(
        &self,
        image: &RgbImage,
        reference: &Affine,
        search_radius: u32,
        max_rotation_deg: f64,
    ) -> Result<Alignment, VisionError> {
        let (initial, aligned_size) = self.initial(image.dimensions());
        if self.marks.is_empty() {
            return Ok(Alignment {
                transform: *reference,
                aligned_size,
                initial,
                marks: Vec::new(),
            });
        }
        self.check_marks_fit(aligned_size)?;
        let to_pre = reference
            .inverse()
            .ok_or_else(|| VisionError::InvalidGeometry {
                reason: "reference transform is degenerate".into(),
            })?;
        let centre = (
            (f64::from(aligned_size.0) - 1.0) / 2.0,
            (f64::from(aligned_size.1) - 1.0) / 2.0,
        );
        // Stage 1: each mark in its whole window, through the reference.
        // Positions are kept in the reference's frame ("pre"), where fit()
        // works.
        let mut found = Vec::with_capacity(self.marks.len());
        for m in &self.marks {
            let (mc, r) = (m.centre(), f64::from(search_radius));
            let lever = ((mc.0 - centre.0).powi(2) + (mc.1 - centre.1).powi(2)).sqrt();
            let turn = 2.0 * lever * (max_rotation_deg.to_radians() / 2.0).sin();
            let radius = (r + turn).ceil() as usize;
            found.push(self.search_turned(image, reference, m, radius, max_rotation_deg)?);
        }
        let used = self.choose_marks(&found)?;
        let mut transform = self.fit(&found, &used, reference)?;
        // Stage 2: match again through the estimate, in a small window, so
        // the templates see the frame upright; twice is enough to converge.
        let mut scores: Vec<f32> = found.iter().map(|f| f.1).collect();
        for _ in 0..2 {
            for &k in &used {
                let m = &self.marks[k];
                let mc = m.centre();
                let (d, score) = self.search(image, &transform, m, 3)?;
                scores[k] = score;
                let cam = transform.apply((mc.0 + d.0, mc.1 + d.1));
                found[k] = (to_pre.apply(cam), score);
            }
            transform = self.fit(&found, &used, reference)?;
        }
        let mut marks = Vec::with_capacity(self.marks.len());
        for (k, m) in self.marks.iter().enumerate() {
            let score = scores[k];
            let in_use = used.contains(&k);
            if in_use && score < self.min_score {
                return Err(self.not_found(k, m, score));
            }
            let predicted = transform.apply(m.centre());
            let cam = reference.apply(found[k].0);
            let residual = ((predicted.0 - cam.0).powi(2) + (predicted.1 - cam.1).powi(2)).sqrt();
            if in_use && residual > self.max_residual_px {
                return Err(VisionError::InconsistentMarks {
                    reason: format!(
                        "mark {k} lies {residual:.1} px from where the other marks put it (max {:.1})",
                        self.max_residual_px
                    ),
                });
            }
            marks.push(MarkMatch {
                index: k,
                expected: (m.x, m.y),
                found_in_camera: cam,
                score,
                residual_px: residual,
                used: in_use,
            });
        }
        // The move found on top of the reference.
        let c = transform.then(&to_pre);
        let rot = c.rotation_deg();
        if rot.abs() > max_rotation_deg + 1.0 {
            return Err(VisionError::InconsistentMarks {
                reason: format!(
                    "marks imply a rotation of {rot:.1} degrees, more than the {max_rotation_deg:.1} allowed"
                ),
            });
        }
        if (c.scale() - 1.0).abs() > 0.05 {
            return Err(VisionError::InconsistentMarks {
                reason: format!("marks imply a scale of {:.3}", c.scale()),
            });
        }
        Ok(Alignment {
            transform,
            aligned_size,
            initial,
            marks,
        })
    }

    /// Every mark must lie inside the aligned frame.
    fn check_marks_fit(&self, aligned_size: (u32, u32)) -> Result<(), VisionError> {
        for (index, m) in self.marks.iter().enumerate() {
            let need = (
                (m.x + m.full.width as f64).ceil().max(0.0) as u32,
                (m.y + m.full.height as f64).ceil().max(0.0) as u32,
            );
            if m.x < 0.0 || m.y < 0.0 || need.0 > aligned_size.0 || need.1 > aligned_size.1 {
                return Err(VisionError::FrameSize {
                    got: aligned_size,
                    index,
                    x: m.x as f32,
                    y: m.y as f32,
                    need,
                });
            }
        }
        Ok(())
    }

    /// Stage 1 for one mark: the upright template first; when it scores
    /// below the minimum, the window is sampled turned about the mark by
    /// steps up to the largest rotation allowed, so that a turned camera
    /// still shows the mark as the template has it. Returns the mark's
    /// centre in the frame of `map` and the score.
    fn search_turned(
        &self,
        image: &RgbImage,
        map: &Affine,
        m: &PreparedMark,
        radius: usize,
        max_rotation_deg: f64,
    ) -> Result<((f64, f64), f32), VisionError> {
        let mc = m.centre();
        let (d, score) = self.search(image, map, m, radius)?;
        let mut best = ((mc.0 + d.0, mc.1 + d.1), score);
        if score >= self.min_score {
            return Ok(best);
        }
        // A step that moves the template's corner by about one pixel at
        // the coarse stage (two at full resolution) loses little score.
        let half_diag = 0.5 * (m.full.width as f64).hypot(m.full.height as f64);
        let step = (2.0 / half_diag).to_degrees().clamp(1.0, 6.0);
        let steps = (max_rotation_deg / step).ceil() as i32;
        for k in (1..=steps).flat_map(|k| [k, -k]) {
            let deg = (f64::from(k) * step).clamp(-max_rotation_deg, max_rotation_deg);
            let turn = Affine::rotation_about(mc, deg);
            let (d, score) = self.search(image, &turn.then(map), m, radius)?;
            if score > best.1 {
                best = (turn.apply((mc.0 + d.0, mc.1 + d.1)), score);
            }
        }
        Ok(best)
    }

    /// The marks to align with. All of them when they score well and keep
    /// their distances; of three, the best consistent two when one is lost
    /// (glare, dirt) or matched the wrong place; otherwise an error naming
    /// the mark.
    fn choose_marks(&self, found: &[((f64, f64), f32)]) -> Result<Vec<usize>, VisionError> {
        let all: Vec<usize> = (0..found.len()).collect();
        let good: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&k| found[k].1 >= self.min_score)
            .collect();
        if good.len() == all.len() {
            match self.check_distances(found, &all) {
                Ok(()) => return Ok(all),
                Err(e) if all.len() < 3 => return Err(e),
                Err(e) => {
                    // Which pair is consistent? Prefer the best scores.
                    let mut pairs = [[0, 1], [0, 2], [1, 2]];
                    pairs.sort_by(|a, b| {
                        let s = |p: &[usize; 2]| found[p[0]].1 + found[p[1]].1;
                        s(b).total_cmp(&s(a))
                    });
                    let ok: Vec<_> = pairs
                        .iter()
                        .filter(|p| self.check_distances(found, &p[..]).is_ok())
                        .collect();
                    // Exactly one consistent pair: the third mark is the odd one.
                    return match ok[..] {
                        [p] => {
                            log::warn!(
                                "alignment: mark {} disagrees with the others, not used",
                                3 - p[0] - p[1]
                            );
                            Ok(p.to_vec())
                        }
                        _ => Err(e),
                    };
                }
            }
        }
        if all.len() == 3 && good.len() == 2 {
            self.check_distances(found, &good)?;
            let lost = all.iter().find(|k| !good.contains(k)).copied().unwrap_or(0);
            log::warn!(
                "alignment: mark {lost} scored {:.2} (below {:.2}), aligning with the other two",
                found[lost].1,
                self.min_score
            );
            return Ok(good);
        }
        // A mark that scores low already here is missing (covered by glare,
        // out of the window): report that one, not the fallout of a bad fit.
        let k = all.iter().copied().find(|k| !good.contains(k)).unwrap_or(0);
        Err(self.not_found(k, &self.marks[k], found[k].1))
    }

    /// Marks keep their distances under a rigid motion: a pair that does
    /// not means one of them matched the wrong place.
    fn check_distances(
        &self,
        found: &[((f64, f64), f32)],
        used: &[usize],
    ) -> Result<(), VisionError> {
        let dist =
            |p: (f64, f64), q: (f64, f64)| ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt();
        let scale_slack = match self.model {
            MotionModel::Similarity | MotionModel::Affine => 0.05,
            _ => 0.03,
        };
        for (a, &i) in used.iter().enumerate() {
            for &j in &used[a + 1..] {
                let want = dist(self.marks[i].centre(), self.marks[j].centre());
                let got = dist(found[i].0, found[j].0);
                if (got - want).abs() > (scale_slack * want).max(self.max_residual_px) {
                    return Err(VisionError::InconsistentMarks {
                        reason: format!(
                            "marks {i} and {j} were found {got:.1} px apart, expected {want:.1} \
                             (scores {:.2}, {:.2}): one matched the wrong place",
                            found[i].1, found[j].1
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn not_found(&self, index: usize, m: &PreparedMark, score: f32) -> VisionError {
        VisionError::MarkNotFound {
            index,
            x: m.x as f32,
            y: m.y as f32,
            score,
            min_score: self.min_score,
        }
    }

    /// Searches mark `m` within `radius` of where `map` puts it; returns the
    /// offset in aligned-frame pixels and the score. The window is clipped
    /// to the frame (the template may stick out by half its size), so a
    /// radius larger than the frame costs no more than the frame.
    pub(crate) fn search(
        &self,
        image: &RgbImage,
        map: &Affine,
        m: &PreparedMark,
        radius: usize,
    ) -> Result<((f64, f64), f32), VisionError> {
        let (tw, th) = (m.full.width, m.full.height);
        let r = radius as f64;
        let ((left, right), (top, bottom)) = window_cuts(image.dimensions(), map, m, radius);
        let patch = gray_patch(
            image,
            map,
            (m.x - r + left as f64, m.y - r + top as f64),
            tw + 2 * radius - left - right,
            th + 2 * radius - top - bottom,
        );
        let coarse = match &m.half {
            Some(half) if radius > 6 => {
                let hp = patch.half();
                best_match(&hp, half, (0, usize::MAX), (0, usize::MAX))
            }
            _ => None,
        };
        let (us, vs) = match coarse {
            Some((u, v, _)) => {
                let (u, v) = ((2.0 * u).round() as usize, (2.0 * v).round() as usize);
                ((u.saturating_sub(2), u + 2), (v.saturating_sub(2), v + 2))
            }
            None => ((0, usize::MAX), (0, usize::MAX)),
        };
        let (u, v, score) =
            best_match(&patch, &m.full, us, vs).ok_or_else(|| VisionError::InvalidGeometry {
                reason: "search window smaller than the template".into(),
            })?;
        Ok(((u + left as f64 - r, v + top as f64 - r), score))
    }

    /// Fits the aligned -> camera transform to mark centres found in the
    /// frame of `base` (the map the search went through).
    fn fit(
        &self,
        found: &[((f64, f64), f32)],
        used: &[usize],
        base: &Affine,
    ) -> Result<Affine, VisionError> {
        let from: Vec<_> = used.iter().map(|&k| self.marks[k].centre()).collect();
        let to: Vec<_> = used.iter().map(|&k| found[k].0).collect();
        let model = match (used.len(), self.model) {
            (1, _) => MotionModel::Translation,
            (2, MotionModel::Affine) => MotionModel::Similarity,
            (_, m) => m,
        };
        let correction =
            Affine::fit(&from, &to, model).ok_or_else(|| VisionError::InconsistentMarks {
                reason: "marks coincide: no rotation can be measured".into(),
            })?;
        Ok(correction.then(base))
    }
}

/// How many pixels to cut off each side of mark `m`'s search window of
/// `radius` (through `map`, aligned -> camera) so that it stays within the
/// frame of `size`, give or take half the template: `((left, right), (top,
/// bottom))`. Never beyond the mark's expected place, so the window always
/// holds it. (Issue 17: a radius of 100,000 px searched 200,000 px squared
/// of clamped edge pixels for hours.)
fn window_cuts(
    size: (u32, u32),
    map: &Affine,
    m: &PreparedMark,
    radius: usize,
) -> ((usize, usize), (usize, usize)) {
    let Some(back) = map.inverse() else {
        return ((0, 0), (0, 0));
    };
    let (w, h) = (f64::from(size.0), f64::from(size.1));
    let corners = [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)].map(|c| back.apply(c));
    let lo = |f: fn(&(f64, f64)) -> f64| corners.iter().map(f).fold(f64::INFINITY, f64::min);
    let hi = |f: fn(&(f64, f64)) -> f64| corners.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
    let r = radius as f64;
    // One axis: the window [start - r, start + len + r] against the frame's
    // [from, to] widened by half the template.
    let cut = |start: f64, len: usize, from: f64, to: f64| -> (usize, usize) {
        let half = len as f64 / 2.0;
        let left = (from - half - (start - r)).clamp(0.0, r).floor();
        let right = ((start + len as f64 + r) - (to + half))
            .clamp(0.0, r)
            .floor();
        (left as usize, right as usize)
    };
    (
        cut(m.x, m.full.width, lo(|c| c.0), hi(|c| c.0)),
        cut(m.y, m.full.height, lo(|c| c.1), hi(|c| c.1)),
    )
}
