//! The real data the tests read when it is there: labelled digit crops
//! (`meter-digits`) and camera frames (`meter-frames`), under
//! `../shared/data` relative to the repository root, or where
//! `METER_DIGITS_DIR` / `METER_FRAMES_DIR` say.
//!
//! Tests pass without the data: a data test then skips, loudly. But where
//! the data is present (`../shared/data` exists) or `METER_REQUIRE_DATA=1`
//! is set (CI with the data), a data test that would skip panics instead,
//! so that a renamed folder or a broken path cannot turn a real-data check
//! into a silent pass.

use std::path::{Path, PathBuf};

/// `../shared/data` relative to the repository root.
pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// Whether data tests must run: `METER_REQUIRE_DATA=1`, or the shared data
/// folder exists.
pub fn required() -> bool {
    std::env::var("METER_REQUIRE_DATA").is_ok_and(|v| v == "1") || shared_data().is_dir()
}

/// Where a data test cannot run: panics when the data is [`required`],
/// otherwise says loudly that the test was skipped.
pub fn skip(why: &str) {
    if required() {
        panic!(
            "{why}; the data is required here (../shared/data exists or METER_REQUIRE_DATA=1), \
             so this test must not skip"
        );
    }
    eprintln!("\n!!!!!!!! SKIPPED: {why}; this test did NOT run on real data !!!!!!!!\n");
}

/// The folder `$var`, else `../shared/data/<name>`; `None` (after
/// [`skip`]) when it is not a folder.
fn folder(var: &str, name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| shared_data().join(name));
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(&format!("no {name} at {} (${var})", dir.display()));
        None
    }
}

/// The labelled digit crops (`METER_DIGITS_DIR`, else
/// `../shared/data/meter-digits`); `None` after [`skip`] when absent.
pub fn digits_dir() -> Option<PathBuf> {
    folder("METER_DIGITS_DIR", "meter-digits")
}

/// The camera frames (`METER_FRAMES_DIR`, else
/// `../shared/data/meter-frames`); `None` after [`skip`] when absent.
pub fn frames_dir() -> Option<PathBuf> {
    folder("METER_FRAMES_DIR", "meter-frames")
}
