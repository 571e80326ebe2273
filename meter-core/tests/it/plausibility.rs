//! Plausibility replays: each case is a sequence of (minute, reading) and the
//! expected decisions; the state goes through JSON between readings, as the
//! CLI persists it, so every replay is also a restart test.

use meter_core::{
    assemble, decide, Counter, Decision, Note, Reading, Reason, Rules, State, Tenths,
};
use time::{macros::datetime, Duration, OffsetDateTime};

use crate::helpers::{positions, pred, reading};

const T0: OffsetDateTime = datetime!(2024-03-01 12:00 UTC);

fn counter() -> Counter {
    Counter::new(6, 1).unwrap()
}

/// Feeds readings (minutes after T0, value text) through `decide`, with the
/// state serialised and restored between readings; returns the decisions.
fn replay(rules: &Rules, start: State, steps: &[(i64, &str)]) -> (Vec<Decision>, State) {
    let mut state = start;
    let mut out = Vec::new();
    for &(minute, text) in steps {
        let r = reading(counter(), text);
        let (d, next) = decide(&state, rules, &r, T0 + Duration::minutes(minute)).unwrap();
        let json = serde_json::to_string(&next).unwrap();
        state = serde_json::from_str(&json).unwrap();
        assert_eq!(state, next, "state survives a restart");
        out.push(d);
    }
    (out, state)
}

fn stored(d: &Decision) -> Option<String> {
    d.stored_ticks().map(|t| counter().format_units(t))
}

fn rate_rules() -> Rules {
    Rules {
        max_rate_per_hour: Some(10.0),
        ..Rules::default()
    }
}

#[test]
fn a_reading_going_backwards_is_rejected() {
    let (d, state) = replay(
        &Rules::default(),
        State::new(counter()),
        &[(0, "1234.5"), (1, "1233.0"), (2, "1234.6")],
    );
    assert!(matches!(
        d[0],
        Decision::Stored {
            note: Some(Note::First),
            ..
        }
    ));
    assert_eq!(
        d[1],
        Decision::Rejected(Reason::Decreasing {
            previous: 1234.5,
            candidate: 1233.0
        })
    );
    assert_eq!(
        d[1].to_string(),
        "rejected: value went down from 1234.5 to 1233"
    );
    assert_eq!(stored(&d[2]).as_deref(), Some("1234.6"));
    assert_eq!(state.pending, None, "a stored reading ends a rejected run");
}

#[test]
fn the_last_tenth_jittering_back_is_held_not_rejected() {
    let (d, _) = replay(
        &Rules::default(),
        State::new(counter()),
        &[(0, "1234.56"), (1, "1234.55"), (2, "1234.57")],
    );
    assert_eq!(
        d[1].stored_ticks(),
        Some(counter().parse("1234.56").unwrap())
    );
    assert!(matches!(
        d[1],
        Decision::Stored {
            note: Some(Note::Held { .. }),
            ..
        }
    ));
    assert_eq!(
        d[2].stored_ticks(),
        Some(counter().parse("1234.57").unwrap())
    );
}

#[test]
fn a_single_wild_jump_is_rejected_and_forgotten() {
    let (d, state) = replay(
        &rate_rules(),
        State::new(counter()),
        &[
            (0, "1000.0"),
            (1, "1000.1"),
            (2, "7000.1"),
            (3, "1000.2"),
            (4, "1000.3"),
        ],
    );
    let Decision::Rejected(Reason::RateTooHigh {
        rate_per_hour, max, ..
    }) = &d[2]
    else {
        panic!("{:?}", d[2]);
    };
    assert!((rate_per_hour.unwrap() - 360_000.0).abs() < 1e-6);
    assert_eq!(*max, 10.0);
    assert_eq!(stored(&d[3]).as_deref(), Some("1000.2"));
    assert_eq!(stored(&d[4]).as_deref(), Some("1000.3"));
    assert_eq!(state.pending, None);
}

#[test]
fn rate_is_judged_over_the_time_since_the_stored_value() {
    // The camera was dead for ten hours: 90 units in 10 h is fine at 10/h.
    let (d, _) = replay(
        &rate_rules(),
        State::new(counter()),
        &[(0, "100.0"), (600, "190.0"), (601, "195.0")],
    );
    assert_eq!(stored(&d[1]).as_deref(), Some("190.0"));
    assert!(matches!(
        d[2],
        Decision::Rejected(Reason::RateTooHigh { .. })
    ));
}

#[test]
fn a_stuck_value_after_a_meter_swap_is_replaced_after_n_readings() {
    // The old meter stood at 54321.0; the new one starts at 12.0.
    let rules = Rules {
        accept_after: 3,
        ..rate_rules()
    };
    let (d, state) = replay(
        &rules,
        State::new(counter()),
        &[(0, "54321.0"), (10, "12.0"), (11, "12.0"), (12, "12.1")],
    );
    assert!(
        matches!(d[1], Decision::Rejected(Reason::Decreasing { .. })),
        "{d:?}"
    );
    assert!(matches!(
        d[2],
        Decision::Rejected(Reason::Decreasing { .. })
    ));
    let Decision::Stored {
        ticks,
        note:
            Some(Note::Resynchronised {
                previous,
                readings,
                reason,
            }),
    } = &d[3]
    else {
        panic!("{:?}", d[3]);
    };
    assert_eq!(counter().format_units(*ticks), "12.1");
    assert_eq!(*previous, Some(54321.0));
    assert_eq!(*readings, 3);
    assert!(matches!(reason, Reason::Decreasing { .. }));
    assert_eq!(
        d[3].to_string(),
        "stored (accepted after 3 consistent readings (value went down from 54321 to 12); replaced 54321)"
    );
    assert_eq!(state.stored.unwrap().ticks, 1210);
}

#[test]
fn inconsistent_rejections_do_not_add_up() {
    // Three wild readings that disagree with each other never form a run.
    let rules = Rules {
        accept_after: 2,
        ..rate_rules()
    };
    let (d, state) = replay(
        &rules,
        State::new(counter()),
        &[
            (0, "500.0"),
            (1, "900.0"),
            (2, "100.0"),
            (3, "950.0"),
            (4, "50.0"),
        ],
    );
    for x in &d[1..] {
        assert!(matches!(x, Decision::Rejected(_)), "{x:?}");
    }
    assert_eq!(state.pending.unwrap().count, 1);
}

#[test]
fn a_restart_continues_from_the_persisted_state() {
    let (_, state) = replay(&rate_rules(), State::new(counter()), &[(0, "2000.0")]);
    // A new process, an hour later: the stored value and its time still count.
    let (d, _) = replay(&rate_rules(), state.clone(), &[(60, "2009.0")]);
    assert_eq!(stored(&d[0]).as_deref(), Some("2009.0"));
    let (d, _) = replay(&rate_rules(), state, &[(60, "1999.0")]);
    assert!(matches!(
        d[0],
        Decision::Rejected(Reason::Decreasing { .. })
    ));
}

#[test]
fn wrap_around_is_a_step_forward() {
    let (d, _) = replay(
        &rate_rules(),
        State::new(counter()),
        &[(0, "99999.8"), (2, "0.0"), (3, "0.1")],
    );
    assert!(
        matches!(
            d[1],
            Decision::Stored {
                note: Some(Note::WrappedAround),
                ..
            }
        ),
        "{d:?}"
    );
    assert_eq!(stored(&d[1]).as_deref(), Some("0.0"));
    assert_eq!(stored(&d[2]).as_deref(), Some("0.1"));
}

#[test]
fn allow_negative_accepts_a_step_back_within_the_rate() {
    let rules = Rules {
        allow_negative: true,
        ..rate_rules()
    };
    let (d, _) = replay(
        &rules,
        State::new(counter()),
        &[(0, "50.0"), (60, "45.0"), (61, "10.0")],
    );
    assert_eq!(stored(&d[1]).as_deref(), Some("45.0"));
    assert!(matches!(
        d[2],
        Decision::Rejected(Reason::RateTooHigh { .. })
    ));
}

#[test]
fn low_confidence_and_inconsistent_rollers_are_unsure() {
    let c = counter();
    let state = State::new(c);
    let mut preds: Vec<_> = positions(c, c.parse("123.4").unwrap())
        .into_iter()
        .map(|t| pred(t, 0.99))
        .collect();
    preds[3].confidence = 0.5;
    let r: Reading = assemble(c, &preds).unwrap();
    let (d, next) = decide(&state, &Rules::default(), &r, T0).unwrap();
    assert_eq!(
        d,
        Decision::Unsure(Reason::LowConfidence {
            digit: 3,
            confidence: 0.5,
            min: 0.95
        })
    );
    assert_eq!(d.to_string(), "unsure: digit 4 confidence 0.500 below 0.95");
    assert_eq!(next, state, "unsure leaves the state alone");

    preds[3].confidence = 0.99;
    preds[2].tenths = Tenths::new(5).unwrap(); // a 0 half-rolled while the 1 below sits still
    let r = assemble(c, &preds).unwrap();
    let (d, _) = decide(&state, &Rules::default(), &r, T0).unwrap();
    assert!(
        matches!(d, Decision::Unsure(Reason::Inconsistent { digit: 2, .. })),
        "{d:?}"
    );
}

#[test]
fn a_clock_going_back_is_rejected() {
    let (d, _) = replay(
        &Rules::default(),
        State::new(counter()),
        &[(10, "1.0"), (5, "1.1")],
    );
    assert!(matches!(
        d[1],
        Decision::Rejected(Reason::ClockWentBack { .. })
    ));
}

#[test]
fn a_hand_set_value_is_the_new_reference() {
    let c = counter();
    let state = State::with_value(c, c.parse("300.0").unwrap(), T0);
    let (d, _) = replay(&Rules::default(), state, &[(1, "299.0"), (2, "300.1")]);
    assert!(matches!(
        d[0],
        Decision::Rejected(Reason::Decreasing { .. })
    ));
    assert_eq!(stored(&d[1]).as_deref(), Some("300.1"));
}

#[test]
fn a_state_of_another_counter_is_an_error() {
    let other = State::new(Counter::new(5, 1).unwrap());
    let r = reading(counter(), "1.0");
    assert!(decide(&other, &Rules::default(), &r, T0).is_err());
}
