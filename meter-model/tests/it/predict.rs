//! Prediction: the fast path against candle, any image size, prediction fields.

use meter_model::{augment, AugmentConfig, DigitModel, ModelError, CLASSES, TOP_K};
use rand::SeedableRng;

use crate::helpers::{digit, styles};

fn some_digits() -> Vec<image::RgbImage> {
    let mut v = Vec::new();
    for (i, style) in styles().iter().enumerate() {
        for label in ["0.0", "1.3", "4.5", "7.9", "9.9"] {
            let (w, h) = [(20, 32), (23, 42), (63, 88)][i];
            v.push(meter_synth::render_digit(
                label.parse().unwrap(),
                w,
                h,
                style,
            ));
        }
    }
    v
}

#[test]
fn fast_path_matches_candle_forward_on_the_shipped_weights() {
    let model = DigitModel::shipped();
    let imgs = some_digits();
    let fast = model.logits(&imgs).expect("fast");
    let reference = model.logits_reference(&imgs).expect("candle");
    assert_eq!(fast.len(), imgs.len() * CLASSES);
    let max_diff = fast
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff <= 1e-4, "max |fast - candle| = {max_diff}");
}

#[test]
fn predictions_are_well_formed_for_any_size() {
    let model = DigitModel::shipped();
    let imgs = some_digits();
    let preds = model.predict_batch(&imgs).expect("predicts");
    assert_eq!(preds.len(), imgs.len());
    for p in &preds {
        assert!((0.0..=1.0).contains(&p.confidence), "{p:?}");
        assert_eq!(p.top.len(), TOP_K);
        assert_eq!(p.top[0].0, p.tenths);
        assert!(p.top.windows(2).all(|w| w[0].1 >= w[1].1), "{p:?}");
        // Confidence is the mass within one tenth, so at least the top probability.
        assert!(p.confidence + 1e-6 >= p.top[0].1);
    }
    // Batch composition does not change a prediction.
    let single = model.predict_batch(&imgs[3..4]).expect("predicts");
    assert_eq!(single[0], preds[3]);
    assert!(model.predict_batch(&[]).expect("empty batch").is_empty());
}

#[test]
fn empty_image_is_an_error_with_its_index() {
    let model = DigitModel::shipped();
    let imgs = vec![digit("1.0", 20, 32), image::RgbImage::new(0, 5)];
    let err = model.predict_batch(&imgs).expect_err("empty image");
    assert!(
        matches!(err, ModelError::EmptyImage { index: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn model_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<DigitModel>();
    let model = DigitModel::shipped();
    let img = digit("6.0", 20, 32);
    let expected = model
        .predict_batch(std::slice::from_ref(&img))
        .expect("predicts");
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (m, img) = (model.clone(), img.clone());
            let expected = expected.clone();
            s.spawn(move || assert_eq!(m.predict_batch(&[img]).expect("predicts"), expected));
        }
    });
}

#[test]
fn augmentations_keep_shape_and_are_seeded() {
    let cfg = AugmentConfig::default();
    for (w, h) in [(20, 32), (7, 9), (1, 1)] {
        let img = digit("3.4", w, h);
        let mut changed = 0;
        for seed in 0..30 {
            let mut r1 = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut r2 = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let a = augment(&img, &cfg, &mut r1);
            assert_eq!(a.dimensions(), (w, h));
            assert_eq!(a, augment(&img, &cfg, &mut r2), "same seed, same result");
            changed += usize::from(a != img);
        }
        assert!(
            changed >= 25,
            "{w}x{h}: only {changed}/30 augmented images differ"
        );
    }
}

#[test]
fn agreement_averages_the_image_and_its_one_pixel_shifts() {
    let model = DigitModel::shipped();
    let images = some_digits();
    let shift = |img: &image::RgbImage, dy: i64| {
        let (w, h) = img.dimensions();
        image::RgbImage::from_fn(w, h, |x, y| {
            let sy = (i64::from(y) - dy).clamp(0, i64::from(h) - 1) as u32;
            *img.get_pixel(x, sy)
        })
    };
    let dy = meter_model::AGREEMENT_SHIFT;
    let views: Vec<Vec<_>> = [0, dy, -dy]
        .iter()
        .map(|&d| {
            model
                .predict_batch(&images.iter().map(|i| shift(i, d)).collect::<Vec<_>>())
                .unwrap()
        })
        .collect();
    let agreeing = model.clone().with_agreement(true);
    assert!(agreeing.agreement() && !model.agreement());
    let got = agreeing.predict_batch(&images).unwrap();
    assert_eq!(got.len(), images.len());
    for (i, p) in got.iter().enumerate() {
        for k in 0..CLASSES {
            let mean: f32 = views
                .iter()
                .map(|v| v[i].distribution.probs()[k])
                .sum::<f32>()
                / 3.0;
            let d = (p.distribution.probs()[k] - mean).abs();
            assert!(
                d < 1e-4,
                "image {i} class {k}: {} vs {mean}",
                p.distribution.probs()[k]
            );
        }
    }
}
