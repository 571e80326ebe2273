//! Draws the README's picture: a simulated camera frame (rotated, shifted,
//! with a flash reflection) next to the aligned frame with the reference
//! marks (blue) and digit boxes (green) that `meter` reads, and the digit
//! crops the model sees.
//!
//! `cargo run -p meter-cli --example overlay -- docs/overlay.png`

use image::{imageops, Rgb, RgbImage};
use meter_model::DigitModel;
use meter_synth::{FrameParams, MeterLayout};
use meter_vision::{aligned_frame, Aligner, Mark, Pipeline, Regions};

fn rect(img: &mut RgbImage, [x, y, w, h]: [u32; 4], colour: Rgb<u8>) {
    for t in 0..2 {
        for xx in x.saturating_sub(t)..(x + w + t).min(img.width()) {
            for yy in [y.saturating_sub(t), (y + h + t).min(img.height() - 1)] {
                img.put_pixel(xx, yy, colour);
            }
        }
        for yy in y.saturating_sub(t)..(y + h + t).min(img.height()) {
            for xx in [x.saturating_sub(t), (x + w + t).min(img.width() - 1)] {
                img.put_pixel(xx, yy, colour);
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "docs/overlay.png".into());
    let layout = MeterLayout::default();
    let shot = layout.render(&FrameParams {
        counter: 12_399.7,
        rotation_deg: 3.0,
        shift: (9.0, -6.0),
        hotspot: Some(((330.0, 150.0), 45.0, 70.0)),
        ..FrameParams::default()
    });
    let mut aligner = Aligner::builder();
    for (k, m) in layout.marks.iter().enumerate() {
        let template = imageops::grayscale(&layout.mark_template(k).expect("mark"));
        aligner = aligner.mark(Mark {
            template,
            x: m[0].into(),
            y: m[1].into(),
        });
    }
    let model = DigitModel::shipped();
    let (w, h) = model.input_size();
    let pipeline = Pipeline::builder()
        .aligner(aligner.build()?)
        .regions(Regions::Boxes(layout.digits.clone()))
        .digit_size(w, h)
        .build()?;
    let processed = pipeline.process_image(shot.image.clone())?;
    let mut aligned = aligned_frame(&shot.image, &processed.alignment);
    for m in &layout.marks {
        rect(&mut aligned, *m, Rgb([40, 110, 255]));
    }
    for d in &layout.digits {
        rect(&mut aligned, *d, Rgb([40, 220, 60]));
    }
    // Camera frame and aligned frame at half size side by side, the crops
    // (at three times the model's input size) below.
    let half = |img: &RgbImage| imageops::resize(img, 320, 240, imageops::FilterType::Triangle);
    let scale = 3;
    let strip_h = h * scale + 16;
    let mut canvas = RgbImage::from_pixel(652, 240 + strip_h + 4, Rgb([255, 255, 255]));
    imageops::replace(&mut canvas, &half(&shot.image), 4, 0);
    imageops::replace(&mut canvas, &half(&aligned), 328, 0);
    for (i, crop) in processed.digits.iter().enumerate() {
        let big = imageops::resize(crop, w * scale, h * scale, imageops::FilterType::Nearest);
        let x = 180 + i as i64 * i64::from(w * scale + 8);
        imageops::replace(&mut canvas, &big, x, 248);
    }
    canvas.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
