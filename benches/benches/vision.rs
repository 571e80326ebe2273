//! meter-vision on one thread: JPEG decode, alignment with two marks in a
//! ±20 px window, crop and resize of 8 digits. Issue 3's bar: the whole
//! chain <= 8 ms per 640x480 frame. Also the auto-ROI proposal, which runs
//! once at set-up, and (issue 21) the searches for a bumped camera: the
//! wide search of the marks (bar: <= 300 ms), the digit-row anchor when no
//! mark can be matched, and the rotation estimate of `roi --auto`.
//!
//! On the 2-core development machine (load about 3 from other builds), the
//! first frame after a bump through a fresh tracker, before -> after the
//! row anchor sampled its turned pictures in grey from one converted frame,
//! labelled ink by runs, and the wide search stopped refining hypotheses
//! whose marks do not verify:
//!
//! | bench | before | after |
//! |---|---|---|
//! | `wide_search_2marks_640x480_rot20_scale10` | 20.8 ms | 19.7 ms |
//! | `tracker_first_frame_after_bump_wide` | 41 ms | 30 ms |
//! | `tracker_first_frame_after_bump_row_anchor` (wide search fails, then the digit row) | 270 ms | 81 ms |
//! | `propose_rotated_640x480_45deg` (set-up only; the geometric search alone, since removed) | 638 ms | 476 ms |
//!
//! `roi --auto` keeping the best few rows of its coarse look and finding
//! each again only where it lies (the serial number and the dials could
//! outscore the counter), same machine, load about 6, two runs each: the
//! geometric search alone 687 ms before, 495 and 661 ms after;
//! `propose_rotated_by_model_640x480_45deg` (the digit model choosing among
//! them either way up, what `roi --auto` runs) 598 and 758 ms.
//!
//! `cargo bench -p meter-benches --bench vision -- vision_bumped`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use image::codecs::jpeg::JpegEncoder;
use meter_synth::{FrameParams, MeterLayout};
use meter_vision::{
    aligned_frame, decode_jpeg, extract_digits, propose_digits, propose_rotated_by, AlignMethod,
    Aligner, Mark, Pipeline, Regions, Resample, Tracker, WideSearch,
};

/// The default synthetic meter with eight digits instead of six.
fn layout() -> MeterLayout {
    MeterLayout {
        digits: (0..8).map(|i| [120 + i * 50, 200, 40, 64]).collect(),
        ..MeterLayout::default()
    }
}

fn jpeg_frame(layout: &MeterLayout) -> Vec<u8> {
    let shot = layout.render(&FrameParams {
        counter: 1_234_567.8,
        rotation_deg: 0.8,
        shift: (9.0, -6.0),
        noise: 4.0,
        hotspot: Some(((300.0, 150.0), 60.0, 90.0)),
        seed: 3,
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&shot.image)
        .expect("encodes");
    out
}

fn aligner(layout: &MeterLayout, max_rotation_deg: f64) -> Aligner {
    let mut b = Aligner::builder()
        .search_radius(20)
        .max_rotation_deg(max_rotation_deg);
    for (k, m) in layout.marks.iter().enumerate() {
        b = b.mark(Mark {
            template: image::imageops::grayscale(&layout.mark_template(k).expect("mark")),
            x: m[0].into(),
            y: m[1].into(),
        });
    }
    b.build().expect("aligner")
}

fn vision(c: &mut Criterion) {
    let layout = layout();
    let jpeg = jpeg_frame(&layout);
    let image = decode_jpeg(&jpeg, "bench").expect("decodes");
    let regions = Regions::Boxes(layout.digits.clone());
    let al = aligner(&layout, 5.0);
    let alignment = al.align(&image).expect("aligns");

    let mut g = c.benchmark_group("vision");
    g.sample_size(40);
    g.bench_function("decode_jpeg_640x480", |b| {
        b.iter(|| decode_jpeg(black_box(&jpeg), "bench").expect("decodes"))
    });
    g.bench_function("align_2marks_r20_rot5", |b| {
        b.iter(|| al.align(black_box(&image)).expect("aligns"))
    });
    let al_norot = aligner(&layout, 0.0);
    g.bench_function("align_2marks_r20_rot0", |b| {
        b.iter(|| al_norot.align(black_box(&image)).expect("aligns"))
    });
    g.bench_function("extract_8digits_20x32_area", |b| {
        b.iter(|| {
            extract_digits(
                black_box(&image),
                &alignment,
                &regions,
                (20, 32),
                Resample::Area,
            )
            .expect("crops")
        })
    });
    g.bench_function("aligned_frame_640x480_setup_only", |b| {
        b.iter(|| aligned_frame(black_box(&image), &alignment))
    });
    for (name, max_rot) in [("rot5", 5.0), ("rot0", 0.0)] {
        let pipeline = Pipeline::builder()
            .aligner(aligner(&layout, max_rot))
            .regions(regions.clone())
            .digit_size(20, 32)
            .build()
            .expect("pipeline");
        g.bench_function(format!("jpeg_to_8_digits_640x480_{name}"), |b| {
            b.iter(|| {
                let out = pipeline
                    .process_jpeg(black_box(&jpeg), "bench")
                    .expect("processes");
                assert_eq!(out.digits.len(), 8);
                out
            })
        });
    }
    // Set-up only (`meter roi --auto`), not per reading.
    for (name, count) in [("with_count", Some(8)), ("without_count", None)] {
        g.bench_function(format!("auto_roi_640x480_{name}"), |b| {
            b.iter(|| propose_digits(black_box(&image), count).expect("a row"))
        });
    }
    g.finish();
}

/// A shot of the bench meter from a camera turned and shifted.
fn bumped(layout: &MeterLayout, rotation_deg: f32, shift: (f32, f32)) -> image::RgbImage {
    layout
        .render(&FrameParams {
            counter: 7_654_321.0,
            rotation_deg,
            shift,
            noise: 4.0,
            hotspot: Some(((300.0, 150.0), 60.0, 90.0)),
            seed: 5,
        })
        .image
}

fn bumped_camera(c: &mut Criterion) {
    let layout = layout();
    let regions = Regions::Boxes(layout.digits.clone());
    let pipeline = Pipeline::builder()
        .aligner(aligner(&layout, 5.0))
        .regions(regions)
        .digit_size(20, 32)
        .build()
        .expect("pipeline");
    let al = pipeline.aligner().clone();
    let mut g = c.benchmark_group("vision_bumped");
    g.sample_size(10);
    // Turned 8 degrees and shifted (40, 40) px: the local search fails,
    // the wide search (over ±20 degrees, ±10% scale) finds both marks.
    let wide = bumped(&layout, 8.0, (40.0, 40.0));
    let (initial, _) = al.initial(wide.dimensions());
    assert!(al.align(&wide).is_err(), "the local search must fail here");
    g.bench_function("wide_search_2marks_640x480_rot20_scale10", |b| {
        b.iter(|| {
            al.align_wide(black_box(&wide), &initial, &WideSearch::default())
                .expect("found")
        })
    });
    // The whole first frame after the bump through a fresh tracker: local
    // search, wide search, digit-row confirmation, crops.
    g.bench_function("tracker_first_frame_after_bump_wide", |b| {
        b.iter(|| {
            let out = Tracker::new(pipeline.clone())
                .process_image(black_box(wide.clone()))
                .expect("found");
            assert_eq!(out.tracking.method, AlignMethod::Wide);
            out
        })
    });
    // A mark left the frame: the digit row anchors.
    let row = bumped(&layout, -12.0, (0.0, -60.0));
    g.bench_function("tracker_first_frame_after_bump_row_anchor", |b| {
        b.iter(|| {
            let out = Tracker::new(pipeline.clone())
                .process_image(black_box(row.clone()))
                .expect("found");
            assert_eq!(out.tracking.method, AlignMethod::Row);
            out
        })
    });
    // Set-up only: `roi --auto` without `--rotate` runs it, the candidate
    // rows either way up, chosen by the shipped digit model.
    let turned = bumped(&layout, 33.0, (0.0, 0.0));
    let model = meter_model::DigitModel::shipped();
    let confidences = |crops: &[image::RgbImage]| {
        model
            .predict_batch(crops)
            .map(|ps| ps.iter().map(|p| p.confidence).collect::<Vec<f32>>())
    };
    g.bench_function("propose_rotated_by_model_640x480_45deg", |b| {
        b.iter(|| {
            propose_rotated_by(
                black_box(&turned),
                Some(8),
                None,
                model.input_size(),
                confidences,
            )
            .expect("the model reads")
            .expect("a row")
        })
    });
    g.finish();
}

criterion_group!(benches, vision, bumped_camera);
criterion_main!(benches);
