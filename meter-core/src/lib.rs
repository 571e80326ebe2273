//! Domain types of meter-reader: digit predictions, counter values, value
//! assembly (rolling digits resolved) and plausibility rules, and the
//! decision on a whole reading ([`judge`]: the odometer [`Posterior`] over
//! every roller's distribution, with the history as a veto). This crate does
//! no I/O: callers persist [`State`] and feed it back.
//!
//! ```
//! use meter_core::{assemble, decide, Counter, Decision, DigitPrediction, Rules, State};
//! use time::macros::datetime;
//!
//! let p = |s: &str| DigitPrediction::with_confidence(s.parse().unwrap(), 0.99);
//! let counter = Counter::new(5, 1).unwrap();
//! // 0 1 2.0 9.4 9.4: 0129.94 (the 2 is 40% of the way to 3 with the 9s).
//! let reading = assemble(counter, &[p("0.0"), p("1.0"), p("2.4"), p("9.4"), p("9.4")]).unwrap();
//! assert_eq!(reading.to_string(), "0129.94");
//! assert_eq!(reading.value(), 129.94);
//!
//! let state = State::new(counter);
//! let (decision, state) = decide(&state, &Rules::default(), &reading, datetime!(2024-01-01 0:00 UTC)).unwrap();
//! assert_eq!(decision.stored_ticks(), Some(12994));
//! // Going backwards is rejected, with a reason.
//! let back = assemble(counter, &[p("0.0"), p("1.0"), p("2.0"), p("5.0"), p("0.0")]).unwrap();
//! let (decision, _) = decide(&state, &Rules::default(), &back, datetime!(2024-01-01 0:01 UTC)).unwrap();
//! assert_eq!(decision.to_string(), "rejected: value went down from 129.94 to 125");
//! ```
#![deny(missing_docs)]

mod assemble;
mod counter;
mod digit;
mod judge;
mod plausibility;
mod posterior;

pub use assemble::{assemble, assemble_with, AssemblyError, Reading, ResolvedDigit, Rule};
pub use counter::{Counter, CounterError};
pub use digit::{DigitPrediction, Distribution, DistributionError, LabelError, Tenths};
pub use judge::{judge, Evidence, Judgement};
pub use plausibility::{
    decide, DecideError, Decision, DecisionRule, Note, Pending, Reason, Rules, State, Timed,
};
pub use posterior::{Candidate, Posterior, Roller};
