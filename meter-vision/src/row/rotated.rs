//! Set-up without knowing the camera's rotation: the frame turned by steps,
//! the best few rows of digit-like glyphs found again level, and the one a
//! reader of digits is surest of kept.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::{mean, rows_through, FoundRow, Source, Turns};
use crate::auto::{find_row, Proposal, RowSearch};
use crate::geometry::Affine;
use crate::sample::{sample_rect, Resample};

/// A digit row proposed without knowing the camera's rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Oriented {
    /// The initial rotation that makes the row level, degrees
    /// counter-clockwise (the config's `rotate`).
    pub rotate: f64,
    /// The counter in the frame turned by `rotate`.
    pub proposal: Proposal,
}

/// How many distinct rows [`rotated_candidates`] looks at closely: the
/// counter, and other level print on the meter face (a serial number, the
/// dials) that may outscore it in the coarse look.
const CANDIDATES: usize = 3;

/// The rows that may be the counter of a frame taken at any rotation within
/// 45 degrees of `hint` (0 without one), best first: the frame is turned by
/// steps and the best few distinct rows of digit-like glyphs are kept; each
/// is then found again in full resolution where it lies, level (its slope
/// gives the exact angle).
pub fn rotated_candidates(
    image: &RgbImage,
    expected: Option<usize>,
    hint: Option<f64>,
) -> Vec<Oriented> {
    let size = image.dimensions();
    let hint = hint.unwrap_or(0.0);
    let base = initial_map(size, hint);
    let turns = Turns {
        max_deg: 45.0,
        step_deg: 3.0,
    };
    let search = RowSearch {
        expected,
        nominal: size,
        glyph_h: None,
    };
    let (w, h) = (f64::from(size.0), f64::from(size.1));
    let mid = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
    let n = (turns.max_deg / turns.step_deg).round() as i32;
    // Every turn's best few rows. Set-up only, once: sampled in colour as
    // the proposals were tuned.
    let mut sighted: Vec<Sighting> = Vec::new();
    for k in -n..=n {
        let deg = f64::from(k) * turns.step_deg;
        let map = Affine::rotation_about(mid, deg).then(&base);
        let rect = [0.0, 0.0, w, h];
        for row in rows_through(Source::Rgb(image), &map, rect, 0.5, search, CANDIDATES) {
            let at = row.centres.iter().map(|&c| map.apply(c)).collect();
            sighted.push(Sighting { deg, row, at });
        }
    }
    sighted.sort_by(|a, b| b.row.score.total_cmp(&a.row.score));
    let mut distinct: Vec<Sighting> = Vec::new();
    for s in sighted {
        if distinct.len() == CANDIDATES {
            break;
        }
        if !distinct.iter().any(|d| d.same_row(&s)) {
            distinct.push(s);
        }
    }
    // In the coarse look's order: its best row first, as before there were
    // runners-up.
    distinct
        .iter()
        .filter_map(|s| {
            // A row falling to the right needs the picture turned
            // clockwise; the turned map is the initial rotation's map for
            // `hint - turn`.
            let level = s.deg - s.row.slope.atan().to_degrees();
            level_row(image, s, normalise(hint - level), expected)
        })
        .collect()
}

/// A row seen in the coarse look.
struct Sighting {
    /// The turn it was seen at.
    deg: f64,
    row: FoundRow,
    /// Its digit centres in the camera frame.
    at: Vec<(f64, f64)>,
}

impl Sighting {
    /// Whether two sightings are one row (seen at neighbouring turns, or at
    /// two thresholds): the same place and the same pitch.
    fn same_row(&self, other: &Sighting) -> bool {
        let (a, b) = (mean(&self.at), mean(&other.at));
        let (pa, pb) = (self.row.pitch, other.row.pitch);
        (a.0 - b.0).hypot(a.1 - b.1) < pa.max(pb) && (pa / pb - 1.0).abs() < 0.25
    }
}

/// The counter of a frame taken at any rotation within 45 degrees of `hint`,
/// or without one of upright or upside down, chosen by what reads most
/// surely as digits: each of [`rotated_candidates`] (and, without a hint,
/// each turned half round) has its digit boxes cropped at `input` size and
/// `read` gives a reader's confidence in each crop (the digit model's);
/// the surest on average wins. Other level print on the face (a serial
/// number, the dials) can make as good a row of glyphs as the counter; a
/// reader of roller digits tells them apart, and tells which way is up.
pub fn propose_rotated_by<E>(
    image: &RgbImage,
    expected: Option<usize>,
    hint: Option<f64>,
    input: (u32, u32),
    mut read: impl FnMut(&[RgbImage]) -> Result<Vec<f32>, E>,
) -> Result<Option<Oriented>, E> {
    let size = image.dimensions();
    let mut best: Option<(f32, Oriented)> = None;
    for found in rotated_candidates(image, expected, hint) {
        // A hint says which way is up.
        let turned = hint.is_none().then(|| found.turned_half(size));
        for o in std::iter::once(found).chain(turned) {
            let sure = read(&digit_crops(image, &o, input))?;
            let mean = sure.iter().sum::<f32>() / sure.len().max(1) as f32;
            if best.as_ref().is_none_or(|b| mean > b.0) {
                best = Some((mean, o));
            }
        }
    }
    Ok(best.map(|b| b.1))
}

/// The digit boxes of `o` cut from the frame turned by its rotation, at
/// `size` (as [`crate::extract_digits`] cuts them for the model).
fn digit_crops(image: &RgbImage, o: &Oriented, size: (u32, u32)) -> Vec<RgbImage> {
    let map = initial_map(image.dimensions(), o.rotate);
    o.proposal
        .digits
        .iter()
        .map(|b| {
            sample_rect(
                image,
                &map,
                b.map(f64::from),
                size.0,
                size.1,
                Resample::Area,
            )
        })
        .collect()
}

/// The row seen, found in full resolution in the frame turned by `rotate`,
/// within a band around where it was seen and among glyphs of about its
/// height (other print above or below is not taken instead); once more at
/// the angle its slope gives. Its boxes are in the whole turned frame.
fn level_row(
    image: &RgbImage,
    seen: &Sighting,
    rotate: f64,
    expected: Option<usize>,
) -> Option<Oriented> {
    let size = image.dimensions();
    let (pitch, glyph_h) = (seen.row.pitch, seen.row.glyph_h);
    let search = RowSearch {
        expected,
        nominal: size,
        glyph_h: Some((0.75 * glyph_h, 1.33 * glyph_h)),
    };
    let row_at = |rotate: f64, at: &[(f64, f64)]| {
        let map = initial_map(size, rotate);
        let to_level = map.inverse()?;
        let level: Vec<(f64, f64)> = at.iter().map(|&c| to_level.apply(c)).collect();
        // The band around the row seen, a pitch and a glyph's height wide,
        // clipped to the frame: (low, high) along one axis.
        let span = |v: &dyn Fn(&(f64, f64)) -> f64, margin: f64, hi: u32| {
            let clip = |x: f64| x.round().clamp(0.0, f64::from(hi)) as u32;
            let lo = level.iter().map(v).fold(f64::INFINITY, f64::min);
            let up = level.iter().map(v).fold(0.0, f64::max);
            (clip(lo - margin), clip(up + margin))
        };
        let (x0, x1) = span(&|c| c.0, 1.5 * pitch, size.0);
        let (y0, y1) = span(&|c| c.1, 1.2 * glyph_h, size.1);
        if x1 < x0 + 8 || y1 < y0 + 8 {
            return None;
        }
        let rect = [
            f64::from(x0),
            f64::from(y0),
            f64::from(x1 - x0),
            f64::from(y1 - y0),
        ];
        let picture = sample_rect(image, &map, rect, x1 - x0, y1 - y0, Resample::Bilinear);
        let row = find_row(&image::imageops::grayscale(&picture), &search)?;
        // The row's digit centres back in the camera frame.
        let centres: Vec<(f64, f64)> = row
            .centres()
            .iter()
            .map(|&(x, y)| map.apply((x + f64::from(x0), y + f64::from(y0))))
            .collect();
        let shift = |b: &[u32; 4]| [b[0] + x0, b[1] + y0, b[2], b[3]];
        let mut p = row.proposal.clone();
        p.digits = p.digits.iter().map(shift).collect();
        p.window = shift(&p.window);
        Some((row, p, centres))
    };
    let (row, mut p, centres) = row_at(rotate, &seen.at)?;
    let mut rotate = rotate;
    // The row's slope once more (a turn of the map by -d levels a row
    // falling by d).
    let d = row.slope().atan().to_degrees();
    if d.abs() > 0.2 {
        if let Some((_, better, _)) = row_at(normalise(rotate + d), &centres) {
            rotate = normalise(rotate + d);
            p = better;
        }
    }
    Some(Oriented {
        rotate,
        proposal: p,
    })
}

impl Oriented {
    /// The same row read the other way up: `rotate + 180`, the boxes turned
    /// about the centre of an aligned frame of `size`.
    pub fn turned_half(&self, size: (u32, u32)) -> Oriented {
        let (w, h) = size;
        let flip = |b: &[u32; 4]| {
            [
                w.saturating_sub(b[0] + b[2]),
                h.saturating_sub(b[1] + b[3]),
                b[2],
                b[3],
            ]
        };
        let mut p = self.proposal.clone();
        p.digits = p.digits.iter().rev().map(flip).collect();
        p.window = flip(&p.window);
        Oriented {
            rotate: normalise(self.rotate + 180.0),
            proposal: p,
        }
    }
}

/// An angle in (-180, 180].
fn normalise(deg: f64) -> f64 {
    let d = deg.rem_euclid(360.0);
    if d > 180.0 {
        d - 360.0
    } else {
        d
    }
}

/// The aligned-to-camera map of an initial rotation by `deg` for a frame of
/// `size` (the aligned frame keeps the size): the same map as
/// [`crate::Aligner::initial`] for a turn that is not a quarter.
fn initial_map(size: (u32, u32), deg: f64) -> Affine {
    let c = (
        (f64::from(size.0) - 1.0) / 2.0,
        (f64::from(size.1) - 1.0) / 2.0,
    );
    Affine::rotation_about(c, -deg)
}
