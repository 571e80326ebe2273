//! Value assembly: the per-roller predictions of one frame to one counter
//! reading, with rolling digits resolved.
//!
//! A roller counter is an odometer: roller `k` turns only while every roller
//! below it passes from 9 to 0, and then by exactly as much as the last roller
//! has turned. So each higher roller's *expected* position is its whole digit
//! plus the carry `max(0, lower - 9.0)` from the roller below it. The
//! [`Rule::Odometer`] rule picks, for each roller from the least significant
//! up, the whole digit whose expected position is nearest (on the circle) to
//! what the model saw, and keeps how far off it was (the *residual*): a large
//! residual means the rollers do not agree with each other and the reading is
//! unsure. [`Rule::FloorOrRound`] is AI-on-the-edge-device's rule, kept as the
//! baseline it is measured against.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Counter, DigitPrediction, Tenths};

/// How rolling digits are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// The full odometer model (see the module docs).
    #[default]
    Odometer,
    /// The baseline: a roller whose lower neighbour has not yet passed zero
    /// (reads 9.0 ..= 9.9) is read as its floor, else rounded.
    FloorOrRound,
}

/// Why predictions could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssemblyError {
    /// The number of predictions differs from the counter's rollers.
    #[error("expected {expected} digit predictions, got {got}")]
    DigitCount {
        /// Rollers of the counter.
        expected: usize,
        /// Predictions given.
        got: usize,
    },
}

/// One roller after assembly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResolvedDigit {
    /// What the model saw.
    pub observed: Tenths,
    /// The model's confidence in `observed`.
    pub confidence: f32,
    /// The whole digit the roller was resolved to.
    pub digit: u8,
    /// Where the roller should be for the assembled value (its digit plus
    /// the carry from the rollers below).
    pub expected: Tenths,
    /// Circular distance between `observed` and `expected`, in tenths
    /// (0 ..= 5): how much the roller disagrees with the rollers below it.
    pub residual: u8,
}

/// A counter value assembled from one frame's digit predictions, before any
/// plausibility check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The counter's shape.
    pub counter: Counter,
    /// The value in ticks (tenths of the last roller's step).
    pub ticks: u64,
    /// Each roller, most significant first.
    pub digits: Vec<ResolvedDigit>,
}

impl Reading {
    /// The value in the reading's unit, extra tenth included.
    pub fn value(&self) -> f64 {
        self.counter.to_units(self.ticks)
    }

    /// The lowest digit confidence and its roller index (most significant
    /// is 0); `None` for a reading of no rollers.
    pub fn min_confidence(&self) -> Option<(usize, f32)> {
        self.digits
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.confidence))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The largest residual and its roller index.
    pub fn max_residual(&self) -> Option<(usize, u8)> {
        self.digits
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.residual))
            .max_by_key(|&(i, r)| (r, std::cmp::Reverse(i)))
    }
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.counter.format(self.ticks))
    }
}

/// Assembles one frame's predictions, most significant roller first, with
/// the default [`Rule::Odometer`].
///
/// ```
/// use meter_core::{assemble, Counter, DigitPrediction, Tenths};
/// let p = |s: &str| DigitPrediction::with_confidence(s.parse().unwrap(), 0.99);
/// // 1 2.9 9.8: the 9 is rolling over, the 2 is carried with it: 129.8.
/// let r = assemble(Counter::new(3, 0).unwrap(), &[p("1.0"), p("2.9"), p("9.8")]).unwrap();
/// assert_eq!(r.to_string(), "129.8");
/// // 1 2.9 0.2: the last roller has passed zero, so the 2.9 is a 3: 130.2.
/// let r = assemble(Counter::new(3, 0).unwrap(), &[p("1.0"), p("2.9"), p("0.2")]).unwrap();
/// assert_eq!(r.to_string(), "130.2");
/// ```
pub fn assemble(counter: Counter, digits: &[DigitPrediction]) -> Result<Reading, AssemblyError> {
    assemble_with(Rule::Odometer, counter, digits)
}

/// Assembles one frame's predictions with the given rule.
pub fn assemble_with(
    rule: Rule,
    counter: Counter,
    digits: &[DigitPrediction],
) -> Result<Reading, AssemblyError> {
    let n = usize::from(counter.digits());
    if digits.len() != n {
        return Err(AssemblyError::DigitCount {
            expected: n,
            got: digits.len(),
        });
    }
    let mut resolved = Vec::with_capacity(n);
    // Position of the roller below, in tenths 0..=99 (its expected position).
    let mut lower: Option<i32> = None;
    for p in digits.iter().rev() {
        let x = i32::from(p.tenths.index());
        let (digit, expected) = match lower {
            // The last roller is read as it is: its fraction is the extra tenth.
            None => (x / 10, x),
            Some(low) => match rule {
                Rule::Odometer => {
                    let carry = (low - 90).max(0);
                    let d = (x - carry + 5).div_euclid(10).rem_euclid(10);
                    (d, d * 10 + carry)
                }
                Rule::FloorOrRound => {
                    let d = if low >= 90 {
                        x / 10
                    } else {
                        ((x + 5) / 10) % 10
                    };
                    (d, d * 10 + (low - 90).max(0))
                }
            },
        };
        let expected = Tenths::wrapping(i64::from(expected));
        resolved.push(ResolvedDigit {
            observed: p.tenths,
            confidence: p.confidence,
            digit: digit as u8,
            expected,
            residual: p.tenths.circular_distance(expected),
        });
        lower = Some(i32::from(expected.index()));
    }
    resolved.reverse();
    let whole = resolved
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d.digit));
    let last_fraction = u64::from(digits[n - 1].tenths.fraction_tenths());
    Ok(Reading {
        counter,
        ticks: whole * 10 + last_fraction,
        digits: resolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DigitPrediction {
        DigitPrediction::with_confidence(s.parse().unwrap(), 0.99)
    }

    fn read(rule: Rule, decimals: u8, ds: &[&str]) -> String {
        let c = Counter::new(ds.len(), decimals).unwrap();
        let preds: Vec<_> = ds.iter().map(|s| p(s)).collect();
        assemble_with(rule, c, &preds).unwrap().to_string()
    }

    #[test]
    fn leading_zeros_and_decimals() {
        let o = Rule::Odometer;
        assert_eq!(read(o, 1, &["0.0", "0.0", "1.0", "2.0", "3.4"]), "0012.34");
        assert_eq!(read(o, 0, &["0.0", "7.0"]), "07.0");
        assert_eq!(read(o, 2, &["4.0", "0.0", "5.3"]), "4.053");
    }

    #[test]
    fn rolling_digits_follow_the_carry() {
        let o = Rule::Odometer;
        // Carry chain: 1 2.7 9.7 9.7 is 1299.7.
        assert_eq!(read(o, 0, &["1.0", "2.7", "9.7", "9.7"]), "1299.7");
        // The model saw the hundreds a little ahead: still 1299.x.
        assert_eq!(read(o, 0, &["1.0", "3.1", "9.7", "9.7"]), "1299.7");
        // Lower rollers have passed zero, the hundreds lag: 1300.1.
        assert_eq!(read(o, 0, &["1.0", "2.9", "9.9", "0.1"]), "1300.1");
        // A settled roller that reads slightly low is rounded.
        assert_eq!(read(o, 0, &["1.0", "2.9", "4.0", "5.0"]), "1345.0");
    }

    #[test]
    fn odometer_fixes_what_the_baseline_gets_wrong() {
        // Units at 9.0 carry nothing yet, so tens that read 3.9 are a 4 seen
        // one tenth low (a 3 would have to be misread by nine tenths). The
        // baseline floors every roller above a 9.x and reads 39.
        assert_eq!(read(Rule::Odometer, 0, &["3.9", "9.0"]), "49.0");
        assert_eq!(read(Rule::FloorOrRound, 0, &["3.9", "9.0"]), "39.0");
        // Both agree on a clean carry.
        assert_eq!(read(Rule::Odometer, 0, &["3.5", "9.5"]), "39.5");
        assert_eq!(read(Rule::FloorOrRound, 0, &["3.5", "9.5"]), "39.5");
    }

    #[test]
    fn residual_flags_disagreement() {
        let c = Counter::new(2, 0).unwrap();
        // Tens half way while units settled at 3: nobody carries at 3.
        let r = assemble(c, &[p("4.5"), p("3.0")]).unwrap();
        assert_eq!(r.max_residual(), Some((0, 5)));
        let r = assemble(c, &[p("4.0"), p("3.0")]).unwrap();
        assert_eq!(r.max_residual(), Some((0, 0)));
    }

    #[test]
    fn wrong_count_is_an_error() {
        let c = Counter::new(3, 0).unwrap();
        assert_eq!(
            assemble(c, &[p("1.0")]),
            Err(AssemblyError::DigitCount {
                expected: 3,
                got: 1
            })
        );
    }
}
