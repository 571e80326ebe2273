//! Golden images of digit crops. Regenerate with `METER_UPDATE_GOLDEN=1
//! cargo test -p meter-vision --test it golden` and look at the PNGs.

use std::path::PathBuf;

use image::RgbImage;
use meter_synth::MeterLayout;
use meter_vision::{extract_digits, Aligner, Regions, Resample};

use crate::helpers::{shot, synth_pipeline};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// The crops side by side, one strip.
fn strip(crops: &[RgbImage]) -> RgbImage {
    let (w, h) = crops[0].dimensions();
    let mut out = RgbImage::new(w * crops.len() as u32, h);
    for (k, c) in crops.iter().enumerate() {
        image::imageops::replace(&mut out, c, i64::from(w) * k as i64, 0);
    }
    out
}

fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

fn mean_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    s as f64 / a.as_raw().len() as f64
}

/// Compares with the stored golden, or writes it under METER_UPDATE_GOLDEN.
fn check_golden(name: &str, got: &RgbImage) {
    let path = golden_path(name);
    if std::env::var_os("METER_UPDATE_GOLDEN").is_some() {
        got.save(&path).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let want = image::open(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with METER_UPDATE_GOLDEN=1)",
                path.display()
            )
        })
        .to_rgb8();
    assert_eq!(want.dimensions(), got.dimensions(), "{name}: size");
    // Same arithmetic everywhere; one level of slack for float rounding.
    let d = max_diff(&want, got);
    assert!(
        d <= 1,
        "{name}: differs from the golden by up to {d} levels"
    );
}

#[test]
fn digit_crops_of_a_moved_camera_match_the_golden() {
    let layout = MeterLayout::default();
    let out = synth_pipeline(&layout)
        .process_image(shot(&layout, 2.5, (11.0, -7.0), 42))
        .unwrap();
    assert_eq!(out.digits.len(), 6);
    let got = strip(&out.digits);
    check_golden("synth_moved_digits_20x32.png", &got);

    // The same digits shot without any camera movement crop (nearly) the
    // same: alignment took the movement out.
    let still = synth_pipeline(&layout)
        .process_image(shot(&layout, 0.0, (0.0, 0.0), 42))
        .unwrap();
    let d = mean_diff(&strip(&still.digits), &got);
    assert!(
        d < 6.0,
        "mean difference {d:.2} levels between still and moved crops"
    );
}

#[test]
fn counter_window_split_matches_the_golden() {
    let layout = MeterLayout::default();
    let first = layout.digits[0];
    let last = layout.digits[layout.digits.len() - 1];
    let window = [first[0], first[1], last[0] + last[2] - first[0], first[3]];
    let frame = shot(&layout, 0.0, (0.0, 0.0), 7);
    let alignment = Aligner::builder().build().unwrap().align(&frame).unwrap();
    let regions = Regions::Window { window, count: 6 };
    let crops = extract_digits(&frame, &alignment, &regions, (28, 28), Resample::Area).unwrap();
    check_golden("synth_window_split_28x28.png", &strip(&crops));
    let bilinear =
        extract_digits(&frame, &alignment, &regions, (28, 28), Resample::Bilinear).unwrap();
    assert_ne!(bilinear, crops, "the two filters differ");
}
