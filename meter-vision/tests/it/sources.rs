//! File, folder and stdin sources.

use std::time::{Duration, SystemTime};

use meter_synth::MeterLayout;
use meter_vision::source::{defaults, keep_rejected, SourceOptions};
use meter_vision::{
    FileSource, FolderOrder, FolderSource, FrameSource, SourceSpec, StdinSource, VisionError,
};

use crate::helpers::{jpeg, shot};

fn frame_bytes(seed: u64) -> Vec<u8> {
    jpeg(&shot(&MeterLayout::default(), 0.0, (0.0, 0.0), seed), 80)
}

#[test]
fn folder_replays_in_name_or_time_order_and_skips_past_bad_frames() {
    let dir = tempfile::tempdir().unwrap();
    let rejected = tempfile::tempdir().unwrap();
    let names = ["b.jpg", "a.JPG", "c.jpeg"];
    let now = SystemTime::now();
    for (k, name) in names.iter().enumerate() {
        let path = dir.path().join(name);
        std::fs::write(&path, frame_bytes(k as u64)).unwrap();
        // Modified times in the order b, a, c.
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(now - Duration::from_secs(100 - k as u64 * 10))
            .unwrap();
    }
    let bad = frame_bytes(9);
    std::fs::write(dir.path().join("a2.jpg"), &bad[..bad.len() / 2]).unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not a frame").unwrap();

    let mut by_name = FolderSource::new(
        dir.path(),
        FolderOrder::Name,
        Some(rejected.path().to_path_buf()),
    )
    .unwrap();
    assert_eq!(by_name.remaining(), 4);
    let mut seen = Vec::new();
    loop {
        match by_name.next_frame() {
            Ok(Some(f)) => seen.push(f.origin.rsplit('/').next().unwrap().to_string()),
            Ok(None) => break,
            Err(VisionError::CorruptJpeg { origin, kept, .. }) => {
                assert!(origin.ends_with("a2.jpg"));
                assert_eq!(std::fs::read(kept.unwrap()).unwrap(), &bad[..bad.len() / 2]);
                seen.push("BAD".into());
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(seen, ["a.JPG", "BAD", "b.jpg", "c.jpeg"]);
    // The user's folder is left as it was.
    assert!(dir.path().join("a2.jpg").exists());

    std::fs::remove_file(dir.path().join("a2.jpg")).unwrap();
    let mut by_time = FolderSource::new(dir.path(), FolderOrder::ModifiedTime, None).unwrap();
    let mut seen = Vec::new();
    while let Some(f) = by_time.next_frame().unwrap() {
        seen.push(f.origin.rsplit('/').next().unwrap().to_string());
    }
    assert_eq!(seen, ["b.jpg", "a.JPG", "c.jpeg"]);
    assert!(FolderSource::new(&dir.path().join("missing"), FolderOrder::Name, None).is_err());
}

#[test]
fn file_and_stdin_sources_give_one_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.jpg");
    std::fs::write(&path, frame_bytes(1)).unwrap();
    let mut f = FileSource::new(&path, None);
    assert_eq!(
        f.next_frame().unwrap().unwrap().image.dimensions(),
        (640, 480)
    );
    assert!(f.next_frame().unwrap().is_none());
    let err = FileSource::new(dir.path().join("nope.jpg"), None)
        .next_frame()
        .unwrap_err();
    assert!(matches!(err, VisionError::Io { .. }) && err.to_string().contains("nope.jpg"));

    let mut s = StdinSource::from_reader(std::io::Cursor::new(frame_bytes(2)), None);
    assert_eq!(s.next_frame().unwrap().unwrap().origin, "stdin");
    assert!(s.next_frame().unwrap().is_none());
    let mut s = StdinSource::from_reader(std::io::Cursor::new(b"hello".to_vec()), None);
    assert!(matches!(
        s.next_frame(),
        Err(VisionError::CorruptJpeg { .. })
    ));
}

/// Issue 17: a missing frame printed its cause twice ("No such file or
/// directory (os error 2): No such file or directory (os error 2)").
#[test]
fn a_missing_file_names_the_file_and_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileSource::new(dir.path().join("gone.jpg"), None)
        .next_frame()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("gone.jpg") && !text.contains("os error"),
        "{text}"
    );
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("os error 2"), "{cause}");
}

#[test]
fn source_specs_parse_open_and_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let now = SystemTime::now();
    for (k, name) in ["b.jpg", "a.jpg"].iter().enumerate() {
        let path = frames.join(name);
        std::fs::write(&path, frame_bytes(k as u64)).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        // b.jpg is the newest.
        f.set_modified(now - Duration::from_secs(100 * k as u64))
            .unwrap();
    }
    let parse = |text: &str| SourceSpec::parse(text, dir.path());
    assert_eq!(
        parse("http://cam.local/").unwrap(),
        SourceSpec::Http("http://cam.local".into())
    );
    assert_eq!(parse("frames").unwrap(), SourceSpec::Folder(frames.clone()));
    let file = parse("frames/a.jpg").unwrap();
    assert_eq!(file, SourceSpec::File(frames.join("a.jpg")));
    let err = parse("rtsp://cam/stream").unwrap_err();
    assert!(matches!(err, VisionError::InvalidSource { .. }), "{err}");
    assert!(err.to_string().contains("rtsp://cam/stream"), "{err}");

    let options = SourceOptions::default();
    // A folder replays in name order, then ends.
    let mut folder = parse("frames").unwrap().open(&options).unwrap();
    let names: Vec<String> = std::iter::from_fn(|| folder.next_frame().unwrap())
        .map(|f| f.origin)
        .collect();
    assert!(
        names[0].ends_with("a.jpg") && names[1].ends_with("b.jpg"),
        "{names:?}"
    );
    // Read once, it gives its newest frame.
    let newest = parse("frames").unwrap().read_once(&options).unwrap();
    assert!(newest.origin.ends_with("b.jpg"), "{}", newest.origin);
    // A file is read afresh every time, never used up.
    let mut repeating = file.open(&options).unwrap();
    for _ in 0..3 {
        assert!(repeating.next_frame().unwrap().is_some());
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = SourceSpec::Folder(empty).read_once(&options).unwrap_err();
    assert!(err.to_string().contains("no .jpg frame"), "{err}");
}

/// Issue 17: `rejected/` had no size limit (a camera that cuts every frame
/// left three copies per reading).
#[test]
fn the_rejected_folder_keeps_only_the_newest_frames() {
    let dir = tempfile::tempdir().unwrap();
    let cap = defaults::REJECTED_CAP;
    let mut first = None;
    let mut last = None;
    for k in 0..cap + 5 {
        let kept = keep_rejected(dir.path(), &format!("http://cam/capture{k:04}"), b"x");
        first.get_or_insert(kept.clone().unwrap());
        last = kept;
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), cap);
    assert!(last.unwrap().exists(), "the newest is kept");
    assert!(!first.unwrap().exists(), "the oldest went");
}
