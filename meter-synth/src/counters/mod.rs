//! Whole counters composed from photos of one meter's rollers, for a
//! reading-level evaluation: what users get from a meter, not how single
//! digits score.
//!
//! A [`CropBank`] holds one meter's labelled roller photos by position. A
//! [`Plan`] draws odometer-consistent counters of 5 to 8 rollers from it
//! (a settled roller shows `d.0`; a roller turns only while every roller
//! below it passes from 9 to 0, by the same fraction), seeded and
//! deterministic, biased towards carries in progress (a last roller at 9.x),
//! where readers fail:
//!
//! - single frames: each a counter of its own, read with no history;
//! - histories: a value rising by steps from one tick to a few hundred, read
//!   in order with the state kept; a roller that has not moved shows the
//!   same photo again, with fresh sensor noise, as a fixed camera would.
//!
//! Each [`Stream`] renders its frames on demand: the photos pasted into fixed
//! boxes of a small synthetic frame with two reference marks
//! ([`Stream::layout`]), so that a reader configured with that layout reads
//! them exactly as it reads a camera's frames. [`evaluate`] feeds every frame
//! to a `read` closure and tallies what it stored against the truth.

mod bank;
mod plan;
mod tally;

pub use bank::{ComposeError, CropBank};
pub use plan::{layout, FrameSpec, Plan, Stream, StreamKind, START};
pub use tally::{evaluate, FrameToRead, Outcome, Report, Tally, WrongFrame};
