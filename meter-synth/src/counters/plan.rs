//! Drawing odometer-consistent counters from a [`CropBank`]: single frames
//! and rising histories ([`Plan::compose`]), rendered on demand
//! ([`Stream::render`]).

use image::RgbImage;
use meter_core::{Counter, Tenths};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::{ComposeError, CropBank};
use crate::digit::DigitStyle;
use crate::frame::{FrameParams, MeterLayout};

/// How many counters to compose and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The seed of every draw.
    pub seed: u64,
    /// Single frames (each its own counter, read without history).
    pub single_frames: usize,
    /// Histories.
    pub histories: usize,
    /// Frames per history.
    pub history_len: usize,
    /// Rollers per counter, drawn evenly from this range.
    pub rollers: (u8, u8),
    /// Share of draws aimed at a carry in progress (a last roller at 9.1 ..
    /// 9.9).
    pub carry_bias: f64,
    /// Steps of a history, in ticks, drawn log-uniformly from this range.
    pub steps: (u64, u64),
    /// Time between a history's frames.
    pub interval: Duration,
    /// Standard deviation of the sensor noise added to every frame (0..255).
    pub noise: f32,
}

impl Default for Plan {
    /// 200 single frames and 10 histories of 50 frames, 5 to 8 rollers,
    /// half the draws at a carry, steps of 1 to 300 ticks (0.01 to 3 units
    /// on a counter with one decimal) every 10 minutes, noise 3.
    fn default() -> Self {
        Self {
            seed: 1,
            single_frames: 200,
            histories: 10,
            history_len: 50,
            rollers: (5, 8),
            carry_bias: 0.5,
            steps: (1, 300),
            interval: Duration::minutes(10),
            noise: 3.0,
        }
    }
}

/// When the first frame of every stream is taken.
pub const START: OffsetDateTime = time::macros::datetime!(2024-01-01 0:00 UTC);

/// One frame of a stream: its truth and which photos it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSpec {
    /// The counter's value, in ticks.
    pub ticks: u64,
    /// When it is taken.
    pub time: OffsetDateTime,
    /// For each roller, which photo of its position it shows.
    photos: Vec<usize>,
    /// Seed of its sensor noise.
    noise_seed: u64,
}

/// Frames read in order with one state: a history, or a single frame.
#[derive(Debug, Clone)]
pub struct Stream {
    /// Single frame or history.
    pub kind: StreamKind,
    /// The counter (one decimal, so that a tick is 0.01 of the unit).
    pub counter: Counter,
    /// Where the digit boxes and marks are.
    pub layout: MeterLayout,
    /// The frames, in order.
    pub frames: Vec<FrameSpec>,
    noise: f32,
}

/// What a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// One frame, read with no history.
    Single,
    /// A rising value read in order, the state kept.
    History,
}

impl Stream {
    /// Renders frame `i` from the bank the stream was planned on.
    pub fn render(&self, bank: &CropBank, i: usize) -> Option<RgbImage> {
        let spec = self.frames.get(i)?;
        let params = FrameParams {
            counter: spec.ticks as f64 / 10.0,
            noise: self.noise,
            seed: spec.noise_seed,
            ..FrameParams::default()
        };
        let shot = self.layout.render_with(&params, &mut |k, t, cell| {
            if let Some(photo) = bank.photos(t).get(spec.photos[k]) {
                cell.copy_from_slice(photo.as_raw());
            }
        });
        Some(shot.image)
    }
}

/// A frame layout for `rollers` boxes of `size`: a dark counter window with a
/// reference mark in two corners.
pub fn layout(rollers: u8, size: (u32, u32)) -> MeterLayout {
    let (w, h) = size;
    let gap = (w / 4).max(2);
    let margin = 64;
    let width = 2 * margin + u32::from(rollers) * (w + gap);
    let height = h + 2 * 44;
    MeterLayout {
        width,
        height,
        digits: (0..u32::from(rollers))
            .map(|i| [margin + i * (w + gap), 44, w, h])
            .collect(),
        marks: vec![[4, 4, 32, 32], [width - 36, height - 36, 32, 32]],
        style: DigitStyle::default(),
    }
}

impl Plan {
    /// Composes the streams of one meter: single frames first, then
    /// histories. The same plan and bank give the same streams.
    pub fn compose(&self, bank: &CropBank) -> Result<Vec<Stream>, ComposeError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut out = Vec::with_capacity(self.single_frames + self.histories);
        let (lo, hi) = (self.rollers.0.max(1), self.rollers.1.max(self.rollers.0));
        for i in 0..self.single_frames + self.histories {
            let kind = if i < self.single_frames {
                StreamKind::Single
            } else {
                StreamKind::History
            };
            let rollers = rng.gen_range(lo..=hi);
            let counter =
                Counter::new(usize::from(rollers), 1).map_err(|e| ComposeError::TooFewLabels {
                    meter: bank.meter().to_owned(),
                    why: e.to_string(),
                })?;
            let start = self.draw_value(bank, counter, &mut rng)?;
            let len = match kind {
                StreamKind::Single => 1,
                StreamKind::History => self.history_len.max(1),
            };
            let mut values = vec![start];
            while values.len() < len {
                let last = values[values.len() - 1];
                match self.next_value(bank, counter, last, &mut rng) {
                    Some(v) => values.push(v),
                    None => break,
                }
            }
            let base = START + Duration::days(i as i64);
            let mut shown: Vec<Option<(Tenths, usize)>> = vec![None; usize::from(rollers)];
            let frames = values
                .into_iter()
                .enumerate()
                .map(|(k, ticks)| {
                    let photos = counter
                        .positions(ticks)
                        .into_iter()
                        .zip(&mut shown)
                        .map(|(t, prev)| match *prev {
                            // Not moved: the same photo again.
                            Some((pt, idx)) if pt == t => idx,
                            _ => {
                                let idx = rng.gen_range(0..bank.photos(t).len());
                                *prev = Some((t, idx));
                                idx
                            }
                        })
                        .collect();
                    FrameSpec {
                        ticks,
                        time: base + self.interval * k as i32,
                        photos,
                        noise_seed: rng.gen(),
                    }
                })
                .collect();
            out.push(Stream {
                kind,
                counter,
                layout: layout(rollers, bank.size()),
                frames,
                noise: self.noise,
            });
        }
        Ok(out)
    }

    /// A value whose every roller position has photos, built from the last
    /// roller up; aimed at a carry in progress with `carry_bias`.
    fn draw_value(
        &self,
        bank: &CropBank,
        counter: Counter,
        rng: &mut ChaCha8Rng,
    ) -> Result<u64, ComposeError> {
        let n = usize::from(counter.digits());
        let labels: Vec<u8> = (0..Tenths::CLASSES as u8)
            .filter(|&i| bank.has(Tenths::wrapping(i64::from(i))))
            .collect();
        let settled: Vec<u64> = (0..10u64)
            .filter(|d| bank.has(Tenths::wrapping(*d as i64 * 10)))
            .collect();
        let too_few = |why: &str| ComposeError::TooFewLabels {
            meter: bank.meter().to_owned(),
            why: why.to_owned(),
        };
        if labels.is_empty() {
            return Err(too_few("no photos"));
        }
        if n > 1 && settled.is_empty() {
            return Err(too_few("no settled digit (d.0) for the upper rollers"));
        }
        for _ in 0..1000 {
            let carrying: Vec<u8> = labels.iter().copied().filter(|&l| l > 90).collect();
            let x = if !carrying.is_empty() && rng.gen_bool(self.carry_bias.clamp(0.0, 1.0)) {
                carrying[rng.gen_range(0..carrying.len())]
            } else {
                labels[rng.gen_range(0..labels.len())]
            };
            let mut ticks = u64::from(x);
            let mut carry = u64::from(x.saturating_sub(90));
            let mut ok = true;
            for k in 1..n {
                let place = 10u64.pow(k as u32 + 1);
                let options: Vec<u64> = if carry > 0 {
                    (0..10u64)
                        .filter(|d| bank.has(Tenths::wrapping((d * 10 + carry) as i64)))
                        .collect()
                } else {
                    settled.clone()
                };
                // Half the time a carry runs on through a 9.
                let d = if carry > 0 && options.contains(&9) && rng.gen_bool(0.5) {
                    9
                } else if let Some(d) = options.choose(rng) {
                    *d
                } else {
                    ok = false;
                    break;
                };
                ticks += d * place;
                if d != 9 {
                    carry = 0;
                }
            }
            if ok && bank.has_all(counter, ticks) {
                return Ok(ticks);
            }
        }
        Err(too_few("no odometer position has photos for every roller"))
    }

    /// The first value with photos for every roller at least one step above
    /// `last`; one draw in three aims at the next carry instead.
    fn next_value(
        &self,
        bank: &CropBank,
        counter: Counter,
        last: u64,
        rng: &mut ChaCha8Rng,
    ) -> Option<u64> {
        let (lo, hi) = (self.steps.0.max(1), self.steps.1.max(self.steps.0.max(1)));
        let step = ((lo as f64).ln() + rng.gen::<f64>() * ((hi as f64).ln() - (lo as f64).ln()))
            .exp()
            .round() as u64;
        let mut target = last + step.clamp(lo, hi);
        let to_carry = (90 + 100 - last % 100) % 100 + rng.gen_range(1..10);
        if rng.gen_bool(self.carry_bias.clamp(0.0, 1.0) / 1.5) && (lo..=hi).contains(&to_carry) {
            target = last + to_carry;
        }
        // Sparse photos: look ahead for a value that can be shown.
        (target..target + 100_000)
            .find(|&v| bank.has_all(counter, v % counter.modulus()))
            .map(|v| v % counter.modulus())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use image::imageops;

    use super::*;

    pub(crate) fn small_plan() -> Plan {
        Plan {
            single_frames: 30,
            histories: 3,
            history_len: 20,
            ..Plan::default()
        }
    }

    #[test]
    fn counters_are_odometers_biased_towards_carries() {
        let bank = CropBank::synthetic((24, 40), 2, 3);
        let streams = small_plan().compose(&bank).unwrap();
        assert_eq!(streams.len(), 33);
        let mut carrying = 0;
        for s in &streams {
            let n = s.counter.digits();
            assert!((5..=8).contains(&n));
            assert_eq!(s.layout.digits.len(), usize::from(n));
            for w in s.frames.windows(2) {
                let step = s.counter.forward(w[0].ticks, w[1].ticks);
                assert!((1..=300).contains(&step), "step {step}");
                assert!(w[1].time > w[0].time);
            }
            carrying += s.frames.iter().filter(|f| f.ticks % 100 > 90).count();
        }
        let frames: usize = streams.iter().map(|s| s.frames.len()).sum();
        // Uniform draws would put 9% of frames in a carry.
        assert!(carrying * 4 > frames, "{carrying} of {frames} in a carry");
        // Deterministic.
        let again = small_plan().compose(&bank).unwrap();
        assert!(streams
            .iter()
            .zip(&again)
            .all(|(a, b)| a.frames == b.frames));
        let other = Plan {
            seed: 2,
            ..small_plan()
        };
        assert!(other.compose(&bank).unwrap()[0].frames != streams[0].frames);
    }

    #[test]
    fn an_unmoved_roller_shows_the_same_photo_with_fresh_noise() {
        let bank = CropBank::synthetic((24, 40), 3, 3);
        let streams = small_plan().compose(&bank).unwrap();
        // The first roller of a history that stands still from one frame to
        // the next.
        let (h, i, k) = streams
            .iter()
            .filter(|s| s.kind == StreamKind::History)
            .flat_map(|h| (1..h.frames.len()).map(move |i| (h, i)))
            .find_map(|(h, i)| {
                let pa = h.counter.positions(h.frames[i - 1].ticks);
                let pb = h.counter.positions(h.frames[i].ticks);
                (0..pa.len()).find(|&k| pa[k] == pb[k]).map(|k| (h, i, k))
            })
            .expect("an unmoved roller");
        assert_eq!(h.frames[i - 1].photos[k], h.frames[i].photos[k]);
        let (ia, ib) = (h.render(&bank, i - 1).unwrap(), h.render(&bank, i).unwrap());
        let [x, y, w, hh] = h.layout.digits[k];
        let cut = |img: &RgbImage| imageops::crop_imm(img, x, y, w, hh).to_image();
        let (ca, cb) = (cut(&ia), cut(&ib));
        assert_ne!(ca, cb, "fresh noise");
        let diff: f64 = ca
            .as_raw()
            .iter()
            .zip(cb.as_raw())
            .map(|(p, q)| f64::from(p.abs_diff(*q)))
            .sum::<f64>()
            / ca.as_raw().len() as f64;
        assert!(diff < 8.0, "same photo: mean difference {diff}");
    }

    #[test]
    fn sparse_photos_still_compose_or_say_why() {
        let full = CropBank::synthetic((24, 40), 1, 3);
        // Only positions 0.0, 1.0, 2.0 and the last roller's 1.1 .. 1.3.
        let keep = ["0.0", "1.0", "2.0", "1.1", "1.2", "1.3"];
        let photos = keep.iter().map(|s| {
            let t: Tenths = s.parse().unwrap();
            (t, full.photos(t)[0].clone())
        });
        let bank = CropBank::new("sparse", (24, 40), photos).unwrap();
        let streams = small_plan().compose(&bank).unwrap();
        for s in &streams {
            for f in &s.frames {
                assert!(bank.has_all(s.counter, f.ticks));
            }
        }
        let none = CropBank::new("none", (24, 40), std::iter::empty()).unwrap();
        let err = small_plan().compose(&none).unwrap_err();
        assert!(err.to_string().contains("meter none"), "{err}");
    }
}
