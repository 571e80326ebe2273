//! Shared fixtures: synthetic frames with known transforms.

use image::{codecs::jpeg::JpegEncoder, RgbImage};
use meter_synth::{FrameParams, MeterLayout};
use meter_vision::{Aligner, Mark, Pipeline, Regions};

/// An aligner for the default synthetic layout's marks.
pub fn synth_aligner(layout: &MeterLayout, radius: u32) -> Aligner {
    let mut b = Aligner::builder().search_radius(radius);
    for (k, m) in layout.marks.iter().enumerate() {
        let template = image::imageops::grayscale(&layout.mark_template(k).unwrap());
        b = b.mark(Mark {
            template,
            x: m[0].into(),
            y: m[1].into(),
        });
    }
    b.build().unwrap()
}

/// The pipeline for the default synthetic layout.
pub fn synth_pipeline(layout: &MeterLayout) -> Pipeline {
    Pipeline::builder()
        .aligner(synth_aligner(layout, 20))
        .regions(Regions::Boxes(layout.digits.clone()))
        .digit_size(20, 32)
        .build()
        .unwrap()
}

/// A shot of the default layout.
pub fn shot(layout: &MeterLayout, rotation_deg: f32, shift: (f32, f32), seed: u64) -> RgbImage {
    layout
        .render(&FrameParams {
            counter: 12345.6,
            rotation_deg,
            shift,
            noise: 4.0,
            hotspot: Some(((300.0, 180.0), 50.0, 70.0)),
            seed,
        })
        .image
}

/// JPEG bytes of an image.
pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}
