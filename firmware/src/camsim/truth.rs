//! The truth about a simulated frame, carried in response headers.

use meter_core::Tenths;

use crate::TruthError;

/// Header: frame sequence number, 0 for the first frame served.
pub const HEADER_SEQ: &str = "X-Frame-Seq";
/// Header: the counter value in meter units with the extended resolution
/// (one more decimal than the meter shows), e.g. `1234.56`.
pub const HEADER_VALUE: &str = "X-Meter-Value";
/// Header: the number of decimals of the meter (digits after the point).
pub const HEADER_DECIMALS: &str = "X-Meter-Decimals";
/// Header: every roller's position in tenths, most significant first,
/// comma-separated, e.g. `0.0,1.0,2.0,3.0,4.0,5.6`.
pub const HEADER_DIGITS: &str = "X-Meter-Digits";
/// Header: the shift of the upright image relative to the aligned frame,
/// `dx,dy` in pixels (before any `vflip`/`hmirror`).
pub const HEADER_SHIFT: &str = "X-Frame-Shift";
/// Header: the rotation of the upright image relative to the aligned
/// frame, degrees, counter-clockwise positive (before any flip).
pub const HEADER_ROTATION: &str = "X-Frame-Rotation";
/// Header: the flash PWM duty the frame was taken with (0 = no flash).
pub const HEADER_FLASH: &str = "X-Flash-Duty";
/// Header: the file a folder-source frame came from.
pub const HEADER_FILE: &str = "X-Frame-File";

/// What a synthetic frame really shows.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameTruth {
    /// Sequence number, 0 for the first frame served.
    pub seq: u64,
    /// The counter in tenths of the last digit's step (`123456` with one
    /// decimal is `1234.56` units): exact, no floating point.
    pub tenths: i64,
    /// Digits after the decimal point.
    pub decimals: u32,
    /// Each roller's position, most significant first.
    pub digits: Vec<Tenths>,
    /// Shift of the upright image, pixels.
    pub shift: (f32, f32),
    /// Rotation of the upright image, degrees counter-clockwise.
    pub rotation_deg: f32,
}

impl FrameTruth {
    /// The value in meter units, with the extended resolution.
    pub fn value(&self) -> f64 {
        self.tenths as f64 / 10f64.powi(self.decimals as i32 + 1)
    }

    /// The value as printed in [`HEADER_VALUE`] (exact decimal text).
    pub fn value_text(&self) -> String {
        let scale = 10i64.pow(self.decimals + 1);
        format!(
            "{}.{:0width$}",
            self.tenths / scale,
            self.tenths % scale,
            width = self.decimals as usize + 1
        )
    }

    /// The headers describing this frame.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let digits: Vec<String> = self.digits.iter().map(|d| d.to_string()).collect();
        vec![
            (HEADER_SEQ, self.seq.to_string()),
            (HEADER_VALUE, self.value_text()),
            (HEADER_DECIMALS, self.decimals.to_string()),
            (HEADER_DIGITS, digits.join(",")),
            (
                HEADER_SHIFT,
                format!("{:.3},{:.3}", self.shift.0, self.shift.1),
            ),
            (HEADER_ROTATION, format!("{:.4}", self.rotation_deg)),
        ]
    }

    /// Reads the truth back from response headers (`get` returns a
    /// header's value by name); `Ok(None)` when the frame carries none
    /// (a folder source).
    pub fn from_headers(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<FrameTruth>, TruthError> {
        let Some(value) = get(HEADER_VALUE) else {
            return Ok(None);
        };
        let req = |h: &'static str| {
            get(h).ok_or(TruthError::Malformed {
                header: h,
                value: String::new(),
            })
        };
        let bad = |h: &'static str, v: &str| TruthError::Malformed {
            header: h,
            value: v.to_owned(),
        };
        let decimals_text = req(HEADER_DECIMALS)?;
        let decimals: u32 = decimals_text
            .trim()
            .parse()
            .map_err(|_| bad(HEADER_DECIMALS, &decimals_text))?;
        let tenths =
            parse_fixed(value.trim(), decimals + 1).ok_or_else(|| bad(HEADER_VALUE, &value))?;
        let seq_text = req(HEADER_SEQ)?;
        let seq = seq_text
            .trim()
            .parse()
            .map_err(|_| bad(HEADER_SEQ, &seq_text))?;
        let digits_text = req(HEADER_DIGITS)?;
        let digits = digits_text
            .split(',')
            .map(|d| d.trim().parse::<Tenths>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad(HEADER_DIGITS, &digits_text))?;
        let pair = |h: &'static str| -> Result<(f32, f32), TruthError> {
            let t = req(h)?;
            let mut it = t.split(',').map(|s| s.trim().parse::<f32>());
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(a)), Some(Ok(b)), None) => Ok((a, b)),
                _ => Err(bad(h, &t)),
            }
        };
        let shift = pair(HEADER_SHIFT)?;
        let rot_text = req(HEADER_ROTATION)?;
        let rotation_deg = rot_text
            .trim()
            .parse()
            .map_err(|_| bad(HEADER_ROTATION, &rot_text))?;
        Ok(Some(FrameTruth {
            seq,
            tenths,
            decimals,
            digits,
            shift,
            rotation_deg,
        }))
    }
}

/// Parses `int.frac` with exactly `places` fraction digits into an integer
/// scaled by 10^places.
fn parse_fixed(text: &str, places: u32) -> Option<i64> {
    let (int, frac) = text.split_once('.')?;
    if frac.len() != places as usize || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let frac: i64 = frac.parse().ok()?;
    Some(int * 10i64.pow(places) + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let t = FrameTruth {
            seq: 7,
            tenths: 123_406,
            decimals: 1,
            digits: vec!["0.0".parse().unwrap(), "5.6".parse().unwrap()],
            shift: (1.5, -2.25),
            rotation_deg: -0.75,
        };
        assert_eq!(t.value_text(), "1234.06");
        assert!((t.value() - 1234.06).abs() < 1e-9);
        let h = t.headers();
        let back =
            FrameTruth::from_headers(|n| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
                .unwrap()
                .unwrap();
        assert_eq!(back, t);
        assert_eq!(FrameTruth::from_headers(|_| None), Ok(None));
    }
}
