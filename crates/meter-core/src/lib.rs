//! Domain types of meter-reader: digit predictions, readings, and (in later
//! modules) value assembly and plausibility rules. This crate does no I/O.
//!
//! ```
//! use meter_core::Tenths;
//! let t: Tenths = "3.7".parse().unwrap();
//! assert_eq!(t.settled_digit(), 4);
//! assert_eq!(t.floor_digit(), 3);
//! assert_eq!(t.fraction_tenths(), 7);
//! assert_eq!(t.to_string(), "3.7");
//! ```
#![deny(missing_docs)]

mod digit;

pub use digit::{DigitPrediction, LabelError, Tenths};
