//! Sampling a camera frame through a transform, so that only the pixels
//! needed (search windows, digit boxes) are ever computed.

use image::{GrayImage, RgbImage};

use crate::geometry::Affine;

/// A single-channel float image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    pub fn from_gray(img: &GrayImage) -> Self {
        Self {
            width: img.width() as usize,
            height: img.height() as usize,
            data: img.as_raw().iter().map(|&v| f32::from(v)).collect(),
        }
    }

    /// Half the size, each pixel the mean of a 2x2 block.
    pub fn half(&self) -> Self {
        let (w, h) = (self.width / 2, self.height / 2);
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let s = self.get(2 * x, 2 * y)
                    + self.get(2 * x + 1, 2 * y)
                    + self.get(2 * x, 2 * y + 1)
                    + self.get(2 * x + 1, 2 * y + 1);
                data.push(s * 0.25);
            }
        }
        Self {
            width: w,
            height: h,
            data,
        }
    }
}

/// Bilinear RGB sample at `(x, y)`, clamped to the frame edge.
#[inline]
pub(crate) fn bilinear_rgb(img: &RgbImage, x: f64, y: f64) -> [f32; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let xf = x.floor();
    let yf = y.floor();
    let (fx, fy) = ((x - xf) as f32, (y - yf) as f32);
    let x0 = (xf as i64).clamp(0, w - 1) as u32;
    let y0 = (yf as i64).clamp(0, h - 1) as u32;
    let x1 = (xf as i64 + 1).clamp(0, w - 1) as u32;
    let y1 = (yf as i64 + 1).clamp(0, h - 1) as u32;
    let p00 = img.get_pixel(x0, y0).0;
    let p10 = img.get_pixel(x1, y0).0;
    let p01 = img.get_pixel(x0, y1).0;
    let p11 = img.get_pixel(x1, y1).0;
    let mut out = [0.0; 3];
    for c in 0..3 {
        let top = f32::from(p00[c]) * (1.0 - fx) + f32::from(p10[c]) * fx;
        let bottom = f32::from(p01[c]) * (1.0 - fx) + f32::from(p11[c]) * fx;
        out[c] = top * (1.0 - fy) + bottom * fy;
    }
    out
}

/// ITU-R 601 luma, as `image`'s grayscale conversion uses.
#[inline]
pub(crate) fn luma(p: [f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// The `w` x `h` grey patch whose pixel `(i, j)` is the frame at
/// `map(origin + (i, j))`.
pub(crate) fn gray_patch(
    img: &RgbImage,
    map: &Affine,
    origin: (f64, f64),
    w: usize,
    h: usize,
) -> Plane {
    let mut data = Vec::with_capacity(w * h);
    for j in 0..h {
        let (mut x, mut y) = map.apply((origin.0, origin.1 + j as f64));
        for _ in 0..w {
            data.push(luma(bilinear_rgb(img, x, y)));
            x += map.a;
            y += map.c;
        }
    }
    Plane {
        width: w,
        height: h,
        data,
    }
}

/// Bilinear sample of a plane at `(x, y)`, clamped to its edge.
#[inline]
fn bilinear_plane(p: &Plane, x: f64, y: f64) -> f32 {
    let (w, h) = (p.width as i64, p.height as i64);
    let (xf, yf) = (x.floor(), y.floor());
    let (fx, fy) = ((x - xf) as f32, (y - yf) as f32);
    let (xi, yi) = (xf as i64, yf as i64);
    let x0 = xi.clamp(0, w - 1) as usize;
    let x1 = (xi + 1).clamp(0, w - 1) as usize;
    let y0 = yi.clamp(0, h - 1) as usize;
    let y1 = (yi + 1).clamp(0, h - 1) as usize;
    let top = p.get(x0, y0) * (1.0 - fx) + p.get(x1, y0) * fx;
    let bottom = p.get(x0, y1) * (1.0 - fx) + p.get(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// A camera frame in grey at full and half resolution, for searches that
/// sample many turned pictures of one frame (the row anchor, `roi --auto`
/// without a rotation): converted once, each picture then costs one grey
/// sample per pixel instead of several colour ones.
#[derive(Debug, Clone)]
pub(crate) struct GrayFrame {
    full: Plane,
    half: Plane,
}

impl GrayFrame {
    pub fn new(img: &RgbImage) -> Self {
        let full = Plane::from_gray(&image::imageops::grayscale(img));
        let half = full.half();
        Self { full, half }
    }

    /// The aligned-frame rectangle `rect = [x, y, w, h]` through `map`
    /// (aligned -> camera) as an `out_w` x `out_h` grey picture. Where a
    /// pixel shrinks two camera pixels or more into one, it is sampled from
    /// the half-resolution frame (anti-aliased, as [`Resample::Area`]).
    /// Beyond the camera frame the picture is flat mid-grey: repeated edge
    /// pixels would make stripes that look like a row of glyphs.
    pub fn picture(&self, map: &Affine, rect: [f64; 4], out_w: u32, out_h: u32) -> GrayImage {
        let [rx, ry, rw, rh] = rect;
        let (sx, sy) = (rw / f64::from(out_w), rh / f64::from(out_h));
        let shrink = sx.min(sy) * map.scale();
        let (cw, ch) = (self.full.width as f64, self.full.height as f64);
        // Half-resolution pixel k averages full pixels 2k and 2k + 1.
        let (plane, to_plane): (&Plane, fn(f64) -> f64) = if shrink >= 1.5 {
            (&self.half, |v| (v - 0.5) / 2.0)
        } else {
            (&self.full, |v| v)
        };
        let mut out = Vec::with_capacity(out_w as usize * out_h as usize);
        for j in 0..out_h {
            let y = ry - 0.5 + (f64::from(j) + 0.5) * sy;
            for i in 0..out_w {
                let x = rx - 0.5 + (f64::from(i) + 0.5) * sx;
                let (cx, cy) = map.apply((x, y));
                let v = if cx < -0.5 || cy < -0.5 || cx > cw - 0.5 || cy > ch - 0.5 {
                    128.0
                } else {
                    bilinear_plane(plane, to_plane(cx), to_plane(cy))
                };
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
        GrayImage::from_raw(out_w, out_h, out).expect("one value per pixel")
    }
}

/// Filters for resampling a box to another size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resample {
    /// Mean of a grid of bilinear samples over each output pixel's footprint
    /// (anti-aliased when shrinking).
    #[default]
    Area,
    /// One bilinear sample at each output pixel's centre.
    Bilinear,
}

/// Samples the aligned-frame rectangle `rect = [x, y, w, h]` (through `map`,
/// aligned -> camera) into an `out_w` x `out_h` image.
pub fn sample_rect(
    img: &RgbImage,
    map: &Affine,
    rect: [f64; 4],
    out_w: u32,
    out_h: u32,
    mode: Resample,
) -> RgbImage {
    let [rx, ry, rw, rh] = rect;
    let (sx, sy) = (rw / f64::from(out_w), rh / f64::from(out_h));
    let (nx, ny) = match mode {
        Resample::Area => (sx.ceil().max(1.0) as usize, sy.ceil().max(1.0) as usize),
        Resample::Bilinear => (1, 1),
    };
    let inv = 1.0 / (nx * ny) as f32;
    let mut out = RgbImage::new(out_w, out_h);
    for (i, j, px) in out.enumerate_pixels_mut() {
        let mut acc = [0.0f32; 3];
        for v in 0..ny {
            // Sub-sample centres spread evenly over the pixel's footprint;
            // aligned pixel k covers [k - 0.5, k + 0.5].
            let y = ry - 0.5 + (f64::from(j) + (v as f64 + 0.5) / ny as f64) * sy;
            for u in 0..nx {
                let x = rx - 0.5 + (f64::from(i) + (u as f64 + 0.5) / nx as f64) * sx;
                let (cx, cy) = map.apply((x, y));
                let s = bilinear_rgb(img, cx, cy);
                for c in 0..3 {
                    acc[c] += s[c];
                }
            }
        }
        px.0 = acc.map(|a| (a * inv).round().clamp(0.0, 255.0) as u8);
    }
    out
}
