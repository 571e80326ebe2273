//! The read-and-store path: sinks first, then the state.

use std::sync::{Arc, Mutex};

use meter_service::events::{Bus, ErrorKind, Event, Subscriber};
use meter_service::live::Live;
use meter_service::{capture_time, Filers, MeterReader, Status, Store};
use meter_sink::{Record, Sink, SinkError};
use meter_vision::{FolderOrder, FolderSource, FrameSource};

use crate::helpers::folder_meter;

/// A sink that refuses every record.
struct Refusing;

impl Sink for Refusing {
    fn write(&mut self, _: &[Record]) -> Result<(), SinkError> {
        Err(SinkError::Config {
            field: "test",
            problem: "refuses everything".into(),
        })
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A sink that keeps what it is given.
#[derive(Clone, Default)]
struct Keeping(Arc<Mutex<Vec<Record>>>);

impl Sink for Keeping {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        self.0.lock().unwrap().extend_from_slice(records);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Collects the events it hears.
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

#[test]
fn a_reading_a_sink_refused_is_not_remembered_as_stored() {
    let m = folder_meter("house", &[1234.5], "", "");
    let cfg = m.load();
    let bus = Arc::new(Bus::new());
    let heard = Heard::default();
    bus.subscribe(Box::new(heard.clone())).unwrap();
    let kept = Keeping::default();
    let store = Store::new(
        vec![
            ("keeping".into(), Box::new(kept.clone())),
            ("refusing".into(), Box::new(Refusing)),
        ],
        bus.clone(),
    );
    let model = meter_model::DigitModel::shipped();
    let mut reader = MeterReader::new(&cfg, &cfg.meters[0], model, &Filers::new(&cfg)).unwrap();
    let mut frames =
        FolderSource::new(&m.dir.path().join("frames"), FolderOrder::Name, None).unwrap();
    let frame = frames.next_frame().unwrap().unwrap();
    let t = capture_time(&frame);
    let err = store.read_and_store(&mut reader, frame, t).unwrap_err();
    assert!(format!("{err:#}").contains("sink refusing"), "{err:#}");
    assert!(
        !m.state_dir().join("house.json").exists(),
        "the state was committed although a sink refused the reading"
    );
    bus.close();
    let events = heard.0.lock().unwrap();
    assert!(
        matches!(&events[..], [Event::Error(e)] if e.kind == ErrorKind::Sink && e.meter.as_deref() == Some("house")),
        "{events:?}"
    );
}

#[test]
fn a_stored_reading_reaches_the_sinks_the_state_and_the_subscribers() {
    let m = folder_meter("house", &[1234.5], "", "");
    let cfg = m.load();
    let bus = Arc::new(Bus::new());
    let heard = Heard::default();
    bus.subscribe(Box::new(heard.clone())).unwrap();
    let kept = Keeping::default();
    let store = Store::new(
        vec![("keeping".into(), Box::new(kept.clone()))],
        bus.clone(),
    );
    let model = meter_model::DigitModel::shipped();
    let mut reader = MeterReader::new(&cfg, &cfg.meters[0], model, &Filers::new(&cfg)).unwrap();
    let mut frames =
        FolderSource::new(&m.dir.path().join("frames"), FolderOrder::Name, None).unwrap();
    let frame = frames.next_frame().unwrap().unwrap();
    let t = capture_time(&frame);
    let report = store.read_and_store(&mut reader, frame, t).unwrap();
    assert_eq!(report.status, Status::Stored, "{}", report.log_line());
    assert_eq!(report.value, Some(123.45), "the last roller is a decimal");
    let kinds: Vec<&'static str> = kept
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| match r.kind {
            meter_sink::RecordKind::Stored(_) => "stored",
            meter_sink::RecordKind::Health(_) => "health",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["stored", "health"],
        "the reading and the meter's health point"
    );
    let state = std::fs::read_to_string(m.state_dir().join("house.json")).unwrap();
    assert!(state.contains("12345"), "{state}");
    bus.close();
    let events = heard.0.lock().unwrap();
    let [Event::Reading(r)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(r.report.value, Some(123.45));
    assert_eq!(r.crops.len(), 6);
    assert!(r.jpeg.starts_with(&[0xFF, 0xD8]), "the frame as received");
    assert!(r.alignment.min_score().is_some_and(|s| s > 0.5));
}

#[test]
fn the_live_view_holds_one_frame_a_meter_or_none() {
    let m = folder_meter("house", &[1234.5, 1234.6], "", "");
    let cfg = m.load();
    let bus = Arc::new(Bus::new());
    let heard = Heard::default();
    bus.subscribe(Box::new(heard.clone())).unwrap();
    let live = Arc::new(Live::new(["house"]));
    let lean = Arc::new(Live::without_frames(["house"]));
    assert!(live.keeps_frames() && !lean.keeps_frames());
    bus.subscribe(live.subscriber()).unwrap();
    bus.subscribe(lean.subscriber()).unwrap();
    let store = Store::new(
        vec![("keeping".into(), Box::new(Keeping::default()))],
        bus.clone(),
    );
    let model = meter_model::DigitModel::shipped();
    let mut reader = MeterReader::new(&cfg, &cfg.meters[0], model, &Filers::new(&cfg)).unwrap();
    let mut frames =
        FolderSource::new(&m.dir.path().join("frames"), FolderOrder::Name, None).unwrap();
    while let Some(frame) = frames.next_frame().unwrap() {
        let t = capture_time(&frame);
        store.read_and_store(&mut reader, frame, t).unwrap();
    }
    bus.close();
    let events = heard.0.lock().unwrap();
    let [Event::Reading(_), Event::Reading(second)] = &events[..] else {
        panic!("{events:?}")
    };

    // The last reading's frame is kept, the first one's is let go.
    let kept = live.get("house").unwrap().last.unwrap();
    assert!(Arc::ptr_eq(&kept, second), "the last reading, not a copy");
    assert!(kept.jpeg.starts_with(&[0xFF, 0xD8]));
    assert_eq!(kept.crops.len(), 6);

    // Without frames: the same news, no picture.
    let news = lean.get("house").unwrap();
    let last = news.last.unwrap();
    assert_eq!(last.report.value, second.report.value);
    assert_eq!(last.report.time, second.report.time);
    assert!(last.jpeg.is_empty() && last.crops.is_empty());
    assert_eq!(
        news.last_stored,
        live.get("house").unwrap().last_stored,
        "the stored value is kept either way"
    );
}
