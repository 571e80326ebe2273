//! The digit images the reader kept of readings it did not store: an unsure
//! or rejected reading's crops wait in `unsure/` as
//! `<meter>-<unix time>-d<k>-read<x>-<hash>.png` until someone labels them.
//! (The `rejected/` folder holds the camera's broken JPEGs, which gave no
//! reading.) Files are found by listing `unsure/` and matching the parsed
//! name, so nothing from the request is ever used as a path.

use meter_service::config::{MeterConfig, ResolvedConfig};
use meter_service::label::items::parse_unsure_name;

use crate::history::KeptCrops;
use crate::http::Resp;

/// Meter `meter`'s kept digit images in `unsure/`, by reading time (unix
/// seconds) and digit; the first by name when two share both. Only plain
/// files (not links) whose names parse.
pub fn unsure_crops(cfg: &ResolvedConfig, meter: &str) -> KeptCrops {
    let mut out = KeptCrops::new();
    let Ok(entries) = std::fs::read_dir(&cfg.unsure_dir) else {
        return out;
    };
    let mut files: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let Some(u) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_unsure_name)
        else {
            continue;
        };
        let Ok(stamp) = u.stamp.parse::<i64>() else {
            continue;
        };
        if u.meter == meter {
            out.entry(stamp).or_default().entry(u.digit).or_insert(path);
        }
    }
    out
}

/// `GET /api/meters/{name}/unsure/{time}/{k}.png`: digit `k` of the
/// reading taken at `time` (unix seconds), as the reader kept it.
pub fn unsure_crop(
    cfg: &ResolvedConfig,
    m: &MeterConfig,
    time: &str,
    file: &str,
) -> Result<Resp, Resp> {
    let not_kept = || {
        Resp::not_found(&format!(
            "a kept digit image {time:?}/{file:?} of meter {}",
            m.name
        ))
    };
    // Digits only: `..`, slashes (decoded or not) and signs never match.
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let k = file.strip_suffix(".png").filter(|k| digits_only(k));
    let (Some(k), true) = (k, digits_only(time)) else {
        return Err(not_kept());
    };
    let (Ok(stamp), Ok(k)) = (time.parse::<i64>(), k.parse::<usize>()) else {
        return Err(not_kept());
    };
    let path = unsure_crops(cfg, &m.name)
        .remove(&stamp)
        .and_then(|mut d| d.remove(&k))
        .ok_or_else(not_kept)?;
    let png = std::fs::read(&path).map_err(|e| {
        // Labelled (moved away) between the listing and the read.
        Resp::not_found(&format!("meter {}'s kept digit image: {e}", m.name))
    })?;
    Ok(Resp::ok("image/png", png))
}
