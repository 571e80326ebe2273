//! Bounded fuzzing (issue 17), run with the other tests: mutated JPEGs
//! through the path `meter predict --frame` takes (file source, JPEG
//! checks, decoding, alignment, crops, model, decision, store), and
//! mutated config files through the loader. Neither may panic; every error
//! is one line naming its input. A few seconds each.

use std::cell::Cell;
use std::sync::Arc;

use meter_service::events::Bus;
use meter_service::OneShot;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::config::{load, GOOD};
use crate::helpers::folder_meter;

/// Mutations of a byte string: flips, cuts, insertions, splices.
#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite the byte at this fraction of the length.
    Set(f64, u8),
    /// Cut the end off at this fraction.
    Truncate(f64),
    /// Insert bytes at this fraction.
    Insert(f64, Vec<u8>),
    /// Remove a run of bytes at this fraction.
    Remove(f64, usize),
    /// Copy a run from one place over another (repeated markers, lengths).
    Splice(f64, f64, usize),
}

fn mutation(
    insert: impl Strategy<Value = u8> + Clone + 'static,
) -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        4 => (at.clone(), any::<u8>()).prop_map(|(a, b)| Mutation::Set(a, b)),
        1 => at.clone().prop_map(Mutation::Truncate),
        2 => (at.clone(), proptest::collection::vec(insert, 1..16))
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        2 => (at.clone(), 1..64usize).prop_map(|(a, n)| Mutation::Remove(a, n)),
        1 => (at.clone(), at, 1..64usize).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::Set(f, b) if len > 0 => {
                let i = at(*f, len - 1);
                bytes[i] = *b;
            }
            Mutation::Truncate(f) => bytes.truncate(at(*f, len)),
            Mutation::Insert(f, b) => {
                let i = at(*f, len);
                bytes.splice(i..i, b.iter().copied());
            }
            Mutation::Remove(f, n) => {
                let i = at(*f, len);
                bytes.drain(i..(i + n).min(len));
            }
            Mutation::Splice(from, to, n) if len > 0 => {
                let (i, j) = (at(*from, len - 1), at(*to, len - 1));
                let run: Vec<u8> = bytes[i..(i + n).min(len)].to_vec();
                let end = (j + run.len()).min(len);
                bytes.splice(j..end, run);
            }
            _ => {}
        }
    }
    bytes
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn mutated_frames_through_predict_never_panic() {
    let m = folder_meter(
        "house",
        &[1234.5],
        "",
        "[[sink]]\ntype = \"jsonl\"\npath = \"out.jsonl\"\n",
    );
    let cfg = m.load();
    let meter = cfg.meters[0].clone();
    let reader = OneShot::new(cfg.clone(), &[&meter], Arc::new(Bus::new())).unwrap();
    let sound = std::fs::read(m.dir.path().join("frames/f0000.jpg")).unwrap();
    let frame = m.dir.path().join("fuzzed.jpg");
    let (stored, refused) = (Cell::new(0), Cell::new(0));
    let frames = prop_oneof![
        // Mostly mutations of a sound frame, which get past the first checks.
        8 => proptest::collection::vec(mutation(any::<u8>()), 1..6)
            .prop_map(move |ms| apply(sound.clone(), &ms)),
        // Some JPEG-looking noise.
        1 => proptest::collection::vec(any::<u8>(), 0..2048).prop_map(|mut b| {
            b.splice(0..0, [0xFF, 0xD8, 0xFF, 0xE0]);
            b
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ];
    runner(48)
        .run(&frames, |bytes| {
            std::fs::write(&frame, &bytes).unwrap();
            match reader.read(&meter, Some(&frame)) {
                Ok(_) => stored.set(stored.get() + 1),
                Err(e) => {
                    let e = format!("{e:#}");
                    prop_assert!(!e.contains('\n'), "one line: {}", e);
                    prop_assert!(e.contains("fuzzed.jpg") || e.contains("house"), "{}", e);
                    refused.set(refused.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    let (stored, refused) = (stored.get(), refused.get());
    eprintln!("{stored} read, {refused} refused");
    assert!(refused > 0, "mutations that refuse nothing test nothing");
}

/// [`GOOD`] with meter key `key` set to `value`.
fn set_key(key: &str, value: &str) -> String {
    let mut lines: Vec<String> = GOOD.lines().map(str::to_owned).collect();
    let line = format!("{key} = {value}");
    match lines
        .iter()
        .position(|l| l.starts_with(&format!("{key} = ")))
    {
        Some(i) => lines[i] = line,
        None => {
            let i = lines
                .iter()
                .position(|l| l.starts_with("decimals"))
                .unwrap();
            lines.insert(i + 1, line);
        }
    }
    lines.join("\n")
}

#[test]
fn mutated_configs_never_panic() {
    // Insertions from what TOML and our keys are made of.
    let alphabet: Vec<u8> = b"[]{}=\",.-_ \n#0123456789e+infatruesmhdxyz/\\'\x00\xff".to_vec();
    let insert = proptest::sample::select(alphabet);
    let (loaded, refused) = (Cell::new(0), Cell::new(0));
    // Values that have broken parsers: huge, tiny, negative, wrong types.
    let values = proptest::sample::select(vec![
        "1e30",
        "-1",
        "0",
        "1e19",
        "nan",
        "inf",
        "true",
        "\"\"",
        "\"1e30s\"",
        "[]",
        "{}",
        "18446744073709551616",
        "\"../..\"",
        "\"\\u0000\"",
        "4294967296",
        "-0.0",
    ]);
    let keys = proptest::sample::select(vec![
        "interval",
        "decimals",
        "search_radius",
        "max_rotation",
        "min_mark_score",
        "rotate",
        "accept_after",
        "max_rate_per_hour",
        "digits",
        "marks",
        "name",
        "source",
        "unit",
    ]);
    let texts = prop_oneof![
        3 => proptest::collection::vec(mutation(insert), 1..8)
            .prop_map(|ms| String::from_utf8_lossy(&apply(GOOD.as_bytes().to_vec(), &ms)).into_owned()),
        2 => (keys, values).prop_map(|(k, v)| set_key(k, v)),
    ];
    runner(256)
        .run(&texts, |text| {
            match load(&text) {
                Ok(_) => loaded.set(loaded.get() + 1),
                Err(e) => {
                    prop_assert!(!e.contains('\n'), "one line: {}", e);
                    prop_assert!(e.contains("meter.toml"), "names the file: {}", e);
                    refused.set(refused.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    let (loaded, refused) = (loaded.get(), refused.get());
    eprintln!("{loaded} loaded, {refused} refused");
    assert!(
        refused > 0 && loaded > 0,
        "{loaded} loaded, {refused} refused"
    );
}
