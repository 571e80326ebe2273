//! The reading-level evaluation on synthetic counters (no data needed): the
//! shipped model reads bitmap-font counters composed by meter-synth through
//! the read-and-store path, and the reading-level decision stores nothing
//! wrong, at least what the per-digit rule stores, and keeps unmoved
//! rollers in histories.

use meter_core::DecisionRule;
use meter_model::{Dataset, DigitModel, Sample};
use meter_service::counters::{evaluate_counters, CounterEval, Floors, Plan, StreamKind};
use meter_synth::CropBank;

/// Two meters of bitmap-font rollers.
fn data(size: (u32, u32)) -> Dataset {
    let mut samples = Vec::new();
    for (source, seed) in [("synth/a", 5), ("synth/b", 6)] {
        let bank = CropBank::synthetic(size, 2, seed);
        for i in 0..100u8 {
            let label = meter_core::Tenths::wrapping(i64::from(i));
            for img in bank.photos(label) {
                samples.push(Sample {
                    image: img.clone(),
                    label,
                    source: source.into(),
                    kind: None,
                    path: format!("{source}/{label}.png").into(),
                });
            }
        }
    }
    Dataset {
        samples,
        problems: Vec::new(),
    }
}

fn options(rule: DecisionRule) -> CounterEval {
    CounterEval {
        plan: Plan {
            single_frames: 20,
            histories: 2,
            history_len: 15,
            ..Plan::default()
        },
        rule,
        ..CounterEval::default()
    }
}

#[test]
fn synthetic_counters_are_read_through_the_product_path() {
    let model = DigitModel::shipped();
    let data = data(model.input_size());
    let sources = vec!["synth/a".to_owned()];
    let per_digit =
        evaluate_counters(&model, &data, &sources, &options(DecisionRule::PerDigit)).unwrap();
    let reading =
        evaluate_counters(&model, &data, &sources, &options(DecisionRule::Reading)).unwrap();
    let (pd, single, history) = (
        per_digit.total(StreamKind::Single),
        reading.total(StreamKind::Single),
        reading.total(StreamKind::History),
    );
    eprintln!("per-digit {pd:?}\nreading {single:?}\nreading, history {history:?}");
    assert_eq!((single.frames, history.frames), (20, 30));
    assert_eq!(reading.report.meters.len(), 1);
    assert_eq!(
        single.stored_wrong + history.stored_wrong + pd.stored_wrong,
        0,
        "{:?}",
        reading.report.wrong
    );
    assert_eq!(
        single.stored + single.unsure + single.rejected,
        single.frames
    );
    assert!(single.raw_right_share() > 0.9, "{single:?}");
    assert!(single.stored >= pd.stored, "{single:?} vs {pd:?}");
    assert!(history.stored_share() > 0.8, "{history:?}");
    // Seeded: the same settings give the same report.
    let again =
        evaluate_counters(&model, &data, &sources, &options(DecisionRule::Reading)).unwrap();
    assert_eq!(again.report, reading.report);
    // Floors.
    let floors = |s, h, w| Floors {
        single_stored: s,
        history_stored: h,
        max_wrong: w,
    };
    assert!(reading
        .below(&floors(Some(0.0), Some(0.0), Some(0)))
        .is_empty());
    let below = reading.below(&floors(Some(1.01), None, None));
    assert_eq!(below.len(), 1);
    assert!(below[0].starts_with("single frames stored"), "{below:?}");
}

#[test]
fn stored_readings_file_their_digits_as_meter_run_does() {
    let model = DigitModel::shipped();
    let data = data(model.input_size());
    let dir = tempfile::tempdir().unwrap();
    let opts = CounterEval {
        file_dataset: Some(dir.path().join("dataset")),
        ..options(DecisionRule::Reading)
    };
    let sources = vec!["synth/b".to_owned()];
    let report = evaluate_counters(&model, &data, &sources, &opts).unwrap();
    assert!(report.total(StreamKind::History).stored > 0);
    let filed = Dataset::load(&dir.path().join("dataset"), model.input_size()).unwrap();
    assert!(filed.problems.is_empty(), "{:?}", filed.problems);
    assert!(filed.len() >= 10, "{} filed", filed.len());
    // Nothing was stored wrong, so every filed digit carries its true label:
    // the shipped model reads nearly all of them as labelled.
    let preds = model
        .predict_batch(
            &filed
                .samples
                .iter()
                .map(|s| s.image.clone())
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let agree = filed
        .samples
        .iter()
        .zip(&preds)
        .filter(|(s, p)| p.tenths.circular_distance(s.label) <= 1)
        .count();
    assert!(agree * 10 >= filed.len() * 9, "{agree} of {}", filed.len());
    // An unknown source is an error naming it.
    let e = evaluate_counters(&model, &data, &["nowhere".into()], &opts).unwrap_err();
    assert!(format!("{e:#}").contains("nowhere"), "{e:#}");
}
