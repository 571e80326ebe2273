//! The pages in a real browser: headless Chromium driven over
//! chromedriver's WebDriver HTTP API (installed by
//! `scripts/setup/chromium.sh`). Skipped with a loud message where it is
//! missing, unless `METER_REQUIRE_BROWSER=1`. `METER_UPDATE_SCREENSHOT=1`
//! rewrites `docs/serve.png` from the overview.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{agent, site, write_unsure};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver with one Chromium session; both end when dropped.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

fn find(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

impl Browser {
    /// `None` (after a loud message) where Chromium is not installed.
    fn start() -> Option<Self> {
        let (Some(driver), Some(chromium)) = (find("chromedriver"), find("chromium")) else {
            let msg = "chromium or chromedriver not installed (scripts/setup/chromium.sh)";
            if std::env::var("METER_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                panic!("METER_REQUIRE_BROWSER=1: {msg}");
            }
            eprintln!("\n*** SKIPPED: browser test: {msg} ***\n");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent().get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "eager",
            "timeouts": {"pageLoad": 30000, "script": 30000},
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut b = Browser {
            driver: child,
            base,
            session: String::new(),
            _profile: profile,
        };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("a session").to_owned();
        Some(b)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut r = match method {
            "GET" => agent().get(&url).call(),
            _ => agent()
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        }
        .expect("chromedriver answers");
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert!(
            v["value"]["error"].is_null(),
            "{method} {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Waits until `script` returns something truthy.
    fn wait(&self, script: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(script);
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText.slice(0, 800)");
                let logs = self.console_errors();
                panic!("timed out waiting for {what}; page: {text}; console: {logs:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().expect("element found").to_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut actions = Vec::new();
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "kb", "actions": actions}]})),
        );
    }

    /// Console messages at SEVERE level since the last call.
    fn console_errors(&self) -> Vec<String> {
        let v = self.call("POST", "/se/log", Some(json!({"type": "browser"})));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = agent()
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn overview_editor_and_labeller_in_chromium() {
    let Some(b) = Browser::start() else { return };
    let s = site("", 2);
    let cfg = s.cfg();
    let ev = s.live.get("camsim").unwrap().last.unwrap();

    // The overview: no console errors, the frame shown, the numbers of
    // the last reading.
    b.go(&s.url("/"));
    b.wait(
        "const i = document.querySelector('[data-f=frame]'); return i && i.complete && i.naturalWidth > 0;",
        "the frame",
    );
    let raw = b.js("return document.querySelector('[data-m=camsim] [data-f=raw]').textContent");
    assert_eq!(raw, json!(ev.report.raw_text));
    let status =
        b.js("return document.querySelector('[data-m=camsim] [data-f=status]').textContent");
    assert_eq!(status, json!(ev.report.status.as_str()));
    let digits =
        b.js("return document.querySelectorAll('[data-m=camsim] [data-f=digits] img').length");
    assert_eq!(digits, json!(ev.report.digits.len()));
    // After a refresh by the page's own script, still the same numbers.
    std::thread::sleep(Duration::from_millis(3500));
    let raw = b.js("return document.querySelector('[data-m=camsim] [data-f=raw]').textContent");
    assert_eq!(raw, json!(ev.report.raw_text));
    assert_eq!(b.console_errors(), Vec::<String>::new(), "console errors");
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/serve.png");
    if std::env::var("METER_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let png = b.call("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(&shot, bytes).unwrap();
        eprintln!("wrote {}", shot.display());
    }

    // The box editor: drag the first box 6 px right and 4 down, save.
    let before = cfg.meters[0].geometry.regions().unwrap().boxes();
    b.go(&s.url("/editor/camsim"));
    b.wait(
        "return document.querySelectorAll('#reads figure').length > 0",
        "the editor's readings",
    );
    let scale = b.js(
        "const r = document.getElementById('boxes').getBoundingClientRect(); return r.width / document.getElementById('boxes').viewBox.baseVal.width;",
    );
    let scale = scale.as_f64().unwrap();
    let rect = b.element("rect.digit");
    let (dx, dy) = (6.0, 4.0);
    b.call(
        "POST",
        "/actions",
        Some(json!({"actions": [{"type": "pointer", "id": "mouse",
            "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "origin": {ELEMENT: rect}, "x": 0, "y": 0},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerMove", "origin": "pointer", "x": (dx * scale).round() as i64, "y": (dy * scale).round() as i64, "duration": 100},
                {"type": "pointerUp", "button": 0}
            ]}]})),
    );
    let id = b.element("#save");
    b.call("POST", &format!("/element/{id}/click"), None);
    b.wait(
        "return document.getElementById('msg').textContent.startsWith('saved')",
        "the save",
    );
    let after = s.cfg().meters[0].geometry.regions().unwrap().boxes();
    assert!(
        (after[0][0] as f64 - (before[0][0] as f64 + dx)).abs() <= 1.0
            && (after[0][1] as f64 - (before[0][1] as f64 + dy)).abs() <= 1.0,
        "{before:?} -> {after:?}"
    );
    assert_eq!(after[1..], before[1..], "the other boxes stay");
    assert_eq!(b.console_errors(), Vec::<String>::new(), "console errors");

    // The labeller: typed digits file the images, undo puts them back.
    write_unsure(&cfg, &ev.crops[..3]);
    let count = |label: &str| {
        std::fs::read_dir(cfg.dataset_dir.join(label))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let (seven, two) = (count("7.0"), count("2.0"));
    b.go(&s.url("/label"));
    b.wait(
        "return document.getElementById('progress').textContent.includes('0 / 3')",
        "the labeller",
    );
    b.keys(&["7", "2"]);
    b.wait(
        "return document.getElementById('progress').textContent.includes('2 / 3')",
        "two answers",
    );
    assert_eq!(count("7.0"), seven + 1, "7 filed when 2 was typed");
    b.keys(&["s"]);
    b.wait(
        "return document.getElementById('progress').textContent.includes('3 / 3')",
        "three answers",
    );
    assert_eq!(count("2.0"), two + 1);
    b.keys(&["u", "u"]);
    b.wait(
        "return document.getElementById('progress').textContent.includes('1 / 3')",
        "two undos",
    );
    assert_eq!(count("2.0"), two, "undo puts the image back");
    assert_eq!(count("7.0"), seven + 1);
    assert_eq!(std::fs::read_dir(&cfg.unsure_dir).unwrap().count(), 2);
    assert_eq!(b.console_errors(), Vec::<String>::new(), "console errors");
}
