//! Geometric transforms between the aligned frame and the camera frame.
//!
//! Coordinates are in pixels with pixel centres at integers and `y` pointing
//! down. Angles are in degrees, counter-clockwise positive as seen on the
//! screen (the convention of the meter config's `rotate`).

use serde::{Deserialize, Serialize};

/// Determinants smaller than this make a transform degenerate.
const DEGENERATE: f64 = 1e-9;

/// An affine map `p -> A p + t`: `x' = a x + b y + tx`, `y' = c x + d y + ty`.
///
/// Used as a value: build with the constructors, combine with
/// [`Affine::then`], undo with [`Affine::inverse`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    /// Row 1 of the linear part.
    pub a: f64,
    /// Row 1 of the linear part.
    pub b: f64,
    /// Row 2 of the linear part.
    pub c: f64,
    /// Row 2 of the linear part.
    pub d: f64,
    /// Translation in x.
    pub tx: f64,
    /// Translation in y.
    pub ty: f64,
}

impl Default for Affine {
    fn default() -> Self {
        Self::IDENTITY
    }
}

/// Which transforms alignment may find between the marks and the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MotionModel {
    /// Shift only.
    Translation,
    /// Shift and rotation (a camera at a fixed distance).
    #[default]
    Rigid,
    /// Shift, rotation and uniform scale.
    Similarity,
    /// Any affine map (needs three marks not on one line); absorbs the
    /// slight perspective of a camera that is not square to the meter.
    Affine,
}

impl Affine {
    /// The identity.
    pub const IDENTITY: Affine = Affine {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 1.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// A shift by `(dx, dy)`.
    pub fn translation(dx: f64, dy: f64) -> Self {
        Self {
            tx: dx,
            ty: dy,
            ..Self::IDENTITY
        }
    }

    /// A counter-clockwise rotation by `deg` degrees and a uniform scale
    /// about the origin.
    pub fn rotation_scale(deg: f64, scale: f64) -> Self {
        let (s, c) = deg.to_radians().sin_cos();
        // With y down, a counter-clockwise turn moves +x towards -y.
        Self {
            a: scale * c,
            b: scale * s,
            c: -scale * s,
            d: scale * c,
            tx: 0.0,
            ty: 0.0,
        }
    }

    /// A counter-clockwise rotation by `deg` degrees about `centre`.
    pub fn rotation_about(centre: (f64, f64), deg: f64) -> Self {
        Self::translation(-centre.0, -centre.1)
            .then(&Self::rotation_scale(deg, 1.0))
            .then(&Self::translation(centre.0, centre.1))
    }

    /// Applies the map to a point.
    pub fn apply(&self, p: (f64, f64)) -> (f64, f64) {
        (
            self.a * p.0 + self.b * p.1 + self.tx,
            self.c * p.0 + self.d * p.1 + self.ty,
        )
    }

    /// `self` first, then `next`: `(self.then(next)).apply(p) == next.apply(self.apply(p))`.
    pub fn then(&self, next: &Affine) -> Affine {
        let n = next;
        Affine {
            a: n.a * self.a + n.b * self.c,
            b: n.a * self.b + n.b * self.d,
            c: n.c * self.a + n.d * self.c,
            d: n.c * self.b + n.d * self.d,
            tx: n.a * self.tx + n.b * self.ty + n.tx,
            ty: n.c * self.tx + n.d * self.ty + n.ty,
        }
    }

    /// Determinant of the linear part.
    pub fn determinant(&self) -> f64 {
        self.a * self.d - self.b * self.c
    }

    /// The inverse map, `None` when the map is degenerate (collapses the
    /// plane to a line or a point).
    pub fn inverse(&self) -> Option<Affine> {
        let det = self.determinant();
        if !det.is_finite() || det.abs() < DEGENERATE {
            return None;
        }
        let (a, b, c, d) = (self.d / det, -self.b / det, -self.c / det, self.a / det);
        Some(Affine {
            a,
            b,
            c,
            d,
            tx: -(a * self.tx + b * self.ty),
            ty: -(c * self.tx + d * self.ty),
        })
    }

    /// The rotation part in degrees, counter-clockwise positive.
    pub fn rotation_deg(&self) -> f64 {
        (-self.c).atan2(self.a).to_degrees()
    }

    /// The mean scale of the linear part (`sqrt(|det|)`).
    pub fn scale(&self) -> f64 {
        self.determinant().abs().sqrt()
    }

    /// Fits the map of `model` that best takes each `from[i]` to `to[i]`
    /// (least squares). `None` when the points cannot determine it: no
    /// points, mismatched lengths, coincident points for a rotation, or
    /// non-finite input.
    pub fn fit(from: &[(f64, f64)], to: &[(f64, f64)], model: MotionModel) -> Option<Affine> {
        if from.is_empty() || from.len() != to.len() {
            return None;
        }
        if from
            .iter()
            .chain(to)
            .any(|p| !p.0.is_finite() || !p.1.is_finite())
        {
            return None;
        }
        let n = from.len() as f64;
        let mean = |ps: &[(f64, f64)]| {
            let s = ps.iter().fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.1));
            (s.0 / n, s.1 / n)
        };
        let (cf, ct) = (mean(from), mean(to));
        if model == MotionModel::Translation {
            return Some(Affine::translation(ct.0 - cf.0, ct.1 - cf.1));
        }
        if model == MotionModel::Affine {
            return fit_affine(from, to, cf, ct);
        }
        // Closed-form least squares for v = [p q; -q p] u (u, v centred).
        let (mut sp, mut sq, mut uu) = (0.0, 0.0, 0.0);
        for (f, t) in from.iter().zip(to) {
            let u = (f.0 - cf.0, f.1 - cf.1);
            let v = (t.0 - ct.0, t.1 - ct.1);
            sp += u.0 * v.0 + u.1 * v.1;
            sq += u.1 * v.0 - u.0 * v.1;
            uu += u.0 * u.0 + u.1 * u.1;
        }
        if uu < DEGENERATE {
            return None;
        }
        let (mut p, mut q) = (sp / uu, sq / uu);
        if model == MotionModel::Rigid {
            let norm = (p * p + q * q).sqrt();
            if norm < DEGENERATE {
                return None;
            }
            (p, q) = (p / norm, q / norm);
        }
        let lin = Affine {
            a: p,
            b: q,
            c: -q,
            d: p,
            tx: 0.0,
            ty: 0.0,
        };
        let moved = lin.apply(cf);
        Some(Affine {
            tx: ct.0 - moved.0,
            ty: ct.1 - moved.1,
            ..lin
        })
    }
}

/// Least-squares affine fit on centred points (normal equations).
fn fit_affine(
    from: &[(f64, f64)],
    to: &[(f64, f64)],
    cf: (f64, f64),
    ct: (f64, f64),
) -> Option<Affine> {
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    let (mut ux, mut uy, mut vx, mut vy) = (0.0, 0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (x, y) = (f.0 - cf.0, f.1 - cf.1);
        let (u, v) = (t.0 - ct.0, t.1 - ct.1);
        sxx += x * x;
        sxy += x * y;
        syy += y * y;
        ux += u * x;
        uy += u * y;
        vx += v * x;
        vy += v * y;
    }
    let det = sxx * syy - sxy * sxy;
    // Collinear points (relative to their spread) fix no affine map.
    if det.abs() < 1e-6 * (sxx + syy).powi(2).max(DEGENERATE) {
        return None;
    }
    let solve = |bx: f64, by: f64| ((bx * syy - by * sxy) / det, (by * sxx - bx * sxy) / det);
    let (a, b) = solve(ux, uy);
    let (c, d) = solve(vx, vy);
    let lin = Affine {
        a,
        b,
        c,
        d,
        tx: 0.0,
        ty: 0.0,
    };
    let moved = lin.apply(cf);
    Some(Affine {
        tx: ct.0 - moved.0,
        ty: ct.1 - moved.1,
        ..lin
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(p: (f64, f64), q: (f64, f64)) -> bool {
        (p.0 - q.0).abs() < 1e-9 && (p.1 - q.1).abs() < 1e-9
    }

    #[test]
    fn ccw_rotation_moves_right_to_up() {
        let r = Affine::rotation_scale(90.0, 1.0);
        assert!(close(r.apply((1.0, 0.0)), (0.0, -1.0)));
        assert!((r.rotation_deg() - 90.0).abs() < 1e-9);
        let r = Affine::rotation_about((10.0, 10.0), 180.0);
        assert!(close(r.apply((0.0, 0.0)), (20.0, 20.0)));
    }

    #[test]
    fn degenerate_inputs_give_none() {
        let zero = Affine {
            a: 0.0,
            d: 0.0,
            ..Affine::IDENTITY
        };
        assert!(zero.inverse().is_none());
        let p = [(5.0, 5.0), (5.0, 5.0)];
        assert!(Affine::fit(&p, &p, MotionModel::Rigid).is_none());
        assert!(Affine::fit(&p, &p, MotionModel::Translation).is_some());
        assert!(Affine::fit(&[], &[], MotionModel::Translation).is_none());
        let line = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)];
        assert!(Affine::fit(&line, &line, MotionModel::Affine).is_none());
        let tri = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        let sheared: Vec<_> = tri
            .iter()
            .map(|p| (p.0 + 0.1 * p.1 + 3.0, p.1 * 1.02))
            .collect();
        let f = Affine::fit(&tri, &sheared, MotionModel::Affine).unwrap();
        assert!(close(f.apply((5.0, 5.0)), (5.0 + 0.5 + 3.0, 5.1)));
        assert!(Affine::fit(&[(f64::NAN, 0.0)], &[(0.0, 0.0)], MotionModel::Translation).is_none());
    }
}
