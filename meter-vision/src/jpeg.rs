//! JPEG integrity checks and decoding.
//!
//! An ESP32-CAM sometimes sends a frame that was cut short: the file lacks
//! its end-of-image marker, or a decoder fills the missing part with flat
//! grey. Such a frame must never reach the model, so every frame goes through
//! [`validate_jpeg`] (bytes) and [`check_grey_bottom`] (pixels).

use image::RgbImage;

use crate::error::{JpegDefect, VisionError};

/// What a sound JPEG's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Rows at the bottom that must be flat grey before a frame counts as
/// truncated, at least: fewer could be a legitimately uniform strip.
const MIN_GREY_ROWS: u32 = 8;

/// ... and at least this share of the frame's height (1/60: 8 rows of a
/// 480-row VGA frame, 100 of a 6000-row photo, where 8 uniform rows are a
/// sliver of wall, not a lost transfer).
const GREY_ROWS_PER_HEIGHT: u32 = 60;

/// Rows of flat grey at the bottom (or top) that make a frame of `height`
/// rows count as truncated.
pub fn min_grey_rows(height: u32) -> u32 {
    MIN_GREY_ROWS.max(height / GREY_ROWS_PER_HEIGHT)
}

/// Rows of border (black edge of a rotated frame) allowed before the band.
const BORDER_ROWS: usize = 3;

/// Checks the byte structure of a JPEG without decoding it: start marker,
/// end marker (trailing zero padding allowed, as some cameras pad), and a
/// frame header with a non-zero size.
pub fn validate_jpeg(bytes: &[u8]) -> Result<JpegInfo, JpegDefect> {
    if bytes.len() < 4 {
        return Err(JpegDefect::TooShort { len: bytes.len() });
    }
    if bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err(JpegDefect::NoStartMarker {
            got: [bytes[0], bytes[1]],
        });
    }
    let end = bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count();
    if end < 4 || bytes[end - 2] != 0xFF || bytes[end - 1] != 0xD9 {
        return Err(JpegDefect::NoEndMarker { len: bytes.len() });
    }
    frame_header(bytes).ok_or_else(|| JpegDefect::Undecodable {
        message: "no frame header (SOF) with a non-zero size".into(),
    })
}

/// Finds the SOFn segment and reads the frame size from it.
fn frame_header(bytes: &[u8]) -> Option<JpegInfo> {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let seg = bytes.get(i + 4..i + 2 + len)?;
            let height = u32::from(u16::from_be_bytes([*seg.get(1)?, *seg.get(2)?]));
            let width = u32::from(u16::from_be_bytes([*seg.get(3)?, *seg.get(4)?]));
            return (width > 0 && height > 0).then_some(JpegInfo { width, height });
        }
        if marker == 0xDA {
            return None; // scan data before any frame header
        }
        i += 2 + len;
    }
    None
}

/// Looks for the flat grey band a truncated capture leaves at the bottom of
/// a decoded frame (or at the top, once such a frame was turned by 180
/// degrees and saved again, as happens with upside-down cameras).
pub fn check_grey_bottom(image: &RgbImage) -> Result<(), JpegDefect> {
    let (w, h) = image.dimensions();
    // The band may start after a few border rows (a rotated, re-saved frame).
    let band = |rows: &mut dyn Iterator<Item = u32>| -> u32 {
        let mut rows = rows.peekable();
        let mut skipped = 0;
        while skipped < BORDER_ROWS && rows.peek().is_some_and(|&y| !row_is_flat_grey(image, y, w))
        {
            rows.next();
            skipped += 1;
        }
        rows.take_while(|&y| row_is_flat_grey(image, y, w)).count() as u32
    };
    let bottom = band(&mut (0..h).rev());
    let top = band(&mut (0..h));
    let rows = bottom.max(top);
    if rows >= min_grey_rows(h) {
        Err(JpegDefect::GreyBottom { rows, height: h })
    } else {
        Ok(())
    }
}

fn row_is_flat_grey(image: &RgbImage, y: u32, w: u32) -> bool {
    if w == 0 {
        return false;
    }
    // Decoders fill missing blocks with mid-grey; JPEG ringing keeps it
    // within a few levels. A frame saved after a rotation may have a dark
    // border column, so a few odd pixels are allowed.
    let probe = image.get_pixel(w / 2, y).0;
    if !probe.iter().all(|c| (112..=144).contains(c)) {
        return false;
    }
    let flat = (0..w)
        .filter(|&x| {
            let p = image.get_pixel(x, y).0;
            p.iter().zip(probe.iter()).all(|(a, b)| a.abs_diff(*b) <= 4)
        })
        .count() as u32;
    flat * 100 >= w * 97
}

/// Validates and decodes a JPEG frame; `origin` names it in errors. The
/// picture is turned upright as its EXIF orientation says (a phone photo or
/// a re-saved frame), after the checks, which concern the stored pixels.
///
/// The result is never a truncated frame: missing end marker, decoder errors
/// and grey bottoms are all [`VisionError::CorruptJpeg`].
pub fn decode_jpeg(bytes: &[u8], origin: &str) -> Result<RgbImage, VisionError> {
    use image::{ImageDecoder, ImageReader};

    let corrupt = |defect| VisionError::CorruptJpeg {
        origin: origin.to_string(),
        defect,
        kept: None,
    };
    let undecodable = |e: image::ImageError| {
        corrupt(JpegDefect::Undecodable {
            message: e.to_string(),
        })
    };
    let info = validate_jpeg(bytes).map_err(corrupt)?;
    let mut decoder =
        ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Jpeg)
            .into_decoder()
            .map_err(undecodable)?;
    // A damaged EXIF block is no reason to refuse the pixels.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    // As `ImageReader::decode` does: the default allocation limit holds.
    image::Limits::default()
        .reserve(decoder.total_bytes())
        .map_err(undecodable)?;
    let pixels = image::DynamicImage::from_decoder(decoder)
        .map_err(undecodable)?
        .into_rgb8();
    let (w, h) = pixels.dimensions();
    if (w, h) != (info.width, info.height) {
        return Err(corrupt(JpegDefect::Undecodable {
            message: format!(
                "header says {}x{}, decoded {w}x{h}",
                info.width, info.height
            ),
        }));
    }
    check_grey_bottom(&pixels).map_err(corrupt)?;
    if orientation == image::metadata::Orientation::NoTransforms {
        return Ok(pixels);
    }
    let mut turned = image::DynamicImage::ImageRgb8(pixels);
    turned.apply_orientation(orientation);
    Ok(turned.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{codecs::jpeg::JpegEncoder, Rgb};

    fn jpeg_of(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(img)
            .unwrap();
        out
    }

    fn textured(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 60])
        })
    }

    #[test]
    fn sound_jpeg_passes() {
        let bytes = jpeg_of(&textured(64, 48));
        assert_eq!(
            validate_jpeg(&bytes),
            Ok(JpegInfo {
                width: 64,
                height: 48
            })
        );
        assert_eq!(decode_jpeg(&bytes, "t").unwrap().dimensions(), (64, 48));
        // Zero padding after the end marker is tolerated.
        let mut padded = bytes.clone();
        padded.extend([0; 10]);
        assert!(validate_jpeg(&padded).is_ok());
    }

    #[test]
    fn truncated_jpeg_is_detected() {
        let bytes = jpeg_of(&textured(64, 48));
        for cut in [3, 100, bytes.len() / 2, bytes.len() - 1] {
            let err = validate_jpeg(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    JpegDefect::NoEndMarker { .. } | JpegDefect::TooShort { .. }
                ),
                "{cut}: {err:?}"
            );
            assert!(decode_jpeg(&bytes[..cut], "t").is_err());
        }
        assert!(matches!(
            validate_jpeg(b"GIF89a...."),
            Err(JpegDefect::NoStartMarker { .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// Any bytes: an answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = validate_jpeg(&bytes);
            let _ = decode_jpeg(&bytes, "p");
        }

        /// Every proper prefix of a sound JPEG is refused.
        #[test]
        fn every_cut_is_refused(cut in 0usize..10_000) {
            let bytes = jpeg_of(&textured(64, 48));
            let cut = cut % (bytes.len() - 1);
            proptest::prop_assert!(decode_jpeg(&bytes[..cut], "p").is_err());
        }
    }

    /// A big-endian TIFF block with one IFD entry: Orientation = `o`.
    fn exif_orientation(o: u16) -> Vec<u8> {
        let mut v = b"MM\0\x2a\0\0\0\x08".to_vec();
        v.extend_from_slice(&1u16.to_be_bytes()); // entries
        v.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        v.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        v.extend_from_slice(&1u32.to_be_bytes()); // count
        v.extend_from_slice(&o.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding, no next IFD
        v
    }

    /// Issue 17: an EXIF-rotated photo was refused instead of turned.
    #[test]
    fn exif_orientation_is_honoured() {
        use image::ImageEncoder;
        // Upright: red left half, blue right half.
        let upright = RgbImage::from_fn(64, 48, |x, _| {
            if x < 32 {
                Rgb([220, 20, 20])
            } else {
                Rgb([20, 20, 220])
            }
        });
        // Stored turned a quarter counter-clockwise, with orientation 6
        // ("turn 90 degrees clockwise to show"), as a phone held upright saves it.
        let stored = image::imageops::rotate270(&upright);
        let mut bytes = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 95);
        encoder.set_exif_metadata(exif_orientation(6)).unwrap();
        encoder
            .write_image(stored.as_raw(), 48, 64, image::ExtendedColorType::Rgb8)
            .unwrap();
        let shown = decode_jpeg(&bytes, "t").unwrap();
        assert_eq!(shown.dimensions(), (64, 48));
        let red = shown.get_pixel(5, 24).0;
        let blue = shown.get_pixel(58, 24).0;
        assert!(red[0] > 150 && red[2] < 100, "{red:?}");
        assert!(blue[2] > 150 && blue[0] < 100, "{blue:?}");
    }

    /// Issue 17: the grey-band test counted 8 rows whatever the height, and
    /// a clean 8000x6000 frame was refused as truncated.
    #[test]
    fn a_large_clean_frame_with_a_uniform_strip_is_not_truncated() {
        let (w, h) = (8000, 6000);
        // A 640x480 frame with 5 uniform rows at the bottom (fine there),
        // at 12.5 times the size: 62 rows.
        let strip = h - 62;
        let mut img = RgbImage::from_fn(w, h, |x, y| {
            if y >= strip {
                Rgb([128, 128, 128])
            } else {
                Rgb([(x / 13 % 256) as u8, (y / 11 % 256) as u8, 60])
            }
        });
        assert_eq!(
            decode_jpeg(&jpeg_of(&img), "big").unwrap().dimensions(),
            (w, h)
        );
        // A truncated one of that size (a quarter lost) is still refused.
        for y in h * 3 / 4..h {
            for x in 0..w {
                img.put_pixel(x, y, Rgb([128, 128, 128]));
            }
        }
        assert!(matches!(
            check_grey_bottom(&img),
            Err(JpegDefect::GreyBottom { rows: 1500, .. })
        ));
        assert_eq!(min_grey_rows(480), 8);
        assert_eq!(min_grey_rows(6000), 100);
    }

    #[test]
    fn grey_bottom_is_detected() {
        let mut img = textured(64, 48);
        assert!(check_grey_bottom(&img).is_ok());
        for y in 30..48 {
            for x in 0..64 {
                img.put_pixel(x, y, Rgb([128, 128, 128]));
            }
        }
        assert_eq!(
            check_grey_bottom(&img),
            Err(JpegDefect::GreyBottom {
                rows: 18,
                height: 48
            })
        );
        let err = decode_jpeg(&jpeg_of(&img), "t").unwrap_err();
        assert!(matches!(
            err,
            VisionError::CorruptJpeg {
                defect: JpegDefect::GreyBottom { .. },
                ..
            }
        ));
        // A few grey rows are not enough (could be a uniform strip).
        let mut img = textured(64, 48);
        for x in 0..64 {
            img.put_pixel(x, 47, Rgb([128, 128, 128]));
        }
        assert!(check_grey_bottom(&img).is_ok());
    }
}
