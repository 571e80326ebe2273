//! Zero-mean normalised cross-correlation (ZNCC): templates, window
//! statistics from integral images, the best match in a window, and the
//! strongest peaks over a whole plane (for the wide search).

use image::GrayImage;

use crate::sample::Plane;

/// A zero-mean template and its norm, ready for ZNCC.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) width: usize,
    pub(crate) height: usize,
    zero_mean: Vec<f32>,
    norm: f32,
}

impl Template {
    pub(crate) fn new(p: &Plane) -> Option<Self> {
        Self::masked(p, &vec![true; p.data.len()])
    }

    /// A template of which only the `valid` pixels count (a rotated
    /// template's corners are not part of the mark). The others are set to
    /// the valid pixels' mean, so they add nothing to the correlation; the
    /// window's variance is still taken over the whole rectangle, which
    /// lowers every score alike and keeps the peaks where they are. `None`
    /// when no pixel is valid or the valid ones are flat.
    pub(crate) fn masked(p: &Plane, valid: &[bool]) -> Option<Self> {
        let n = valid.iter().filter(|v| **v).count();
        if n == 0 || valid.len() != p.data.len() {
            return None;
        }
        let mean = p
            .data
            .iter()
            .zip(valid)
            .filter(|(_, ok)| **ok)
            .map(|(v, _)| v)
            .sum::<f32>()
            / n as f32;
        let zero_mean: Vec<f32> = p
            .data
            .iter()
            .zip(valid)
            .map(|(v, ok)| if *ok { v - mean } else { 0.0 })
            .collect();
        let norm = zero_mean.iter().map(|v| v * v).sum::<f32>().sqrt();
        (norm > 1e-3 * (n as f32).sqrt()).then_some(Self {
            width: p.width,
            height: p.height,
            zero_mean,
            norm,
        })
    }
}

/// Sums and sums of squares of a plane, for window statistics in O(1).
pub(crate) struct Integral {
    stride: usize,
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Integral {
    pub(crate) fn new(p: &Plane) -> Self {
        let stride = p.width + 1;
        let mut sum = vec![0.0; stride * (p.height + 1)];
        let mut sq = vec![0.0; stride * (p.height + 1)];
        for y in 0..p.height {
            let (mut rs, mut rq) = (0.0f64, 0.0f64);
            for x in 0..p.width {
                let v = f64::from(p.get(x, y));
                rs += v;
                rq += v * v;
                sum[(y + 1) * stride + x + 1] = sum[y * stride + x + 1] + rs;
                sq[(y + 1) * stride + x + 1] = sq[y * stride + x + 1] + rq;
            }
        }
        Self { stride, sum, sq }
    }

    pub(crate) fn window(&self, x: usize, y: usize, w: usize, h: usize) -> (f64, f64) {
        let s = self.stride;
        let at = |t: &Vec<f64>| {
            t[(y + h) * s + x + w] - t[y * s + x + w] - t[(y + h) * s + x] + t[y * s + x]
        };
        (at(&self.sum), at(&self.sq))
    }
}

/// ZNCC of `t` placed at `(u, v)` in `p`.
pub(crate) fn zncc_at(p: &Plane, ii: &Integral, t: &Template, u: usize, v: usize) -> f32 {
    let mut num = 0.0f32;
    for j in 0..t.height {
        let row = &p.data[(v + j) * p.width + u..][..t.width];
        let trow = &t.zero_mean[j * t.width..][..t.width];
        num += row.iter().zip(trow).map(|(a, b)| a * b).sum::<f32>();
    }
    let n = (t.width * t.height) as f64;
    let (s, q) = ii.window(u, v, t.width, t.height);
    let var = q - s * s / n;
    if var <= 1e-6 * n {
        return 0.0; // a flat window matches nothing
    }
    num / (t.norm * var.sqrt() as f32)
}

/// Best placement of `t` in `p` over `u in us, v in vs` (inclusive), with
/// a sub-pixel parabola fit. Returns `(u, v, score)`.
pub(crate) fn best_match(
    p: &Plane,
    t: &Template,
    us: (usize, usize),
    vs: (usize, usize),
) -> Option<(f64, f64, f32)> {
    if p.width < t.width || p.height < t.height {
        return None;
    }
    let (umax, vmax) = (p.width - t.width, p.height - t.height);
    let (u0, u1) = (us.0.min(umax), us.1.min(umax));
    let (v0, v1) = (vs.0.min(vmax), vs.1.min(vmax));
    let ii = Integral::new(p);
    let mut best = (u0, v0, f32::NEG_INFINITY);
    for v in v0..=v1 {
        for u in u0..=u1 {
            let s = zncc_at(p, &ii, t, u, v);
            if s > best.2 {
                best = (u, v, s);
            }
        }
    }
    let (u, v, s0) = best;
    let offset = |lo: Option<f32>, hi: Option<f32>| -> f64 {
        match (lo, hi) {
            (Some(a), Some(b)) => {
                let denom = a - 2.0 * s0 + b;
                if denom < -1e-6 {
                    f64::from((0.5 * (a - b) / denom).clamp(-0.5, 0.5))
                } else {
                    0.0
                }
            }
            _ => 0.0,
        }
    };
    let at = |uu: Option<usize>, vv: Option<usize>| match (uu, vv) {
        (Some(uu), Some(vv)) if uu <= umax && vv <= vmax => Some(zncc_at(p, &ii, t, uu, vv)),
        _ => None,
    };
    let dx = offset(at(u.checked_sub(1), Some(v)), at(Some(u + 1), Some(v)));
    let dy = offset(at(Some(u), v.checked_sub(1)), at(Some(u), Some(v + 1)));
    Some((u as f64 + dx, v as f64 + dy, s0))
}

/// Where `template` best matches `image` (ZNCC, sub-pixel), with its
/// top-left corner searched within `radius` pixels of `near`. Returns the
/// top-left corner and the score; `None` when the template is flat or the
/// window does not fit in the image.
pub fn locate(
    image: &GrayImage,
    template: &GrayImage,
    near: (i64, i64),
    radius: u32,
) -> Option<((f64, f64), f32)> {
    let t = Template::new(&Plane::from_gray(template))?;
    let r = i64::from(radius);
    let x0 = (near.0 - r).max(0);
    let y0 = (near.1 - r).max(0);
    let x1 = (near.0 + r + t.width as i64).min(i64::from(image.width()));
    let y1 = (near.1 + r + t.height as i64).min(i64::from(image.height()));
    if x1 - x0 < t.width as i64 || y1 - y0 < t.height as i64 {
        return None;
    }
    let sub = image::imageops::crop_imm(
        image,
        x0 as u32,
        y0 as u32,
        (x1 - x0) as u32,
        (y1 - y0) as u32,
    )
    .to_image();
    let p = Plane::from_gray(&sub);
    let (u, v, s) = best_match(&p, &t, (0, p.width - t.width), (0, p.height - t.height))?;
    Some(((x0 as f64 + u, y0 as f64 + v), s))
}

/// A dot product the compiler can vectorise (eight independent sums).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The `k` best placements `(u, v, score)` of `t` anywhere in `p`, best
/// first, each a local maximum at least `min_sep` pixels (in x or y) from
/// every better one.
pub(crate) fn peaks(
    p: &Plane,
    ii: &Integral,
    t: &Template,
    k: usize,
    min_sep: usize,
) -> Vec<(usize, usize, f32)> {
    if p.width < t.width || p.height < t.height || k == 0 {
        return Vec::new();
    }
    let (nu, nv) = (p.width - t.width + 1, p.height - t.height + 1);
    let n = (t.width * t.height) as f64;
    let mut map = vec![0.0f32; nu * nv];
    for v in 0..nv {
        for u in 0..nu {
            let (s, q) = ii.window(u, v, t.width, t.height);
            let var = q - s * s / n;
            if var <= 1e-6 * n {
                continue;
            }
            let mut num = 0.0f32;
            for j in 0..t.height {
                let row = &p.data[(v + j) * p.width + u..][..t.width];
                num += dot(row, &t.zero_mean[j * t.width..][..t.width]);
            }
            map[v * nu + u] = num / (t.norm * var.sqrt() as f32);
        }
    }
    let mut maxima: Vec<(usize, usize, f32)> = Vec::new();
    for v in 0..nv {
        for u in 0..nu {
            let s = map[v * nu + u];
            if s <= 0.0 {
                continue;
            }
            let higher = (v.saturating_sub(1)..(v + 2).min(nv))
                .flat_map(|vv| (u.saturating_sub(1)..(u + 2).min(nu)).map(move |uu| (uu, vv)))
                .any(|(uu, vv)| map[vv * nu + uu] > s);
            if !higher {
                maxima.push((u, v, s));
            }
        }
    }
    maxima.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut out: Vec<(usize, usize, f32)> = Vec::with_capacity(k);
    for m in maxima {
        let apart = |o: &(usize, usize, f32)| m.0.abs_diff(o.0).max(m.1.abs_diff(o.1)) >= min_sep;
        if out.iter().all(apart) {
            out.push(m);
            if out.len() == k {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Plane {
        Plane {
            width: w,
            height: h,
            data: (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .map(|(x, y)| f(x, y))
                .collect(),
        }
    }

    #[test]
    fn peaks_find_every_copy_best_first() {
        let pattern = |x: usize, y: usize| {
            if (x / 2 + y / 3).is_multiple_of(2) {
                200.0
            } else {
                10.0
            }
        };
        let t = plane(8, 9, pattern);
        // Two copies, the second with less contrast and a grey offset.
        let p = plane(60, 40, |x, y| match (x, y) {
            (5..=12, 7..=15) => pattern(x - 5, y - 7),
            (40..=47, 20..=28) => 100.0 + 0.3 * pattern(x - 40, y - 20),
            _ => 90.0 + ((x * 7 + y * 13) % 5) as f32,
        });
        let ii = Integral::new(&p);
        let tpl = Template::new(&t).unwrap();
        let found = peaks(&p, &ii, &tpl, 2, 4);
        assert_eq!((found[0].0, found[0].1), (5, 7), "{found:?}");
        assert_eq!((found[1].0, found[1].1), (40, 20), "{found:?}");
        assert!(found[0].2 > 0.99 && found[1].2 > 0.99, "{found:?}");
        // A masked template ignores what lies under its invalid pixels.
        let valid: Vec<bool> = (0..72).map(|i| i % 8 != 0).collect();
        let masked = Template::masked(&t, &valid).unwrap();
        let found = peaks(&p, &ii, &masked, 1, 4);
        assert_eq!((found[0].0, found[0].1), (5, 7), "{found:?}");
    }
}
