//! The wide search: the reference marks looked for over the whole frame,
//! turned and scaled, when the local search around the reference fails
//! (the camera was bumped, the mount sagged).
//!
//! Coarse to fine:
//! 1. The frame is averaged down by a factor that leaves each template
//!    about 8 to 16 pixels across, and each mark, turned by steps over the
//!    allowed rotation, is correlated with the whole coarse frame; the best
//!    few peaks of each mark are kept with their angle.
//! 2. Two peaks of two marks make a hypothesis (a shift, a turn and a
//!    scale) when their distance and their angles agree with the marks'
//!    layout; a third mark near its predicted place supports it.
//! 3. The best of those are checked at full resolution (each mark matched
//!    through the hypothesis in a window of the coarse stage's
//!    uncertainty), and the best checked ones refined by the local search
//!    in a small window.

use image::RgbImage;

use crate::align::{Aligner, Alignment, PreparedMark};
use crate::error::VisionError;
use crate::geometry::{Affine, MotionModel};
use crate::sample::Plane;
use crate::zncc::{peaks, Integral, Template};

/// Bounds of the wide search, relative to the meter's reference transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WideSearch {
    /// Largest turn looked for, degrees either way (default 20).
    pub max_rotation_deg: f64,
    /// Largest change of scale, as a fraction (default 0.1: the camera
    /// 10% nearer or farther).
    pub max_scale: f64,
    /// Peaks kept per mark at the coarse stage (default 8).
    pub peaks_per_mark: usize,
    /// Hypotheses checked at full resolution (default 24).
    pub verify: usize,
    /// Hypotheses refined at full resolution (default 4).
    pub refine: usize,
}

impl Default for WideSearch {
    fn default() -> Self {
        Self {
            max_rotation_deg: 20.0,
            max_scale: 0.1,
            peaks_per_mark: 8,
            verify: 24,
            refine: 4,
        }
    }
}

/// One mark's peak at the coarse stage.
#[derive(Debug, Clone, Copy)]
struct Peak {
    /// The mark's centre in the camera frame.
    centre: (f64, f64),
    /// Turn relative to the reference, degrees.
    turn: f64,
    score: f32,
}

/// A transform the coarse stage proposes.
#[derive(Debug, Clone, Copy)]
struct Hypothesis {
    /// Aligned frame to camera frame.
    map: Affine,
    /// Sum of the supporting peaks' scores.
    score: f32,
    /// How many marks support it.
    marks: usize,
}

impl Aligner {
    /// Looks for the marks over the whole frame, turned up to
    /// `settings.max_rotation_deg` and scaled up to `settings.max_scale`
    /// relative to `reference`, and refines the best match. An alignment
    /// found this way must be confirmed (see [`crate::Tracker`]) before a
    /// reading from it is trusted: marks can match elsewhere.
    pub fn align_wide(
        &self,
        image: &RgbImage,
        reference: &Affine,
        settings: &WideSearch,
    ) -> Result<Alignment, VisionError> {
        let mut error = VisionError::InconsistentMarks {
            reason: "wide search: no two marks found in agreement".into(),
        };
        if self.marks.is_empty() {
            return Err(error);
        }
        let gray = Plane::from_gray(&image::imageops::grayscale(image));
        let mut levels: Vec<(usize, Plane, Integral)> = Vec::new();
        let mut all: Vec<Vec<Peak>> = Vec::with_capacity(self.marks.len());
        for m in &self.marks {
            let f = coarse_factor(m);
            if !levels.iter().any(|l| l.0 == f) {
                let mut p = gray.clone();
                let mut k = 1;
                while k < f {
                    p = p.half();
                    k *= 2;
                }
                let ii = Integral::new(&p);
                levels.push((f, p, ii));
            }
            let (_, plane, ii) = levels.iter().find(|l| l.0 == f).expect("level made above");
            all.push(mark_peaks(m, f, plane, ii, reference, settings));
        }
        let ref_inv = reference
            .inverse()
            .ok_or_else(|| VisionError::InvalidGeometry {
                reason: "reference transform is degenerate".into(),
            })?;
        let within = |map: &Affine, slack_deg: f64, slack_scale: f64| {
            let c = map.then(&ref_inv);
            c.rotation_deg().abs() <= settings.max_rotation_deg + slack_deg
                && (c.scale() - 1.0).abs() <= settings.max_scale + slack_scale
        };
        let f = self.marks.iter().map(coarse_factor).max().unwrap_or(1);
        let mut hyps = self.pair_hypotheses(&all, &ref_inv, &within);
        hyps.sort_by(|a, b| {
            (b.marks, b.score)
                .partial_cmp(&(a.marks, a.score))
                .expect("finite")
        });
        hyps.truncate(settings.verify);
        // Each hypothesis checked at full resolution: every mark matched
        // through it, in a window of the coarse stage's uncertainty.
        // A hypothesis on which fewer marks than an alignment needs come
        // near the minimum score is not refined: through its own turn the
        // templates already see the frame upright, so the refinement would
        // not lift them, and on a frame without the marks it was most of
        // the search's time.
        let need = self.marks.len().min(2);
        let near = self.min_score - 0.15;
        let mut promising = Vec::with_capacity(hyps.len());
        for h in &mut hyps {
            let scores: Vec<f32> = self
                .marks
                .iter()
                .map(|m| {
                    self.search(image, &h.map, m, f + 2)
                        .map_or(0.0, |r| r.1.max(0.0))
                })
                .collect();
            h.score = scores.iter().sum();
            promising.push(scores.iter().filter(|s| **s >= near).count() >= need);
        }
        let mut hyps: Vec<Hypothesis> = hyps
            .into_iter()
            .zip(promising)
            .filter_map(|(h, ok)| ok.then_some(h))
            .collect();
        hyps.sort_by(|a, b| b.score.total_cmp(&a.score));
        let step = max_step(&self.marks, f);
        for h in hyps.iter().take(settings.refine) {
            match self.align_within(image, &h.map, (2 * f + 3) as u32, step + 1.0) {
                Ok(a) if within(&a.transform, 1.0, 0.02) => return Ok(a),
                Ok(_) => {
                    error = VisionError::InconsistentMarks {
                        reason: "wide search: the marks imply a larger move than allowed".into(),
                    }
                }
                Err(e) => error = e,
            }
        }
        Err(error)
    }

    /// Every pair of peaks of two marks whose distance and angles fit the
    /// marks' layout, with the support of a third mark where it is found.
    fn pair_hypotheses(
        &self,
        all: &[Vec<Peak>],
        ref_inv: &Affine,
        within: &dyn Fn(&Affine, f64, f64) -> bool,
    ) -> Vec<Hypothesis> {
        let n = self.marks.len();
        let mut out = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let (pi, pj) = (self.marks[i].centre(), self.marks[j].centre());
                let tol_deg = 1.5 * max_step(&self.marks, coarse_factor(&self.marks[i]));
                for a in &all[i] {
                    for b in &all[j] {
                        let Some(map) =
                            Affine::fit(&[pi, pj], &[a.centre, b.centre], MotionModel::Similarity)
                        else {
                            continue;
                        };
                        if !within(&map, tol_deg / 2.0, 0.03) {
                            continue;
                        }
                        // A peak's own turn is a hint only: a template that
                        // looks alike turned scores best at the wrong turn.
                        let turn = map.then(ref_inv).rotation_deg();
                        let off = ((turn - a.turn).abs() + (turn - b.turn).abs()) / tol_deg;
                        let mut h = Hypothesis {
                            map,
                            score: a.score + b.score - 0.05 * off as f32,
                            marks: 2,
                        };
                        for (k, peaks) in all.iter().enumerate() {
                            if k == i || k == j {
                                continue;
                            }
                            let want = map.apply(self.marks[k].centre());
                            let f = coarse_factor(&self.marks[k]) as f64;
                            let near = peaks
                                .iter()
                                .filter(|p| {
                                    (p.centre.0 - want.0).hypot(p.centre.1 - want.1)
                                        <= 1.5 * f + 2.0
                                })
                                .map(|p| p.score)
                                .reduce(f32::max);
                            if let Some(s) = near {
                                h.score += s;
                                h.marks += 1;
                            }
                        }
                        out.push(h);
                    }
                }
            }
        }
        out
    }
}

/// The averaging factor (a power of two, up to 8) that leaves the
/// template about 8 to 16 pixels across.
fn coarse_factor(m: &PreparedMark) -> usize {
    let size = ((m.raw.width * m.raw.height) as f64).sqrt();
    let mut f = 1;
    while f < 8 && size / (2 * f) as f64 >= 8.0 {
        f *= 2;
    }
    f
}

/// The angular step at which a turned template's corner moves by under a
/// coarse pixel.
fn max_step(marks: &[PreparedMark], f: usize) -> f64 {
    marks
        .iter()
        .map(|m| {
            let half_diag = 0.5 * (m.raw.width as f64).hypot(m.raw.height as f64) / f as f64;
            (0.8 / half_diag).to_degrees().clamp(2.0, 8.0)
        })
        .fold(f64::INFINITY, f64::min)
}

/// The best peaks of mark `m` over the coarse plane, over turns of the
/// template through the allowed range.
fn mark_peaks(
    m: &PreparedMark,
    f: usize,
    plane: &Plane,
    ii: &Integral,
    reference: &Affine,
    settings: &WideSearch,
) -> Vec<Peak> {
    let step = max_step(std::slice::from_ref(m), f);
    let n = (settings.max_rotation_deg / step).ceil() as i32;
    let mut found: Vec<Peak> = Vec::new();
    for k in -n..=n {
        let turn = f64::from(k) * step;
        let lin = Affine {
            tx: 0.0,
            ty: 0.0,
            ..*reference
        }
        .then(&Affine::rotation_scale(turn, 1.0));
        let Some((tpl, (cw, ch))) = coarse_template(m, &lin, f) else {
            continue;
        };
        let sep = cw.max(ch) / 2 + 1;
        for (u, v, score) in peaks(plane, ii, &tpl, settings.peaks_per_mark, sep) {
            let ff = f as f64;
            let centre = (
                (u as f64 + (cw as f64 - 1.0) / 2.0) * ff + (ff - 1.0) / 2.0,
                (v as f64 + (ch as f64 - 1.0) / 2.0) * ff + (ff - 1.0) / 2.0,
            );
            found.push(Peak {
                centre,
                turn,
                score,
            });
        }
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let sep = f as f64 * 2.0;
    let mut kept: Vec<Peak> = Vec::new();
    for p in found {
        if kept
            .iter()
            .all(|q| (q.centre.0 - p.centre.0).hypot(q.centre.1 - p.centre.1) > sep)
        {
            kept.push(p);
            if kept.len() == settings.peaks_per_mark {
                break;
            }
        }
    }
    kept
}

/// The mark as the camera sees it through the linear map `lin`, averaged
/// down by `f`: the bounding box of the turned template, with the pixels
/// outside the template masked out. Returns the template and its size.
fn coarse_template(m: &PreparedMark, lin: &Affine, f: usize) -> Option<(Template, (usize, usize))> {
    let inv = lin.inverse()?;
    let (w, h) = (m.raw.width as f64, m.raw.height as f64);
    let (mut ex, mut ey) = (0.0f64, 0.0f64);
    for (x, y) in [(w, h), (w, -h)] {
        let p = lin.apply((x / 2.0, y / 2.0));
        ex = ex.max(p.0.abs());
        ey = ey.max(p.1.abs());
    }
    let ff = f as f64;
    let (cw, ch) = (
        ((2.0 * ex / ff).ceil() as usize).max(2),
        ((2.0 * ey / ff).ceil() as usize).max(2),
    );
    let tc = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
    let mut data = Vec::with_capacity(cw * ch);
    let mut valid = Vec::with_capacity(cw * ch);
    // Two by two samples in each coarse pixel.
    let subs = [-0.25, 0.25];
    for j in 0..ch {
        for i in 0..cw {
            let (ox, oy) = (
                (i as f64 - (cw as f64 - 1.0) / 2.0) * ff,
                (j as f64 - (ch as f64 - 1.0) / 2.0) * ff,
            );
            let (mut sum, mut ok) = (0.0f32, true);
            for sy in subs {
                for sx in subs {
                    let t = inv.apply((ox + sx * ff, oy + sy * ff));
                    let (x, y) = (tc.0 + t.0, tc.1 + t.1);
                    if x < 0.0 || y < 0.0 || x > w - 1.0 || y > h - 1.0 {
                        ok = false;
                    } else {
                        sum += bilinear(&m.raw, x, y);
                    }
                }
            }
            data.push(sum / 4.0);
            valid.push(ok);
        }
    }
    let plane = Plane {
        width: cw,
        height: ch,
        data,
    };
    // Too few pixels of the mark left to tell it from anything else.
    if valid.iter().filter(|v| **v).count() < 8 {
        return None;
    }
    Template::masked(&plane, &valid).map(|t| (t, (cw, ch)))
}

/// Bilinear sample of a plane at a point inside it.
fn bilinear(p: &Plane, x: f64, y: f64) -> f32 {
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(p.width - 1), (y0 + 1).min(p.height - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let top = p.get(x0, y0) * (1.0 - fx) + p.get(x1, y0) * fx;
    let bottom = p.get(x0, y1) * (1.0 - fx) + p.get(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}
