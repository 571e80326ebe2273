//! A meter's frame as people check it: aligned, with the reference marks
//! and the digit boxes drawn (`meter roi`, the web page, the Telegram bot).

use anyhow::Context;
use image::{Rgb, RgbImage};
use meter_vision::{aligned_frame, draw_box, Alignment, MeterGeometry};

/// Reference marks.
pub const MARK_COLOUR: Rgb<u8> = Rgb([0, 200, 255]);
/// Digit boxes.
pub const DIGIT_COLOUR: Rgb<u8> = Rgb([40, 255, 40]);
/// Digit boxes of a frame that could not be aligned, or whose alignment was
/// not confirmed.
pub const FAILED_COLOUR: Rgb<u8> = Rgb([255, 40, 40]);

/// Draws `g`'s marks (their template's size at their place) and `boxes`
/// (the geometry's own digit boxes when empty) onto an aligned frame.
pub fn draw_geometry(
    img: &mut RgbImage,
    g: &MeterGeometry,
    boxes: &[[u32; 4]],
    digit_colour: Rgb<u8>,
) -> anyhow::Result<()> {
    for spec in &g.marks {
        let (w, h) = image::image_dimensions(&spec.image)
            .with_context(|| format!("reading mark {}", spec.image.display()))?;
        draw_box(img, [spec.x, spec.y, w, h], MARK_COLOUR, 2);
    }
    let boxes = if boxes.is_empty() {
        g.regions().map(|r| r.boxes()).unwrap_or_default()
    } else {
        boxes.to_vec()
    };
    for b in boxes {
        draw_box(img, b, digit_colour, 2);
    }
    Ok(())
}

/// The frame `image`, aligned as `alignment` says, with `g`'s marks and
/// digit boxes drawn (red when `confirmed` is false).
pub fn overlay(
    image: &RgbImage,
    alignment: &Alignment,
    g: &MeterGeometry,
    confirmed: bool,
) -> anyhow::Result<RgbImage> {
    let mut img = aligned_frame(image, alignment);
    let colour = if confirmed {
        DIGIT_COLOUR
    } else {
        FAILED_COLOUR
    };
    draw_geometry(&mut img, g, &[], colour)?;
    Ok(img)
}

/// The last frame of a reading event, drawn as [`overlay`] draws it (the
/// JPEG is decoded again: events do not carry decoded pictures).
pub fn of_reading(
    event: &crate::events::ReadingEvent,
    g: &MeterGeometry,
) -> anyhow::Result<RgbImage> {
    let image = meter_vision::decode_jpeg(&event.jpeg, &event.origin)?;
    overlay(&image, &event.alignment, g, event.tracking.confirmed)
}

/// `img` as a JPEG of quality 85 (pictures sent to people).
pub fn jpeg(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(img)
        .context("encoding JPEG")?;
    Ok(out)
}
