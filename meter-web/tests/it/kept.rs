//! Readings not stored, on a meter's page, with the digit images the reader
//! kept of them, served by a lookup-only route.

use meter_service::{RunOptions, Service};

use crate::helpers::{get, get_text, post, site_with};

#[test]
fn not_stored_readings_link_their_kept_digits() {
    // Nothing is ever confident enough: the reading is unsure, its digits
    // wait in unsure/.
    let s = site_with("[model]\nmin_confidence = 1.0\n", "", 1);
    let o = s.origin();
    let unsure = s.live.get("camsim").unwrap().last.unwrap();
    assert_eq!(unsure.report.status.as_str(), "unsure");
    let stamp = unsure.report.time.unix_timestamp();
    let digits = unsure.crops.len();

    // Then a rejected reading: the stored value set a little above what the
    // counter shows (far below a wrap of the rollers), the confidence rule
    // back to its default, one more reading.
    let raw: f64 = unsure.report.raw_text.parse().unwrap();
    let (st, body) = post(
        &s.url("/api/meters/camsim/set-value"),
        Some(&o),
        &format!("{{\"value\": \"{}\"}}", raw.floor() + 50.0),
    );
    assert_eq!(st, 200, "{body}");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        text.replace("[model]\nmin_confidence = 1.0\n", ""),
    )
    .unwrap();
    // Kept digits are found by the reading's second: take the next one in
    // another.
    while time::OffsetDateTime::now_utc().unix_timestamp() <= stamp {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let service = Service::new(
        s.cfg(),
        RunOptions {
            count: Some(1),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let live = service.live().clone();
    service.run().unwrap();
    let rejected = live.get("camsim").unwrap().last.unwrap();
    assert_eq!(rejected.report.status.as_str(), "rejected");

    let (st, page) = get_text(&s.url("/meter/camsim"));
    assert_eq!(st, 200, "{page}");
    let table = page
        .split("<table id=\"notstored\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no not-stored table: {page}"));
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "{table}");
    // Newest first: the rejected reading's digits (read surely, to an
    // implausible value) wait in unsure/ too, for a label; each one kept
    // is linked (a picture kept already is not kept twice).
    let cfg = s.cfg();
    assert!(rows[0].contains("rejected"), "{}", rows[0]);
    let rstamp = rejected.report.time.unix_timestamp();
    assert_ne!(rstamp, stamp);
    let mut kept = 0;
    for k in 0..rejected.crops.len() {
        let prefix = format!("camsim-{rstamp}-d{k}-read");
        let filed = std::fs::read_dir(&cfg.unsure_dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix));
        let url = format!("/api/meters/camsim/unsure/{rstamp}/{k}.png");
        assert_eq!(
            rows[0].contains(&format!("src=\"{url}\"")),
            filed,
            "{url} in {}",
            rows[0]
        );
        kept += usize::from(filed);
    }
    assert!(
        kept > 0,
        "none of the rejected reading's digits kept: {}",
        rows[0]
    );
    assert!(rows[1].contains("unsure"), "{}", rows[1]);
    assert!(!rows[1].contains("frame not kept"), "{}", rows[1]);
    for k in 0..digits {
        let url = format!("/api/meters/camsim/unsure/{stamp}/{k}.png");
        assert!(
            rows[1].contains(&format!("src=\"{url}\"")),
            "{url} in {}",
            rows[1]
        );
        let (st, png) = get(&s.url(&url));
        assert_eq!(st, 200, "{url}");
        // The very file the reader wrote.
        let prefix = format!("camsim-{stamp}-d{k}-read");
        let file = std::fs::read_dir(&cfg.unsure_dir)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}* in unsure/"));
        assert_eq!(png, std::fs::read(file.path()).unwrap(), "{url}");
    }

    // A link named like a kept digit, pointing out of the folder: listed
    // but never served.
    let later = rstamp + 1;
    std::os::unix::fs::symlink(
        &s.config,
        cfg.unsure_dir
            .join(format!("camsim-{later}-d0-read1-0123456789abcdef.png")),
    )
    .unwrap();
    // Only digits name a reading and a digit: anything else is not looked
    // for, let alone opened.
    for path in [
        format!("/api/meters/camsim/unsure/{later}/0.png"),
        format!("/api/meters/camsim/unsure/{stamp}/{digits}.png"),
        format!("/api/meters/camsim/unsure/{stamp}/0"),
        format!("/api/meters/camsim/unsure/{stamp}/-1.png"),
        format!("/api/meters/camsim/unsure/{stamp}/..%2F..%2Fmeter.toml"),
        format!("/api/meters/camsim/unsure/{stamp}/%2E%2E%2Fmeter.toml"),
        format!("/api/meters/camsim/unsure/{stamp}/%2Fetc%2Fpasswd"),
        "/api/meters/camsim/unsure/..%2F..%2Fmeter.toml/0.png".to_owned(),
        "/api/meters/camsim/unsure/%2Fetc%2Fpasswd/0.png".to_owned(),
        format!("/api/meters/camsim/unsure/{stamp}/../../meter.toml"),
        "/api/meters/camsim/unsure/../../../meter.toml/0.png".to_owned(),
        format!("/api/meters/other/unsure/{stamp}/0.png"),
    ] {
        let (st, body) = get_text(&s.url(&path));
        assert!(st == 404 || st == 400, "{path}: {st} {body}");
        assert!(!body.contains("[[meter]]"), "{path}: {body}");
        assert!(!body.contains("root:"), "{path}: {body}");
    }
}
