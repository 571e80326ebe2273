//! Glyph candidates in a grey picture: ink against the neighbourhood mean,
//! its connected components, and those shaped like a digit.

use image::GrayImage;

/// A glyph candidate: a component's bounding box and ink area.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blob {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
    /// Ink pixels in the component.
    pub area: u32,
}

impl Blob {
    pub fn w(&self) -> f64 {
        f64::from(self.x1 - self.x0 + 1)
    }
    pub fn h(&self) -> f64 {
        f64::from(self.y1 - self.y0 + 1)
    }
    pub fn cx(&self) -> f64 {
        f64::from(self.x0 + self.x1) / 2.0
    }
    pub fn cy(&self) -> f64 {
        f64::from(self.y0 + self.y1) / 2.0
    }
}

/// Each pixel's neighbourhood mean (a square of `radius` either side,
/// cut at the edges), from an integral image.
pub(crate) fn local_means(gray: &GrayImage, radius: u32) -> Vec<f64> {
    let (w, h) = gray.dimensions();
    let r = i64::from(radius);
    let stride = w as usize + 1;
    let mut integral = vec![0u64; stride * (h as usize + 1)];
    for y in 0..h as usize {
        let mut row = 0u64;
        for x in 0..w as usize {
            row += u64::from(gray.get_pixel(x as u32, y as u32)[0]);
            integral[(y + 1) * stride + x + 1] = integral[y * stride + x + 1] + row;
        }
    }
    let mut out = Vec::with_capacity(w as usize * h as usize);
    for y in 0..i64::from(h) {
        let y0 = (y - r).max(0) as usize;
        let y1 = (y + r + 1).min(i64::from(h)) as usize;
        for x in 0..i64::from(w) {
            let x0 = (x - r).max(0) as usize;
            let x1 = (x + r + 1).min(i64::from(w)) as usize;
            let sum = integral[y1 * stride + x1] + integral[y0 * stride + x0]
                - integral[y0 * stride + x1]
                - integral[y1 * stride + x0];
            out.push(sum as f64 / ((x1 - x0) * (y1 - y0)) as f64);
        }
    }
    out
}

/// Ink where a pixel differs from its neighbourhood mean (`means`, from
/// [`local_means`]) by a margin.
pub(crate) fn threshold(gray: &GrayImage, means: &[f64], dark: bool, margin: f64) -> GrayImage {
    let (w, h) = gray.dimensions();
    let data = gray
        .as_raw()
        .iter()
        .zip(means)
        .map(|(&v, &mean)| {
            let d = if dark {
                mean - f64::from(v)
            } else {
                f64::from(v) - mean
            };
            if d > margin {
                255
            } else {
                0
            }
        })
        .collect();
    GrayImage::from_raw(w, h, data).expect("one value per pixel")
}

/// Connected components of ink (8-connected), as bounding boxes with areas,
/// in the raster order of their first pixel. Built from runs of ink joined
/// row to row: the row anchor looks at dozens of thresholded pictures per
/// frame, and a per-pixel labelling (and its label image) cost most of it.
pub(crate) fn ink_components(ink: &GrayImage) -> Vec<Blob> {
    let (w, h) = (ink.width() as usize, ink.height() as usize);
    let raw = ink.as_raw();
    // Runs as (y, x0, x1), x1 inclusive; `parent` is a union-find over them.
    let mut runs: Vec<(u32, u32, u32)> = Vec::new();
    let mut parent: Vec<usize> = Vec::new();
    fn root(parent: &mut [usize], mut k: usize) -> usize {
        while parent[k] != k {
            parent[k] = parent[parent[k]];
            k = parent[k];
        }
        k
    }
    let mut prev = 0..0;
    for y in 0..h {
        let row = &raw[y * w..][..w];
        let start = runs.len();
        let mut first = prev.start;
        let mut x = 0;
        while x < w {
            if row[x] == 0 {
                x += 1;
                continue;
            }
            let x0 = x;
            while x < w && row[x] != 0 {
                x += 1;
            }
            let x1 = x - 1;
            let id = runs.len();
            runs.push((y as u32, x0 as u32, x1 as u32));
            parent.push(id);
            // Runs of the row above that touch this one, diagonals included.
            while first < prev.end && (runs[first].2 as usize) + 1 < x0 {
                first += 1;
            }
            for (p, run) in runs[first..prev.end].iter().enumerate() {
                if run.1 as usize > x1 + 1 {
                    break;
                }
                let p = first + p;
                let (a, b) = (root(&mut parent, p), root(&mut parent, id));
                if a != b {
                    // The older run stays the root: its component began first.
                    let (lo, hi) = (a.min(b), a.max(b));
                    parent[hi] = lo;
                }
            }
        }
        prev = start..runs.len();
    }
    // The root of a component is its first run: number components in that order.
    let mut index = vec![usize::MAX; runs.len()];
    let mut blobs: Vec<Blob> = Vec::new();
    for (k, &(y, x0, x1)) in runs.iter().enumerate() {
        let r = root(&mut parent, k);
        if index[r] == usize::MAX {
            index[r] = blobs.len();
            blobs.push(Blob {
                x0,
                y0: y,
                x1,
                y1: y,
                area: 0,
            });
        }
        let b = &mut blobs[index[r]];
        b.x0 = b.x0.min(x0);
        b.x1 = b.x1.max(x1);
        b.y1 = b.y1.max(y);
        b.area += x1 - x0 + 1;
    }
    blobs
}

/// Components shaped like a digit glyph.
pub(crate) fn glyph_blobs(components: &[Blob], (w, h): (u32, u32)) -> Vec<Blob> {
    let (fw, fh) = (f64::from(w), f64::from(h));
    components
        .iter()
        .filter(|b| {
            let fill = f64::from(b.area) / (b.w() * b.h());
            b.h() >= fh * 0.04
                && b.h() <= fh * 0.3
                && b.w() <= b.h() * 1.0
                && b.w() >= b.h() * 0.08
                && b.w() < fw * 0.2
                && (0.08..=0.85).contains(&fill)
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ink_components_are_imageprocs_connected_components() {
        use imageproc::region_labelling::{connected_components, Connectivity};
        // Speckle of every density, so that runs join diagonally, fork and
        // merge again.
        for (seed, density) in [(1u64, 20u64), (2, 45), (3, 60), (4, 80)] {
            let mut state = seed;
            let ink = GrayImage::from_fn(97, 61, |_, _| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                image::Luma([if (state >> 33) % 100 < density {
                    255
                } else {
                    0
                }])
            });
            let labels = connected_components(&ink, Connectivity::Eight, image::Luma([0u8]));
            // (x0, y0, x1, y1, area) per label.
            type Bbox = (u32, u32, u32, u32, u32);
            let mut want: Vec<Option<Bbox>> = Vec::new();
            for (x, y, l) in labels.enumerate_pixels() {
                let l = l[0] as usize;
                if l == 0 {
                    continue;
                }
                if want.len() <= l {
                    want.resize(l + 1, None);
                }
                let b = want[l].get_or_insert((x, y, x, y, 0));
                *b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y), b.4 + 1);
            }
            let mut want: Vec<_> = want.into_iter().flatten().collect();
            let mut got: Vec<_> = ink_components(&ink)
                .iter()
                .map(|b| (b.x0, b.y0, b.x1, b.y1, b.area))
                .collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "density {density}");
        }
    }
}
