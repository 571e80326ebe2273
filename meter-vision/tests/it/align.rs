//! Alignment on synthetic frames with known transforms.

use meter_synth::MeterLayout;
use meter_vision::{Affine, MotionModel, VisionError};
use proptest::prelude::*;

use crate::helpers::{shot, synth_aligner};

/// Camera-frame position of an aligned point under the synthetic shot's
/// true transform (rotation about the frame centre, then shift).
fn truth(rot: f64, shift: (f64, f64)) -> Affine {
    Affine::rotation_about((320.0, 240.0), rot).then(&Affine::translation(shift.0, shift.1))
}

fn check_recovery(rot: f32, dx: f32, dy: f32, seed: u64) -> Result<(f64, f64), TestCaseError> {
    let layout = MeterLayout::default();
    let aligner = synth_aligner(&layout, 20);
    let img = shot(&layout, rot, (dx, dy), seed);
    let a = aligner
        .align(&img)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let t = truth(f64::from(rot), (f64::from(dx), f64::from(dy)));
    // Worst position error over the digit boxes' corners.
    let mut worst: f64 = 0.0;
    for b in &layout.digits {
        for (x, y) in [(b[0], b[1]), (b[0] + b[2], b[1] + b[3])] {
            let p = (f64::from(x), f64::from(y));
            let (e, f) = (a.transform.apply(p), t.apply(p));
            worst = worst.max(((e.0 - f.0).powi(2) + (e.1 - f.1).powi(2)).sqrt());
        }
    }
    let rot_err = (a.correction().unwrap().rotation_deg() - f64::from(rot)).abs();
    prop_assert!(
        worst < 1.0,
        "position error {worst:.2} px at rot {rot} shift ({dx},{dy})"
    );
    prop_assert!(
        rot_err < 0.3,
        "rotation error {rot_err:.3} deg at rot {rot}"
    );
    Ok((worst, rot_err))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn recovers_shift_and_rotation(rot in -5.0f32..5.0, dx in -20.0f32..20.0, dy in -20.0f32..20.0, seed in 0u64..1000) {
        check_recovery(rot, dx, dy, seed)?;
    }

    #[test]
    fn compose_and_inverse(rot in -180.0f64..180.0, s in 0.5f64..2.0, tx in -500.0f64..500.0, ty in -500.0f64..500.0,
                           rot2 in -180.0f64..180.0, px in -1000.0f64..1000.0, py in -1000.0f64..1000.0) {
        let a = Affine::rotation_scale(rot, s).then(&Affine::translation(tx, ty));
        let b = Affine::rotation_about((px, py), rot2);
        let p = (px * 0.3 + 1.0, py * -0.7);
        let ab = a.then(&b);
        let direct = b.apply(a.apply(p));
        let composed = ab.apply(p);
        prop_assert!((direct.0 - composed.0).abs() < 1e-6 && (direct.1 - composed.1).abs() < 1e-6);
        let back = ab.inverse().unwrap().apply(composed);
        prop_assert!((back.0 - p.0).abs() < 1e-6 && (back.1 - p.1).abs() < 1e-6);
        let angle = (ab.rotation_deg() - (rot + rot2) + 540.0).rem_euclid(360.0) - 180.0;
        prop_assert!(angle.abs() < 1e-6);
        prop_assert!((ab.scale() - s).abs() < 1e-9);
    }

    #[test]
    fn fit_recovers_exact_maps(rot in -180.0f64..180.0, s in 0.8f64..1.25, tx in -50.0f64..50.0, ty in -50.0f64..50.0) {
        let t = Affine::rotation_scale(rot, s).then(&Affine::translation(tx, ty));
        let from = [(10.0, 20.0), (300.0, 40.0), (150.0, 400.0)];
        let to: Vec<_> = from.iter().map(|&p| t.apply(p)).collect();
        let f = Affine::fit(&from, &to, MotionModel::Similarity).unwrap();
        for p in from {
            let (a, b) = (f.apply(p), t.apply(p));
            prop_assert!((a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6);
        }
        let r = Affine::fit(&from[..2], &to[..2], MotionModel::Rigid).unwrap();
        prop_assert!((r.rotation_deg() - t.rotation_deg()).abs() < 1e-6);
    }
}

#[test]
fn sweep_up_to_the_window_edge_and_max_rotation() {
    // A grid over the whole range the bar names: shifts to the window's
    // edge (±20 px) on both axes, rotations to ±5 degrees.
    let (mut worst, mut n) = ((0.0f64, 0.0f64), 0);
    for (r, rot) in [-5.0f32, -2.5, 0.0, 1.3, 5.0].into_iter().enumerate() {
        for dx in [-20.0f32, -7.5, 0.0, 20.0] {
            for dy in [-20.0f32, 3.3, 20.0] {
                let (p, e) = check_recovery(rot, dx, dy, (r * 100) as u64 + n).unwrap();
                worst = (worst.0.max(p), worst.1.max(e));
                n += 1;
            }
        }
    }
    eprintln!(
        "alignment sweep over {n} synthetic shots: worst digit-corner error {:.3} px, worst rotation error {:.3} deg",
        worst.0, worst.1
    );
}

/// Issue 17, item 4: the mark search was not clipped to the frame, so a
/// `search_radius` of 100,000 px sampled 200,000 px squared of clamped edge
/// pixels (hours per reading, and SIGTERM waited for it). Clipped to the
/// frame, it costs at most a search of the whole frame and finds what the
/// default radius finds; a shift beyond the default radius is found too.
#[test]
fn a_huge_search_radius_is_clipped_to_the_frame() {
    let layout = MeterLayout::default();
    for (shift, seed) in [((6.0f32, -4.0f32), 3), ((-45.0, 38.0), 4)] {
        let img = shot(&layout, 1.0, shift, seed);
        let t = truth(1.0, (f64::from(shift.0), f64::from(shift.1)));
        let a = synth_aligner(&layout, 100_000).align(&img).unwrap();
        for b in &layout.digits {
            let p = (f64::from(b[0]), f64::from(b[1]));
            let (e, f) = (a.transform.apply(p), t.apply(p));
            assert!(
                (e.0 - f.0).hypot(e.1 - f.1) < 1.0,
                "shift {shift:?}: {e:?} vs {f:?}"
            );
        }
    }
}

#[test]
fn upside_down_camera_with_initial_rotation() {
    let layout = MeterLayout::default();
    let img = shot(&layout, 2.0, (6.0, -4.0), 3);
    let flipped = image::imageops::rotate180(&img);
    let mut b = meter_vision::Aligner::builder().rotate_deg(180.0);
    for (k, m) in layout.marks.iter().enumerate() {
        b = b.mark(meter_vision::Mark {
            template: image::imageops::grayscale(&layout.mark_template(k).unwrap()),
            x: m[0].into(),
            y: m[1].into(),
        });
    }
    let a = b.build().unwrap().align(&flipped).unwrap();
    // Aligned point p is at truth(p) in the upright shot, i.e. at
    // (639, 479) - truth(p) in the flipped one.
    let t = truth(2.0, (6.0, -4.0));
    for b in &layout.digits {
        let p = (f64::from(b[0]), f64::from(b[1]));
        let (e, f) = (a.transform.apply(p), t.apply(p));
        let f = (639.0 - f.0, 479.0 - f.1);
        assert!(
            (e.0 - f.0).abs() < 1.0 && (e.1 - f.1).abs() < 1.0,
            "{e:?} vs {f:?}"
        );
    }
}

#[test]
fn missing_mark_is_an_explicit_error() {
    let layout = MeterLayout::default();
    let aligner = synth_aligner(&layout, 20);
    // Cover the second mark with the face colour, as glare would.
    let mut img = shot(&layout, 0.0, (3.0, 2.0), 1);
    for y in 370..440 {
        for x in 530..600 {
            img.put_pixel(x, y, image::Rgb([170, 170, 165]));
        }
    }
    let err = aligner.align(&img).unwrap_err();
    assert!(
        matches!(
            err,
            VisionError::MarkNotFound { index: 1, .. } | VisionError::InconsistentMarks { .. }
        ),
        "{err}"
    );
    // Shifted beyond the window: no silent crop of the wrong place.
    let far = shot(&layout, 0.0, (60.0, 0.0), 1);
    assert!(aligner.align(&far).is_err());
}

#[test]
fn a_frame_too_small_for_the_marks_is_named() {
    let layout = MeterLayout::default();
    let aligner = synth_aligner(&layout, 20);
    let small = image::imageops::resize(
        &shot(&layout, 0.0, (0.0, 0.0), 1),
        320,
        240,
        image::imageops::FilterType::Triangle,
    );
    let err = aligner.align(&small).unwrap_err();
    assert!(
        matches!(
            err,
            VisionError::FrameSize {
                got: (320, 240),
                index: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn initial_rotation_by_other_angles() {
    let layout = MeterLayout::default();
    let marks = |b: meter_vision::AlignerBuilder| {
        layout.marks.iter().enumerate().fold(b, |b, (k, m)| {
            b.mark(meter_vision::Mark {
                template: image::imageops::grayscale(&layout.mark_template(k).unwrap()),
                x: m[0].into(),
                y: m[1].into(),
            })
        })
    };
    // A camera turned a quarter clockwise: the frame is 480x640; turning it
    // back 90 degrees counter-clockwise gives the 640x480 aligned frame.
    let upright = shot(&layout, 0.0, (0.0, 0.0), 2);
    let raw = image::imageops::rotate90(&upright);
    let a = marks(meter_vision::Aligner::builder().rotate_deg(90.0))
        .build()
        .unwrap()
        .align(&raw)
        .unwrap();
    assert_eq!(a.aligned_size, (640, 480));
    let aligned = meter_vision::aligned_frame(&raw, &a);
    let diff: u64 = aligned
        .as_raw()
        .iter()
        .zip(upright.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    assert!(
        (diff as f64 / aligned.as_raw().len() as f64) < 1.0,
        "quarter turn undone"
    );

    // A camera mounted 12 degrees off: `rotate` takes out the known part,
    // the marks the rest.
    let raw = shot(&layout, -12.0 + 0.7, (5.0, 3.0), 4);
    let a = marks(meter_vision::Aligner::builder().rotate_deg(12.0))
        .build()
        .unwrap()
        .align(&raw)
        .unwrap();
    let c = a.correction().unwrap();
    assert!((c.rotation_deg() - 0.7).abs() < 0.3, "{}", c.rotation_deg());
    let t = truth(-11.3, (5.0, 3.0));
    for b in &layout.digits {
        let p = (f64::from(b[0]), f64::from(b[1]));
        let (e, f) = (a.transform.apply(p), t.apply(p));
        assert!((e.0 - f.0).hypot(e.1 - f.1) < 1.0, "{e:?} vs {f:?}");
    }
}

#[test]
fn of_three_marks_a_lost_or_misplaced_one_is_left_out_and_reported() {
    let layout = MeterLayout {
        marks: vec![[64, 64, 32, 32], [544, 384, 32, 32], [544, 64, 32, 32]],
        ..MeterLayout::default()
    };
    let aligner = synth_aligner(&layout, 20);
    let t = truth(1.5, (6.0, -4.0));
    let check = |img: &image::RgbImage, lost: usize| {
        let a = aligner.align(img).unwrap();
        let used: Vec<bool> = a.marks.iter().map(|m| m.used).collect();
        assert_eq!(used.iter().filter(|u| !**u).count(), 1, "{used:?}");
        assert!(!a.marks[lost].used);
        for b in &layout.digits {
            let p = (f64::from(b[0]), f64::from(b[1]));
            let (e, f) = (a.transform.apply(p), t.apply(p));
            assert!((e.0 - f.0).hypot(e.1 - f.1) < 1.0, "{e:?} vs {f:?}");
        }
    };
    // Glare over mark 2.
    let mut img = shot(&layout, 1.5, (6.0, -4.0), 9);
    for y in 40..120 {
        for x in 520..610 {
            img.put_pixel(x, y, image::Rgb([250, 250, 250]));
        }
    }
    check(&img, 2);
    // Mark 0 painted over by a copy of mark 1 a little away: it matches
    // well, but in the wrong place.
    let mut img = shot(&layout, 1.5, (6.0, -4.0), 9);
    let tpl = layout.mark_template(1).unwrap();
    image::imageops::replace(&mut img, &tpl, 80, 60);
    for y in 50..110 {
        for x in 50..80 {
            img.put_pixel(x, y, image::Rgb([175, 175, 170]));
        }
    }
    let a = aligner.align(&img);
    // Either the odd mark is left out, or alignment refuses: never a
    // silent wrong transform.
    match a {
        Ok(a) => {
            for b in &layout.digits {
                let p = (f64::from(b[0]), f64::from(b[1]));
                let (e, f) = (a.transform.apply(p), t.apply(p));
                assert!((e.0 - f.0).hypot(e.1 - f.1) < 1.0, "{e:?} vs {f:?}");
            }
        }
        Err(e) => assert!(matches!(
            e,
            VisionError::MarkNotFound { .. } | VisionError::InconsistentMarks { .. }
        )),
    }
}
