//! `/capture`, `/status`, `/control`, `/layout` over real HTTP.

use std::net::SocketAddr;

use firmware::camsim::{Advance, Frames, Server, SimConfig, SyntheticConfig};
use firmware::SimError;
use image::{GenericImageView, RgbImage};
use meter_synth::{render_digit, MeterLayout};

use crate::{get, mean_abs_diff, start, still_meter};

fn decode(body: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(body, image::ImageFormat::Jpeg)
        .expect("a decodable JPEG")
        .to_rgb8()
}

#[test]
fn capture_is_a_jpeg_of_the_frame_size_with_firmware_headers() {
    let sim = start(SyntheticConfig::default());
    let got = get(&sim.capture_url());
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(
        got.header("content-length"),
        Some(got.body.len().to_string()),
        "sent with a Content-Length, as the firmware does"
    );
    assert!(got.header("x-timestamp").is_some());
    assert_eq!(&got.body[..2], &[0xFF, 0xD8]);
    assert!(got.body.ends_with(&[0xFF, 0xD9]), "complete JPEG");
    assert_eq!(decode(&got.body).dimensions(), (640, 480));
    assert_eq!(got.header("x-flash-duty").as_deref(), Some("160"));

    // framesize=9 is SVGA: the frame follows.
    assert_eq!(
        get(&format!("{}/control?var=framesize&val=9", sim.url())).status,
        200
    );
    let got = get(&sim.capture_url());
    assert_eq!(decode(&got.body).dimensions(), (800, 600));
    assert_eq!(sim.frames_served(), 2);
    sim.stop();
}

#[test]
fn truth_headers_match_the_rendered_digits() {
    let cfg = still_meter(0.37);
    let layout = cfg.layout.clone();
    let sim = start(cfg);
    let style = &layout.style;
    for _ in 0..3 {
        let got = get(&sim.capture_url());
        let truth = got.truth();
        let frame = decode(&got.body);
        // The headers agree with the odometer model ...
        assert_eq!(
            truth.digits,
            layout.digit_positions(truth.tenths as f64 / 10.0),
            "frame {}",
            truth.seq
        );
        // ... and with the pixels: each digit box shows the roller the header
        // names, far closer than it resembles the neighbouring positions.
        for (b, t) in layout.digits.iter().zip(&truth.digits) {
            let crop = frame.view(b[0], b[1], b[2], b[3]).to_image();
            let want = render_digit(*t, b[2], b[3], style);
            let d_true = mean_abs_diff(&crop, &want);
            for off in [-3i64, 3, 50] {
                let other = meter_core::Tenths::wrapping(i64::from(t.index()) + off);
                let d_other = mean_abs_diff(&crop, &render_digit(other, b[2], b[3], style));
                assert!(
                    d_true * 2.0 < d_other,
                    "frame {} digit {t}: diff {d_true:.1} vs {other} {d_other:.1}",
                    truth.seq
                );
            }
        }
    }
    sim.stop();
}

#[test]
fn deterministic_mode_advances_a_fixed_step_per_frame_and_rolls() {
    // 9999.7 units with one decimal; each frame adds 0.11 units, so the
    // counter carries over five digits within a few frames.
    let sim = start(SyntheticConfig {
        start: 9999.7,
        advance: Advance::PerFrame(0.11),
        ..SyntheticConfig::default()
    });
    let mut values = Vec::new();
    for n in 0..6u64 {
        let t = get(&sim.capture_url()).truth();
        assert_eq!(t.seq, n);
        // Exact: (9999.7 + 0.11 n) units in hundredths.
        assert_eq!(t.tenths, 999_970 + 11 * n as i64, "frame {n}");
        values.push(t.value_text());
    }
    assert_eq!(values[0], "9999.70");
    assert_eq!(values[3], "10000.03");
    // Frame 2 (9999.92): every roller is 20% into the carry.
    let t2 = sim.render_frame(2).unwrap().truth.unwrap();
    let shown: Vec<String> = t2.digits.iter().map(|d| d.to_string()).collect();
    assert_eq!(shown, ["0.2", "9.2", "9.2", "9.2", "9.2", "9.2"]);
    sim.stop();
}

#[test]
fn counter_wraps_around_past_all_nines() {
    let sim = start(SyntheticConfig {
        start: 99_999.9,
        advance: Advance::PerFrame(0.1),
        ..still_meter(0.0)
    });
    let a = get(&sim.capture_url()).truth();
    let b = get(&sim.capture_url()).truth();
    assert_eq!(a.value_text(), "99999.90");
    assert_eq!(b.value_text(), "0.00");
    assert!(b.digits.iter().all(|d| d.index() == 0));
    sim.stop();
}

#[test]
fn rate_mode_never_goes_backwards() {
    let sim = start(SyntheticConfig {
        advance: Advance::PerHour(3600.0 * 10.0), // 10 units per second
        ..SyntheticConfig::default()
    });
    let mut last = i64::MIN;
    for _ in 0..4 {
        let t = get(&sim.capture_url()).truth();
        assert!(t.tenths >= last);
        last = t.tenths;
    }
    assert!(last > 123_450, "advanced with time: {last}");
    sim.stop();
}

#[test]
fn jitter_and_rotation_stay_within_bounds_and_vary() {
    let sim = start(SyntheticConfig {
        jitter_px: 4.0,
        max_rotation_deg: 1.5,
        ..SyntheticConfig::default()
    });
    let truths: Vec<_> = (0..5).map(|_| get(&sim.capture_url()).truth()).collect();
    for t in &truths {
        assert!(t.shift.0.abs() <= 4.0 && t.shift.1.abs() <= 4.0);
        assert!(t.rotation_deg.abs() <= 1.5);
    }
    assert!(truths.windows(2).any(|w| w[0].shift != w[1].shift));
    sim.stop();
}

#[test]
fn same_seed_same_frames() {
    let a = start(SyntheticConfig::default());
    let b = start(SyntheticConfig::default());
    for seq in [0, 7] {
        assert_eq!(
            a.render_frame(seq).unwrap().jpeg,
            b.render_frame(seq).unwrap().jpeg
        );
    }
    let fa = get(&a.capture_url());
    let fb = get(&b.capture_url());
    assert_eq!(fa.truth(), fb.truth());
}

#[test]
fn upside_down_camera_delivers_the_frame_rotated_180() {
    let upright = start(still_meter(0.5));
    let flipped = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(still_meter(0.5))),
        settings: firmware::SensorSettings {
            vflip: 1,
            hmirror: 1,
            ..SimConfig::default().settings
        },
        ..SimConfig::default()
    })
    .unwrap();
    let a = decode(&get(&upright.capture_url()).body);
    let b = decode(&get(&flipped.capture_url()).body);
    let a180 = image::imageops::rotate180(&a);
    assert!(mean_abs_diff(&a180, &b) < 3.0);
    assert!(mean_abs_diff(&a, &b) > 10.0);
    let layout: serde_json::Value =
        serde_json::from_slice(&get(&format!("{}/layout", flipped.url())).body).unwrap();
    assert_eq!(layout["rotate"], 180);
}

#[test]
fn status_and_control_follow_the_firmware_rules() {
    let sim = start(still_meter(0.0));
    let url = sim.url();
    let status = |sim_url: &str| -> serde_json::Value {
        let got = get(&format!("{sim_url}/status"));
        assert_eq!(
            got.header("content-type").as_deref(),
            Some("application/json")
        );
        serde_json::from_slice(&got.body).unwrap()
    };
    let s = status(&url);
    assert_eq!(s["framesize"], 8);
    assert_eq!(s["quality"], 12);
    assert_eq!(s["led_intensity"], 160);

    let control = |q: &str| get(&format!("{url}/control?{q}"));
    assert_eq!(control("var=quality&val=20").status, 200);
    assert_eq!(control("var=brightness&val=-2").status, 200);
    assert_eq!(control("var=led_intensity&val=0").status, 200);
    // Missing parameters: 404; unknown names and bad values: 500, nothing changes.
    assert_eq!(control("var=quality").status, 404);
    assert_eq!(control("val=3").status, 404);
    let bad = control("var=bogus&val=1");
    assert_eq!(bad.status, 500);
    assert!(bad.text().contains("bogus"));
    assert_eq!(control("var=quality&val=64").status, 500);
    assert_eq!(control("var=brightness&val=3").status, 500);
    assert_eq!(control("var=framesize&val=14").status, 500);
    assert_eq!(control("var=led_intensity&val=256").status, 500);
    assert_eq!(control("var=vflip&val=on").status, 500);
    let s = status(&url);
    assert_eq!(s["quality"], 20);
    assert_eq!(s["brightness"], -2);
    assert_eq!(s["led_intensity"], 0);
    assert_eq!(s["vflip"], 0);
    assert_eq!(sim.settings().quality, 20);
    // With the flash off, no flash.
    assert_eq!(
        get(&sim.capture_url()).header("x-flash-duty").as_deref(),
        Some("0")
    );

    assert_eq!(get(&format!("{url}/nope")).status, 404);
    let post = crate::patient()
        .post(&sim.capture_url())
        .send_empty()
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    sim.stop();
}

#[test]
fn layout_endpoint_describes_the_meter() {
    let sim = start(SyntheticConfig::default());
    let v: serde_json::Value =
        serde_json::from_slice(&get(&format!("{}/layout", sim.url())).body).unwrap();
    let l = MeterLayout::default();
    assert_eq!(v["width"], l.width);
    assert_eq!(v["height"], l.height);
    assert_eq!(v["decimals"], 1);
    assert_eq!(v["rotate"], 0);
    let digits: Vec<[u32; 4]> = serde_json::from_value(v["digits"].clone()).unwrap();
    let marks: Vec<[u32; 4]> = serde_json::from_value(v["marks"].clone()).unwrap();
    assert_eq!(digits, l.digits);
    assert_eq!(marks, l.marks);
    let (layout, decimals) = sim.layout().unwrap();
    assert_eq!((layout.digits, decimals), (l.digits, 1));
}

#[test]
fn folder_source_serves_files_byte_for_byte_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim0 = start(still_meter(1.0));
    let frames: Vec<Vec<u8>> = (0..2).map(|s| sim0.render_frame(s).unwrap().jpeg).collect();
    std::fs::write(dir.path().join("b.jpg"), &frames[1]).unwrap();
    std::fs::write(dir.path().join("a.jpg"), &frames[0]).unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not a frame").unwrap();
    let mut png = Vec::new();
    RgbImage::from_pixel(32, 24, image::Rgb([10, 200, 30]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(dir.path().join("c.png"), &png).unwrap();

    let sim = Server::start(SimConfig {
        source: Frames::Folder {
            dir: dir.path().to_owned(),
        },
        ..SimConfig::default()
    })
    .unwrap();
    let got: Vec<_> = (0..4).map(|_| get(&sim.capture_url())).collect();
    assert_eq!(got[0].body, frames[0]);
    assert_eq!(got[1].body, frames[1]);
    assert_eq!(got[0].header("x-frame-file").as_deref(), Some("a.jpg"));
    assert_eq!(got[2].header("x-frame-file").as_deref(), Some("c.png"));
    assert_eq!(
        decode(&got[2].body).dimensions(),
        (32, 24),
        "PNG converted to JPEG"
    );
    assert_eq!(got[3].body, frames[0], "loops");
    assert!(got[0].header("x-meter-value").is_none());
    assert_eq!(get(&format!("{}/layout", sim.url())).status, 404);

    let empty = tempfile::tempdir().unwrap();
    let err = Server::start(SimConfig {
        source: Frames::Folder {
            dir: empty.path().to_owned(),
        },
        ..SimConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, SimError::NoFrames { .. }), "{err}");
}

#[test]
fn digits_come_from_a_crop_folder_when_given() {
    // Crops of 2.0 are pure red, of 5.0 pure blue: the frame must show them.
    let dir = tempfile::tempdir().unwrap();
    for (label, colour) in [("2.0", [255u8, 0, 0]), ("5.0", [0, 0, 255])] {
        let d = dir.path().join(label);
        std::fs::create_dir(&d).unwrap();
        RgbImage::from_pixel(20, 32, image::Rgb(colour))
            .save(d.join("m__1.png"))
            .unwrap();
    }
    let sim = start(SyntheticConfig {
        start: 2255.0,
        decimals: 0,
        digit_crops: Some(dir.path().to_owned()),
        ..still_meter(0.0)
    });
    let got = get(&sim.capture_url());
    assert_eq!(got.truth().value_text(), "2255.0");
    let frame = decode(&got.body);
    let layout = MeterLayout::default();
    let centre = |k: usize| {
        let b = layout.digits[k];
        *frame.get_pixel(b[0] + b[2] / 2, b[1] + b[3] / 2)
    };
    // digits: 0 0 2 2 5 5; the zeros have no crop and use the font.
    let p = centre(2);
    assert!(p[0] > 200 && p[2] < 60, "red crop for 2: {p:?}");
    let p = centre(4);
    assert!(p[2] > 200 && p[0] < 60, "blue crop for 5: {p:?}");
    let p = centre(0);
    assert!(p[0].abs_diff(p[2]) < 40, "font for 0: {p:?}");

    let empty = tempfile::tempdir().unwrap();
    let err = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(SyntheticConfig {
            digit_crops: Some(empty.path().to_owned()),
            ..SyntheticConfig::default()
        })),
        ..SimConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, SimError::NoDigitCrops { .. }), "{err}");
}

#[test]
fn bad_configurations_are_refused() {
    let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = Server::start(SimConfig {
        addr,
        ..SimConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, SimError::NotLoopback { .. }));
    let err = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(SyntheticConfig {
            decimals: 6,
            ..SyntheticConfig::default()
        })),
        ..SimConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            SimError::InvalidConfig {
                field: "decimals",
                ..
            }
        ),
        "{err}"
    );
    let err = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(SyntheticConfig {
            advance: Advance::PerFrame(f64::NAN),
            ..SyntheticConfig::default()
        })),
        ..SimConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            SimError::InvalidConfig {
                field: "advance",
                ..
            }
        ),
        "{err}"
    );
    // A port in use.
    let sim = start(SyntheticConfig::default());
    let err = Server::start(SimConfig {
        addr: sim.addr(),
        ..SimConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, SimError::Bind { .. }), "{err}");
}

#[test]
fn variants_reuse_disturbances_and_frames_but_keep_the_truth() {
    // A still counter: frames n and n + 3 are the same picture.
    let sim = start(SyntheticConfig {
        variants: Some(3),
        advance: Advance::PerFrame(0.0),
        ..SyntheticConfig::default()
    });
    let got: Vec<_> = (0..6).map(|_| get(&sim.capture_url())).collect();
    for n in 0..3 {
        assert_eq!(got[n].body, got[n + 3].body, "frame {n}");
        let (a, b) = (got[n].truth(), got[n + 3].truth());
        assert_eq!((a.seq, b.seq), (n as u64, n as u64 + 3));
        assert_eq!((a.shift, a.rotation_deg), (b.shift, b.rotation_deg));
    }
    assert_ne!(got[0].body, got[1].body);
    // A moving counter still reports (and shows) each frame's own value.
    let sim = start(SyntheticConfig {
        variants: Some(2),
        ..still_meter(0.25)
    });
    for n in 0..4i64 {
        let g = get(&sim.capture_url());
        let t = g.truth();
        assert_eq!(t.tenths, 123_450 + 25 * n);
        assert_eq!(
            t.digits,
            MeterLayout::default().digit_positions(t.tenths as f64 / 10.0)
        );
    }
    // A settings change is not served from the cache.
    let before = get(&sim.capture_url()).body;
    assert_eq!(
        get(&format!("{}/control?var=brightness&val=2", sim.url())).status,
        200
    );
    let after = decode(&get(&sim.capture_url()).body);
    assert_ne!(decode(&before).dimensions(), (0, 0));
    let mean = |img: &RgbImage| {
        img.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / img.as_raw().len() as f64
    };
    assert!(mean(&after) > mean(&decode(&before)) + 10.0);
}

/// Regression: captures are written by hand in one write (tiny_http's own
/// responses stall on Nagle + delayed ACK); the connection must stay
/// usable for the next request, and HEAD must carry no body.
#[test]
fn keep_alive_connection_serves_many_requests() {
    let sim = start(still_meter(0.1));
    let agent = crate::patient();
    for n in 0..5u64 {
        let got = crate::get_with(&agent, &sim.capture_url()).unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.truth().seq, n);
        decode(&got.body);
        let status = crate::get_with(&agent, &format!("{}/status", sim.url())).unwrap();
        assert_eq!(status.status, 200);
    }
    let mut head = agent.head(&sim.capture_url()).call().unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert!(head.headers().get("x-meter-value").is_some());
    assert!(head.body_mut().read_to_vec().unwrap().is_empty());
    let after = crate::get_with(&agent, &sim.capture_url()).unwrap();
    assert_eq!(after.truth().seq, 6);
    decode(&after.body);
}

/// With the real digit photos ([`testkit::data::digits_dir`]), digits are
/// drawn from them. Skipped (loudly) where the data is absent.
#[test]
fn real_digit_crops_when_the_data_is_present() {
    let Some(dir) = testkit::data::digits_dir() else {
        return;
    };
    let cfg = SyntheticConfig {
        digit_crops: Some(dir),
        ..still_meter(0.37)
    };
    let layout = cfg.layout.clone();
    let sim = start(cfg);
    for _ in 0..3 {
        let got = get(&sim.capture_url());
        let truth = got.truth();
        let frame = decode(&got.body);
        assert_eq!(frame.dimensions(), (640, 480));
        // Photos, not the font: far from the font's rendering of the same position.
        let far = layout
            .digits
            .iter()
            .zip(&truth.digits)
            .filter(|(b, t)| {
                let crop = frame.view(b[0], b[1], b[2], b[3]).to_image();
                mean_abs_diff(&crop, &render_digit(**t, b[2], b[3], &layout.style)) > 20.0
            })
            .count();
        assert!(
            far >= 4,
            "frame {}: only {far} digits differ from the font",
            truth.seq
        );
    }
}

#[test]
fn concurrent_captures_each_get_their_own_frame() {
    let sim = start(still_meter(0.1));
    let url = sim.capture_url();
    let seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                s.spawn(|| {
                    (0..2)
                        .map(|_| {
                            let got = get(&url);
                            decode(&got.body);
                            let t = got.truth();
                            assert_eq!(t.tenths, 123_450 + 10 * t.seq as i64);
                            t.seq
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..24).collect::<Vec<_>>());
    assert_eq!(sim.frames_served(), 24);
}

/// Regression: tiny_http wrote the head and the body separately, so with
/// Nagle's algorithm the body waited for the client's delayed ACK (40 ms a
/// frame). Now the whole answer leaves in one write: the first read after
/// the head arrives already holds the start of the JPEG.
#[test]
fn head_and_body_arrive_together() {
    use std::io::{Read, Write};
    let sim = start(still_meter(0.0));
    let mut stream = std::net::TcpStream::connect(sim.addr()).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /capture HTTP/1.1\r\nHost: camsim\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let n = stream.read(&mut buf).unwrap();
    let first = &buf[..n];
    let end = first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the head arrives in the first read");
    assert!(
        first[end + 4..].starts_with(&[0xFF, 0xD8]),
        "first read: {n} bytes, head {} bytes, no body with it",
        end + 4
    );
}
