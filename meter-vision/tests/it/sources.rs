//! File, folder and stdin sources.

use std::time::{Duration, SystemTime};

use meter_synth::MeterLayout;
use meter_vision::{FileSource, FolderOrder, FolderSource, FrameSource, StdinSource, VisionError};

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
