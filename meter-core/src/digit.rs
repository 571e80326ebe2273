//! A roller digit's position in tenths of a step and the model's prediction of it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A roller digit's position in tenths of a step: 0 (`0.0`) ..= 99 (`9.9`).
///
/// `37` means a `3` that has rolled 70% of the way towards `4`. The scale is
/// circular: `9.9` and `0.0` are neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "f32", into = "f32")]
pub struct Tenths(u8);

/// Why a text is not a valid digit label.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// The text is not `N` or `N.M` with single decimal digits.
    #[error("invalid digit label {text:?}: expected N or N.M with N, M in 0..=9")]
    Syntax {
        /// The offending text.
        text: String,
    },
    /// A numeric value outside 0.0 ..= 9.9.
    #[error("digit value {value} out of range 0.0..=9.9")]
    OutOfRange {
        /// The offending value.
        value: f32,
    },
}

impl Tenths {
    /// Number of classes (0.0 ..= 9.9).
    pub const CLASSES: usize = 100;

    /// From a class index 0..=99; `None` when out of range.
    pub const fn new(index: u8) -> Option<Self> {
        if index < 100 {
            Some(Self(index))
        } else {
            None
        }
    }

    /// From any integer, wrapped modulo 100 (so `-1` is `9.9`).
    pub const fn wrapping(index: i64) -> Self {
        Self(index.rem_euclid(100) as u8)
    }

    /// The class index 0..=99.
    pub const fn index(self) -> u8 {
        self.0
    }

    /// The value as a number of steps, `0.0 ..= 9.9`.
    pub fn value(self) -> f32 {
        f32::from(self.0) / 10.0
    }

    /// The digit the roller has started from (`3.7` -> 3).
    pub const fn floor_digit(self) -> u8 {
        self.0 / 10
    }

    /// The nearest whole digit, mod 10 (`3.7` -> 4, `9.6` -> 0).
    pub const fn settled_digit(self) -> u8 {
        ((self.0 + 5) / 10) % 10
    }

    /// The rolling fraction in tenths (`3.7` -> 7).
    pub const fn fraction_tenths(self) -> u8 {
        self.0 % 10
    }

    /// Circular distance in tenths (`9.9` to `0.0` is 1).
    pub fn circular_distance(self, other: Tenths) -> u8 {
        let d = (i16::from(self.0) - i16::from(other.0)).unsigned_abs() as u8;
        d.min(100 - d)
    }
}

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

impl FromStr for Tenths {
    type Err = LabelError;

    /// Parses `N` (= `N.0`) or `N.M`, as dataset folder names are written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || LabelError::Syntax { text: s.to_owned() };
        let digit = |c: u8| {
            if c.is_ascii_digit() {
                Some(c - b'0')
            } else {
                None
            }
        };
        match s.as_bytes() {
            [d] => digit(*d).map(|d| Self(d * 10)).ok_or_else(err),
            [d, b'.', m] => match (digit(*d), digit(*m)) {
                (Some(d), Some(m)) => Ok(Self(d * 10 + m)),
                _ => Err(err()),
            },
            _ => Err(err()),
        }
    }
}

impl TryFrom<f32> for Tenths {
    type Error = LabelError;

    fn try_from(value: f32) -> Result<Self, Self::Error> {
        let idx = (value * 10.0).round();
        if value.is_finite() && (0.0..=99.0).contains(&idx) {
            Ok(Self(idx as u8))
        } else {
            Err(LabelError::OutOfRange { value })
        }
    }
}

impl From<Tenths> for f32 {
    fn from(t: Tenths) -> f32 {
        t.value()
    }
}

/// The model's reading of one digit image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigitPrediction {
    /// The most likely position in tenths.
    pub tenths: Tenths,
    /// Calibrated probability that `tenths` is within one tenth of the truth,
    /// in 0..=1.
    pub confidence: f32,
    /// The best alternatives with their probabilities, most likely first
    /// (includes `tenths` itself).
    pub top: Vec<(Tenths, f32)>,
}

impl DigitPrediction {
    /// The nearest whole digit, mod 10.
    pub fn settled_digit(&self) -> u8 {
        self.tenths.settled_digit()
    }

    /// The rolling fraction in tenths.
    pub fn fraction_tenths(&self) -> u8 {
        self.tenths.fraction_tenths()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folder_names() {
        assert_eq!("0".parse::<Tenths>().unwrap().index(), 0);
        assert_eq!("9".parse::<Tenths>().unwrap().index(), 90);
        assert_eq!("3.7".parse::<Tenths>().unwrap().index(), 37);
        assert_eq!("9.9".parse::<Tenths>().unwrap().index(), 99);
        for bad in ["", "10", "3.", ".7", "3.77", "a", "3,7", "-1", " 3", "3.7 "] {
            assert!(bad.parse::<Tenths>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn settled_and_circular() {
        let t = |s: &str| s.parse::<Tenths>().unwrap();
        assert_eq!(t("9.6").settled_digit(), 0);
        assert_eq!(t("9.4").settled_digit(), 9);
        assert_eq!(t("9.9").circular_distance(t("0.0")), 1);
        assert_eq!(t("0.0").circular_distance(t("5.0")), 50);
        assert_eq!(Tenths::wrapping(-1), t("9.9"));
    }

    #[test]
    fn float_round_trip() {
        for i in 0..100u8 {
            let t = Tenths::new(i).unwrap();
            assert_eq!(Tenths::try_from(t.value()).unwrap(), t);
            assert_eq!(t.to_string().parse::<Tenths>().unwrap(), t);
        }
        assert!(Tenths::try_from(10.0).is_err());
        assert!(Tenths::try_from(f32::NAN).is_err());
    }
}
