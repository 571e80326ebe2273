//! Auto-ROI on synthetic frames: counters, noise, flash hot-spots.

use meter_synth::{FrameParams, MeterLayout};
use meter_vision::propose_digits;

#[test]
fn auto_roi_hit_rate_on_synthetic_frames() {
    let layouts = [
        MeterLayout::default(),
        MeterLayout {
            digits: (0..8).map(|i| [100 + i * 56, 150, 44, 72]).collect(),
            ..MeterLayout::default()
        },
        MeterLayout {
            digits: (0..5).map(|i| [200 + i * 42, 300, 34, 52]).collect(),
            ..MeterLayout::default()
        },
    ];
    let (mut right, mut right_blind, mut total) = (0, 0, 0);
    for (l, layout) in layouts.iter().enumerate() {
        for k in 0..10u64 {
            let frame = layout.render(&FrameParams {
                counter: (k * 7919 + l as u64 * 104_729) as f64 / 10.0,
                noise: (k % 4) as f32 * 2.0,
                hotspot: (k % 2 == 0).then_some(((300.0, 200.0), 60.0, 80.0)),
                seed: k,
                ..FrameParams::default()
            });
            total += 1;
            let centre = |b: &[u32; 4]| {
                (
                    f64::from(b[0]) + f64::from(b[2]) / 2.0,
                    f64::from(b[1]) + f64::from(b[3]) / 2.0,
                )
            };
            let is_right = |expected: Option<usize>| {
                propose_digits(&frame.image, expected).is_some_and(|p| {
                    p.digits.len() == layout.digits.len()
                        && p.digits.iter().zip(&layout.digits).all(|(a, b)| {
                            let (a, b) = (centre(a), centre(b));
                            (a.0 - b.0).abs() < f64::from(b_w(layout)) * 0.2
                                && (a.1 - b.1).abs() < f64::from(b_h(layout)) * 0.2
                        })
                })
            };
            let ok = is_right(Some(layout.digits.len()));
            if !ok {
                eprintln!(
                    "layout {l} frame {k}: {:?}",
                    propose_digits(&frame.image, Some(layout.digits.len())).map(|p| p.digits)
                );
            }
            right += usize::from(ok);
            right_blind += usize::from(is_right(None));
        }
    }
    eprintln!(
        "auto-ROI on synthetic frames: {right}/{total} right with the digit count, {right_blind}/{total} without \
         (count, and centres within 20% of a box)"
    );
    assert!(right * 10 >= total * 9, "{right}/{total}");
    // Without the count, rolling end digits must still be found (28/30 when
    // this guard was written; 9/30 before blind mode extended rows).
    assert!(
        right_blind * 10 >= total * 8,
        "{right_blind}/{total} without the count"
    );
}

fn b_w(l: &MeterLayout) -> u32 {
    l.digits[0][2]
}

fn b_h(l: &MeterLayout) -> u32 {
    l.digits[0][3]
}
