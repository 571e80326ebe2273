//! The run loop: workers, schedules, counts, shards, panics, events.

use std::sync::{Arc, Mutex};

use meter_service::events::{ErrorKind, Event, Subscriber};
use meter_service::{RunOptions, Service, Shard, Status};
use meter_vision::{Frame, FrameSource, VisionError};

use crate::helpers::{folder_meter, lines};

#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<Event>>>);

impl Subscriber for Heard {
    fn name(&self) -> String {
        "heard".into()
    }
    fn handle(&mut self, event: &Event) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

const JSONL: &str = "[[sink]]\ntype = \"jsonl\"\npath = \"readings.jsonl\"\n";

#[test]
fn every_frame_is_read_stored_and_published_until_the_source_ends() {
    let values = [100.0, 100.2, 100.5, 101.0, 101.3];
    let m = folder_meter("house", &values, "", JSONL);
    let service = Service::new(m.load(), RunOptions::default()).unwrap();
    let heard = Heard::default();
    service.subscribe(Box::new(heard.clone())).unwrap();
    let summary = service.run().unwrap();
    assert_eq!(summary.readings, 5);
    assert_eq!(summary.stored, 5, "{summary:?}");
    assert!(summary.flushed);
    let stored: Vec<f64> = heard
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Reading(r) if r.report.status == Status::Stored => r.report.value,
            _ => None,
        })
        .collect();
    // The last roller is the first decimal: the counter reads a tenth of
    // the rendered value.
    let expected: Vec<f64> = values.iter().map(|v| (v * 10.0).round() / 100.0).collect();
    assert_eq!(stored, expected);
    assert_eq!(lines(&m.dir.path().join("readings.jsonl")).len(), 5);
}

#[test]
fn count_stops_each_meter_and_shards_split_the_meters() {
    let m = folder_meter("house", &[5.0, 5.1, 5.2, 5.3], "", JSONL);
    // A second meter on the same frames.
    let text = std::fs::read_to_string(&m.config).unwrap();
    let table_start = text.find("[[meter]]").unwrap();
    let table_end = text.find("[[sink]]").unwrap();
    let second = text[table_start..table_end].replace("name = \"house\"", "name = \"garage\"");
    std::fs::write(&m.config, format!("{text}\n{second}")).unwrap();

    let service = Service::new(
        m.load(),
        RunOptions {
            count: Some(2),
            workers: Some(1),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let summary = service.run().unwrap();
    assert_eq!(summary.readings, 4, "two of each meter");

    let shards = [Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 }];
    let mut read = Vec::new();
    for shard in shards {
        let heard = Heard::default();
        let opts = RunOptions {
            count: Some(1),
            shard: Some(shard),
            ..RunOptions::default()
        };
        match Service::new(m.load(), opts) {
            Ok(service) => {
                service.subscribe(Box::new(heard.clone())).unwrap();
                service.run().unwrap();
            }
            // This shard has no meter: said so, not an empty run.
            Err(e) => assert!(format!("{e:#}").contains("no meter in shard"), "{e:#}"),
        }
        for e in heard.0.lock().unwrap().iter() {
            if let Event::Reading(r) = e {
                read.push((shard.index, r.report.meter.clone()));
            }
        }
    }
    read.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        read.len(),
        2,
        "each meter read by exactly one shard: {read:?}"
    );
    assert_ne!(read[0].1, read[1].1);
}

/// A camera whose driver has a bug.
struct Panicking;

impl FrameSource for Panicking {
    fn next_frame(&mut self) -> Result<Option<Frame>, VisionError> {
        panic!("a bug in a frame source");
    }
}

#[test]
fn a_reading_that_panics_is_reported_with_its_meter_and_stops_the_service() {
    let m = folder_meter("house", &[1.0, 1.1, 1.2], "", JSONL);
    let mut service = Service::new(m.load(), RunOptions::default()).unwrap();
    service
        .replace_source("house", Box::new(Panicking))
        .unwrap();
    let heard = Heard::default();
    service.subscribe(Box::new(heard.clone())).unwrap();
    let err = service.run().unwrap_err();
    assert!(format!("{err:#}").contains("meter house"), "{err:#}");
    let events = heard.0.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error(e) if e.kind == ErrorKind::Panic && e.meter.as_deref() == Some("house"))),
        "{events:?}"
    );
}

#[test]
fn a_bumped_camera_is_found_again_reported_and_read_right() {
    use meter_synth::FrameParams;
    // Two frames where the camera was set up, then it is turned 8 degrees
    // and shifted 40 px for good.
    let shots: Vec<FrameParams> = (0..7u32)
        .map(|i| FrameParams {
            counter: 500.0 + f64::from(i) * 0.1,
            seed: u64::from(i),
            rotation_deg: if i < 2 { 0.0 } else { 8.0 },
            shift: if i < 2 { (0.0, 0.0) } else { (40.0, -25.0) },
            ..FrameParams::default()
        })
        .collect();
    let m = crate::helpers::folder_meter_of("house", &shots, "", JSONL);
    let service = Service::new(m.load(), RunOptions::default()).unwrap();
    let heard = Heard::default();
    service.subscribe(Box::new(heard.clone())).unwrap();
    service.run().unwrap();
    let events = heard.0.lock().unwrap();
    let moved: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::CameraMoved(c) => Some(c.movement),
            _ => None,
        })
        .collect();
    assert_eq!(moved.len(), 1, "one move reported: {events:?}");
    assert!(
        (moved[0].angle_deg.abs() - 8.0).abs() < 1.0,
        "{:?}",
        moved[0]
    );
    // Every stored value is right: the counter reads a tenth of the
    // rendered value.
    for e in events.iter() {
        if let Event::Reading(r) = e {
            if let Some(v) = r.report.value {
                let i = events
                    .iter()
                    .filter(|e| matches!(e, Event::Reading(_)))
                    .position(|x| std::ptr::eq(x, e))
                    .unwrap();
                let truth = (500.0 + i as f64 * 0.1) / 10.0;
                assert!(
                    (v - truth).abs() < 0.011,
                    "frame {i}: stored {v}, truth {truth}"
                );
            }
        }
    }
    let stored = events
        .iter()
        .filter(|e| matches!(e, Event::Reading(r) if r.report.status == Status::Stored))
        .count();
    assert!(
        stored >= 6,
        "the moved camera keeps being read: {stored} of 7 stored"
    );
}

#[test]
fn refused_readings_raise_an_alert_on_a_webhook() {
    use std::sync::mpsc;
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", server.server_addr().to_ip().unwrap());
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let _ = tx.send(body);
            let _ = req.respond(tiny_http::Response::empty(200));
        }
    });
    // One stored value, then a meter that keeps going down: refused again
    // and again.
    let values: Vec<f64> = std::iter::once(1000.0)
        .chain((1..40).map(|i| 1000.0 - f64::from(i) * 10.0))
        .collect();
    let alerts = format!(
        "[alerts.default]\nno_stored_reading = {{ after = \"6h\", in_a_row = 2 }}\n\n\
         [[notify]]\ntype = \"webhook\"\nformat = \"json\"\nurl = \"{url}\"\n"
    );
    let m = folder_meter("house", &values, "", &format!("{JSONL}\n{alerts}"));
    let service = Service::new(m.load(), RunOptions::default()).unwrap();
    let summary = service.run().unwrap();
    assert_eq!(summary.stored, 1, "{summary:?}");
    let body = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the alert reached the webhook");
    assert!(body.contains("house"), "{body}");
    assert!(body.contains("no_stored_reading"), "{body}");
}
