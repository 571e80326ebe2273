//! Drawing the set-up overlay: boxes on a frame.

use image::{Rgb, RgbImage};
use imageproc::drawing::draw_hollow_rect_mut;
use imageproc::rect::Rect;

/// Draws the outline of `rect = [x, y, w, h]` with `thickness` pixels
/// growing outwards, clipped to the image.
pub fn draw_box(image: &mut RgbImage, rect: [u32; 4], color: Rgb<u8>, thickness: u32) {
    let [x, y, w, h] = rect.map(i64::from);
    for t in 0..i64::from(thickness) {
        let (w, h) = (w + 2 * t, h + 2 * t);
        if w <= 0 || h <= 0 {
            continue;
        }
        let r = Rect::at((x - t) as i32, (y - t) as i32).of_size(w as u32, h as u32);
        draw_hollow_rect_mut(image, r, color);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outline_only_and_clipped() {
        let mut img = RgbImage::new(20, 20);
        draw_box(&mut img, [5, 5, 6, 6], Rgb([0, 255, 0]), 2);
        assert_eq!(img.get_pixel(5, 5).0, [0, 255, 0]);
        assert_eq!(img.get_pixel(4, 4).0, [0, 255, 0]);
        assert_eq!(img.get_pixel(7, 7).0, [0, 0, 0]);
        draw_box(&mut img, [15, 15, 30, 30], Rgb([255, 0, 0]), 3);
        assert_eq!(img.get_pixel(15, 19).0, [255, 0, 0]);
    }
}
