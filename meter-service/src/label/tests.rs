//! The session driven by scripted keys.

use super::*;
use crate::files::image_hash;
use image::Rgb;

fn tenths(s: &str) -> Tenths {
    s.parse().unwrap()
}

fn guess(s: &str) -> DigitPrediction {
    DigitPrediction::with_confidence(tenths(s), 0.9)
}

fn digit(i: u8) -> RgbImage {
    RgbImage::from_fn(20, 32, |x, y| {
        Rgb([i.wrapping_mul(37), (x * 10) as u8, (y * 7) as u8])
    })
}

/// Five digits of one frame, guesses 0.0, 1.0, ...
fn frame_items(frame: &str) -> Vec<Item> {
    let ctx = Arc::new((0..5).map(digit).collect::<Vec<_>>());
    (0..5)
        .map(|i| Item {
            hash: image_hash(&ctx[i]),
            meter: "house".into(),
            image: ctx[i].clone(),
            context: Arc::clone(&ctx),
            position: i,
            origin: Origin::Frame {
                frame: PathBuf::from(frame),
                digit: i,
            },
            guess: Some(guess(&format!("{i}"))),
        })
        .collect()
}

fn opts(dir: &Path) -> SessionOptions {
    SessionOptions {
        dataset_dir: dir.join("dataset"),
        journal: dir.join("state/classify.journal"),
        revisit_skipped: false,
    }
}

fn keys(s: &str) -> Vec<io::Result<Key>> {
    s.chars()
        .map(|c| {
            Ok(match c {
                '\n' => Key::Enter,
                '<' => Key::Esc,
                c => Key::Char(c),
            })
        })
        .collect()
}

fn filed(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(&dir.join("dataset")) {
        let rel = e.strip_prefix(dir.join("dataset")).unwrap();
        out.push(rel.display().to_string());
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn name(items: &[Item], i: usize, label: &str) -> String {
    format!("{label}/house-{:016x}.png", items[i].hash)
}

#[test]
fn keys_file_digits_rolling_accepted_and_undone() {
    let dir = tempfile::tempdir().unwrap();
    let items = frame_items("f1.jpg");
    let s = Session::new(items.clone(), opts(dir.path())).unwrap();
    // 3.7 (rolling), 5, Enter (guess 2.0), skip #3, undo the skip, 9, then
    // the keys run out: the 9 in hand is filed too.
    let sum = s.run(keys("3.75\nsu9"), |_| Ok(())).unwrap();
    assert_eq!(filed(dir.path()), {
        let mut v = vec![
            name(&items, 0, "3.7"),
            name(&items, 1, "5.0"),
            name(&items, 2, "2.0"),
            name(&items, 3, "9.0"),
        ];
        v.sort();
        v
    });
    assert_eq!(
        sum,
        Summary {
            filed: 4,
            skipped: 0,
            undone: 1,
            left: 1,
            earlier: 0
        }
    );
    // The filed PNG is the crop itself.
    let back = image::open(dir.path().join("dataset").join(name(&items, 0, "3.7")))
        .unwrap()
        .to_rgb8();
    assert_eq!(back, items[0].image);
}

#[test]
fn undo_removes_a_filed_copy_and_steps_back() {
    let dir = tempfile::tempdir().unwrap();
    let items = frame_items("f1.jpg");
    // 4 files #0 (in hand), 6 files #0 and holds #1, u drops #1's answer,
    // u undoes #0 (file removed), 7 answers #0 again, q.
    let sum = Session::new(items.clone(), opts(dir.path()))
        .unwrap()
        .run(keys("46uu7q"), |_| Ok(()))
        .unwrap();
    assert_eq!(filed(dir.path()), vec![name(&items, 0, "7.0")]);
    assert_eq!(sum.filed, 1);
    assert_eq!(sum.undone, 1);
    assert_eq!(sum.left, 4);
}

#[test]
fn resumes_without_asking_again_or_filing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let items = frame_items("f1.jpg");
    Session::new(items.clone(), opts(dir.path()))
        .unwrap()
        .run(keys("1s2q"), |_| Ok(()))
        .unwrap();
    // #0 filed, #1 skipped, #2 filed. A second session asks about #3 and #4
    // only, even when the same frame is given twice.
    let mut again = items.clone();
    again.extend(frame_items("f1-copy.jpg"));
    let s = Session::new(again, opts(dir.path())).unwrap();
    assert_eq!(s.len(), 2);
    let sum = s.run(keys("34"), |_| Ok(())).unwrap();
    assert_eq!(sum.earlier, 8);
    assert_eq!(filed(dir.path()).len(), 4);
    // Revisiting skipped images brings #1 back.
    let mut o = opts(dir.path());
    o.revisit_skipped = true;
    assert_eq!(Session::new(items, o).unwrap().len(), 1);
}

fn unsure_items(dir: &Path) -> Vec<Item> {
    let u = dir.join("unsure");
    std::fs::create_dir_all(&u).unwrap();
    for i in 0..3u8 {
        digit(i)
            .save(u.join(format!("house-1700000000-d{i}-read{i}.0-00000000.png")))
            .unwrap();
    }
    let mut warn = |w: String| panic!("{w}");
    let mut items = items::from_unsure(&u, Some("house"), &mut warn).unwrap();
    for it in &mut items {
        it.guess = Some(guess("8"));
    }
    items
}

#[test]
fn unsure_images_are_moved_and_undo_puts_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let items = unsure_items(dir.path());
    assert_eq!(items.len(), 3);
    assert_eq!(items[1].position, 1);
    assert_eq!(items[1].context.len(), 3);
    let sum = Session::new(items.clone(), opts(dir.path()))
        .unwrap()
        .run(keys("2\n"), |_| Ok(()))
        .unwrap();
    assert_eq!(sum.filed, 2);
    assert_eq!(
        filed(dir.path()),
        vec![name(&items, 0, "2.0"), name(&items, 1, "8.0")]
    );
    let left: Vec<_> = walk(&dir.path().join("unsure"));
    assert_eq!(left.len(), 1, "{left:?}");
    // Moved, not re-encoded: the bytes are the original file's.
    let Origin::Unsure { bytes, .. } = &items[0].origin else {
        unreachable!()
    };
    assert_eq!(
        &std::fs::read(dir.path().join("dataset").join(name(&items, 0, "2.0"))).unwrap(),
        bytes
    );

    // A fresh queue: answer #0 and undo it: back in unsure/, nothing filed.
    let dir = tempfile::tempdir().unwrap();
    let items = unsure_items(dir.path());
    Session::new(items, opts(dir.path()))
        .unwrap()
        .run(keys("5su<"), |_| Ok(()))
        .unwrap();
    assert_eq!(walk(&dir.path().join("unsure")).len(), 2);
    assert_eq!(
        filed(dir.path()),
        vec![format!("5.0/house-{:016x}.png", image_hash(&digit(0)))]
    );
}

#[test]
fn an_image_already_in_the_dataset_is_relabelled_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let items = unsure_items(dir.path());
    // #0's picture is already filed (as 6.0) from an earlier frame.
    let old = dir.path().join("dataset/6.0");
    std::fs::create_dir_all(&old).unwrap();
    let old = old.join(format!("house-{:016x}.png", items[0].hash));
    digit(0).save(&old).unwrap();
    Session::new(items.clone(), opts(dir.path()))
        .unwrap()
        .run(keys("1q"), |_| Ok(()))
        .unwrap();
    assert_eq!(filed(dir.path()), vec![name(&items, 0, "1.0")]);
    assert_eq!(walk(&dir.path().join("unsure")).len(), 2);
    // Undo restores both: the old copy under 6.0 and the unsure file.
    let dir3 = tempfile::tempdir().unwrap();
    let items = unsure_items(dir3.path());
    let old = dir3.path().join("dataset/6.0");
    std::fs::create_dir_all(&old).unwrap();
    digit(0)
        .save(old.join(format!("house-{:016x}.png", items[0].hash)))
        .unwrap();
    Session::new(items.clone(), opts(dir3.path()))
        .unwrap()
        .run(keys("12uu"), |_| Ok(()))
        .unwrap();
    assert_eq!(filed(dir3.path()), vec![name(&items, 0, "6.0")]);
    assert_eq!(walk(&dir3.path().join("unsure")).len(), 3);
}

#[test]
fn lines_become_keys() {
    let k: Vec<Key> = keys_from_lines(io::Cursor::new("3.7\n\ns\n"))
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        k,
        vec![
            Key::Char('3'),
            Key::Char('.'),
            Key::Char('7'),
            Key::Enter,
            Key::Char('s')
        ]
    );
}

#[test]
fn journal_remembers_skips_until_undone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j");
    let mut j = Journal::open(&p).unwrap();
    j.record(&["skipped", "00000000000000aa"]).unwrap();
    j.record(&["skipped", "00000000000000bb"]).unwrap();
    j.record(&["undone", "00000000000000bb"]).unwrap();
    let s = Journal::skipped(&p).unwrap();
    assert_eq!(s, HashSet::from([0xaa]));
}
