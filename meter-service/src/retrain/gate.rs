//! The promotion gate's check on other meters: does a candidate read the
//! images of meters it was not fine-tuned on worse than the current model?

use crate::counters::Tally;
use crate::registry::Score;

/// Significance level of the forgetting check on images the current model
/// trained on: refused when worse with a one-sided p below this.
pub const FORGET_P: f64 = 0.05;
/// Largest net loss (fraction of the images) allowed on meters the current
/// model never trained on: a quarter of a point.
pub const UNSEEN_MARGIN: f64 = 0.0025;

/// Two models on the same images: how many images the candidate gets wrong
/// that the current model gets right (`lost`), and the reverse (`gained`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paired {
    /// Right before, wrong now.
    pub lost: usize,
    /// Wrong before, right now.
    pub gained: usize,
}

impl Paired {
    /// One-sided exact McNemar (sign) test: the probability of losing at
    /// least `lost` of the `lost + gained` changed images if both models were
    /// equally good, i.e. P(X >= lost) for X ~ Binomial(lost + gained, 1/2).
    pub fn p_worse(&self) -> f64 {
        let n = self.lost + self.gained;
        // log P(X = k), walked up from k = 0 (exact and stable for any n).
        let mut log_pmf = -(n as f64) * std::f64::consts::LN_2;
        let mut tail = 0.0;
        for k in 0..=n {
            if k >= self.lost {
                tail += log_pmf.exp();
            }
            if k < n {
                log_pmf += ((n - k) as f64).ln() - ((k + 1) as f64).ln();
            }
        }
        tail.min(1.0)
    }

    /// Whether the candidate is worse beyond what chance explains.
    pub fn significantly_worse(&self) -> bool {
        self.lost > self.gained && self.p_worse() < FORGET_P
    }
}

/// The forgetting check: both models on images of other meters that
/// fine-tuning did not see (`--replay`).
///
/// - Images of meters the current model never trained on (`unseen`: the
///   sources its metadata says were held out), when the replay data has them:
///   an unbiased measure, so the candidate may read at most
///   [`UNSEEN_MARGIN`] of them worse, net, on the exact tenth or on within 0.1
///   (a strict "no net loss" would refuse at the toss of a coin, a
///   significance test lets a real one-point loss through).
/// - Else held-back images of meters it trained on, which any fine-tune
///   partly un-memorises: only a significant loss counts (paired sign test,
///   [`FORGET_P`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayCheck {
    /// Whether the images are of meters the current model never trained on.
    pub unseen: bool,
    /// The current model's score.
    pub current: Score,
    /// The candidate's score.
    pub candidate: Score,
    /// Paired exact-tenth outcomes.
    pub exact: Paired,
    /// Paired within-0.1 outcomes.
    pub within: Paired,
}

impl ReplayCheck {
    /// Whether the candidate reads other meters worse (see [`ReplayCheck`]).
    pub fn forgets(&self) -> bool {
        if self.unseen {
            let allowed = (UNSEEN_MARGIN * self.current.n as f64).floor() as usize;
            let net_loss = |p: &Paired| p.lost.saturating_sub(p.gained);
            net_loss(&self.exact) > allowed || net_loss(&self.within) > allowed
        } else {
            self.exact.significantly_worse() || self.within.significantly_worse()
        }
    }

    /// Both counts and the rule applied, on one line.
    pub fn describe(&self) -> String {
        let pair = |name: &str, p: &Paired| {
            format!(
                "{name}: {} lost, {} gained (p = {:.3})",
                p.lost,
                p.gained,
                p.p_worse()
            )
        };
        let rule = if self.unseen {
            format!(
                "meters the current model never trained on: at most {}% worse, net",
                UNSEEN_MARGIN * 100.0
            )
        } else {
            format!("held-back images of meters it trained on: refused if p < {FORGET_P}")
        };
        format!(
            "{}; {} ({rule})",
            pair("exact", &self.exact),
            pair("within 0.1", &self.within),
        )
    }
}

/// Largest loss of stored readings (a share of the composed frames) the
/// reading-level check lets through.
pub const READINGS_MARGIN: f64 = 0.02;

/// Both models on whole readings: counters composed from the user's
/// validation images (as `meter eval --counters` composes them), single
/// frames and histories together. What the user gets is readings, and a
/// candidate can read digits no worse yet leave far more readings unsure.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingCheck {
    /// The current model's tally.
    pub current: Tally,
    /// The candidate's tally.
    pub candidate: Tally,
}

impl ReadingCheck {
    /// Why the candidate is refused on readings, if it is: it stores a wrong
    /// reading, or stores more than [`READINGS_MARGIN`] fewer. Both models
    /// read the very same composed frames, so the comparison is paired and
    /// the margin only absorbs frames near the threshold flipping either way.
    pub fn refusal(&self) -> Option<String> {
        let (cur, cand) = (&self.current, &self.candidate);
        if cand.stored_wrong > 0 {
            return Some(format!(
                "it stores {} of {} composed readings wrong",
                cand.stored_wrong, cand.frames
            ));
        }
        let (a, b) = (cur.stored_share(), cand.stored_share());
        (b < a - READINGS_MARGIN).then(|| {
            format!(
                "it stores {:.1}% of composed readings, the current model {:.1}% (allowed: {:.0} points less)",
                100.0 * b,
                100.0 * a,
                100.0 * READINGS_MARGIN
            )
        })
    }

    /// Both tallies on one line.
    pub fn describe(&self) -> String {
        let one = |t: &Tally| {
            format!(
                "{:.1}% stored, {} wrong",
                100.0 * t.stored_share(),
                t.stored_wrong
            )
        };
        format!(
            "readings composed from the validation images ({} frames): current {}, candidate {}",
            self.current.frames,
            one(&self.current),
            one(&self.candidate)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(frames: usize, stored: usize, stored_wrong: usize) -> Tally {
        Tally {
            frames,
            stored,
            stored_wrong,
            ..Tally::default()
        }
    }

    #[test]
    fn readings_refuse_a_wrong_store_and_a_significant_loss_only() {
        let check = |cur, cand| ReadingCheck {
            current: cur,
            candidate: cand,
        };
        let r = check(tally(700, 350, 0), tally(700, 350, 1)).refusal();
        assert!(r.unwrap().contains("1 of 700 composed readings wrong"));
        // The adaptation measured on emeter1: 68% -> 36.5% stored.
        assert!(check(tally(700, 476, 0), tally(700, 255, 0))
            .refusal()
            .is_some());
        // What `scripts/adapt.sh` measured on emeter1: 84.0% -> 76.7%.
        assert!(check(tally(163, 137, 0), tally(163, 125, 0))
            .refusal()
            .is_some());
        // Within the margin, and better, are promoted.
        assert!(check(tally(700, 350, 0), tally(700, 340, 0))
            .refusal()
            .is_none());
        assert!(check(tally(700, 350, 2), tally(700, 500, 0))
            .refusal()
            .is_none());
    }

    #[test]
    fn sign_test_p_values() {
        let p = |lost, gained| Paired { lost, gained }.p_worse();
        assert!((p(0, 0) - 1.0).abs() < 1e-12);
        assert!((p(0, 9) - 1.0).abs() < 1e-12);
        assert!((p(3, 0) - 0.125).abs() < 1e-12);
        assert!((p(5, 0) - 1.0 / 32.0).abs() < 1e-12);
        // P(X >= 10), X ~ Bin(17, 1/2) = 0.3145...
        assert!(
            (p(10, 7) - 0.314_529_418_945_312_5).abs() < 1e-9,
            "{}",
            p(10, 7)
        );
        // Large n stays finite and symmetric around the middle.
        assert!((p(1000, 1000) - 0.5).abs() < 0.02);
        assert!(p(1100, 900) < 1e-5);
    }

    #[test]
    fn only_a_significant_loss_counts_as_forgetting() {
        let worse = |lost, gained| Paired { lost, gained }.significantly_worse();
        assert!(!worse(3, 0), "three images are chance");
        assert!(!worse(12, 8));
        assert!(worse(5, 0));
        assert!(worse(30, 10));
        assert!(!worse(10, 30), "a gain is never worse");
    }

    #[test]
    fn on_unseen_meters_a_net_loss_beyond_a_quarter_point_is_forgetting() {
        let score = Score {
            n: 1600,
            exact: 0.8,
            within_0_1: 0.97,
            settled_digit: None,
        };
        let check = |unseen, exact: (usize, usize), within: (usize, usize)| ReplayCheck {
            unseen,
            current: score,
            candidate: score,
            exact: Paired {
                lost: exact.0,
                gained: exact.1,
            },
            within: Paired {
                lost: within.0,
                gained: within.1,
            },
        };
        // 0.25% of 1600 = 4 images.
        assert!(!check(true, (16, 15), (2, 3)).forgets());
        assert!(!check(true, (14, 10), (0, 0)).forgets());
        assert!(
            check(true, (40, 30), (0, 0)).forgets(),
            "significant or not"
        );
        assert!(check(true, (0, 9), (5, 0)).forgets());
        // Images it trained on: only a significant loss counts.
        assert!(!check(false, (40, 30), (0, 0)).forgets());
        assert!(check(false, (30, 10), (0, 0)).forgets());
        // The printed rule follows the constants.
        let text = |unseen| check(unseen, (0, 0), (0, 0)).describe();
        assert!(text(true)
            .ends_with("(meters the current model never trained on: at most 0.25% worse, net)"));
        assert!(text(false)
            .ends_with("(held-back images of meters it trained on: refused if p < 0.05)"));
    }
}
