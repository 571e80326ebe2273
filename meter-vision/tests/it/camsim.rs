//! Against the camera simulator (firmware::camsim) over real loopback HTTP:
//! frames with a known camera movement are captured, checked and aligned;
//! the simulator's injected faults are survived or reported.

use std::time::Duration;

use firmware::camsim::{Advance, FaultKind, FaultSpec, Server, SimConfig, SyntheticConfig};
use meter_vision::source::FlashMode;
use meter_vision::{Affine, HttpCamera, StopSignal, VisionError};

use crate::helpers::synth_pipeline;

fn sim(faults: Vec<FaultSpec>) -> Server {
    Server::start(SimConfig {
        source: firmware::camsim::Frames::Synthetic(Box::new(SyntheticConfig {
            advance: Advance::PerFrame(0.7),
            jitter_px: 12.0,
            max_rotation_deg: 3.0,
            ..SyntheticConfig::default()
        })),
        faults,
        slow_delay: Duration::from_millis(50),
        timeout_hold: Duration::from_millis(900),
        ..SimConfig::default()
    })
    .expect("simulator starts")
}

fn camera(url: &str, rejected: Option<&std::path::Path>) -> HttpCamera {
    let mut b = HttpCamera::builder(url)
        .read_timeout(Duration::from_millis(600))
        // The simulator, like the ESP32, serves one request at a time: a
        // retry must wait until a hung request has been dropped.
        .backoff(Duration::from_millis(400));
    if let Some(d) = rejected {
        b = b.rejected_dir(d);
    }
    b.build().unwrap()
}

#[test]
fn captured_frames_align_to_the_simulators_truth() {
    let sim = sim(Vec::new());
    let (layout, _) = sim.layout().expect("synthetic layout");
    let pipeline = synth_pipeline(&layout);
    let mut cam = camera(&sim.url(), None);
    let mut worst = (0.0f64, 0.0f64);
    for seq in 0..8 {
        let frame = cam.capture().unwrap();
        let truth = sim.render_frame(seq).unwrap().truth.unwrap();
        let out = pipeline.process_jpeg(&frame.jpeg, &frame.origin).unwrap();
        assert_eq!(out.digits.len(), layout.digits.len());
        let c = out.alignment.correction().unwrap();
        let want = Affine::rotation_about((320.0, 240.0), f64::from(truth.rotation_deg)).then(
            &Affine::translation(f64::from(truth.shift.0), f64::from(truth.shift.1)),
        );
        for b in &layout.digits {
            let p = (f64::from(b[0]), f64::from(b[1]));
            let (e, f) = (c.apply(p), want.apply(p));
            worst.0 = worst.0.max((e.0 - f.0).hypot(e.1 - f.1));
        }
        worst.1 = worst
            .1
            .max((c.rotation_deg() - f64::from(truth.rotation_deg)).abs());
    }
    eprintln!(
        "camsim: worst digit-corner error {:.2} px, rotation error {:.3} deg",
        worst.0, worst.1
    );
    assert!(worst.0 < 1.0 && worst.1 < 0.3, "{worst:?}");
    assert_eq!(sim.frames_served(), 8);
}

#[test]
fn simulator_faults_are_retried_or_reported() {
    let rejected = tempfile::tempdir().unwrap();
    let sim = sim(Vec::new());
    let mut cam = camera(&sim.url(), Some(rejected.path()));
    let kept = || std::fs::read_dir(rejected.path()).unwrap().count();

    sim.inject(FaultKind::Truncate.into(), 1);
    cam.capture().unwrap();
    assert_eq!(kept(), 1, "the truncated frame is kept");

    sim.inject(FaultKind::Error500.into(), 2);
    cam.capture().unwrap();

    sim.inject(FaultKind::Slow.into(), 1);
    cam.capture().unwrap();

    // Held past the read timeout, then dropped; the retry gets a frame.
    sim.inject(FaultKind::Timeout.into(), 1);
    cam.capture().unwrap();

    sim.inject(FaultKind::Truncate.into(), 5);
    let err = cam.capture().unwrap_err();
    assert!(
        matches!(err, VisionError::CorruptJpeg { kept: Some(_), .. }),
        "{err}"
    );
    assert_eq!(kept(), 4, "one per attempt");
    sim.clear_faults();
    cam.capture().unwrap();
}

#[test]
fn flash_intensity_is_set_through_control() {
    let sim = sim(Vec::new());
    let mut cam = HttpCamera::builder(sim.url())
        .flash(FlashMode::Intensity(0))
        .build()
        .unwrap();
    cam.capture().unwrap();
    assert_eq!(sim.settings().led_intensity, 0);
    let status = cam.status().unwrap();
    assert_eq!(status["led_intensity"], 0);
    cam.control("led_intensity", "90").unwrap();
    assert_eq!(sim.settings().led_intensity, 90);
}

/// Issue 17, reproduction 5: against a camera that never answers or drips
/// one byte a second, each reading made 3 attempts of 10 s and the retry
/// loop never looked at the stop flag (SIGTERM took 25 s).
#[test]
fn a_hung_camera_does_not_hold_a_stop() {
    for kind in [FaultKind::Timeout, FaultKind::Drip] {
        let sim = Server::start(SimConfig {
            faults: vec![
                FaultSpec {
                    kind,
                    delay: Some(Duration::from_secs(60)),
                };
                3
            ],
            ..SimConfig::default()
        })
        .expect("simulator starts");
        let stop = StopSignal::new();
        // The default timeouts (10 s, 3 attempts): the stop must not wait.
        let mut cam = HttpCamera::builder(sim.url())
            .stop_signal(stop.clone())
            .build()
            .unwrap();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.stop();
        });
        let err = cam.capture().unwrap_err();
        stopper.join().unwrap();
        assert!(
            matches!(&err, VisionError::Stopped { url } if url.ends_with("/capture")),
            "{kind:?}: {err}"
        );
        // Stopped stays stopped: the next call does not even start.
        assert!(matches!(cam.capture(), Err(VisionError::Stopped { .. })));
    }
    // A deadline works the same way (one-shot readings).
    let sim = Server::start(SimConfig {
        faults: vec![FaultKind::Timeout.into(); 3],
        ..SimConfig::default()
    })
    .expect("simulator starts");
    let deadline = std::time::Instant::now() + Duration::from_millis(300);
    let err = HttpCamera::builder(sim.url())
        .stop_signal(StopSignal::with_deadline(deadline))
        .build()
        .unwrap()
        .capture()
        .unwrap_err();
    assert!(matches!(err, VisionError::Stopped { .. }), "{err}");
}
