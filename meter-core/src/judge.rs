//! The decision on one frame: whether its reading is sure enough to store.
//!
//! [`judge`] is a pure function of the persisted [`State`], the meter's
//! [`Rules`], one frame's [`Evidence`] (every roller's prediction, and which
//! rollers the caller saw unchanged) and the time. It returns a
//! [`Judgement`]: the assembled reading, the [`Decision`], the value judged
//! with its probability of being right, and the next state.
//!
//! With [`DecisionRule::PerDigit`] it is [`assemble`] and [`decide`]: every
//! roller must be sure on its own. With [`DecisionRule::Reading`], in order:
//!
//! 1. A roller the caller saw unchanged since the last stored reading stands
//!    where that reading put it ([`Roller::At`]), unless its own read rules
//!    that position out (less than `1 - min_confidence` of its mass within a
//!    tenth of it: the picture comparison was wrong, or the stored value).
//!    The others are their distributions. Without a stored value every
//!    roller is read.
//! 2. The odometer posterior ([`Posterior`]) gives each candidate value the
//!    probability that it is right (the truth within one tick), from all
//!    rollers together: an upper roller read as "3.9 or 4.0" is a 4 once the
//!    rollers below say there is no carry.
//! 3. With a stored value, a candidate that [`decide`]'s rules 3 and 4 would
//!    reject is vetoed: more than `noise_ticks` below the stored value
//!    (unless `allow_negative`), faster than `max_rate_per_hour`, or read
//!    before it. The history only removes candidates; it never adds
//!    probability: each candidate keeps the probability the digits give it,
//!    so the mass of vetoed values counts against every other one.
//! 4. The likeliest admissible candidate is stored when its probability
//!    reaches `min_confidence` ([`decide`]'s rules 2 and 3: the first value,
//!    or a step back within noise held at the stored value).
//! 5. Otherwise, when the digits' likeliest value is that sure but vetoed,
//!    the reading is rejected for the veto's reason, and [`decide`]'s rule 5
//!    applies (a run of consistent rejected readings resynchronises).
//! 6. Otherwise the reading is unsure ([`Reason::Improbable`]); the state is
//!    left alone.
//!
//! Either way the judgement reports the posterior probability of the value
//! it judged, so that users see it beside each digit's confidence.

use serde::Serialize;
use time::OffsetDateTime;

use crate::plausibility::{settle, step};
use crate::{
    assemble, decide, DecideError, Decision, DecisionRule, DigitPrediction, Posterior, Reading,
    Reason, Roller, Rules, State, Timed,
};

/// What one frame shows.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// Each roller's prediction, most significant first.
    pub predictions: &'a [DigitPrediction],
    /// Which rollers' images have not changed since the last stored reading
    /// (empty: none known). The comparison is the caller's: it keeps the
    /// crops of the last stored reading.
    pub unchanged: &'a [bool],
}

impl<'a> Evidence<'a> {
    /// Predictions alone (no roller known unchanged).
    pub fn read(predictions: &'a [DigitPrediction]) -> Self {
        Self {
            predictions,
            unchanged: &[],
        }
    }
}

/// What [`judge`] decided about one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    /// The reading assembled from each roller's likeliest position.
    pub reading: Reading,
    /// What happens to it.
    pub decision: Decision,
    /// The value judged, in ticks: the stored one, or the one found not sure
    /// enough or rejected.
    pub value: u64,
    /// The probability that `value` is right, from the digits under the
    /// odometer model (the history never raises it).
    pub probability: f32,
    /// The meter's next state (equal to the given one when nothing changed).
    pub next: State,
}

/// Judges one frame taken at `now` (see the module docs).
pub fn judge(
    state: &State,
    rules: &Rules,
    evidence: &Evidence<'_>,
    now: OffsetDateTime,
) -> Result<Judgement, DecideError> {
    let counter = state.counter;
    let n = usize::from(counter.digits());
    let count = |what, got| DecideError::RollerCount {
        what,
        expected: n,
        got,
    };
    let reading = assemble(counter, evidence.predictions)
        .map_err(|_| count("digit predictions", evidence.predictions.len()))?;
    if !evidence.unchanged.is_empty() && evidence.unchanged.len() != n {
        return Err(count("unchanged flags", evidence.unchanged.len()));
    }
    let kept = state.stored.map(|s| counter.positions(s.ticks));
    let plausible = 1.0 - rules.min_confidence;
    let rollers: Vec<Roller<'_>> = evidence
        .predictions
        .iter()
        .enumerate()
        .map(|(i, p)| match &kept {
            Some(pos)
                if evidence.unchanged.get(i) == Some(&true)
                    && p.distribution.window(pos[i]) >= plausible =>
            {
                Roller::At(pos[i])
            }
            _ => Roller::Read(&p.distribution),
        })
        .collect();
    let posterior =
        Posterior::new(counter, &rollers).ok_or_else(|| count("rollers", rollers.len()))?;
    if rules.decision == DecisionRule::PerDigit {
        let (decision, next) = decide(state, rules, &reading, now)?;
        let value = decision.stored_ticks().unwrap_or(reading.ticks);
        return Ok(Judgement {
            probability: posterior.probability(value) as f32,
            value,
            reading,
            decision,
            next,
        });
    }
    let min = f64::from(rules.min_confidence);
    let candidates = posterior.candidates();
    let admissible = |ticks: u64| match state.stored {
        None => true,
        Some(stored) => step(counter, rules, stored, Timed { ticks, time: now }).is_ok(),
    };
    // What the digits alone say: the enumeration's best, or the assembled
    // reading when nothing fits at all.
    let (best_ticks, best_p) = candidates
        .first()
        .map_or((reading.ticks, posterior.probability(reading.ticks)), |c| {
            (c.ticks, c.probability)
        });
    let best_admissible = candidates.iter().find(|c| admissible(c.ticks));
    let (decision, next, value, probability) = match best_admissible {
        Some(c) if c.probability >= min => {
            let (d, next) = settle(state, rules, c.ticks, now);
            (d, next, c.ticks, c.probability)
        }
        _ if best_p >= min => {
            let (d, next) = settle(state, rules, best_ticks, now);
            (d, next, best_ticks, best_p)
        }
        other => {
            let (ticks, p) = other.map_or((best_ticks, best_p), |c| (c.ticks, c.probability));
            let reason = Reason::Improbable {
                value: counter.to_units(ticks),
                probability: p as f32,
                min: rules.min_confidence,
            };
            (Decision::Unsure(reason), state.clone(), ticks, p)
        }
    };
    Ok(Judgement {
        reading,
        // A held value is stored as the previous one.
        value: decision.stored_ticks().unwrap_or(value),
        decision,
        probability: probability as f32,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Counter, Distribution, Note, Tenths};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2024-03-01 12:00 UTC);

    fn t(s: &str) -> Tenths {
        s.parse().unwrap()
    }

    fn dist(pairs: &[(&str, f32)]) -> DigitPrediction {
        let mut p = [0.0f32; Tenths::CLASSES];
        for (s, m) in pairs {
            p[usize::from(t(s).index())] += m;
        }
        DigitPrediction::from_distribution(Distribution::from_probs(&p).unwrap())
    }

    fn rules(decision: DecisionRule) -> Rules {
        Rules {
            decision,
            ..Rules::default()
        }
    }

    #[test]
    fn the_reading_rule_stores_what_the_rollers_below_resolve() {
        // Tens read "3.9 or 4.0" (and a little 3.8 or 4.1), units a settled
        // 3: 43, though the tens are only 90% sure of 3.9 on their own.
        let counter = Counter::new(2, 0).unwrap();
        let tens = [("3.8", 0.1), ("3.9", 0.45), ("4.0", 0.35), ("4.1", 0.1)];
        let preds = [dist(&tens), dist(&[("3.0", 1.0)])];
        let state = State::new(counter);
        let per_digit = judge(
            &state,
            &rules(DecisionRule::PerDigit),
            &Evidence::read(&preds),
            T0,
        )
        .unwrap();
        assert_eq!(per_digit.decision.status(), "unsure");
        assert!(per_digit.probability > 0.999, "{}", per_digit.probability);
        let reading = judge(
            &state,
            &rules(DecisionRule::Reading),
            &Evidence::read(&preds),
            T0,
        )
        .unwrap();
        assert_eq!(reading.decision.stored_ticks(), Some(430));
        assert_eq!(reading.next.stored.map(|s| s.ticks), Some(430));
    }

    #[test]
    fn the_history_vetoes_but_never_adds_probability() {
        let counter = Counter::new(2, 0).unwrap();
        let r = rules(DecisionRule::Reading);
        let state = State::with_value(counter, 400, T0);
        // Tens "4 or 3" (60/40) over a settled 5: 45 or 35. 35 is below the
        // stored 40 and vetoed, but 45 is only 60% likely: unsure.
        let preds = [dist(&[("4.0", 0.6), ("3.0", 0.4)]), dist(&[("5.0", 1.0)])];
        let j = judge(&state, &r, &Evidence::read(&preds), T0).unwrap();
        assert_eq!(j.value, 450);
        assert!((j.probability - 0.6).abs() < 1e-6);
        assert!(matches!(
            j.decision,
            Decision::Unsure(Reason::Improbable { .. })
        ));
        assert_eq!(j.next, state);
        // Sure but below the stored value: rejected, as decide does.
        let preds = [dist(&[("3.0", 1.0)]), dist(&[("5.0", 1.0)])];
        let j = judge(&state, &r, &Evidence::read(&preds), T0).unwrap();
        assert!(matches!(
            j.decision,
            Decision::Rejected(Reason::Decreasing { .. })
        ));
        assert_eq!(j.next.pending.map(|p| p.count), Some(1));
        // One tick below: held.
        let preds = [dist(&[("3.9", 1.0)]), dist(&[("9.9", 1.0)])];
        let j = judge(&state, &r, &Evidence::read(&preds), T0).unwrap();
        assert_eq!(j.decision.stored_ticks(), Some(400));
        assert!(matches!(
            j.decision,
            Decision::Stored {
                note: Some(Note::Held { .. }),
                ..
            }
        ));
    }

    #[test]
    fn unchanged_rollers_keep_the_stored_position() {
        let counter = Counter::new(2, 0).unwrap();
        let r = rules(DecisionRule::Reading);
        let state = State::with_value(counter, 110, T0);
        // Tens unreadable (1 or 7), units moved on to 2.0.
        let preds = [dist(&[("1.0", 0.5), ("7.0", 0.5)]), dist(&[("2.0", 1.0)])];
        let read = judge(&state, &r, &Evidence::read(&preds), T0).unwrap();
        assert_eq!(read.decision.status(), "unsure");
        let kept = Evidence {
            predictions: &preds,
            unchanged: &[true, false],
        };
        let j = judge(&state, &r, &kept, T0).unwrap();
        assert_eq!(j.decision.stored_ticks(), Some(120));
        // A roller read as surely elsewhere is not kept: units "unchanged"
        // at 1.0 but read as a sure 2.0 (the comparison was wrong).
        let both = Evidence {
            predictions: &preds,
            unchanged: &[true, true],
        };
        let j = judge(&state, &r, &both, T0).unwrap();
        assert_eq!(j.decision.stored_ticks(), Some(120));
        // Without a stored value the flags mean nothing.
        let j = judge(&State::new(counter), &r, &kept, T0).unwrap();
        assert_eq!(j.decision.status(), "unsure");
        let bad = Evidence {
            predictions: &preds,
            unchanged: &[true],
        };
        assert!(matches!(
            judge(&state, &r, &bad, T0),
            Err(DecideError::RollerCount { got: 1, .. })
        ));
        assert!(judge(&state, &r, &Evidence::read(&preds[..1]), T0).is_err());
    }
}
