//! Listening address and token, same-origin POSTs, paths that try to leave
//! the config's folders, escaping.

use std::sync::{Arc, Mutex, OnceLock};

use meter_service::config::{ResolvedConfig, ServeConfig};
use meter_service::live::Live;

use crate::helpers::{agent, get, get_text, post, setup, site};

const TOKEN: &str = "correct-horse-battery-staple";

fn serve(cfg: ResolvedConfig, listen: &str, token: Option<&str>) -> meter_web::Server {
    let live = Arc::new(Live::new(cfg.meters.iter().map(|m| m.name.as_str())));
    meter_web::Server::start(
        cfg,
        &ServeConfig {
            listen: listen.into(),
            token: token.map(str::to_owned),
        },
        live,
        None,
    )
    .unwrap()
}

#[test]
fn beyond_loopback_only_with_a_token() {
    let (_camera, config, _dir) = setup("");
    let cfg = ResolvedConfig::load_with_env(&config, &Default::default()).unwrap();
    let live = Arc::new(Live::new(["camsim"]));
    let err = meter_web::Server::start(
        cfg.clone(),
        &ServeConfig {
            listen: "0.0.0.0:0".into(),
            token: None,
        },
        live.clone(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("needs a token"), "{err}");
    let err = meter_web::check(&ServeConfig {
        listen: "localhost".into(),
        token: None,
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("not an address"), "{err}");
    // The default listens on loopback.
    assert!(ServeConfig::default().listen.starts_with("127.0.0.1:"));

    // With a token (here on loopback so that the test can reach it):
    // every request needs it, the token never shows in answers.
    let web = serve(cfg, "127.0.0.1:0", Some(TOKEN));
    let base = format!("http://{}", web.addr());
    let (st, body) = get_text(&format!("{base}/"));
    assert_eq!(st, 401);
    assert!(!body.contains(TOKEN));
    assert_eq!(get(&format!("{base}/api/meters")).0, 401);
    assert_eq!(get(&format!("{base}/metrics?token=wrong")).0, 401);
    let mut r = agent()
        .get(&format!("{base}/?token={TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("the token is kept in a cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let page = r.body_mut().read_to_string().unwrap();
    assert!(!page.contains(TOKEN), "the page does not show the token");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let r = agent()
        .get(&format!("{base}/api/meters"))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = agent()
        .get(&format!("{base}/api/meters"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A POST needs the token and the same origin.
    let r = agent()
        .post(&format!("{base}/api/meters/camsim/set-value"))
        .header("Origin", &base)
        .send(r#"{"value": "1"}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = agent()
        .post(&format!("{base}/api/meters/camsim/set-value"))
        .header("Origin", "http://evil.example")
        .header("Cookie", &cookie)
        .send(r#"{"value": "1"}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[test]
fn posts_need_the_same_origin_and_paths_stay_inside() {
    let s = site("unit = \"<script>alert(1)</script>\"", 1);
    let url = s.url("/api/meters/camsim/set-value");
    let body = r#"{"value": "1234.5"}"#;
    assert_eq!(post(&url, None, body).0, 403, "no Origin, no Referer");
    assert_eq!(post(&url, Some("http://evil.example"), body).0, 403);
    assert_eq!(
        post(&url, Some(&format!("{}.evil.example", s.origin())), body).0,
        403
    );
    let r = agent()
        .post(&url)
        .header("Referer", &format!("{}/meter/camsim", s.origin()))
        .send(body)
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "a Referer of this server");
    assert_eq!(post(&url, Some(&s.origin()), body).0, 200);

    // Names from the address are looked up, never used as paths.
    for path in [
        "/meter/..",
        "/meter/..%2F..%2Fetc%2Fpasswd",
        "/api/meters/%2Fetc%2Fpasswd/frame.jpg",
        "/api/meters/..%2Fmeter.toml/readings",
        "/editor/%2E%2E",
        "/api/meters/camsim/digits/..%2F..%2Fmeter.toml",
        "/api/label/shown/..%2F..%2Fmeter.toml",
        "/etc/passwd",
        "/../../etc/passwd",
        "/api/meters/camsim/digits/%zz",
    ] {
        let (st, body) = get_text(&s.url(path));
        assert!(st == 404 || st == 400, "{path}: {st} {body}");
        assert!(!body.contains("root:"), "{path}");
        assert!(!body.contains("[[meter]]"), "{path}");
    }
    let (st, body) = post(
        &s.url("/api/meters/..%2F..%2Fx/boxes"),
        Some(&s.origin()),
        r#"{"digits": []}"#,
    );
    assert_eq!(st, 404, "{body}");

    // A hostile unit shows as text.
    let (st, page) = get_text(&s.url("/"));
    assert_eq!(st, 200);
    assert!(!page.contains("<script>alert(1)"), "unescaped");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    let (_, page) = get_text(&s.url("/meter/camsim"));
    assert!(!page.contains("<script>alert(1)"), "unescaped");
    // A name not in the config, with markup, in a 404.
    let (st, body) = get_text(&s.url("/meter/%3Cscript%3E"));
    assert_eq!(st, 404);
    assert!(!body.contains("<script>"), "{body}");
}

/// Every log record of this test process, at every level, but the HTTP
/// client's (ureq logs the requests it sends, token included: that is the
/// client's business; the server's log is what must not show it).
struct Capture(Mutex<String>);

impl log::Log for Capture {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        !meta.target().starts_with("ureq")
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let mut text = self.0.lock().unwrap_or_else(|e| e.into_inner());
            text.push_str(&format!(
                "{} {}: {}\n",
                record.level(),
                record.target(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

/// The process's log so far (capturing from the first call on).
fn captured_log() -> String {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    let c = CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::default())));
        log::set_logger(c).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
        c
    });
    c.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[test]
fn the_token_is_never_logged() {
    captured_log();
    let (_camera, config, _dir) = setup("");
    let cfg = ResolvedConfig::load_with_env(&config, &Default::default()).unwrap();
    let web = serve(cfg, "127.0.0.1:0", Some(TOKEN));
    let base = format!("http://{}", web.addr());
    // The token every way it travels, right and wrong, in requests that
    // are answered, refused, malformed, and that change state (logged).
    let wrong = format!("{TOKEN}-not");
    for url in [
        format!("{base}/?token={TOKEN}"),
        format!("{base}/api/meters?token={wrong}"),
        format!("{base}/metrics?token={TOKEN}%zz"),
        format!("{base}/nothing?token={TOKEN}"),
    ] {
        agent().get(&url).call().unwrap();
    }
    for auth in [TOKEN, wrong.as_str()] {
        agent()
            .get(&format!("{base}/api/meters"))
            .header("Authorization", &format!("Bearer {auth}"))
            .header("Cookie", &format!("meter_token={auth}"))
            .call()
            .unwrap();
    }
    let r = agent()
        .post(&format!("{base}/api/meters/camsim/set-value"))
        .header("Origin", &base)
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send(r#"{"value": "1234.5"}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    web.stop();

    let log = captured_log();
    // The capture saw this server: its start and the value it set.
    assert!(log.contains(&format!("web page on {base}/")), "{log}");
    assert!(log.contains("meter camsim stored value set to"), "{log}");
    assert!(!log.contains(TOKEN), "the token in the log:\n{log}");
}
