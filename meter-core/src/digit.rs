//! A roller digit's position in tenths of a step and the model's prediction
//! of it: the arg-max, its confidence, and the whole calibrated distribution.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

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

/// Why numbers are not a probability distribution over the 100 positions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DistributionError {
    /// Not one number per position.
    #[error("a digit distribution has {expected} probabilities, got {got}")]
    Length {
        /// [`Tenths::CLASSES`].
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// A negative or non-finite number, or nothing but zeros.
    #[error("a digit distribution needs finite, non-negative probabilities with a positive sum")]
    NotAProbability,
}

/// A calibrated probability for each of the 100 roller positions (summing
/// to 1). Cheap to clone: the numbers are shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f32>", into = "Vec<f32>")]
pub struct Distribution(Arc<[f32; Tenths::CLASSES]>);

impl Distribution {
    /// From one number per position; scaled to sum to 1.
    pub fn from_probs(probs: &[f32]) -> Result<Self, DistributionError> {
        let mut p: [f32; Tenths::CLASSES] =
            probs.try_into().map_err(|_| DistributionError::Length {
                expected: Tenths::CLASSES,
                got: probs.len(),
            })?;
        let sum: f32 = p.iter().sum();
        if p.iter().any(|v| !v.is_finite() || *v < 0.0) || !(sum.is_finite() && sum > 0.0) {
            return Err(DistributionError::NotAProbability);
        }
        // Already normalised numbers are kept as they are (so that a
        // distribution survives a round trip through text unchanged).
        if (sum - 1.0).abs() > 1e-5 {
            for v in &mut p {
                *v /= sum;
            }
        }
        Ok(Self(Arc::new(p)))
    }

    /// All mass on one position.
    pub fn point(at: Tenths) -> Self {
        let mut p = [0.0; Tenths::CLASSES];
        p[usize::from(at.index())] = 1.0;
        Self(Arc::new(p))
    }

    /// `confidence` on `at`, the rest spread evenly over the 97 positions more
    /// than a tenth away, so that [`Distribution::window`] at `at` is exactly
    /// `confidence` (for tests and synthetic predictions).
    pub fn peaked(at: Tenths, confidence: f32) -> Self {
        let c = confidence.clamp(0.0, 1.0);
        let rest = (1.0 - c) / (Tenths::CLASSES - 3) as f32;
        let p = std::array::from_fn(|i| match Tenths::wrapping(i as i64).circular_distance(at) {
            0 => c,
            1 => 0.0,
            _ => rest,
        });
        Self(Arc::new(p))
    }

    /// The probabilities, indexed by [`Tenths::index`].
    pub fn probs(&self) -> &[f32; Tenths::CLASSES] {
        &self.0
    }

    /// The probability of one position.
    pub fn prob(&self, at: Tenths) -> f32 {
        self.0[usize::from(at.index())]
    }

    /// The mass within one tenth of `at` (circular), at most 1.
    pub fn window(&self, at: Tenths) -> f32 {
        let i = i64::from(at.index());
        (-1..=1)
            .map(|d| self.prob(Tenths::wrapping(i + d)))
            .sum::<f32>()
            .min(1.0)
    }
}

impl TryFrom<Vec<f32>> for Distribution {
    type Error = DistributionError;
    fn try_from(v: Vec<f32>) -> Result<Self, Self::Error> {
        Self::from_probs(&v)
    }
}

impl From<Distribution> for Vec<f32> {
    fn from(d: Distribution) -> Self {
        d.0.to_vec()
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
    /// The calibrated probability of every position (what the reading-level
    /// decision weighs).
    pub distribution: Distribution,
}

impl DigitPrediction {
    /// How many alternatives [`DigitPrediction::from_distribution`] lists.
    pub const TOP: usize = 5;

    /// The prediction a distribution makes: its arg-max (the lowest position
    /// among equals), the mass within one tenth of it, and the
    /// [`DigitPrediction::TOP`] most likely positions.
    pub fn from_distribution(distribution: Distribution) -> Self {
        let probs = distribution.probs();
        let mut order: [u8; Tenths::CLASSES] = std::array::from_fn(|i| i as u8);
        // Stable: equals keep index order.
        order.sort_by(|&a, &b| probs[usize::from(b)].total_cmp(&probs[usize::from(a)]));
        let tenth = |i: u8| Tenths::wrapping(i64::from(i));
        let best = tenth(order[0]);
        Self {
            tenths: best,
            confidence: distribution.window(best),
            top: order[..Self::TOP]
                .iter()
                .map(|&i| (tenth(i), probs[usize::from(i)]))
                .collect(),
            distribution,
        }
    }

    /// A prediction of `tenths` with the given confidence (its distribution
    /// [`Distribution::peaked`]): for tests and synthetic readings.
    pub fn with_confidence(tenths: Tenths, confidence: f32) -> Self {
        let distribution = Distribution::peaked(tenths, confidence);
        Self {
            tenths,
            confidence: confidence.clamp(0.0, 1.0),
            top: vec![(tenths, distribution.prob(tenths))],
            distribution,
        }
    }

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
    fn distributions() {
        let t = |x: &str| x.parse::<Tenths>().unwrap();
        let d = Distribution::peaked(t("9.9"), 0.9);
        assert!((d.window(t("9.9")) - 0.9).abs() < 1e-6);
        assert!((d.probs().iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let p = DigitPrediction::from_distribution(d.clone());
        assert_eq!(p.tenths, t("9.9"));
        assert_eq!(p.top.len(), DigitPrediction::TOP);
        let q = DigitPrediction::with_confidence(t("9.9"), 0.9);
        assert_eq!(q.tenths, p.tenths);
        assert!((q.confidence - p.confidence).abs() < 1e-6);
        let close = q.distribution.probs().iter().zip(p.distribution.probs());
        assert!(close.into_iter().all(|(a, b)| (a - b).abs() < 1e-6));
        let mut probs = [0.0f32; 100];
        probs[39] = 2.0;
        probs[40] = 1.0;
        probs[41] = 1.0;
        let p = DigitPrediction::from_distribution(Distribution::from_probs(&probs).unwrap());
        assert_eq!((p.tenths, p.confidence), (t("3.9"), 0.75));
        assert!(Distribution::from_probs(&[1.0; 99]).is_err());
        assert!(Distribution::from_probs(&[0.0; 100]).is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Distribution>(&json).unwrap(), d);
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
