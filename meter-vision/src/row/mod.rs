//! The digit row as evidence and as anchor.
//!
//! - [`check_row`]: are there glyphs where an alignment puts the digit
//!   boxes? A row of digit-like glyphs with the boxes' pitch must be found
//!   at the boxes, or a reading from that alignment is not trusted.
//! - [`anchor_on_row`]: when no marks can be matched, the digit row found
//!   as [`propose_digits`](crate::propose_digits) finds it (turned through
//!   the allowed rotations) gives the transform.
//! - [`propose_rotated_by`]: set-up without knowing the camera's rotation.

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::auto::{find_rows, Row, RowSearch};
use crate::geometry::{Affine, MotionModel};
use crate::sample::{sample_rect, GrayFrame, Resample};

mod rotated;

pub use rotated::{propose_rotated_by, rotated_candidates, Oriented};

/// What [`check_row`] found at the digit boxes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RowCheck {
    /// Boxes with a glyph seen in them, in a row (0 when no row was
    /// found).
    pub glyphs_seen: usize,
    /// How far the row's digit centres lie from the boxes' centres, at
    /// worst, as a fraction of the box width (x) or height (y), whichever
    /// is larger; infinite when no row of the right length was found.
    pub worst_offset: f64,
    /// Whether the row confirms the alignment.
    pub confirmed: bool,
}

/// Largest offset of a digit centre from its box's centre, as a fraction of
/// the box, for the row to confirm an alignment.
const MAX_OFFSET: f64 = 0.25;

/// A row found through a map, in aligned-frame coordinates.
#[derive(Debug, Clone)]
struct FoundRow {
    /// Centre of each digit, left to right.
    centres: Vec<(f64, f64)>,
    /// Centre of each glyph seen.
    glyphs: Vec<(f64, f64)>,
    /// Distance between digit centres.
    pitch: f64,
    glyphs_seen: usize,
    score: f64,
    /// Slope of the glyph line in the sampled picture.
    slope: f64,
    /// The glyphs' median height.
    glyph_h: f64,
}

/// The centre of a box `[x, y, w, h]`.
fn centre(b: &[u32; 4]) -> (f64, f64) {
    (
        f64::from(b[0]) + f64::from(b[2]) / 2.0,
        f64::from(b[1]) + f64::from(b[3]) / 2.0,
    )
}

/// Where [`row_through`] samples its picture.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The colour frame, sampled where needed (one small rectangle).
    Rgb(&'a RgbImage),
    /// The frame in grey, converted once (many turned pictures).
    Gray(&'a GrayFrame),
}

impl Source<'_> {
    /// The aligned-frame rectangle `rect` through `map` as a `w` x `h`
    /// grey picture, flat mid-grey beyond the camera frame.
    fn picture(&self, map: &Affine, rect: [f64; 4], w: u32, h: u32) -> GrayImage {
        match self {
            Source::Gray(g) => g.picture(map, rect, w, h),
            Source::Rgb(image) => {
                let (sx, sy) = (rect[2] / f64::from(w), rect[3] / f64::from(h));
                let rgb = sample_rect(image, map, rect, w, h, Resample::Area);
                let mut gray: GrayImage = image::imageops::grayscale(&rgb);
                // Beyond the camera frame the sampler repeats the edge
                // pixels, in stripes that look like a row of glyphs.
                let (cw, ch) = (f64::from(image.width()), f64::from(image.height()));
                for (i, j, p) in gray.enumerate_pixels_mut() {
                    let (x, y) =
                        map.apply((rect[0] + f64::from(i) * sx, rect[1] + f64::from(j) * sy));
                    if x < -0.5 || y < -0.5 || x > cw - 0.5 || y > ch - 0.5 {
                        p.0 = [128];
                    }
                }
                gray
            }
        }
    }
}

/// Samples the aligned-frame rectangle `rect` through `map` at `scale`
/// picture pixels per aligned pixel and finds the row there; `search` is in
/// aligned-frame pixels (its `nominal` the aligned frame's size).
fn row_through(
    source: Source,
    map: &Affine,
    rect: [f64; 4],
    scale: f64,
    search: RowSearch,
) -> Option<FoundRow> {
    rows_through(source, map, rect, scale, search, 1)
        .into_iter()
        .next()
}

/// [`row_through`]'s best `keep` rows, best first.
fn rows_through(
    source: Source,
    map: &Affine,
    rect: [f64; 4],
    scale: f64,
    search: RowSearch,
    keep: usize,
) -> Vec<FoundRow> {
    let (w, h) = (
        (rect[2] * scale).round().max(8.0) as u32,
        (rect[3] * scale).round().max(8.0) as u32,
    );
    let (sx, sy) = (rect[2] / f64::from(w), rect[3] / f64::from(h));
    let gray = source.picture(map, rect, w, h);
    let search = RowSearch {
        nominal: (
            (f64::from(search.nominal.0) * scale).round() as u32,
            (f64::from(search.nominal.1) * scale).round() as u32,
        ),
        glyph_h: search.glyph_h.map(|(lo, hi)| (lo * scale, hi * scale)),
        ..search
    };
    // Picture pixel (i, j) samples the aligned point below (as sample_rect).
    let to_aligned = |(x, y): (f64, f64)| (rect[0] + x * sx, rect[1] + y * sy);
    find_rows(&gray, &search)
        .into_iter()
        .take(keep)
        .map(|row: Row| FoundRow {
            centres: row.centres().into_iter().map(to_aligned).collect(),
            glyphs: row.glyphs.iter().copied().map(to_aligned).collect(),
            pitch: row.proposal.pitch * sx,
            glyphs_seen: row.proposal.glyphs_seen,
            score: row.score,
            slope: row.slope(),
            glyph_h: row.glyph_h * sy,
        })
        .collect()
}

/// The rectangle around the boxes, `mx` wider on each side and `my` taller
/// on top and bottom.
fn around(boxes: &[[u32; 4]], mx: f64, my: f64) -> [f64; 4] {
    let x0 = boxes
        .iter()
        .map(|b| f64::from(b[0]))
        .fold(f64::INFINITY, f64::min);
    let y0 = boxes
        .iter()
        .map(|b| f64::from(b[1]))
        .fold(f64::INFINITY, f64::min);
    let x1 = boxes
        .iter()
        .map(|b| f64::from(b[0] + b[2]))
        .fold(0.0, f64::max);
    let y1 = boxes
        .iter()
        .map(|b| f64::from(b[1] + b[3]))
        .fold(0.0, f64::max);
    [x0 - mx, y0 - my, x1 - x0 + 2.0 * mx, y1 - y0 + 2.0 * my]
}

/// The glyph heights a digit box of height `bh` may hold: users draw the
/// roller's cell, larger than the glyph (0.6 to 0.7 of it on the meters
/// seen). A blob as tall as the box is the cell itself, not a glyph.
fn glyph_heights(bh: f64) -> (f64, f64) {
    (0.4 * bh, 0.9 * bh)
}

/// The largest box width and height.
fn box_size(boxes: &[[u32; 4]]) -> (f64, f64) {
    boxes.iter().fold((0.0, 0.0), |s, b| {
        (s.0.max(f64::from(b[2])), s.1.max(f64::from(b[3])))
    })
}

/// Whether there are glyphs where `transform` (aligned frame to camera
/// frame) puts the digit `boxes`: a row of digits (it may be longer than
/// the boxes: a config may read only some of the rollers) with a digit
/// centred in each box within a quarter of the box, and a glyph actually
/// seen in at least half of the boxes.
pub fn check_row(
    image: &RgbImage,
    transform: &Affine,
    aligned_size: (u32, u32),
    boxes: &[[u32; 4]],
) -> RowCheck {
    let none = RowCheck {
        glyphs_seen: 0,
        worst_offset: f64::INFINITY,
        confirmed: false,
    };
    if boxes.is_empty() {
        return none;
    }
    let (bw, bh) = box_size(boxes);
    let pitch = if boxes.len() > 1 {
        box_pitch(boxes)
    } else {
        bw
    };
    // Room for a longer row beside the boxes and for the face around them,
    // not for other print above or below (a serial number is a row too).
    let rect = around(boxes, 1.5 * pitch, 0.75 * bh);
    let heights = Some(glyph_heights(bh));
    let search = RowSearch {
        expected: Some(boxes.len()),
        nominal: aligned_size,
        glyph_h: heights,
    };
    let Some(row) = row_through(Source::Rgb(image), transform, rect, 1.0, search) else {
        return none;
    };
    // How far a point lies from a box's centre, in box widths / heights.
    let offset = |b: &[u32; 4], c: &(f64, f64)| {
        let want = centre(b);
        ((c.0 - want.0).abs() / f64::from(b[2])).max((c.1 - want.1).abs() / f64::from(b[3]))
    };
    let nearest = |b: &[u32; 4], cs: &[(f64, f64)]| {
        cs.iter()
            .map(|c| offset(b, c))
            .fold(f64::INFINITY, f64::min)
    };
    let worst_offset = boxes
        .iter()
        .map(|b| nearest(b, &row.centres))
        .fold(0.0, f64::max);
    let with_glyph = boxes
        .iter()
        .filter(|b| nearest(b, &row.glyphs) <= MAX_OFFSET)
        .count();
    RowCheck {
        glyphs_seen: with_glyph,
        worst_offset,
        confirmed: worst_offset <= MAX_OFFSET && with_glyph * 2 >= boxes.len(),
    }
}

/// The configured pitch of the boxes: distance between the first and last
/// centres over the number of gaps.
fn box_pitch(boxes: &[[u32; 4]]) -> f64 {
    let (a, b) = (centre(&boxes[0]), centre(&boxes[boxes.len() - 1]));
    (b.0 - a.0).hypot(b.1 - a.1) / (boxes.len() - 1) as f64
}

/// Bounds for [`anchor_on_row`] and [`rotated_candidates`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turns {
    /// Largest turn either way, degrees.
    pub max_deg: f64,
    /// Step between turns tried, degrees.
    pub step_deg: f64,
}

/// The turn (about the aligned frame's centre, on top of `base`) at which
/// the best row was found, the turn at which it lies level, and the row
/// (at the first turn), from a half-resolution look over
/// the whole aligned frame at each turn; `accept` says whether a row may be
/// the one looked for.
fn best_turn(
    source: Source,
    base: &Affine,
    aligned_size: (u32, u32),
    turns: Turns,
    search: RowSearch,
    accept: &dyn Fn(&FoundRow) -> bool,
) -> Option<(f64, f64, FoundRow)> {
    let (w, h) = (f64::from(aligned_size.0), f64::from(aligned_size.1));
    let mid = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
    let n = (turns.max_deg / turns.step_deg).round() as i32;
    let mut best: Option<(f64, FoundRow)> = None;
    for k in -n..=n {
        let deg = f64::from(k) * turns.step_deg;
        let map = Affine::rotation_about(mid, deg).then(base);
        let rect = [0.0, 0.0, w, h];
        let Some(row) = row_through(source, &map, rect, 0.5, search) else {
            continue;
        };
        if !accept(&row) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, b)| row.score > b.score) {
            best = Some((deg, row));
        }
    }
    // The row's own slope gives the rest of the turn.
    // (A row falling to the right needs the picture turned clockwise.)
    best.map(|(deg, row)| (deg, deg - row.slope.atan().to_degrees(), row))
}

/// The transform that puts the digit `boxes` on the digit row of the frame,
/// found within `turns` of `reference` (aligned frame to camera frame) and
/// `max_scale` of its scale: the anchor when no mark can be found. `None`
/// when no row of as many digits with the boxes' pitch is found, or when
/// more than two of its digits were filled in rather than seen.
pub(crate) fn anchor_on_row(
    image: &RgbImage,
    reference: &Affine,
    aligned_size: (u32, u32),
    boxes: &[[u32; 4]],
    turns: Turns,
    max_scale: f64,
) -> Option<Affine> {
    let n = boxes.len();
    if n < 3 {
        return None;
    }
    let pitch = box_pitch(boxes);
    let pitch_ok = |p: f64| (p / pitch - 1.0).abs() <= max_scale + 0.03;
    let accept = |r: &FoundRow| r.centres.len() == n && pitch_ok(r.pitch);
    let (w, h) = (f64::from(aligned_size.0), f64::from(aligned_size.1));
    let mid = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
    let (bw, bh) = box_size(boxes);
    let search = RowSearch {
        expected: Some(n),
        nominal: aligned_size,
        glyph_h: Some(glyph_heights(bh)),
    };
    let gray = GrayFrame::new(image);
    let (coarse_deg, deg, coarse) = best_turn(
        Source::Gray(&gray),
        reference,
        aligned_size,
        turns,
        search,
        &accept,
    )?;
    // Full resolution around the row, level: the coarse centres are taken
    // into the level frame, and the boxes moved there to frame the row.
    let coarse_map = Affine::rotation_about(mid, coarse_deg).then(reference);
    let map = Affine::rotation_about(mid, deg).then(reference);
    let to_level = map.inverse()?;
    let level: Vec<(f64, f64)> = coarse
        .centres
        .iter()
        .map(|&c| to_level.apply(coarse_map.apply(c)))
        .collect();
    let configured: Vec<(f64, f64)> = boxes.iter().map(centre).collect();
    let (found, want) = (mean(&level), mean(&configured));
    let shift = (found.0 - want.0, found.1 - want.1);
    let moved: Vec<[u32; 4]> = boxes
        .iter()
        .map(|b| {
            let x = (f64::from(b[0]) + shift.0).max(0.0) as u32;
            let y = (f64::from(b[1]) + shift.1).max(0.0) as u32;
            [x, y, b[2], b[3]]
        })
        .collect();
    let rect = around(&moved, bw + pitch, 0.75 * bh + pitch / 2.0);
    let fine = row_through(Source::Gray(&gray), &map, rect, 1.0, search)?;
    // Most digits must be seen, not filled in: a row of as many boxes made
    // up from a few glyphs could sit a digit off.
    if fine.centres.len() != n || fine.glyphs_seen + 2 < n || !pitch_ok(fine.pitch) {
        return None;
    }
    let to: Vec<(f64, f64)> = fine.centres.iter().map(|&c| map.apply(c)).collect();
    let t = Affine::fit(&configured, &to, MotionModel::Similarity)?;
    let c = t.then(&reference.inverse()?);
    let ok = c.rotation_deg().abs() <= turns.max_deg + turns.step_deg
        && (c.scale() - 1.0).abs() <= max_scale + 0.03;
    ok.then_some(t)
}

/// The mean of some points.
fn mean(ps: &[(f64, f64)]) -> (f64, f64) {
    let k = ps.len().max(1) as f64;
    ps.iter()
        .fold((0.0, 0.0), |s, p| (s.0 + p.0 / k, s.1 + p.1 / k))
}
