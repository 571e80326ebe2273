//! A counter's shape (how many rollers, how many after the decimal point) and
//! exact counter values in tenths of the last roller's step.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Tenths;

/// Why a counter shape or a value text is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CounterError {
    /// The digit count is outside 1..=[`Counter::MAX_DIGITS`].
    #[error("a counter has 1..={max} digits, got {got}")]
    DigitCount {
        /// The requested count.
        got: usize,
        /// The largest supported count.
        max: usize,
    },
    /// More decimals than digits.
    #[error("{decimals} decimals on a counter of {digits} digits")]
    Decimals {
        /// Digits of the counter.
        digits: u8,
        /// Requested decimals.
        decimals: u8,
    },
    /// A value text is not a plain non-negative decimal number.
    #[error("invalid counter value {text:?}: expected a number like 12345.6")]
    Syntax {
        /// The offending text.
        text: String,
    },
    /// A value has more fractional digits than the counter resolves.
    #[error("value {text:?} has more than {max} decimal places for this counter")]
    TooPrecise {
        /// The offending text.
        text: String,
        /// Decimal places the counter resolves (its decimals plus the tenth).
        max: u8,
    },
    /// A value does not fit on the counter.
    #[error(
        "value {text:?} does not fit on a counter of {digits} digits with {decimals} decimals"
    )]
    TooLarge {
        /// The offending text.
        text: String,
        /// Digits of the counter.
        digits: u8,
        /// Decimals of the counter.
        decimals: u8,
    },
}

/// The shape of a roller counter: `digits` rollers, the last `decimals` of
/// them after the decimal point.
///
/// Values on it are counted in *ticks*: tenths of the last roller's step (the
/// last roller's rolling fraction is read as one extra decimal place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "CounterRaw", into = "CounterRaw")]
pub struct Counter {
    digits: u8,
    decimals: u8,
}

#[derive(Serialize, Deserialize)]
struct CounterRaw {
    digits: u8,
    decimals: u8,
}

impl TryFrom<CounterRaw> for Counter {
    type Error = CounterError;
    fn try_from(r: CounterRaw) -> Result<Self, Self::Error> {
        Counter::new(usize::from(r.digits), r.decimals)
    }
}

impl From<Counter> for CounterRaw {
    fn from(c: Counter) -> Self {
        CounterRaw {
            digits: c.digits,
            decimals: c.decimals,
        }
    }
}

impl Counter {
    /// The most rollers supported (ticks stay exact in an `f64`).
    pub const MAX_DIGITS: usize = 14;

    /// A counter of `digits` rollers with `decimals` of them after the point.
    pub fn new(digits: usize, decimals: u8) -> Result<Self, CounterError> {
        if digits == 0 || digits > Self::MAX_DIGITS {
            return Err(CounterError::DigitCount {
                got: digits,
                max: Self::MAX_DIGITS,
            });
        }
        let digits = digits as u8;
        if decimals > digits {
            return Err(CounterError::Decimals { digits, decimals });
        }
        Ok(Self { digits, decimals })
    }

    /// Number of rollers.
    pub const fn digits(self) -> u8 {
        self.digits
    }

    /// Rollers after the decimal point.
    pub const fn decimals(self) -> u8 {
        self.decimals
    }

    /// Ticks in one full turn of the counter (`10^(digits+1)`): the counter
    /// shows `ticks % modulus()`.
    pub const fn modulus(self) -> u64 {
        10u64.pow(self.digits as u32 + 1)
    }

    /// Ticks per unit of the reading (`10^(decimals+1)`).
    pub const fn ticks_per_unit(self) -> u64 {
        10u64.pow(self.decimals as u32 + 1)
    }

    /// A tick count in the reading's unit (`123456` ticks with 1 decimal is
    /// `1234.56`).
    pub fn to_units(self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_unit() as f64
    }

    /// Formats ticks with the counter's leading zeros and decimals plus the
    /// extra tenth: `0001234.56` for 7 digits, 1 decimal.
    pub fn format(self, ticks: u64) -> String {
        let s = format!("{:0width$}", ticks, width = usize::from(self.digits) + 1);
        let point = s.len() - usize::from(self.decimals) - 1;
        let int = if point == 0 { "0" } else { &s[..point] };
        format!("{int}.{}", &s[point..])
    }

    /// Formats ticks at the counter's own resolution (the extra tenth cut
    /// off, no leading zeros): `1234.5`.
    pub fn format_units(self, ticks: u64) -> String {
        let whole = ticks / 10;
        let p = 10u64.pow(u32::from(self.decimals));
        if self.decimals == 0 {
            whole.to_string()
        } else {
            format!(
                "{}.{:0w$}",
                whole / p,
                whole % p,
                w = usize::from(self.decimals)
            )
        }
    }

    /// Parses a value in the reading's unit (`"1234.56"`) into ticks.
    pub fn parse(self, text: &str) -> Result<u64, CounterError> {
        let syntax = || CounterError::Syntax {
            text: text.to_owned(),
        };
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) || text.ends_with('.') {
            return Err(syntax());
        }
        let places = self.decimals + 1;
        if frac.len() > usize::from(places) {
            return Err(CounterError::TooPrecise {
                text: text.to_owned(),
                max: places,
            });
        }
        let too_large = || CounterError::TooLarge {
            text: text.to_owned(),
            digits: self.digits,
            decimals: self.decimals,
        };
        let int: u64 = int.trim_start_matches('0').parse::<u64>().or_else(|_| {
            if int.bytes().all(|b| b == b'0') {
                Ok(0)
            } else {
                Err(too_large())
            }
        })?;
        let mut frac_ticks = 0u64;
        for k in 0..places {
            let d = frac
                .as_bytes()
                .get(usize::from(k))
                .map_or(0, |b| u64::from(b - b'0'));
            frac_ticks = frac_ticks * 10 + d;
        }
        let ticks = int
            .checked_mul(self.ticks_per_unit())
            .and_then(|t| t.checked_add(frac_ticks))
            .ok_or_else(too_large)?;
        if ticks >= self.modulus() {
            return Err(too_large());
        }
        Ok(ticks)
    }

    /// Where each roller stands for a value in ticks, most significant
    /// first. An odometer: a roller turns only while every roller below it
    /// passes from 9 to 0, and then by as much as the last roller turns
    /// (`1299.7` is `1.0 2.7 9.7 9.7`).
    pub fn positions(self, ticks: u64) -> Vec<Tenths> {
        let t = ticks % self.modulus();
        (0..u32::from(self.digits))
            .rev()
            .map(|i| {
                let step = 10u64.pow(i + 1); // ticks per whole turn of roller i from the end
                let whole = (t / step) % 10;
                let roll = (t % step).saturating_sub(step - 10);
                Tenths::wrapping((whole * 10 + roll) as i64)
            })
            .collect()
    }

    /// Forward distance from `from` to `to` on the counter's circle.
    pub fn forward(self, from: u64, to: u64) -> u64 {
        let m = self.modulus();
        (to % m + m - from % m) % m
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} digits, {} decimals", self.digits, self.decimals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_is_validated() {
        assert!(Counter::new(0, 0).is_err());
        assert!(Counter::new(15, 0).is_err());
        assert!(Counter::new(3, 4).is_err());
        assert!(Counter::new(3, 3).is_ok());
    }

    #[test]
    fn formats_and_parses() {
        let c = Counter::new(7, 1).unwrap();
        assert_eq!(c.modulus(), 100_000_000);
        assert_eq!(c.format(123_456), "001234.56");
        assert_eq!(c.format_units(123_456), "1234.5");
        assert_eq!(c.parse("1234.56").unwrap(), 123_456);
        assert_eq!(c.parse("1234.5").unwrap(), 123_450);
        assert_eq!(c.parse("1234").unwrap(), 123_400);
        assert_eq!(c.parse("0001234").unwrap(), 123_400);
        assert_eq!(c.parse("0").unwrap(), 0);
        assert!((c.to_units(123_456) - 1234.56).abs() < 1e-9);
        for bad in ["", ".5", "1.", "-1", "1e3", "1,5", " 1", "a"] {
            assert!(
                matches!(c.parse(bad), Err(CounterError::Syntax { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            c.parse("1.234"),
            Err(CounterError::TooPrecise { .. })
        ));
        assert!(matches!(
            c.parse("1000000"),
            Err(CounterError::TooLarge { .. })
        ));
        let z = Counter::new(4, 0).unwrap();
        assert_eq!(z.format(12), "0001.2");
        assert_eq!(z.format_units(12), "1");
    }

    #[test]
    fn odometer_positions() {
        let c = Counter::new(4, 0).unwrap();
        let show = |ticks| {
            c.positions(ticks)
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(show(12_340), "1.0 2.0 3.0 4.0");
        assert_eq!(show(12_997), "1.0 2.7 9.7 9.7");
        assert_eq!(show(12_987), "1.0 2.0 9.0 8.7");
        assert_eq!(show(100_010), "0.0 0.0 0.0 1.0");
    }

    #[test]
    fn forward_wraps() {
        let c = Counter::new(2, 0).unwrap();
        assert_eq!(c.forward(990, 5), 15);
        assert_eq!(c.forward(5, 990), 985);
        assert_eq!(c.forward(7, 7), 0);
    }
}
