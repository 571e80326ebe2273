//! The reading-level evaluation on synthetic counters (no data needed): the
//! shipped model reads bitmap-font counters composed by meter-synth, and the
//! reading-level decision stores nothing wrong, more than the per-digit
//! rule, and keeps unmoved rollers in histories.

use image::imageops;
use meter_core::{judge, Decision, DecisionRule, Evidence, Rules, State};
use meter_model::{picture_change, DigitModel, UNCHANGED_BELOW};
use meter_synth::{evaluate, CropBank, Outcome, Plan, Report, StreamKind, Tally};

/// Reads every composed frame by cutting the layout's boxes, with `rule`,
/// keeping unmoved rollers when `keep`.
fn run(rule: DecisionRule, keep: bool) -> (Tally, Tally) {
    let model = DigitModel::shipped();
    let bank = CropBank::synthetic(model.input_size(), 3, 5);
    let plan = Plan {
        single_frames: 40,
        histories: 3,
        history_len: 20,
        ..Plan::default()
    };
    let streams = plan.compose(&bank).unwrap();
    let rules = Rules {
        decision: rule,
        ..Rules::default()
    };
    let mut report = Report::default();
    let mut state = None;
    let mut refs = Vec::new();
    evaluate(&bank, &streams, &mut report, |f| {
        if f.index == 0 {
            state = Some(State::new(f.counter));
            refs = vec![None; f.layout.digits.len()];
        }
        let crops: Vec<_> = f
            .layout
            .digits
            .iter()
            .map(|&[x, y, w, h]| imageops::crop_imm(&f.image, x, y, w, h).to_image())
            .collect();
        let preds = model.predict_batch(&crops)?;
        let unchanged: Vec<bool> = refs
            .iter()
            .zip(&crops)
            .map(|(r, c)| {
                keep && r
                    .as_ref()
                    .is_some_and(|r| picture_change(r, c) < UNCHANGED_BELOW)
            })
            .collect();
        let evidence = Evidence {
            predictions: &preds,
            unchanged: &unchanged,
        };
        let st = state.take().expect("state");
        let j = judge(&st, &rules, &evidence, f.time).expect("judges");
        if matches!(j.decision, Decision::Stored { .. }) {
            refs = crops.into_iter().map(Some).collect();
        }
        state = Some(j.next);
        Ok::<_, meter_model::ModelError>(Outcome {
            stored: j.decision.stored_ticks(),
            unsure: matches!(j.decision, Decision::Unsure(_)),
            raw: j.reading.ticks,
        })
    })
    .unwrap();
    let get = |k| report.overall.get(&k).copied().unwrap_or_default();
    (get(StreamKind::Single), get(StreamKind::History))
}

#[test]
fn synthetic_counters_are_read_and_judged() {
    let (per_digit, _) = run(DecisionRule::PerDigit, false);
    let (single, history) = run(DecisionRule::Reading, true);
    eprintln!("per-digit {per_digit:?}\nreading {single:?}\nreading, history {history:?}");
    assert_eq!((single.frames, history.frames), (40, 60));
    assert_eq!(
        single.stored_wrong + history.stored_wrong + per_digit.stored_wrong,
        0
    );
    assert!(single.raw_right_share() > 0.9, "{single:?}");
    assert!(
        single.stored >= per_digit.stored,
        "{single:?} vs {per_digit:?}"
    );
    assert!(history.stored_share() > 0.8, "{history:?}");
}
