//! The wide search and the tracker on synthetic frames of a moved camera.

use meter_synth::{FrameParams, MeterLayout};
use meter_vision::{Affine, AlignMethod, Tracker, WideSearch};

use crate::helpers::{shot, synth_aligner, synth_pipeline};

fn truth(rot: f64, shift: (f64, f64)) -> Affine {
    Affine::rotation_about((319.5, 239.5), rot).then(&Affine::translation(shift.0, shift.1))
}

/// Worst distance between where `found` and `want` put the digit boxes' corners.
pub fn box_error(boxes: &[[u32; 4]], found: &Affine, want: &Affine) -> f64 {
    let mut worst: f64 = 0.0;
    for b in boxes {
        for (x, y) in [(b[0], b[1]), (b[0] + b[2], b[1] + b[3])] {
            let p = (f64::from(x), f64::from(y));
            let (e, f) = (found.apply(p), want.apply(p));
            worst = worst.max((e.0 - f.0).hypot(e.1 - f.1));
        }
    }
    worst
}

#[test]
fn explore() {
    let layout = MeterLayout::default();
    let (mut right, mut wrong, mut unconf, mut failed, mut n) = (0, 0, 0, 0, 0);
    for rot in [-12.0f32, -8.0, -4.0, 4.0, 8.0, 12.0] {
        for (dx, dy) in [
            (60.0f32, 0.0f32),
            (-60.0, 0.0),
            (0.0, 60.0),
            (0.0, -60.0),
            (42.0, 42.0),
            (-42.0, -42.0),
            (42.0, -42.0),
            (-42.0, 42.0),
        ] {
            let mut tracker = Tracker::new(synth_pipeline(&layout));
            let img = layout
                .render(&FrameParams {
                    counter: 12345.6 + n as f64 * 7.3,
                    rotation_deg: rot,
                    shift: (dx, dy),
                    noise: 4.0,
                    hotspot: Some(((300.0, 180.0), 50.0, 70.0)),
                    seed: n,
                })
                .image;
            n += 1;
            let t = std::time::Instant::now();
            let r = tracker.process_image(img);
            let ms = t.elapsed().as_millis();
            match r {
                Ok(p) => {
                    let e = box_error(
                        &layout.digits,
                        &p.alignment.transform,
                        &truth(f64::from(rot), (f64::from(dx), f64::from(dy))),
                    );
                    let tr = truth(f64::from(rot), (f64::from(dx), f64::from(dy)));
                    let t = p.alignment.transform;
                    eprintln!("{rot} ({dx},{dy}): {:?} confirmed {} row {:?} err {e:.2} {ms} ms; rot {:.2} vs {:.2}, scale {:.3}, c0 {:?} vs {:?}", p.tracking.method, p.tracking.confirmed, p.tracking.row, t.rotation_deg(), tr.rotation_deg(), t.scale(), t.apply((190.0, 232.0)), tr.apply((190.0,232.0)));
                    if p.tracking.confirmed {
                        if e < 3.0 {
                            right += 1
                        } else {
                            wrong += 1
                        }
                    } else {
                        unconf += 1
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("{rot} ({dx},{dy}): {e} {ms} ms")
                }
            }
        }
    }
    eprintln!("right {right} wrong {wrong} unconfirmed {unconf} failed {failed} of {n}");
}

#[test]
fn debug_row() {
    let layout = MeterLayout::default();
    let (rot, dx, dy) = (8.0f32, 60.0f32, 0.0f32);
    let img = layout
        .render(&FrameParams {
            counter: 12345.6 + 32.0 * 7.3,
            rotation_deg: rot,
            shift: (dx, dy),
            noise: 4.0,
            hotspot: Some(((300.0, 180.0), 50.0, 70.0)),
            seed: 32,
        })
        .image;
    let mut tracker = Tracker::new(synth_pipeline(&layout));
    let p = tracker.process_image(img.clone()).unwrap();
    let tr = truth(f64::from(rot), (f64::from(dx), f64::from(dy)));
    for (name, t) in [("found", p.alignment.transform), ("truth", tr)] {
        let a = meter_vision::Alignment {
            transform: t,
            aligned_size: (640, 480),
            initial: t,
            marks: vec![],
        };
        meter_vision::aligned_frame(&img, &a)
            .save(format!("/tmp/dbg_{name}.png"))
            .unwrap();
        eprintln!(
            "{name}: {:?}",
            meter_vision::check_row(&img, &t, (640, 480), &layout.digits)
        );
    }
    img.save("/tmp/dbg_cam.png").unwrap();
}
