//! The probability of a whole reading under the odometer model.
//!
//! Each roller's calibrated distribution says where that roller may stand;
//! the odometer says which combinations of positions exist (see
//! [`Counter::positions`]). For a value `v` in ticks, its *likelihood* is
//!
//! - the last roller's probability of exactly `v`'s last position (the last
//!   roller is read to the tenth), times
//! - for each upper roller, its mass within one tenth of where the odometer
//!   puts it for `v` (labels and rollers disagree by a tenth, and an upper
//!   roller that lags a carry by a tenth is still that digit).
//!
//! An upper roller's positions for different values are 10 apart, so its
//! windows of 3 positions are disjoint, and the likelihoods of all values
//! sum to at most 1: their sum, the [`consistency`](Posterior::consistency),
//! is the chance that the rollers' reads fit one odometer position at all. A
//! reading `v` is *right* when the truth is within one tick of it, so its
//! [`probability`](Posterior::probability) is the likelihood of `v - 1`, `v`
//! and `v + 1` over the consistency (the posterior given that the counter is
//! an odometer), but over no less than one half: reads that fit no position
//! (a roller misread beyond its distribution, or a tenth of noise on two
//! rollers across a carry) do not make the best of what remains sure. For
//! one roller this is that roller's confidence. (Without that floor, a last
//! roller at 9.2 read 9.3 with a look-alike 3.3, over a roller at 0.2 read
//! 0.1, made 3.3 the only consistent reading and stored it. Windows of two
//! tenths instead avoid that too, but on the held-out meters' counters they
//! stored less and wrongly more often.)
//!
//! The consistency is a sum over every value of the counter, computed in
//! `O(rollers x 100)` by following the carry (a carry reaches roller `k`
//! only through 9s below it). The most likely values are found best-first:
//! a partial product over the rollers seen so far bounds every completion,
//! since no factor exceeds 1.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::{Counter, Distribution, Tenths};

const N: usize = Tenths::CLASSES;

/// An upper roller may stand this many tenths from where the odometer puts
/// it (see the module docs).
const UPPER_TOLERANCE: usize = 1;
/// The posterior conditions on the rollers fitting an odometer position, but
/// by at most this much: reads that fit no position better than even odds
/// (a roller misread beyond its distribution) do not make the best of the
/// rest sure.
const MIN_CONSISTENCY: f64 = 0.5;
/// How much a candidate's own likelihood adds to its window's when the
/// candidates are ranked.
const CENTRE_WEIGHT: f64 = 0.005;
/// Values whose likelihood is below this share of the consistency are not
/// enumerated (their mass is still in the consistency).
const ENUMERATION_SHARE: f64 = 1e-2;
/// At most this many values are enumerated.
const MAX_VALUES: usize = 16;
/// At most this many partial values are expanded; past it the enumeration
/// is marked incomplete (flat, unreadable distributions).
const MAX_EXPANSIONS: usize = 4096;

/// What the decision knows about one roller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Roller<'a> {
    /// The model's distribution over its positions.
    Read(&'a Distribution),
    /// Known to stand at this position (its image has not changed since a
    /// reading that put it there).
    At(Tenths),
}

/// The odometer posterior of one frame.
#[derive(Debug, Clone)]
pub struct Posterior {
    counter: Counter,
    /// The last roller's probabilities.
    last: [f64; N],
    /// Upper rollers (most significant first): mass within
    /// [`UPPER_TOLERANCE`] tenths.
    upper: Vec<[f64; N]>,
    consistency: f64,
    /// Enumerated values and their likelihoods, most likely first.
    values: Vec<(u64, f64)>,
    complete: bool,
}

/// A value and how likely it is to be right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The value in ticks.
    pub ticks: u64,
    /// The probability that the truth is within one tick of it.
    pub probability: f64,
}

impl Posterior {
    /// The posterior of `rollers` (most significant first) on `counter`;
    /// `None` when their number differs from the counter's.
    pub fn new(counter: Counter, rollers: &[Roller<'_>]) -> Option<Self> {
        let n = usize::from(counter.digits());
        let (last_roller, upper_rollers) = rollers.split_last()?;
        if rollers.len() != n {
            return None;
        }
        let last = match last_roller {
            Roller::Read(d) => d.probs().map(f64::from),
            Roller::At(t) => {
                std::array::from_fn(|i| f64::from(u8::from(i == usize::from(t.index()))))
            }
        };
        let upper: Vec<[f64; N]> = upper_rollers
            .iter()
            .map(|r| match r {
                Roller::Read(d) => {
                    let p = d.probs();
                    std::array::from_fn(|i| {
                        let w = (N + i - UPPER_TOLERANCE..=N + i + UPPER_TOLERANCE)
                            .map(|j| f64::from(p[j % N]))
                            .sum::<f64>();
                        w.min(1.0)
                    })
                }
                Roller::At(t) => std::array::from_fn(|i| {
                    let d = Tenths::wrapping(i as i64).circular_distance(*t);
                    f64::from(u8::from(usize::from(d) <= UPPER_TOLERANCE))
                }),
            })
            .collect();
        let mut post = Self {
            counter,
            last,
            upper,
            consistency: 0.0,
            values: Vec::new(),
            complete: true,
        };
        post.consistency = post.total();
        post.enumerate();
        Some(post)
    }

    /// The counter.
    pub fn counter(&self) -> Counter {
        self.counter
    }

    /// The sum of every value's likelihood (0..=1): how well the rollers'
    /// reads fit any odometer position.
    pub fn consistency(&self) -> f64 {
        self.consistency
    }

    /// The likelihood of exactly `ticks` (unnormalised).
    pub fn likelihood(&self, ticks: u64) -> f64 {
        let t = ticks % self.counter.modulus();
        let mut mass = self.last[(t % 100) as usize];
        let mut step = 100u64; // ticks per turn of the roller above
        for u in self.upper.iter().rev() {
            if mass == 0.0 {
                return 0.0;
            }
            let whole = (t / step) % 10;
            let roll = (t % step).saturating_sub(step - 10);
            mass *= u[(whole * 10 + roll) as usize];
            step = step.saturating_mul(10);
        }
        mass
    }

    /// The likelihood that the truth is within one tick of `ticks`
    /// (unnormalised).
    pub fn window_likelihood(&self, ticks: u64) -> f64 {
        let m = self.counter.modulus();
        let t = ticks % m;
        self.likelihood((t + m - 1) % m) + self.likelihood(t) + self.likelihood((t + 1) % m)
    }

    /// The probability that `ticks` is right (the truth within one tick),
    /// given that the counter is an odometer; 0 when nothing fits.
    pub fn probability(&self, ticks: u64) -> f64 {
        (self.window_likelihood(ticks) / self.consistency.max(MIN_CONSISTENCY)).min(1.0)
    }

    /// Whether every value with at least a hundredth of the consistency was
    /// enumerated (false for very flat distributions). The likeliest values
    /// come first either way.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// The summed likelihood of the enumerated values for which `keep` holds
    /// (a lower bound of the mass of all such values).
    pub fn enumerated_likelihood(&self, mut keep: impl FnMut(u64) -> bool) -> f64 {
        self.values
            .iter()
            .filter(|(t, _)| keep(*t))
            .map(|(_, l)| l)
            .sum()
    }

    /// The values worth judging, best first: every enumerated value and its
    /// neighbours one tick either side (a last roller read as 3.4 or 3.6
    /// makes 3.5 the likeliest right reading), ranked by their probability
    /// plus a tenth of their own likelihood's share.
    pub fn candidates(&self) -> Vec<Candidate> {
        let m = self.counter.modulus();
        let mut ticks: Vec<u64> = self
            .values
            .iter()
            .flat_map(|&(t, _)| [(t + m - 1) % m, t, (t + 1) % m])
            .collect();
        ticks.sort_unstable();
        ticks.dedup();
        let mut out: Vec<(Candidate, f64)> = ticks
            .into_iter()
            .map(|t| {
                let c = Candidate {
                    ticks: t,
                    probability: self.probability(t),
                };
                (c, self.likelihood(t))
            })
            .collect();
        // Windows one tick apart overlap: when a last roller is read at 3.4
        // for sure, 3.3, 3.4 and 3.5 are all but equally probable, and only
        // the tails decide between them. The value the rollers show is
        // preferred unless a neighbour's window is clearly heavier (3.4 or
        // 3.6 makes 3.5 the reading): its own likelihood counts a little.
        let score = |c: &Candidate, l: f64| c.probability * self.consistency + CENTRE_WEIGHT * l;
        out.sort_by(|(a, la), (b, lb)| {
            score(b, *lb)
                .total_cmp(&score(a, *la))
                .then(a.ticks.cmp(&b.ticks))
        });
        out.into_iter().map(|(c, _)| c).collect()
    }

    /// The sum of all likelihoods, following the carry: above a last roller
    /// at `9.c` the carry `c` reaches each roller through the 9s below it.
    fn total(&self) -> f64 {
        let n_upper = self.upper.len();
        if n_upper == 0 {
            return self.last.iter().sum();
        }
        // settled[k]: roller k's mass at whole digits; above[k]: the product
        // of settled[..k] (every roller above k settled).
        let settled: Vec<f64> = self
            .upper
            .iter()
            .map(|u| (0..10).map(|d| u[d * 10]).sum())
            .collect();
        let mut above = Vec::with_capacity(n_upper + 1);
        above.push(1.0);
        for s in &settled {
            above.push(above.last().copied().unwrap_or(1.0) * s);
        }
        let mut total = above[n_upper] * self.last[..=90].iter().sum::<f64>();
        for c in 1..10 {
            // live: mass of rollers 0..=k when carry c enters roller k.
            let mut live = 1.0;
            for (k, u) in self.upper.iter().enumerate() {
                let stop: f64 = (0..9).map(|d| u[d * 10 + c]).sum();
                live = stop * above[k] + u[90 + c] * live;
            }
            total += self.last[90 + c] * live;
        }
        total.min(1.0)
    }

    /// Best-first enumeration of the likeliest values.
    fn enumerate(&mut self) {
        let floor = ENUMERATION_SHARE * self.consistency;
        if floor <= 0.0 {
            return;
        }
        let n_upper = self.upper.len();
        let mut heap = BinaryHeap::new();
        for (x, &p) in self.last.iter().enumerate() {
            if p >= floor {
                heap.push(Partial {
                    mass: p,
                    next: n_upper,
                    ticks: x as u64,
                    carry: x.saturating_sub(90),
                });
            }
        }
        let mut expansions = 0;
        while let Some(p) = heap.pop() {
            if p.next == 0 {
                self.values.push((p.ticks, p.mass));
                if self.values.len() >= MAX_VALUES {
                    break;
                }
                continue;
            }
            expansions += 1;
            if expansions > MAX_EXPANSIONS {
                self.complete = false;
                return;
            }
            let k = p.next - 1;
            // Roller k's whole steps, in ticks.
            let place = 10u64.pow((n_upper - k + 1) as u32);
            for d in 0..10 {
                let mass = p.mass * self.upper[k][d * 10 + p.carry];
                if mass >= floor {
                    heap.push(Partial {
                        mass,
                        next: k,
                        ticks: p.ticks + d as u64 * place,
                        carry: if d == 9 { p.carry } else { 0 },
                    });
                }
            }
        }
        self.complete = heap.is_empty();
    }
}

/// A value with only its lower rollers chosen.
#[derive(Debug, Clone, Copy)]
struct Partial {
    mass: f64,
    /// Rollers still to choose: those above index `next` (top first).
    next: usize,
    ticks: u64,
    /// Tenths the roller at `next - 1` is carried by.
    carry: usize,
}

impl PartialEq for Partial {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Partial {}
impl PartialOrd for Partial {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Partial {
    fn cmp(&self, other: &Self) -> Ordering {
        // Heaviest first; among equals the lower value, for determinism.
        self.mass
            .total_cmp(&other.mass)
            .then(other.ticks.cmp(&self.ticks))
            .then(other.next.cmp(&self.next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DigitPrediction;

    fn t(s: &str) -> Tenths {
        s.parse().unwrap()
    }

    fn post(counter: Counter, ds: &[Distribution]) -> Posterior {
        let rollers: Vec<Roller<'_>> = ds.iter().map(Roller::Read).collect();
        Posterior::new(counter, &rollers).unwrap()
    }

    /// A distribution from (position, mass) pairs.
    fn dist(pairs: &[(&str, f32)]) -> Distribution {
        let mut p = [0.0f32; N];
        for (s, m) in pairs {
            p[usize::from(t(s).index())] += m;
        }
        Distribution::from_probs(&p).unwrap()
    }

    /// Random distributions for a brute-force comparison.
    fn noisy(seed: &mut u64) -> Distribution {
        let p: Vec<f32> = (0..N)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (*seed >> 33) as f32 / (1u64 << 31) as f32;
                u.powi(8)
            })
            .collect();
        Distribution::from_probs(&p).unwrap()
    }

    #[test]
    fn consistency_is_the_sum_over_every_value() {
        let mut seed = 7;
        for n in 1..=3 {
            let counter = Counter::new(n, 0).unwrap();
            for _ in 0..5 {
                let ds: Vec<_> = (0..n).map(|_| noisy(&mut seed)).collect();
                let p = post(counter, &ds);
                let brute: f64 = (0..counter.modulus()).map(|v| p.likelihood(v)).sum();
                assert!(
                    (p.consistency() - brute).abs() < 1e-9,
                    "{n}: {} vs {brute}",
                    p.consistency()
                );
                assert!(brute <= 1.0 + 1e-6);
                // The enumeration lists the likeliest values in order.
                let mut all: Vec<(u64, f64)> = (0..counter.modulus())
                    .map(|v| (v, p.likelihood(v)))
                    .collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let got: Vec<u64> = p.values.iter().map(|v| v.0).collect();
                let want: Vec<u64> = all
                    .iter()
                    .take_while(|v| v.1 >= ENUMERATION_SHARE * p.consistency())
                    .take(MAX_VALUES)
                    .map(|v| v.0)
                    .collect();
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn one_roller_is_its_confidence() {
        let d = dist(&[("3.4", 0.5), ("3.5", 0.3), ("7.0", 0.2)]);
        let pred = DigitPrediction::from_distribution(d.clone());
        let p = post(Counter::new(1, 0).unwrap(), &[d]);
        assert!((p.probability(34) - f64::from(pred.confidence)).abs() < 1e-6);
        assert_eq!(p.candidates()[0].ticks, 34);
    }

    #[test]
    fn an_ambiguous_upper_roller_is_resolved_by_the_rollers_below() {
        // 3.9 or 4.0 over a settled 3: 43.0, for sure.
        let c = Counter::new(2, 0).unwrap();
        let p = post(
            c,
            &[dist(&[("3.9", 0.5), ("4.0", 0.5)]), dist(&[("3.0", 1.0)])],
        );
        assert_eq!(p.candidates()[0].ticks, 430);
        assert!(p.probability(430) > 0.999);
        // Over a 9.5 the roller must be half-way (3.5 or 4.5): nothing fits.
        let p = post(
            c,
            &[dist(&[("3.9", 0.5), ("4.0", 0.5)]), dist(&[("9.5", 1.0)])],
        );
        assert!(p.consistency() < 1e-9);
        assert_eq!(p.probability(395), 0.0);
        // A carry in progress: 3.5 over 9.5 is 39.5.
        let p = post(
            c,
            &[dist(&[("3.5", 0.9), ("3.4", 0.1)]), dist(&[("9.5", 1.0)])],
        );
        assert_eq!(p.candidates()[0].ticks, 395);
        assert!(p.probability(395) > 0.999);
    }

    #[test]
    fn the_right_reading_sits_between_two_reads_of_the_last_roller() {
        let c = Counter::new(2, 0).unwrap();
        let p = post(
            c,
            &[
                dist(&[("1.0", 1.0)]),
                dist(&[("3.4", 0.45), ("3.6", 0.45), ("8.0", 0.1)]),
            ],
        );
        let best = p.candidates()[0];
        assert_eq!(best.ticks, 135);
        assert!((best.probability - 0.9).abs() < 1e-6);
    }

    #[test]
    fn a_known_roller_fixes_its_position() {
        let c = Counter::new(2, 0).unwrap();
        let flat = dist(&[("1.0", 0.5), ("7.0", 0.5)]);
        let last = dist(&[("2.0", 1.0)]);
        let read = Posterior::new(c, &[Roller::Read(&flat), Roller::Read(&last)]).unwrap();
        assert!((read.probability(120) - 0.5).abs() < 1e-9);
        let kept = Posterior::new(c, &[Roller::At(t("1.0")), Roller::Read(&last)]).unwrap();
        assert!(kept.probability(120) > 0.999);
        assert!(Posterior::new(c, &[Roller::Read(&last)]).is_none());
    }
}
