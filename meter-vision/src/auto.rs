//! Proposes the counter window and digit boxes of a new meter from one
//! (aligned) frame, so set-up starts from numbers that are nearly right.
//!
//! Roller digits are the largest row of same-sized glyphs on a meter face.
//! The frame is thresholded against its local mean (both polarities: dark
//! digits on white rollers, white digits on black ones), glyph-shaped
//! connected components are kept, and the longest row of components with
//! the same height, the same baseline and a regular pitch wins. Gaps in the
//! row (a rolling digit shows two half glyphs) are filled at the pitch.

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

mod ink;

use ink::{glyph_blobs, ink_components, local_means, threshold, Blob};

/// What [`propose_digits`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The counter window `[x, y, w, h]` around all digit boxes.
    pub window: [u32; 4],
    /// One box per digit, left to right.
    pub digits: Vec<[u32; 4]>,
    /// Distance between digit centres, pixels.
    pub pitch: f64,
    /// Glyphs actually seen (the rest were filled in at the pitch).
    pub glyphs_seen: usize,
    /// Whether the digits are dark on a light roller.
    pub dark_digits: bool,
}

/// Proposes the digit boxes of the counter in an aligned frame; `None`
/// when no row of at least three digit-like glyphs is found.
///
/// `expected` is the number of digits if known (the row closest to it in
/// length wins; boxes are added at the pitch to reach it when glyphs are
/// missing at the ends).
pub fn propose_digits(image: &RgbImage, expected: Option<usize>) -> Option<Proposal> {
    let gray = image::imageops::grayscale(image);
    let search = RowSearch {
        expected,
        nominal: gray.dimensions(),
        glyph_h: None,
    };
    find_row(&gray, &search).map(|r| r.proposal)
}

/// The row [`propose_digits`] picks, with what the rotation estimate and
/// the row check need besides the boxes.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub proposal: Proposal,
    /// How good a row it is (longer rows of taller glyphs score higher).
    pub score: f64,
    /// Centres of the glyphs seen, left to right.
    pub glyphs: Vec<(f64, f64)>,
    /// The glyphs' median height.
    pub glyph_h: f64,
}

impl Row {
    /// The line `y = a + b x` through the glyphs' centres that most of
    /// them lie on: a rolling digit's glyph sits higher or lower than the
    /// settled ones and must not tilt the line. Of the lines through two
    /// centres, the one with the most centres within a few pixels wins
    /// (then the flatter, then the closer fit); the line is fitted to those
    /// by least squares.
    pub fn line(&self) -> (f64, f64) {
        let g = &self.glyphs;
        let tol = (self.glyph_h * 0.06).max(1.5);
        let line_through = |p: &(f64, f64), q: &(f64, f64)| {
            let b = (q.1 - p.1) / (q.0 - p.0);
            (p.1 - b * p.0, b)
        };
        // (inliers, |slope|, squared residuals, inliers' indices)
        let mut best: Option<(usize, f64, f64, Vec<usize>)> = None;
        for (i, p) in g.iter().enumerate() {
            for q in &g[i + 1..] {
                if (q.0 - p.0).abs() < 1e-9 {
                    continue;
                }
                let (a, b) = line_through(p, q);
                let residual = |c: &(f64, f64)| (c.1 - a - b * c.0).abs();
                let inliers: Vec<usize> =
                    (0..g.len()).filter(|&k| residual(&g[k]) <= tol).collect();
                let spread: f64 = inliers.iter().map(|&k| residual(&g[k]).powi(2)).sum();
                // Ties go to the flatter line: the picture is level to
                // within a few degrees wherever a row is looked for.
                let better = best.as_ref().is_none_or(|(n, flat, sq, _)| {
                    inliers.len() > *n
                        || (inliers.len() == *n
                            && (b.abs() < flat - 1e-3 || (b.abs() <= flat + 1e-3 && spread < *sq)))
                });
                if better {
                    best = Some((inliers.len(), b.abs(), spread, inliers));
                }
            }
        }
        let Some((_, _, _, inliers)) = best else {
            return (g.first().map_or(0.0, |c| c.1), 0.0);
        };
        let n = inliers.len() as f64;
        let (mx, my) = inliers
            .iter()
            .fold((0.0, 0.0), |s, &k| (s.0 + g[k].0 / n, s.1 + g[k].1 / n));
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for &k in &inliers {
            sxx += (g[k].0 - mx).powi(2);
            sxy += (g[k].0 - mx) * (g[k].1 - my);
        }
        let b = if sxx < 1e-9 { 0.0 } else { sxy / sxx };
        (my - b * mx, b)
    }

    /// The slope `dy/dx` of [`Row::line`].
    pub fn slope(&self) -> f64 {
        self.line().1
    }

    /// Each digit box's centre, on [`Row::line`] (the boxes themselves are
    /// level).
    pub fn centres(&self) -> Vec<(f64, f64)> {
        let (a, b) = self.line();
        self.proposal
            .digits
            .iter()
            .map(|d| {
                let x = f64::from(d[0]) + f64::from(d[2]) / 2.0;
                (x, a + b * x)
            })
            .collect()
    }
}

/// What [`find_row`] looks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowSearch {
    /// The number of digits, if known.
    pub expected: Option<usize>,
    /// The size of the whole frame the picture belongs to: a picture cut
    /// from a frame keeps the frame's glyph-size limits and neighbourhoods.
    pub nominal: (u32, u32),
    /// Bounds of the glyphs' height, when known (smaller print nearby, a
    /// serial number, is a row too).
    pub glyph_h: Option<(f64, f64)>,
}

/// [`propose_digits`] on a grey image, with the row's glyphs.
pub(crate) fn find_row(gray: &GrayImage, search: &RowSearch) -> Option<Row> {
    find_rows(gray, search).into_iter().next()
}

/// Every row of digit-like glyphs in a grey image, best first, one per
/// place (the same row found at several thresholds counts once, at its
/// best): the runners-up are the candidates when the best row may be other
/// print on the meter face.
pub(crate) fn find_rows(gray: &GrayImage, search: &RowSearch) -> Vec<Row> {
    let expected = search.expected;
    // Each place's best row, with when it was found: of rows scoring the
    // same, the first found wins, as the search always did.
    let mut found: Vec<(usize, Row)> = Vec::new();
    let mut seq = 0;
    // Several neighbourhood sizes and margins: thin digits in tight roller
    // cells merge with the cell borders at some settings and not at others.
    let h = search.nominal.1;
    let settings = [
        (h / 24, 18.0),
        (h / 48, 18.0),
        (h / 24, 35.0),
        (h / 48, 35.0),
    ];
    // The neighbourhood means, once per size.
    let mut means: Vec<(u32, Vec<f64>)> = Vec::new();
    for (dark, (radius, margin)) in [true, false]
        .into_iter()
        .flat_map(|d| settings.into_iter().map(move |s| (d, s)))
    {
        let radius = radius.max(4);
        if !means.iter().any(|m| m.0 == radius) {
            means.push((radius, local_means(gray, radius)));
        }
        let mean = &means.iter().find(|m| m.0 == radius).expect("made above").1;
        let ink = threshold(gray, mean, dark, margin);
        let components = ink_components(&ink);
        let mut blobs = glyph_blobs(&components, search.nominal);
        if let Some((lo, hi)) = search.glyph_h {
            blobs.retain(|b| (lo..=hi).contains(&b.h()));
        }
        for row in rows(&blobs) {
            let Some(p) = boxes_for_row(&row, dark, gray, &components, expected) else {
                continue;
            };
            let score = row_score(&row, &p, expected);
            let row = Row {
                proposal: p,
                score,
                glyphs: row.iter().map(|b| (b.cx(), b.cy())).collect(),
                glyph_h: {
                    let mut hs: Vec<f64> = row.iter().map(Blob::h).collect();
                    hs.sort_by(f64::total_cmp);
                    hs[hs.len() / 2]
                },
            };
            seq += 1;
            match found
                .iter_mut()
                .find(|f| same_place(&f.1.proposal, &row.proposal))
            {
                Some(f) if score > f.1.score => *f = (seq, row),
                Some(_) => {}
                None => found.push((seq, row)),
            }
        }
    }
    found.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
    found.into_iter().map(|f| f.1).collect()
}

/// Whether two proposals are the same row: their windows overlap over
/// most of the smaller one.
fn same_place(a: &Proposal, b: &Proposal) -> bool {
    let (a, b) = (a.window, b.window);
    let overlap = |a0: u32, al: u32, b0: u32, bl: u32| {
        f64::from((a0 + al).min(b0 + bl).saturating_sub(a0.max(b0)))
    };
    let area = |w: [u32; 4]| f64::from(w[2]) * f64::from(w[3]);
    let shared = overlap(a[0], a[2], b[0], b[2]) * overlap(a[1], a[3], b[1], b[3]);
    shared > 0.5 * area(a).min(area(b))
}

/// Rows of blobs: same height (±20%), same vertical centre, left to right,
/// with a regular pitch (each gap a whole multiple of the pitch).
fn rows(blobs: &[Blob]) -> Vec<Vec<Blob>> {
    let mut out = Vec::new();
    for seed in blobs {
        let mut row: Vec<Blob> = blobs
            .iter()
            .filter(|b| {
                (b.h() / seed.h() - 1.0).abs() < 0.2 && (b.cy() - seed.cy()).abs() < seed.h() * 0.2
            })
            .copied()
            .collect();
        if row.len() < 3 {
            continue;
        }
        row.sort_by(|a, b| a.cx().total_cmp(&b.cx()));
        // Split where the gap is too large for a counter (more than two
        // missing digits) and keep runs with a regular pitch.
        let h = seed.h();
        let mut run = vec![row[0]];
        for b in row.into_iter().skip(1) {
            let gap = b.cx() - run[run.len() - 1].cx();
            if gap < h * 0.35 {
                continue; // a piece of the same glyph
            }
            if gap > h * 3.0 {
                out.push(std::mem::take(&mut run));
            }
            run.push(b);
        }
        out.push(run);
    }
    out.retain(|r| r.len() >= 3 && regular(r));
    out
}

fn pitch_of(row: &[Blob]) -> f64 {
    let mut gaps: Vec<f64> = row.windows(2).map(|w| w[1].cx() - w[0].cx()).collect();
    gaps.sort_by(f64::total_cmp);
    gaps[0].max(1.0) // the smallest gap: neighbours with no digit missing
}

fn regular(row: &[Blob]) -> bool {
    let p = pitch_of(row);
    row.windows(2).all(|w| {
        let k = (w[1].cx() - w[0].cx()) / p;
        (k - k.round()).abs() < 0.2 && k.round() <= 3.0
    })
}

/// Refines the pitch by a least-squares line through the glyph centres
/// against their slot numbers; returns (first centre, pitch).
fn fit_pitch(row: &[Blob]) -> (f64, f64) {
    let p0 = pitch_of(row);
    let c0 = row[0].cx();
    let ks: Vec<f64> = row.iter().map(|b| ((b.cx() - c0) / p0).round()).collect();
    let n = row.len() as f64;
    let (mk, mc) = (
        ks.iter().sum::<f64>() / n,
        row.iter().map(Blob::cx).sum::<f64>() / n,
    );
    let (mut skk, mut skc) = (0.0, 0.0);
    for (k, b) in ks.iter().zip(row) {
        skk += (k - mk) * (k - mk);
        skc += (k - mk) * (b.cx() - mc);
    }
    if skk < 1e-9 {
        return (c0, p0);
    }
    let p = skc / skk;
    (mc - p * mk, p)
}

fn boxes_for_row(
    row: &[Blob],
    dark: bool,
    gray: &GrayImage,
    components: &[Blob],
    expected: Option<usize>,
) -> Option<Proposal> {
    let (fw, fh) = gray.dimensions();
    let (first, pitch) = fit_pitch(row);
    let mut hs: Vec<f64> = row.iter().map(Blob::h).collect();
    hs.sort_by(f64::total_cmp);
    let glyph_h = hs[hs.len() / 2];
    // Roller digits sit about one glyph height apart (1.0..1.3 on the meters
    // seen); much closer are pieces of one glyph or of the roller face.
    if !(0.7..=2.0).contains(&(pitch / glyph_h)) {
        return None;
    }
    let cy = row.iter().map(Blob::cy).sum::<f64>() / row.len() as f64;
    // Centres on the fitted line, gaps filled.
    let last = row[row.len() - 1].cx();
    let n = ((last - first) / pitch).round() as usize + 1;
    let mut centres: Vec<f64> = (0..n).map(|k| first + k as f64 * pitch).collect();
    // Missing digits at the ends (a rolling digit shows two half glyphs;
    // leading zeros may be faint). With a known count, extend on the side
    // whose next slot looks most like the digit slots seen (mean grey
    // level), and not into the meter face around the counter. Without one,
    // extend only into slots that also hold ink like a digit's: about as
    // much as the slots seen, reaching over most of a glyph's height (a
    // settled glyph spans it; a rolling one shows a half glyph at each end),
    // which unit labels and window edges beside the counter rarely do.
    let half_w = pitch * 0.35;
    let inside = |x0: f64, x1: f64, y0: f64, y1: f64| {
        x0 >= 0.0 && y0 >= 0.0 && x1 < f64::from(fw) && y1 < f64::from(fh)
    };
    let slot_mean = |c: f64| -> Option<f64> {
        let (x0, x1) = (c - half_w, c + half_w);
        let (y0, y1) = (cy - glyph_h * 0.6, cy + glyph_h * 0.6);
        inside(x0, x1, y0, y1).then(|| region_mean(gray, x0, x1, y0, y1))
    };
    // The ink of the components that lie within a slot (half a pitch either
    // side of its centre, a glyph height above and below the row's centre
    // line; components reaching beyond are the window's edges or the meter
    // face): its share of the slot, and how far it reaches vertically, in
    // glyph heights.
    let slot_ink = |c: f64| -> Option<(f64, f64)> {
        let (x0, x1) = (c - pitch * 0.5, c + pitch * 0.5);
        let (y0, y1) = (cy - glyph_h, cy + glyph_h);
        if !inside(x0, x1, y0, y1) {
            return None;
        }
        let within: Vec<&Blob> = components
            .iter()
            .filter(|b| {
                f64::from(b.x0) >= x0
                    && f64::from(b.x1) <= x1
                    && f64::from(b.y0) >= y0
                    && f64::from(b.y1) <= y1
                    && b.h() >= glyph_h * 0.15
            })
            .collect();
        let area: u32 = within.iter().map(|b| b.area).sum();
        let reach = match (
            within.iter().map(|b| b.y0).min(),
            within.iter().map(|b| b.y1).max(),
        ) {
            (Some(top), Some(bottom)) => f64::from(bottom - top + 1) / glyph_h,
            _ => 0.0,
        };
        Some((f64::from(area) / ((x1 - x0) * (y1 - y0)), reach))
    };
    let mut seen: Vec<f64> = centres.iter().filter_map(|&c| slot_mean(c)).collect();
    seen.sort_by(f64::total_cmp);
    // None when every slot seen touches the frame's edge: nothing to extend from.
    let reference = seen.get(seen.len() / 2).copied();
    let mut seen_ink: Vec<f64> = row
        .iter()
        .filter_map(|b| slot_ink(b.cx()))
        .map(|i| i.0)
        .collect();
    seen_ink.sort_by(f64::total_cmp);
    let typical_ink = seen_ink.get(seen_ink.len() / 2).copied().unwrap_or(0.0);
    let grey_diff = |c: f64| {
        slot_mean(c)
            .zip(reference)
            .map(|(m, r)| (m - r).abs())
            .filter(|d| *d <= 60.0)
    };
    let digit_like = |c: f64| {
        slot_ink(c).is_some_and(|(share, reach)| {
            (typical_ink * 0.3..=typical_ink * 2.5).contains(&share) && reach >= 0.75
        })
    };
    // Without a count, as far as the slots look like digits, up to the
    // longest counter a config may have.
    let want = expected.unwrap_or(meter_core::Counter::MAX_DIGITS);
    while centres.len() < want {
        let left = centres[0] - pitch;
        let right = centres[centres.len() - 1] + pitch;
        let (l, r) = match expected {
            Some(_) => (grey_diff(left), grey_diff(right)),
            None => (
                grey_diff(left).filter(|_| digit_like(left)),
                grey_diff(right).filter(|_| digit_like(right)),
            ),
        };
        match (l, r) {
            (Some(l), r) if r.is_none_or(|r| l < r) => centres.insert(0, left),
            (_, Some(_)) => centres.push(right),
            _ => break,
        }
    }
    // The roller cell is a little wider than the glyph and about 1.3 times
    // its height: the sizes users configure for the model.
    let bw = (pitch * 0.74).round().max(4.0);
    let bh = (glyph_h * 1.3).round().max(4.0);
    let y = (cy - bh / 2.0).round().max(0.0);
    let digits: Vec<[u32; 4]> = centres
        .iter()
        .map(|c| {
            let x = (c - bw / 2.0).round().max(0.0);
            let w = bw.min(f64::from(fw) - x);
            let h = bh.min(f64::from(fh) - y);
            [x as u32, y as u32, w as u32, h as u32]
        })
        .collect();
    let x0 = digits[0][0];
    let last = digits[digits.len() - 1];
    Some(Proposal {
        window: [
            x0,
            y as u32,
            last[0] + last[2] - x0,
            bh.min(f64::from(fh) - y) as u32,
        ],
        digits,
        pitch,
        glyphs_seen: row.len(),
        dark_digits: dark,
    })
}

/// Mean value of the pixels in `[x0, x1) x [y0, y1)` (inside the image).
fn region_mean(img: &GrayImage, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    let (mut sum, mut n) = (0u64, 0u64);
    for y in y0 as u32..y1 as u32 {
        for x in x0 as u32..x1 as u32 {
            sum += u64::from(img.get_pixel(x, y)[0]);
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        sum as f64 / n as f64
    }
}

/// Prefers long rows of tall glyphs; with an expected count, rows that
/// need the fewest invented boxes.
fn row_score(row: &[Blob], p: &Proposal, expected: Option<usize>) -> f64 {
    let h = row.iter().map(Blob::h).sum::<f64>() / row.len() as f64;
    let seen = row.len() as f64;
    let count_penalty = expected.map_or(0.0, |n| (p.digits.len() as f64 - n as f64).abs() * 2.0);
    seen * 2.0 + h / 20.0 - count_penalty - (p.digits.len() as f64 - seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meter_synth::{FrameParams, MeterLayout};

    #[test]
    fn finds_the_synthetic_counter() {
        let layout = MeterLayout::default();
        let img = layout
            .render(&FrameParams {
                counter: 40_213.0,
                noise: 3.0,
                ..FrameParams::default()
            })
            .image;
        let p = propose_digits(&img, None).expect("a row");
        assert_eq!(p.digits.len(), 6, "{p:?}");
        for (got, want) in p.digits.iter().zip(&layout.digits) {
            let (gx, wx) = (
                f64::from(got[0]) + f64::from(got[2]) / 2.0,
                f64::from(want[0]) + f64::from(want[2]) / 2.0,
            );
            assert!((gx - wx).abs() < 5.0, "{got:?} vs {want:?}");
        }
        assert!(!p.dark_digits);
    }

    #[test]
    fn without_a_count_a_rolling_last_digit_is_kept() {
        // The last roller halfway between 3 and 4: two half glyphs, neither
        // glyph-shaped on its own.
        let layout = MeterLayout::default();
        let img = layout
            .render(&FrameParams {
                counter: 40_213.5,
                ..FrameParams::default()
            })
            .image;
        let p = propose_digits(&img, None).expect("a row");
        assert!(!p.dark_digits, "{p:?}");
        assert_eq!(p.glyphs_seen, 5, "{p:?}");
        assert_eq!(p.digits.len(), 6, "{p:?}");
        let (got, want) = (p.digits[5], layout.digits[5]);
        let centre = |b: [u32; 4]| f64::from(b[0]) + f64::from(b[2]) / 2.0;
        assert!(
            (centre(got) - centre(want)).abs() < 5.0,
            "{got:?} vs {want:?}"
        );
    }

    #[test]
    fn blank_frame_has_no_counter() {
        let img = RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]));
        assert!(propose_digits(&img, None).is_none());
    }
}
