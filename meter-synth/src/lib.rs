//! Synthetic roller digits and whole meter frames, rendered in code from a
//! bitmap font, so that tests, demos and the camera simulator need no data;
//! and counters composed from photos of real rollers, for a reading-level
//! evaluation ([`Plan`], [`evaluate`]).
//!
//! ```
//! use meter_synth::{render_digit, DigitStyle};
//! let img = render_digit("3.7".parse().unwrap(), 20, 32, &DigitStyle::default());
//! assert_eq!(img.dimensions(), (20, 32));
//! ```
#![deny(missing_docs)]

mod counters;
mod digit;
mod frame;
mod roller;

pub use counters::{
    evaluate, layout, ComposeError, CropBank, FrameSpec, FrameToRead, Outcome, Plan, Report,
    Stream, StreamKind, Tally, WrongFrame, START,
};
pub use digit::{render_digit, render_digit_into, write_whole_digits, DigitStyle};
pub use frame::{FrameParams, MeterLayout, SyntheticFrame};
pub use roller::{render_roller, GlyphSet, RollerStyle, Side, SideMark};
