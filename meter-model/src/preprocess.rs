//! Turning a digit image into the network's input, identically for training
//! and inference.

use std::borrow::Cow;

use image::imageops::FilterType;
use image::RgbImage;

/// Standard deviations below this (in 0..255 units) are not amplified, so a
/// blank roller does not turn its sensor noise into strong features.
const MIN_STD: f32 = 8.0;

/// The image at the model's input size: borrowed when it already is, else
/// resized with a triangle (bilinear) filter.
pub fn fit_to_input(img: &RgbImage, width: u32, height: u32) -> Cow<'_, RgbImage> {
    if img.dimensions() == (width, height) {
        Cow::Borrowed(img)
    } else {
        Cow::Owned(image::imageops::resize(
            img,
            width,
            height,
            FilterType::Triangle,
        ))
    }
}

/// Per-image standardisation: the mean and the scale `1 / max(std, MIN_STD)`
/// over all pixels and channels. Makes the model indifferent to exposure.
pub(crate) fn standardisation(raw: &[u8]) -> (f32, f32) {
    let n = raw.len().max(1) as f32;
    let (mut s, mut s2) = (0u64, 0u64);
    for &v in raw {
        s += u64::from(v);
        s2 += u64::from(v) * u64::from(v);
    }
    let mean = s as f32 / n;
    let var = (s2 as f32 / n - mean * mean).max(0.0);
    (mean, 1.0 / var.sqrt().max(MIN_STD))
}

/// Writes the standardised image in channel-first (C, H, W) order.
pub(crate) fn write_chw(img: &RgbImage, out: &mut [f32]) {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let raw = img.as_raw();
    let (mean, scale) = standardisation(raw);
    for (p, px) in raw.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + p] = (f32::from(px[c]) - mean) * scale;
        }
    }
}
