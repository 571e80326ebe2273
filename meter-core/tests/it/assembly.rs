//! Assembly: exact odometer positions give back their value; read noise of a
//! tenth per roller moves the value by at most one tick (the baseline rule
//! does not manage that).

use meter_core::{assemble, assemble_with, Counter, Rule, Tenths};
use proptest::prelude::*;

use crate::helpers::{positions, pred};

fn circular(counter: Counter, a: u64, b: u64) -> u64 {
    counter.forward(a, b).min(counter.forward(b, a))
}

proptest! {
    #[test]
    fn exact_positions_assemble_to_their_value(
        digits in 1usize..=9,
        decimals in 0u8..=3,
        raw in any::<u64>(),
    ) {
        let counter = Counter::new(digits, decimals.min(digits as u8)).unwrap();
        let ticks = raw % counter.modulus();
        let preds: Vec<_> = positions(counter, ticks).into_iter().map(|t| pred(t, 0.99)).collect();
        let r = assemble(counter, &preds).unwrap();
        prop_assert_eq!(r.ticks, ticks);
        prop_assert_eq!(r.max_residual().unwrap().1, 0);
        // The text form has the counter's leading zeros and decimals.
        prop_assert_eq!(counter.parse(&r.to_string()).unwrap(), ticks);
    }

    #[test]
    fn one_tenth_of_noise_moves_the_value_by_at_most_one_tick(
        digits in 2usize..=8,
        raw in any::<u64>(),
        noise in proptest::collection::vec(-1i64..=1, 8),
    ) {
        let counter = Counter::new(digits, 1).unwrap();
        let ticks = raw % counter.modulus();
        let preds: Vec<_> = positions(counter, ticks)
            .into_iter()
            .zip(&noise)
            .map(|(t, n)| pred(Tenths::wrapping(i64::from(t.index()) + n), 0.99))
            .collect();
        let r = assemble(counter, &preds).unwrap();
        prop_assert!(circular(counter, r.ticks, ticks) <= 1, "{} vs {}", r, counter.format(ticks));
        prop_assert!(r.max_residual().unwrap().1 <= 2);
    }
}

/// Every value of a 3-roller counter with every pattern of one tenth of read
/// noise: how many assemble more than one tick off.
fn errors(rule: Rule, noise: i64) -> (usize, usize) {
    let counter = Counter::new(3, 0).unwrap();
    let mut wrong = 0;
    let mut total = 0;
    for ticks in 0..counter.modulus() {
        let exact = positions(counter, ticks);
        for pattern in 0..27u32 {
            let preds: Vec<_> = exact
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let n = i64::from((pattern / 3u32.pow(i as u32)) % 3) - 1;
                    pred(Tenths::wrapping(i64::from(t.index()) + n * noise), 0.99)
                })
                .collect();
            let r = assemble_with(rule, counter, &preds).unwrap();
            total += 1;
            if circular(counter, r.ticks, ticks) > noise as u64 {
                wrong += 1;
            }
        }
    }
    (wrong, total)
}

#[test]
fn odometer_beats_the_floor_or_round_baseline() {
    let (odo, total) = errors(Rule::Odometer, 1);
    let (base, _) = errors(Rule::FloorOrRound, 1);
    eprintln!("one tenth of noise: odometer {odo} of {total} wrong, floor-or-round {base}");
    assert_eq!(odo, 0, "odometer: {odo} of {total} wrong");
    assert!(base > total / 100, "baseline: {base} of {total} wrong");
    // Two tenths of noise on every roller: still never wrong by more than it.
    let (odo2, total2) = errors(Rule::Odometer, 2);
    let (base2, _) = errors(Rule::FloorOrRound, 2);
    eprintln!("two tenths of noise: odometer {odo2} of {total2} wrong, floor-or-round {base2}");
    assert_eq!(odo2, 0, "odometer: {odo2} of {total2} wrong at 0.2");
    assert!(base2 > base, "baseline: {base2} of {total2} wrong at 0.2");
}

#[test]
fn wraps_past_the_end() {
    let counter = Counter::new(4, 0).unwrap();
    // 9999.8: every roller 0.8 of the way to 0.
    let preds: Vec<_> = ["9.8", "9.8", "9.8", "9.8"]
        .iter()
        .map(|s| pred(s.parse().unwrap(), 0.99))
        .collect();
    assert_eq!(assemble(counter, &preds).unwrap().to_string(), "9999.8");
    // Passed zero, the higher rollers lag a little: 0000.1.
    let preds: Vec<_> = ["9.9", "9.9", "9.9", "0.1"]
        .iter()
        .map(|s| pred(s.parse().unwrap(), 0.99))
        .collect();
    assert_eq!(assemble(counter, &preds).unwrap().to_string(), "0000.1");
}
