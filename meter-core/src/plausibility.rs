//! Plausibility: whether an assembled reading is stored, and why not.
//!
//! [`decide`] is a pure function of the persisted [`State`], the meter's
//! [`Rules`], the candidate [`Reading`] and the time; it returns the
//! [`Decision`] and the next state (the caller persists it). The rules, in
//! order:
//!
//! 1. A roller below `min_confidence` makes the reading **unsure**
//!    ([`Reason::LowConfidence`]), as does a roller that disagrees with the
//!    rollers below it by more than `max_residual` tenths
//!    ([`Reason::Inconsistent`]). Unsure readings leave the state alone.
//! 2. The first reading of a meter is stored.
//! 3. A reading below the stored value is **rejected** ([`Reason::Decreasing`])
//!    unless `allow_negative`; a step back of at most `noise_ticks` (the last
//!    roller's tenth jittering) is stored as the previous value
//!    ([`Note::Held`]). Passing the counter's end (99999.9 -> 00000.1) is a
//!    forward step ([`Note::WrappedAround`]) when the step is shorter than a
//!    tenth of the counter's range.
//! 4. A reading that rose faster than `max_rate_per_hour` since the stored
//!    one is rejected ([`Reason::RateTooHigh`]); so is a clock that went back
//!    ([`Reason::ClockWentBack`]).
//! 5. No stuck state: rejected readings that agree with each other (each
//!    would pass rules 3 and 4 against the one before) form a run; when the
//!    run reaches `accept_after` readings its last value is stored and
//!    reported ([`Note::Resynchronised`]). This recovers from a meter swap, a
//!    wrong stored value, or a hand correction gone wrong.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Counter, Reading, Tenths};

/// How [`judge`](crate::judge) decides that a reading is sure enough to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionRule {
    /// Every roller's confidence reaches `min_confidence` and no roller
    /// disagrees with the rollers below it by more than `max_residual`
    /// ([`decide`]'s rule 1): the seed's rule.
    PerDigit,
    /// The reading's probability of being right, from all rollers'
    /// distributions under the odometer model and the history, reaches
    /// `min_confidence` (see [`judge`](crate::judge)). The default: on
    /// counters composed from the eight held-out meters' photos it stored
    /// 54% of single frames (per-digit 50%) with 12 wrong (14), and 57% of
    /// history frames (54%) with 9 wrong (23).
    #[default]
    Reading,
}

/// A meter's plausibility rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// How a reading is judged sure enough.
    #[serde(default)]
    pub decision: DecisionRule,
    /// Every roller's confidence ([`DecisionRule::PerDigit`]), or the
    /// reading's probability ([`DecisionRule::Reading`]), must reach this (0..=1).
    pub min_confidence: f32,
    /// Largest tolerated disagreement of a roller with the rollers below it,
    /// in tenths (0..=5; 5 accepts anything).
    pub max_residual: u8,
    /// Whether the value may go down (a meter that runs both ways).
    pub allow_negative: bool,
    /// Largest plausible change per hour, in the reading's unit.
    pub max_rate_per_hour: Option<f64>,
    /// A step back of at most this many ticks is read noise, not a decrease.
    pub noise_ticks: u64,
    /// Consistent rejected readings in a row that are then accepted.
    pub accept_after: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            decision: DecisionRule::default(),
            min_confidence: 0.95,
            max_residual: 3,
            allow_negative: false,
            max_rate_per_hour: None,
            noise_ticks: 1,
            accept_after: 5,
        }
    }
}

/// A value with the time it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed {
    /// The value in ticks.
    pub ticks: u64,
    /// When it was read (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

/// A run of rejected readings that agree with each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The run's latest reading.
    pub last: Timed,
    /// Readings in the run.
    pub count: u32,
    /// Why the run's first reading was rejected.
    pub reason: Reason,
}

/// What is remembered about a meter between readings (persisted by the
/// caller, e.g. as JSON in the state directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The counter the ticks refer to.
    pub counter: Counter,
    /// The last stored value.
    pub stored: Option<Timed>,
    /// The current run of rejected readings, if any.
    pub pending: Option<Pending>,
}

impl State {
    /// A meter never read.
    pub fn new(counter: Counter) -> Self {
        Self {
            counter,
            stored: None,
            pending: None,
        }
    }

    /// A state holding a value set by hand (`meter set-value`).
    pub fn with_value(counter: Counter, ticks: u64, time: OffsetDateTime) -> Self {
        Self {
            counter,
            stored: Some(Timed { ticks, time }),
            pending: None,
        }
    }
}

/// Why a reading was not stored as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// A roller's confidence is below the minimum.
    LowConfidence {
        /// Roller index, most significant is 0.
        digit: usize,
        /// Its confidence.
        confidence: f32,
        /// The minimum.
        min: f32,
    },
    /// The reading's probability of being right is below the minimum
    /// ([`DecisionRule::Reading`]).
    Improbable {
        /// The likeliest plausible value, in the unit.
        value: f64,
        /// Its probability of being right.
        probability: f32,
        /// The minimum.
        min: f32,
    },
    /// The frame was aligned by a search beyond the usual one (the camera
    /// may have moved) and the digit row was not found where the digit
    /// boxes are: the digits may be read from the wrong place.
    AlignmentUnconfirmed,
    /// A roller disagrees with the rollers below it.
    Inconsistent {
        /// Roller index, most significant is 0.
        digit: usize,
        /// What the model saw.
        observed: Tenths,
        /// Where the rollers below say it should be.
        expected: Tenths,
    },
    /// The value went down.
    Decreasing {
        /// The stored value.
        previous: f64,
        /// The reading.
        candidate: f64,
    },
    /// The value rose (or fell) faster than the maximum rate.
    RateTooHigh {
        /// The stored value.
        previous: f64,
        /// The reading.
        candidate: f64,
        /// The implied rate per hour (`None` when no time passed).
        rate_per_hour: Option<f64>,
        /// The maximum rate per hour.
        max: f64,
    },
    /// The reading is older than the stored value.
    ClockWentBack {
        /// When the stored value was read.
        #[serde(with = "time::serde::rfc3339")]
        previous: OffsetDateTime,
        /// The reading's time.
        #[serde(with = "time::serde::rfc3339")]
        now: OffsetDateTime,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::LowConfidence {
                digit,
                confidence,
                min,
            } => write!(
                f,
                "digit {} confidence {confidence:.3} below {min}",
                digit + 1
            ),
            Reason::Improbable {
                value,
                probability,
                min,
            } => write!(
                f,
                "reading {value} is right with probability {probability:.3}, below {min}"
            ),
            Reason::AlignmentUnconfirmed => f.write_str(
                "the meter was found far from its place and the digit row not where the boxes are",
            ),
            Reason::Inconsistent {
                digit,
                observed,
                expected,
            } => write!(
                f,
                "digit {} reads {observed} but the digits below put it at {expected}",
                digit + 1
            ),
            Reason::Decreasing {
                previous,
                candidate,
            } => write!(f, "value went down from {previous} to {candidate}"),
            Reason::RateTooHigh {
                previous,
                candidate,
                rate_per_hour,
                max,
            } => match rate_per_hour {
                Some(r) => write!(
                    f,
                    "rate too high: {previous} to {candidate} is {r:.3}/h, max {max}/h"
                ),
                None => write!(
                    f,
                    "rate too high: {previous} to {candidate} with no time passed, max {max}/h"
                ),
            },
            Reason::ClockWentBack { previous, now } => {
                write!(
                    f,
                    "reading time {now} is before the stored value's {previous}"
                )
            }
        }
    }
}

/// Something worth reporting about a stored value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Note {
    /// The meter's first stored value.
    First,
    /// The reading was a little below the stored value (read noise); the
    /// stored value was kept.
    Held {
        /// The reading, in the unit.
        candidate: f64,
    },
    /// The counter passed its end and started again from zero.
    WrappedAround,
    /// A run of consistent readings that disagreed with the stored value
    /// replaced it.
    Resynchronised {
        /// The value it replaced.
        previous: Option<f64>,
        /// Readings in the run.
        readings: u32,
        /// Why the run's first reading had been rejected.
        reason: Reason,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::First => f.write_str("first value"),
            Note::Held { candidate } => {
                write!(f, "read {candidate}, slightly below; kept the stored value")
            }
            Note::WrappedAround => f.write_str("counter wrapped around"),
            Note::Resynchronised {
                previous,
                readings,
                reason,
            } => {
                write!(
                    f,
                    "accepted after {readings} consistent readings ({reason})"
                )?;
                if let Some(p) = previous {
                    write!(f, "; replaced {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// What happens to a reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Decision {
    /// Stored with this value.
    Stored {
        /// The stored value in ticks (can differ from the reading, see
        /// [`Note::Held`]).
        ticks: u64,
        /// Something worth reporting.
        note: Option<Note>,
    },
    /// Implausible: not stored.
    Rejected(Reason),
    /// Not sure enough to judge: not stored, crops kept for labelling.
    Unsure(Reason),
}

impl Decision {
    /// The decision's name: `stored`, `rejected` or `unsure`.
    pub fn status(&self) -> &'static str {
        match self {
            Decision::Stored { .. } => "stored",
            Decision::Rejected(_) => "rejected",
            Decision::Unsure(_) => "unsure",
        }
    }

    /// The stored ticks, if stored.
    pub fn stored_ticks(&self) -> Option<u64> {
        match self {
            Decision::Stored { ticks, .. } => Some(*ticks),
            _ => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Stored { note: None, .. } => f.write_str("stored"),
            Decision::Stored { note: Some(n), .. } => write!(f, "stored ({n})"),
            Decision::Rejected(r) => write!(f, "rejected: {r}"),
            Decision::Unsure(r) => write!(f, "unsure: {r}"),
        }
    }
}

/// Why [`decide`] cannot judge at all (a caller error, not a reading's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecideError {
    /// The reading and the state are of differently shaped counters.
    #[error("the reading's counter ({reading}) differs from the state's ({state})")]
    CounterMismatch {
        /// The state's counter.
        state: Counter,
        /// The reading's counter.
        reading: Counter,
    },
    /// Per-roller inputs of [`judge`](crate::judge) do not match the counter.
    #[error("expected {expected} {what}, got {got}")]
    RollerCount {
        /// What was counted.
        what: &'static str,
        /// Rollers of the counter.
        expected: usize,
        /// How many were given.
        got: usize,
    },
}

/// Judges a reading taken at `now` against the state; returns the decision
/// and the next state.
pub fn decide(
    state: &State,
    rules: &Rules,
    reading: &Reading,
    now: OffsetDateTime,
) -> Result<(Decision, State), DecideError> {
    if state.counter != reading.counter {
        return Err(DecideError::CounterMismatch {
            state: state.counter,
            reading: reading.counter,
        });
    }
    if let Some((digit, confidence)) = reading.min_confidence() {
        if confidence < rules.min_confidence {
            let reason = Reason::LowConfidence {
                digit,
                confidence,
                min: rules.min_confidence,
            };
            return Ok((Decision::Unsure(reason), state.clone()));
        }
    }
    if let Some((digit, residual)) = reading.max_residual() {
        if residual > rules.max_residual {
            let d = reading.digits[digit];
            let reason = Reason::Inconsistent {
                digit,
                observed: d.observed,
                expected: d.expected,
            };
            return Ok((Decision::Unsure(reason), state.clone()));
        }
    }
    Ok(settle(state, rules, reading.ticks, now))
}

/// Rules 2 to 5 for a value that is sure enough.
pub(crate) fn settle(
    state: &State,
    rules: &Rules,
    ticks: u64,
    now: OffsetDateTime,
) -> (Decision, State) {
    let counter = state.counter;
    let candidate = Timed { ticks, time: now };
    let Some(stored) = state.stored else {
        let next = State {
            counter,
            stored: Some(candidate),
            pending: None,
        };
        let decision = Decision::Stored {
            ticks: candidate.ticks,
            note: Some(Note::First),
        };
        return (decision, next);
    };
    match step(counter, rules, stored, candidate) {
        Ok((ticks, note)) => {
            let next = State {
                counter,
                stored: Some(Timed { ticks, time: now }),
                pending: None,
            };
            (Decision::Stored { ticks, note }, next)
        }
        Err(reason) => {
            let pending = match &state.pending {
                Some(p) => match step(counter, rules, p.last, candidate) {
                    Ok((ticks, _)) => Pending {
                        last: Timed { ticks, time: now },
                        count: p.count + 1,
                        reason: p.reason.clone(),
                    },
                    Err(_) => Pending {
                        last: candidate,
                        count: 1,
                        reason: reason.clone(),
                    },
                },
                None => Pending {
                    last: candidate,
                    count: 1,
                    reason: reason.clone(),
                },
            };
            if pending.count >= rules.accept_after {
                let note = Note::Resynchronised {
                    previous: Some(counter.to_units(stored.ticks)),
                    readings: pending.count,
                    reason: pending.reason,
                };
                let next = State {
                    counter,
                    stored: Some(pending.last),
                    pending: None,
                };
                let decision = Decision::Stored {
                    ticks: pending.last.ticks,
                    note: Some(note),
                };
                (decision, next)
            } else {
                let next = State {
                    counter,
                    stored: state.stored,
                    pending: Some(pending),
                };
                (Decision::Rejected(reason), next)
            }
        }
    }
}

/// Whether `to` plausibly follows `from`: the ticks to store and a note, or
/// why not.
pub(crate) fn step(
    counter: Counter,
    rules: &Rules,
    from: Timed,
    to: Timed,
) -> Result<(u64, Option<Note>), Reason> {
    let units = |t: u64| counter.to_units(t);
    if to.time < from.time {
        return Err(Reason::ClockWentBack {
            previous: from.time,
            now: to.time,
        });
    }
    if to.ticks == from.ticks {
        return Ok((to.ticks, None));
    }
    let fwd = counter.forward(from.ticks, to.ticks);
    let back = counter.forward(to.ticks, from.ticks);
    // Numerically lower is a step back, unless it is a short step forward
    // round the end of the counter (99999 -> 00001): within a tenth of the
    // counter's range, so that a meter swap (54321 -> 00012) is not taken
    // for one.
    let wrapped = to.ticks < from.ticks && fwd < back && fwd < counter.modulus() / 10;
    let forward = to.ticks > from.ticks || wrapped;
    let (delta, note) = if forward {
        let note = (to.ticks < from.ticks).then_some(Note::WrappedAround);
        (fwd, note)
    } else if rules.allow_negative {
        (back, None)
    } else if back <= rules.noise_ticks {
        let note = Note::Held {
            candidate: units(to.ticks),
        };
        return Ok((from.ticks, Some(note)));
    } else {
        return Err(Reason::Decreasing {
            previous: units(from.ticks),
            candidate: units(to.ticks),
        });
    };
    if let Some(max) = rules.max_rate_per_hour {
        let hours = (to.time - from.time).as_seconds_f64() / 3600.0;
        let delta_units = units(delta);
        let noise = units(rules.noise_ticks);
        if delta_units > max * hours + noise {
            let rate_per_hour = (hours > 0.0).then(|| delta_units / hours);
            return Err(Reason::RateTooHigh {
                previous: units(from.ticks),
                candidate: units(to.ticks),
                rate_per_hour,
                max,
            });
        }
    }
    Ok((to.ticks, note))
}
