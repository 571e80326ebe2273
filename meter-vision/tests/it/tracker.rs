//! The tracker on synthetic frames of a bumped camera: recovery, the
//! reported move, and no confirmed alignment without the meter.

use image::{Rgb, RgbImage};
use meter_model::DigitModel;
use meter_synth::{FrameParams, MeterLayout};
use meter_vision::{AlignMethod, Pipeline, Regions, Tracker};

use crate::helpers::{shot, synth_aligner};
use crate::moved::{move_camera, run_moves, Tally, MOVES};

fn pipeline(layout: &MeterLayout, model: &DigitModel) -> Pipeline {
    let (w, h) = model.input_size();
    Pipeline::builder()
        .aligner(synth_aligner(layout, 20))
        .regions(Regions::Boxes(layout.digits.clone()))
        .digit_size(w, h)
        .build()
        .unwrap()
}

#[test]
fn synthetic_frames_of_a_bumped_camera_read_right() {
    let layout = MeterLayout::default();
    let model = DigitModel::shipped();
    let pipeline = pipeline(&layout, &model);
    let mut tally = Tally::default();
    for (k, counter) in [40_213.0, 12_349.6, 99_871.3].into_iter().enumerate() {
        let frame = layout.render(&FrameParams {
            counter,
            noise: 4.0,
            hotspot: Some(((300.0, 180.0), 50.0, 70.0)),
            seed: k as u64,
            ..FrameParams::default()
        });
        let moves: Vec<_> = (0..4).map(|i| MOVES[(4 * k + i) % MOVES.len()]).collect();
        run_moves(
            &format!("synthetic {counter}"),
            &pipeline,
            &model,
            &frame.image,
            &moves,
            &mut tally,
        );
    }
    eprintln!("synthetic frames, bumped camera: {tally:?}");
    assert_eq!(tally.misplaced, 0, "{tally:?}");
    assert_eq!(tally.read_wrong, 0, "{tally:?}");
    assert!(tally.read_right * 100 >= tally.frames * 95, "{tally:?}");
}

#[test]
fn the_reference_moves_after_consistent_frames_and_the_move_is_reported() {
    let layout = MeterLayout::default();
    let model = DigitModel::shipped();
    let mut tracker = Tracker::new(pipeline(&layout, &model));
    for seed in 0..2 {
        let out = tracker
            .process_image(shot(&layout, 0.5, (3.0, -2.0), seed))
            .unwrap();
        assert_eq!(out.tracking.method, AlignMethod::Local);
        assert!(out.tracking.confirmed && out.tracking.moved.is_none());
    }
    // Bumped: turned 9 degrees about the frame's centre, shifted (40, -30).
    let mut moves = Vec::new();
    for seed in 10..13 {
        let out = tracker
            .process_image(shot(&layout, 9.0, (40.0, -30.0), seed))
            .unwrap();
        assert_eq!(out.tracking.method, AlignMethod::Wide, "{:?}", out.tracking);
        assert!(out.tracking.confirmed, "{:?}", out.tracking);
        match out.tracking.moved {
            None => assert_eq!(out.tracking.pending, seed as u32 - 9),
            Some(m) => moves.push((seed, m)),
        }
    }
    assert_eq!(moves.len(), 1, "{moves:?}");
    let (seed, m) = moves[0];
    assert_eq!(seed, 12, "the third consistent frame moves the reference");
    // The first frames were within `move_px` of the initial reference,
    // which stayed: the move is the whole bump.
    assert!((m.angle_deg - 9.0).abs() < 0.2, "{m:?}");
    assert!(
        (m.dx - 40.0).abs() < 1.0 && (m.dy + 30.0).abs() < 1.0,
        "{m:?}"
    );
    assert!((m.scale - 1.0).abs() < 0.01, "{m:?}");
    assert_eq!(tracker.reference().map(|r| r.0), Some(m.to));
    // The local search now finds the meter where it went.
    let out = tracker
        .process_image(shot(&layout, 9.2, (41.0, -29.0), 20))
        .unwrap();
    assert_eq!(out.tracking.method, AlignMethod::Local);
    assert!(out.tracking.moved.is_none() && out.tracking.pending == 0);
}

#[test]
fn a_wide_match_on_a_frame_without_the_meter_is_not_confirmed() {
    let layout = MeterLayout::default();
    let model = DigitModel::shipped();
    let mut tracker = Tracker::new(pipeline(&layout, &model));
    // The marks are there, the counter is not (covered): the wide search
    // finds the marks, the digit row is missing.
    let covered = layout
        .render_with(
            &FrameParams {
                counter: 12_345.0,
                rotation_deg: 8.0,
                shift: (40.0, 40.0),
                noise: 3.0,
                ..FrameParams::default()
            },
            &mut |_, _, cell: &mut RgbImage| {
                for p in cell.pixels_mut() {
                    *p = Rgb([180, 180, 172]);
                }
            },
        )
        .image;
    // Nothing of the meter at all: a flat wall, noise, and another scene.
    let flat = RgbImage::from_pixel(640, 480, Rgb([90, 90, 90]));
    let noise = RgbImage::from_fn(640, 480, |x, y| {
        let v = ((x * 7919 + y * 104_729) ^ (x * y)) % 251;
        Rgb([v as u8, v as u8, v as u8])
    });
    let (elsewhere, _) = move_camera(
        &image::imageops::rotate180(&shot(&layout, 0.0, (0.0, 0.0), 1)),
        30.0,
        (0.0, 0.0),
    );
    let mut wide_matches = 0;
    for (name, frame) in [
        ("covered counter", covered),
        ("flat", flat),
        ("noise", noise),
        ("upside down, turned 30", elsewhere),
    ] {
        for _ in 0..4 {
            match tracker.process_image(frame.clone()) {
                Err(e) => eprintln!("{name}: {e}"),
                Ok(p) => {
                    wide_matches += usize::from(p.tracking.method == AlignMethod::Wide);
                    eprintln!("{name}: {:?}", p.tracking);
                    assert!(!p.tracking.confirmed, "{name}: confirmed {:?}", p.tracking);
                    assert_ne!(p.tracking.method, AlignMethod::Local, "{name}");
                    assert!(
                        p.tracking.moved.is_none() && p.tracking.pending == 0,
                        "{name}"
                    );
                }
            }
        }
    }
    // The covered counter's marks were found every time: the row refused.
    assert!(wide_matches >= 4, "{wide_matches} wide matches");
    assert!(tracker
        .reference()
        .is_some_and(|r| r.0 == tracker.pipeline().aligner().initial((640, 480)).0));
}

#[test]
fn every_tenth_local_alignment_is_checked_against_the_digit_row() {
    let layout = MeterLayout::default();
    let model = DigitModel::shipped();
    let mut tracker = Tracker::new(pipeline(&layout, &model));
    let checked: Vec<bool> = (0..10)
        .map(|seed| {
            let out = tracker
                .process_image(shot(&layout, 1.0, (2.0, 1.0), seed))
                .unwrap();
            assert_eq!(out.tracking.method, AlignMethod::Local);
            assert!(out.tracking.confirmed);
            out.tracking.row.is_some_and(|r| r.confirmed)
        })
        .collect();
    assert_eq!(checked.iter().filter(|c| **c).count(), 1, "{checked:?}");
    assert!(checked[9]);
}
