//! Shared fixtures.

use std::path::Path;

use image::{Rgb, RgbImage};
use meter_core::Tenths;
use meter_synth::{render_digit, DigitStyle};

/// A few digit styles: light on dark, dark on light, red.
pub fn styles() -> Vec<DigitStyle> {
    let light = DigitStyle::default();
    let dark = DigitStyle {
        foreground: Rgb([20, 20, 20]),
        background: Rgb([225, 225, 215]),
        ..DigitStyle::default()
    };
    let red = DigitStyle {
        foreground: Rgb([230, 60, 50]),
        background: Rgb([40, 10, 10]),
        ..DigitStyle::default()
    };
    vec![light, dark, red]
}

pub fn tenths(s: &str) -> Tenths {
    s.parse().expect("valid label")
}

pub fn digit(label: &str, w: u32, h: u32) -> RgbImage {
    render_digit(tenths(label), w, h, &DigitStyle::default())
}

/// Writes `img` as PNG under `dir/label/name.png`.
pub fn write_png(dir: &Path, label: &str, name: &str, img: &RgbImage) {
    let sub = dir.join(label);
    std::fs::create_dir_all(&sub).expect("mkdir");
    img.save(sub.join(format!("{name}.png"))).expect("save png");
}
