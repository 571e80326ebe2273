//! Digit regions in the aligned frame, and cutting them out of a camera
//! frame through an alignment.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::Alignment;
use crate::error::VisionError;
use crate::sample::{sample_rect, Resample};

/// Where the digits are, in the aligned frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regions {
    /// One box `[x, y, width, height]` per digit, most significant first.
    Boxes(Vec<[u32; 4]>),
    /// The counter window `[x, y, width, height]`, split into `count`
    /// equal digits.
    Window {
        /// The window.
        window: [u32; 4],
        /// How many digits it holds.
        count: u32,
    },
}

impl Regions {
    /// The digit boxes, most significant first.
    pub fn boxes(&self) -> Vec<[u32; 4]> {
        match self {
            Regions::Boxes(b) => b.clone(),
            Regions::Window { window, count } => split_window(*window, *count),
        }
    }

    /// Checks that there is at least one box, none empty, all inside a
    /// `width` x `height` aligned frame.
    pub fn validate(&self, width: u32, height: u32) -> Result<(), VisionError> {
        let boxes = self.boxes();
        if boxes.is_empty() {
            return Err(VisionError::InvalidGeometry {
                reason: "no digit boxes".into(),
            });
        }
        for (index, b) in boxes.iter().enumerate() {
            let inside = b[2] > 0
                && b[3] > 0
                && u64::from(b[0]) + u64::from(b[2]) <= u64::from(width)
                && u64::from(b[1]) + u64::from(b[3]) <= u64::from(height);
            if !inside {
                return Err(VisionError::RegionOutside {
                    index,
                    rect: *b,
                    width,
                    height,
                });
            }
        }
        Ok(())
    }
}

/// Splits a counter window into `count` boxes of equal width (the last
/// takes the remainder).
pub fn split_window(window: [u32; 4], count: u32) -> Vec<[u32; 4]> {
    let [x, y, w, h] = window;
    if count == 0 {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            let x0 = x + (u64::from(w) * u64::from(i) / u64::from(count)) as u32;
            let x1 = x + (u64::from(w) * u64::from(i + 1) / u64::from(count)) as u32;
            [x0, y, x1 - x0, h]
        })
        .collect()
}

/// Cuts each box out of the camera frame through the alignment and
/// resizes it to `size` (the model's input, width x height).
///
/// Samples the camera frame directly through the transform, so the frame is
/// never warped as a whole. Boxes outside the aligned frame are an error.
pub fn extract_digits(
    image: &RgbImage,
    alignment: &Alignment,
    regions: &Regions,
    size: (u32, u32),
    mode: Resample,
) -> Result<Vec<RgbImage>, VisionError> {
    if size.0 == 0 || size.1 == 0 {
        return Err(VisionError::InvalidGeometry {
            reason: format!("digit size {}x{} is empty", size.0, size.1),
        });
    }
    let (aw, ah) = alignment.aligned_size;
    regions.validate(aw, ah)?;
    Ok(regions
        .boxes()
        .iter()
        .map(|b| {
            let rect = b.map(f64::from);
            sample_rect(image, &alignment.transform, rect, size.0, size.1, mode)
        })
        .collect())
}

/// The whole aligned frame (for display and set-up; the reading path uses
/// [`extract_digits`], which is much cheaper).
pub fn aligned_frame(image: &RgbImage, alignment: &Alignment) -> RgbImage {
    let (w, h) = alignment.aligned_size;
    sample_rect(
        image,
        &alignment.transform,
        [0.0, 0.0, f64::from(w), f64::from(h)],
        w,
        h,
        Resample::Bilinear,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_split_is_equal_and_covers() {
        let b = split_window([10, 5, 100, 30], 4);
        assert_eq!(
            b,
            vec![
                [10, 5, 25, 30],
                [35, 5, 25, 30],
                [60, 5, 25, 30],
                [85, 5, 25, 30]
            ]
        );
        let b = split_window([0, 0, 10, 3], 3);
        assert_eq!(b.iter().map(|r| r[2]).sum::<u32>(), 10);
        assert!(split_window([0, 0, 10, 3], 0).is_empty());
    }

    #[test]
    fn boxes_outside_are_rejected() {
        let r = Regions::Boxes(vec![[0, 0, 10, 10], [95, 0, 10, 10]]);
        assert!(matches!(
            r.validate(100, 100),
            Err(VisionError::RegionOutside { index: 1, .. })
        ));
        assert!(r.validate(105, 100).is_ok());
        assert!(Regions::Boxes(vec![]).validate(10, 10).is_err());
        assert!(Regions::Boxes(vec![[0, 0, 0, 5]]).validate(10, 10).is_err());
    }
}
