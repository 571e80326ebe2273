//! The reading-level decision against today's per-digit rule: on every
//! odometer position of a 3-roller counter with every pattern of one tenth of
//! read noise, and on random counters with random uncertainty and history,
//! it never stores a wrong value (more than a tick from the truth) unless the
//! per-digit rule stores that same value; and it stores more.

use meter_core::{
    judge, Counter, DecisionRule, DigitPrediction, Distribution, Evidence, Rules, State, Tenths,
};
use proptest::prelude::*;
use time::{macros::datetime, Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2024-03-01 12:00 UTC);

/// `main` of the mass on `at`, `second` on `other`, the rest spread thinly
/// over every position.
fn read(at: Tenths, main: f32, other: Tenths, second: f32) -> DigitPrediction {
    let tail = (1.0 - main - second).max(0.0) / Tenths::CLASSES as f32;
    let mut p = [tail; Tenths::CLASSES];
    p[usize::from(at.index())] += main;
    p[usize::from(other.index())] += second;
    DigitPrediction::from_distribution(Distribution::from_probs(&p).expect("distribution"))
}

fn shifted(t: Tenths, by: i64) -> Tenths {
    Tenths::wrapping(i64::from(t.index()) + by)
}

fn off(counter: Counter, a: u64, b: u64) -> u64 {
    counter.forward(a, b).min(counter.forward(b, a))
}

/// Judges with both rules; `Err` describes a wrong value stored by the
/// reading rule that the per-digit rule does not store. Returns whether each
/// rule stored.
fn compare(
    state: &State,
    rules: &Rules,
    evidence: &Evidence<'_>,
    truth: u64,
) -> Result<(bool, bool), String> {
    let per_digit = Rules {
        decision: DecisionRule::PerDigit,
        ..rules.clone()
    };
    let reading = Rules {
        decision: DecisionRule::Reading,
        ..rules.clone()
    };
    let p = judge(state, &per_digit, evidence, NOW).expect("judges");
    let r = judge(state, &reading, evidence, NOW).expect("judges");
    let (ps, rs) = (p.decision.stored_ticks(), r.decision.stored_ticks());
    if let Some(v) = rs {
        if off(state.counter, v, truth) > 1 && ps != Some(v) {
            return Err(format!(
                "truth {} stored {} (p {:.3}), per-digit {}",
                state.counter.format(truth),
                state.counter.format(v),
                r.probability,
                p.decision
            ));
        }
    }
    Ok((ps.is_some(), rs.is_some()))
}

/// Every value of a 3-roller counter with every pattern of one tenth of
/// read noise (10,000 x 27 = 270,000 cases), each read four ways: sure;
/// one roller torn 60/40 between its read and a look-alike digit; every
/// roller torn 55/40 between its read and the next tenth; the upper rollers
/// torn 50/50 between a tenth below and a tenth above their read ("3.9 or
/// 4.1").
#[test]
fn exhaustive_odometer_cases_never_store_wrong_where_the_per_digit_rule_would_not() {
    let counter = Counter::new(3, 0).unwrap();
    let state = State::new(counter);
    let rules = Rules::default();
    let mut stored = [[0usize; 2]; 4];
    let mut failures = Vec::new();
    let mut cases = 0;
    for truth in 0..counter.modulus() {
        let exact = counter.positions(truth);
        for pattern in 0..27u32 {
            let noisy: Vec<Tenths> = exact
                .iter()
                .enumerate()
                .map(|(i, t)| shifted(*t, i64::from((pattern / 3u32.pow(i as u32)) % 3) - 1))
                .collect();
            let torn = (truth % 3) as usize;
            let look_alike = 10 * (1 + (truth / 3) % 9) as i64;
            let side = if (truth + u64::from(pattern)) % 2 == 0 {
                1
            } else {
                -1
            };
            let families: [Vec<DigitPrediction>; 4] = [
                noisy.iter().map(|&t| read(t, 0.99, t, 0.0)).collect(),
                noisy
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| match i == torn {
                        true => read(t, 0.6, shifted(t, look_alike), 0.4),
                        false => read(t, 0.99, t, 0.0),
                    })
                    .collect(),
                noisy
                    .iter()
                    .map(|&t| read(t, 0.55, shifted(t, side), 0.4))
                    .collect(),
                noisy
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| match i < 2 {
                        true => read(shifted(t, -1), 0.5, shifted(t, 1), 0.5),
                        false => read(t, 0.99, t, 0.0),
                    })
                    .collect(),
            ];
            for (f, preds) in families.iter().enumerate() {
                cases += 1;
                match compare(&state, &rules, &Evidence::read(preds), truth) {
                    Ok((p, r)) => {
                        stored[f][0] += usize::from(p);
                        stored[f][1] += usize::from(r);
                    }
                    Err(e) => failures.push(format!("family {f}: {e}")),
                }
            }
        }
    }
    assert_eq!(cases, 4 * 270_000);
    eprintln!(
        "stored, per-digit vs reading: sure {:?}, look-alike {:?}, torn tenths {:?}, 3.9 or 4.1 {:?}",
        stored[0], stored[1], stored[2], stored[3]
    );
    assert!(
        failures.is_empty(),
        "{} failures, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Sure reads: the per-digit rule stores everything; the reading rule
    // all but the cases where the noise crosses a carry both ways (a last
    // roller at 0.0 read 9.9 under a roller at 0.0 read 0.1: no odometer
    // position is within a tenth of every read), which it leaves unsure.
    assert_eq!(stored[0][0], 270_000);
    assert!(stored[0][1] > 260_000, "{:?}", stored[0]);
    // A look-alike the odometer rules out (it would change the carry) and
    // upper rollers a tenth either side of where the odometer puts them: the
    // per-digit rule stores none of them.
    assert_eq!(stored[1][0], 0);
    assert!(stored[1][1] > 5_000, "{:?}", stored[1]);
    assert_eq!(stored[3][0], 0);
    assert!(stored[3][1] > 100_000, "{:?}", stored[3]);
    // Every roller 95% within a tenth, with the rest spread over every
    // position: the per-digit rule stores it all, the reading rule few (the
    // rollers' doubts compound), both rightly.
    assert_eq!(stored[2][0], 270_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random counters, truths, reads and histories: a stored value a little
    /// below the truth (or none), a rate limit that admits the truth, and
    /// rollers flagged unchanged where they did not move.
    #[test]
    fn random_reads_never_store_wrong_where_the_per_digit_rule_would_not(
        digits in 2usize..=8,
        raw in any::<u64>(),
        rollers in proptest::collection::vec(
            (-1i64..=1, 0.3f32..=1.0, prop_oneof![Just(-1i64), Just(1), 1i64..10], 0.0f32..=1.0, any::<bool>()),
            8,
        ),
        back in prop_oneof![Just(None), (0u64..2000).prop_map(Some)],
        rate in prop_oneof![Just(None), (1.0f64..100.0).prop_map(Some)],
    ) {
        let counter = Counter::new(digits, 1).unwrap();
        let truth = raw % counter.modulus();
        let stored = back.map(|b| truth.saturating_sub(b));
        let state = match stored {
            Some(s) => State::with_value(counter, s, NOW - Duration::minutes(10)),
            None => State::new(counter),
        };
        let exact = counter.positions(truth);
        let before = stored.map(|s| counter.positions(s));
        let mut unchanged = Vec::new();
        let preds: Vec<DigitPrediction> = exact
            .iter()
            .zip(&rollers)
            .enumerate()
            .map(|(i, (&t, &(noise, main, other, share, flag)))| {
                unchanged.push(flag && before.as_ref().is_some_and(|b| b[i] == t));
                let at = shifted(t, noise);
                // The model's most likely read is its read: the second
                // place (a tenth off, or a look-alike digit) gets less.
                let second = (1.0 - main).min(main) * share;
                let other = shifted(at, if other.abs() == 1 { other } else { 10 * other });
                read(at, main, other, second)
            })
            .collect();
        // Rate admits the truth: at least the needed rate.
        let rate = rate.map(|r| {
            let need = stored.map_or(0.0, |s| counter.to_units(truth - s) * 6.0);
            r.max(need)
        });
        let rules = Rules { max_rate_per_hour: rate, ..Rules::default() };
        let evidence = Evidence { predictions: &preds, unchanged: &unchanged };
        let result = compare(&state, &rules, &evidence, truth);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
