//! Reading composed frames and tallying what was stored against the truth
//! ([`evaluate`]).

use std::collections::BTreeMap;

use image::RgbImage;
use meter_core::Counter;
use serde::Serialize;
use time::OffsetDateTime;

use super::{CropBank, Stream, StreamKind};
use crate::frame::MeterLayout;

/// What reading one frame gave.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outcome {
    /// The value stored, in ticks; `None` when not stored.
    pub stored: Option<u64>,
    /// Whether it was unsure (else rejected, when not stored).
    pub unsure: bool,
    /// The reading assembled before any decision, in ticks.
    pub raw: u64,
}

/// One frame handed to the reader.
#[derive(Debug)]
pub struct FrameToRead<'a> {
    /// The stream's counter.
    pub counter: Counter,
    /// The stream's layout (digit boxes and marks).
    pub layout: &'a MeterLayout,
    /// Which stream (a new one needs a fresh state).
    pub stream: usize,
    /// Its place in the stream: 0 starts it.
    pub index: usize,
    /// The frame.
    pub image: RgbImage,
    /// When it was taken.
    pub time: OffsetDateTime,
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Frames read.
    pub frames: usize,
    /// Stored.
    pub stored: usize,
    /// Stored, but more than one tick from the truth.
    pub stored_wrong: usize,
    /// Unsure.
    pub unsure: usize,
    /// Rejected.
    pub rejected: usize,
    /// Assembled within one tick of the truth (before the decision).
    pub raw_right: usize,
}

impl Tally {
    /// Adds another tally.
    pub fn add(&mut self, other: &Tally) {
        self.frames += other.frames;
        self.stored += other.stored;
        self.stored_wrong += other.stored_wrong;
        self.unsure += other.unsure;
        self.rejected += other.rejected;
        self.raw_right += other.raw_right;
    }

    /// Share of frames stored.
    pub fn stored_share(&self) -> f64 {
        self.stored as f64 / self.frames.max(1) as f64
    }

    /// Share of frames read right before the decision.
    pub fn raw_right_share(&self) -> f64 {
        self.raw_right as f64 / self.frames.max(1) as f64
    }

    fn count(&mut self, counter: Counter, truth: u64, o: &Outcome) {
        let off = |v: u64| counter.forward(v, truth).min(counter.forward(truth, v));
        self.frames += 1;
        match o.stored {
            Some(v) => {
                self.stored += 1;
                if off(v) > 1 {
                    self.stored_wrong += 1;
                }
            }
            None if o.unsure => self.unsure += 1,
            None => self.rejected += 1,
        }
        if off(o.raw) <= 1 {
            self.raw_right += 1;
        }
    }
}

/// A stored-but-wrong frame, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrongFrame {
    /// Single frame or history.
    pub kind: StreamKind,
    /// The stream.
    pub stream: usize,
    /// The frame's place in it.
    pub index: usize,
    /// The truth, as the counter shows it.
    pub truth: String,
    /// What was stored.
    pub stored: String,
}

/// Tallies by meter and stream kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Per meter: single frames and histories.
    pub meters: BTreeMap<String, BTreeMap<StreamKind, Tally>>,
    /// Every meter together.
    pub overall: BTreeMap<StreamKind, Tally>,
    /// Every stored-but-wrong frame.
    pub wrong: BTreeMap<String, Vec<WrongFrame>>,
}

impl Report {
    /// Adds one meter's results.
    pub fn add(&mut self, meter: &str, kind: StreamKind, tally: &Tally) {
        self.meters
            .entry(meter.to_owned())
            .or_default()
            .entry(kind)
            .or_default()
            .add(tally);
        self.overall.entry(kind).or_default().add(tally);
    }
}

/// Reads every frame of `streams` (composed from `bank`) in order with
/// `read`, and adds the outcomes to `report` under the bank's meter. `read`
/// must start a fresh state for frame 0 of each stream and keep it through
/// the stream, as `meter run` keeps a meter's state.
pub fn evaluate<E>(
    bank: &CropBank,
    streams: &[Stream],
    report: &mut Report,
    mut read: impl FnMut(FrameToRead<'_>) -> Result<Outcome, E>,
) -> Result<(), E> {
    let mut tallies: BTreeMap<StreamKind, Tally> = BTreeMap::new();
    for (s, stream) in streams.iter().enumerate() {
        for (i, spec) in stream.frames.iter().enumerate() {
            let Some(image) = stream.render(bank, i) else {
                continue;
            };
            let outcome = read(FrameToRead {
                counter: stream.counter,
                layout: &stream.layout,
                stream: s,
                index: i,
                image,
                time: spec.time,
            })?;
            let tally = tallies.entry(stream.kind).or_default();
            let before = tally.stored_wrong;
            tally.count(stream.counter, spec.ticks, &outcome);
            if tally.stored_wrong > before {
                report
                    .wrong
                    .entry(bank.meter().to_owned())
                    .or_default()
                    .push(WrongFrame {
                        kind: stream.kind,
                        stream: s,
                        index: i,
                        truth: stream.counter.format(spec.ticks),
                        stored: stream.counter.format(outcome.stored.unwrap_or(0)),
                    });
            }
        }
    }
    for (kind, t) in &tallies {
        report.add(bank.meter(), *kind, t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::plan::tests::small_plan;

    #[test]
    fn evaluation_tallies_against_the_truth() {
        let bank = CropBank::synthetic((24, 40), 1, 3);
        let streams = small_plan().compose(&bank).unwrap();
        let mut report = Report::default();
        // A reader that knows the truth but stores every third frame two
        // ticks high, leaves every fifth unstored (every tenth unsure) and
        // reads every fifth two ticks off.
        let truth: Vec<Vec<u64>> = streams
            .iter()
            .map(|s| s.frames.iter().map(|f| f.ticks).collect())
            .collect();
        let mut seen = 0;
        evaluate(&bank, &streams, &mut report, |f| {
            seen += 1;
            let t = truth[f.stream][f.index];
            let m = f.counter.modulus();
            Ok::<_, ()>(Outcome {
                stored: (seen % 5 != 0).then_some((t + 2 * u64::from(seen % 3 == 0)) % m),
                unsure: seen % 10 == 0,
                raw: (t + 2 * u64::from(seen % 5 == 0)) % m,
            })
        })
        .unwrap();
        let all: Tally = report.overall.values().fold(Tally::default(), |mut a, t| {
            a.add(t);
            a
        });
        assert_eq!(all.frames, 90);
        assert_eq!(all.stored, 72);
        assert_eq!(all.stored_wrong, 24);
        assert_eq!(report.wrong["synthetic"].len(), 24);
        assert_eq!(all.unsure, 9);
        assert_eq!(all.rejected, 9);
        assert_eq!(all.raw_right, 72);
        assert_eq!(report.meters["synthetic"].len(), 2);
    }
}
