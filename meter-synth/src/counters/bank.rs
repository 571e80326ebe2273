//! One meter's labelled roller photos ([`CropBank`]), what counters are
//! composed from.

use image::{imageops, RgbImage};
use meter_core::{Counter, Tenths};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::digit::{render_digit, DigitStyle};

/// Why counters cannot be composed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// The photos do not cover the positions a counter needs.
    #[error("meter {meter}: its photos cannot make a counter ({why})")]
    TooFewLabels {
        /// The meter (source) the photos are of.
        meter: String,
        /// What is missing.
        why: String,
    },
    /// A photo with no pixels.
    #[error("meter {meter}: photo {index} is empty")]
    EmptyPhoto {
        /// The meter.
        meter: String,
        /// Its position among the photos given.
        index: usize,
    },
}

/// One meter's roller photos, by labelled position, all of one size.
#[derive(Debug, Clone)]
pub struct CropBank {
    meter: String,
    size: (u32, u32),
    by_label: Vec<Vec<RgbImage>>,
}

impl CropBank {
    /// Files `photos` by label; each is resized (triangle filter) to `size`
    /// (width, height), the size of the frame's digit boxes.
    pub fn new(
        meter: impl Into<String>,
        size: (u32, u32),
        photos: impl IntoIterator<Item = (Tenths, RgbImage)>,
    ) -> Result<Self, ComposeError> {
        let meter = meter.into();
        let mut by_label = vec![Vec::new(); Tenths::CLASSES];
        for (index, (label, img)) in photos.into_iter().enumerate() {
            if img.width() == 0 || img.height() == 0 {
                return Err(ComposeError::EmptyPhoto { meter, index });
            }
            let img = if img.dimensions() == size {
                img
            } else {
                imageops::resize(&img, size.0, size.1, imageops::FilterType::Triangle)
            };
            by_label[usize::from(label.index())].push(img);
        }
        Ok(Self {
            meter,
            size,
            by_label,
        })
    }

    /// Bitmap-font rollers (`variants` slightly different renderings of each
    /// of the 100 positions): a meter for tests that have no photos.
    pub fn synthetic(size: (u32, u32), variants: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let photos: Vec<(Tenths, RgbImage)> = (0..Tenths::CLASSES as u8)
            .flat_map(|i| (0..variants).map(move |_| i))
            .map(|i| {
                let style = DigitStyle {
                    glyph_height: rng.gen_range(0.58..0.66),
                    glyph_width: rng.gen_range(0.62..0.72),
                    stroke: rng.gen_range(0.85..1.0),
                    ..DigitStyle::default()
                };
                let t = Tenths::wrapping(i64::from(i));
                (t, render_digit(t, size.0, size.1, &style))
            })
            .collect();
        // Sizes match, photos are not empty: cannot fail.
        Self::new("synthetic", size, photos).unwrap_or_else(|_| Self {
            meter: "synthetic".into(),
            size,
            by_label: vec![Vec::new(); Tenths::CLASSES],
        })
    }

    /// The meter the photos are of.
    pub fn meter(&self) -> &str {
        &self.meter
    }

    /// The photos' size (width, height).
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Photos of this position.
    pub fn photos(&self, at: Tenths) -> &[RgbImage] {
        &self.by_label[usize::from(at.index())]
    }

    /// Number of photos.
    pub fn len(&self) -> usize {
        self.by_label.iter().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn has(&self, at: Tenths) -> bool {
        !self.photos(at).is_empty()
    }

    pub(crate) fn has_all(&self, counter: Counter, ticks: u64) -> bool {
        counter.positions(ticks).into_iter().all(|t| self.has(t))
    }
}
