//! The HTTP camera client against a scripted camera on loopback: real HTTP,
//! with the faults an ESP32-CAM shows (500s, timeouts, cut transfers,
//! truncated JPEGs).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meter_synth::MeterLayout;
use meter_vision::source::FlashMode;
use meter_vision::{FrameSource, HttpCamera, VisionError};

use crate::helpers::{jpeg, shot};

/// One scripted answer.
#[derive(Clone)]
enum Reply {
    /// 200 with this body and content type.
    Ok(&'static str, Vec<u8>),
    /// This status, empty body.
    Status(u16),
    /// Waits, then answers 200 with the body.
    Slow(Duration, Vec<u8>),
    /// Announces the full length, sends half, closes.
    Cut(Vec<u8>),
    /// `302` to the same path (a redirect loop).
    Loop,
}

/// A camera on a loopback port answering each request with the next
/// scripted reply (the last one repeats); records the request paths.
struct ScriptedCamera {
    url: String,
    paths: Arc<Mutex<Vec<String>>>,
}

impl ScriptedCamera {
    fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let reply = script[n.min(script.len() - 1)].clone();
                let seen = seen.clone();
                // Each connection on its own thread, so a slow reply does
                // not hold up the client's retry.
                std::thread::spawn(move || serve(stream, reply, &seen));
            }
        });
        Self { url, paths }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

/// One request's head, read byte by byte up to the blank line; `None` when
/// the client closed the connection first.
fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

fn serve(mut stream: TcpStream, reply: Reply, seen: &Mutex<Vec<String>>) {
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    seen.lock().unwrap().push(path.clone());
    let respond = |stream: &mut TcpStream,
                   status: u16,
                   ctype: &str,
                   body: &[u8],
                   declared: usize| {
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let _ = stream.flush();
    };
    match reply {
        Reply::Ok(ctype, body) => respond(&mut stream, 200, ctype, &body, body.len()),
        Reply::Status(code) => respond(&mut stream, code, "text/plain", b"", 0),
        Reply::Slow(wait, body) => {
            std::thread::sleep(wait);
            respond(&mut stream, 200, "image/jpeg", &body, body.len());
        }
        Reply::Loop => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
        }
        Reply::Cut(body) => respond(
            &mut stream,
            200,
            "image/jpeg",
            &body[..body.len() / 2],
            body.len(),
        ),
    }
}

fn frame_jpeg() -> Vec<u8> {
    jpeg(&shot(&MeterLayout::default(), 1.0, (2.0, -1.0), 5), 85)
}

fn truncated_jpeg() -> Vec<u8> {
    let j = frame_jpeg();
    j[..j.len() * 2 / 3].to_vec()
}

fn camera(url: &str, rejected: Option<&std::path::Path>) -> HttpCamera {
    let mut b = HttpCamera::builder(url)
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_millis(400))
        .attempts(3)
        .backoff(Duration::from_millis(10));
    if let Some(dir) = rejected {
        b = b.rejected_dir(dir);
    }
    b.build().unwrap()
}

#[test]
fn captures_a_checked_frame() {
    let cam = ScriptedCamera::start(vec![Reply::Ok("image/jpeg", frame_jpeg())]);
    let mut c = camera(&cam.url, None);
    let frame = c.next_frame().unwrap().unwrap();
    assert_eq!(frame.image.dimensions(), (640, 480));
    assert_eq!(frame.jpeg, frame_jpeg());
    assert!(frame.origin.ends_with("/capture"));
    assert_eq!(cam.paths(), vec!["/capture"]);
}

#[test]
fn retries_500_then_succeeds_and_gives_up_after_the_attempts() {
    let cam = ScriptedCamera::start(vec![
        Reply::Status(500),
        Reply::Ok("image/jpeg", frame_jpeg()),
    ]);
    camera(&cam.url, None).capture().unwrap();
    assert_eq!(cam.paths().len(), 2);

    let cam = ScriptedCamera::start(vec![Reply::Status(503)]);
    let err = camera(&cam.url, None).capture().unwrap_err();
    assert!(
        matches!(
            err,
            VisionError::HttpStatus {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(cam.paths().len(), 3);
}

#[test]
fn client_errors_and_wrong_content_are_not_retried() {
    let cam = ScriptedCamera::start(vec![Reply::Status(404)]);
    let err = camera(&cam.url, None).capture().unwrap_err();
    assert!(
        matches!(
            err,
            VisionError::HttpStatus {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(cam.paths().len(), 1);

    let cam = ScriptedCamera::start(vec![Reply::Ok("text/html", b"<html>login</html>".to_vec())]);
    let err = camera(&cam.url, None).capture().unwrap_err();
    assert!(
        matches!(err, VisionError::ContentType { ref got, .. } if got == "text/html"),
        "{err}"
    );
    assert_eq!(cam.paths().len(), 1);

    let cam = ScriptedCamera::start(vec![Reply::Ok("image/jpeg", frame_jpeg())]);
    let mut small = HttpCamera::builder(&cam.url)
        .max_body(1000)
        .build()
        .unwrap();
    let err = small.capture().unwrap_err();
    assert!(
        matches!(err, VisionError::BodyTooLarge { limit: 1000, .. }),
        "{err}"
    );
}

#[test]
fn a_timeout_is_retried() {
    let cam = ScriptedCamera::start(vec![
        Reply::Slow(Duration::from_millis(1500), frame_jpeg()),
        Reply::Ok("image/jpeg", frame_jpeg()),
    ]);
    let frame = camera(&cam.url, None).capture().unwrap();
    assert_eq!(frame.image.dimensions(), (640, 480));
    assert_eq!(cam.paths().len(), 2);

    let cam = ScriptedCamera::start(vec![Reply::Slow(Duration::from_millis(1500), frame_jpeg())]);
    let err = camera(&cam.url, None).capture().unwrap_err();
    assert!(
        matches!(err, VisionError::Http { attempts: 3, .. }),
        "{err}"
    );
}

#[test]
fn cut_transfers_and_truncated_jpegs_are_rejected_and_kept() {
    let rejected = tempfile::tempdir().unwrap();
    // A transfer cut mid-body, then a good frame.
    let cam = ScriptedCamera::start(vec![
        Reply::Cut(frame_jpeg()),
        Reply::Ok("image/jpeg", frame_jpeg()),
    ]);
    camera(&cam.url, Some(rejected.path())).capture().unwrap();
    assert_eq!(cam.paths().len(), 2);
    assert_eq!(
        std::fs::read_dir(rejected.path()).unwrap().count(),
        1,
        "partial body kept"
    );

    // A complete HTTP answer carrying a truncated JPEG, every time.
    let rejected = tempfile::tempdir().unwrap();
    let cam = ScriptedCamera::start(vec![Reply::Ok("image/jpeg", truncated_jpeg())]);
    let err = camera(&cam.url, Some(rejected.path()))
        .capture()
        .unwrap_err();
    let VisionError::CorruptJpeg {
        kept: Some(kept), ..
    } = &err
    else {
        panic!("expected a corrupt JPEG, got {err}");
    };
    assert_eq!(std::fs::read(kept).unwrap(), truncated_jpeg());
    assert_eq!(
        std::fs::read_dir(rejected.path()).unwrap().count(),
        3,
        "one per attempt"
    );
    assert_eq!(cam.paths().len(), 3);
}

#[test]
fn status_control_and_flash() {
    let cam = ScriptedCamera::start(vec![Reply::Ok(
        "application/json",
        br#"{"framesize":8,"quality":10,"led_intensity":0}"#.to_vec(),
    )]);
    let status = camera(&cam.url, None).status().unwrap();
    assert_eq!(status["framesize"], 8);

    let cam = ScriptedCamera::start(vec![Reply::Ok("text/plain", b"".to_vec())]);
    camera(&cam.url, None).control("framesize", "8").unwrap();
    assert_eq!(cam.paths(), vec!["/control?var=framesize&val=8"]);

    let cam = ScriptedCamera::start(vec![
        Reply::Ok("text/plain", b"".to_vec()),
        Reply::Ok("image/jpeg", frame_jpeg()),
    ]);
    let mut c = HttpCamera::builder(&cam.url)
        .flash(FlashMode::Intensity(200))
        .build()
        .unwrap();
    c.capture().unwrap();
    assert_eq!(
        cam.paths(),
        vec!["/control?var=led_intensity&val=200", "/capture"]
    );

    let cam = ScriptedCamera::start(vec![Reply::Ok("application/json", b"not json".to_vec())]);
    assert!(matches!(
        camera(&cam.url, None).status(),
        Err(VisionError::Json { .. })
    ));
}

#[test]
fn unreachable_camera_is_an_error_after_retries() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = camera(&format!("http://127.0.0.1:{port}"), None)
        .capture()
        .unwrap_err();
    assert!(
        matches!(err, VisionError::Http { attempts: 3, .. }),
        "{err}"
    );
    assert!(HttpCamera::builder("ftp://x").build().is_err());
    assert!(HttpCamera::builder("http://x").attempts(0).build().is_err());
}

/// Issue 17: permanent errors were retried like transient ones (an
/// unresolvable name, a redirect loop), and retry warnings printed the URL
/// twice.
#[test]
fn permanent_failures_are_not_retried() {
    let cam = ScriptedCamera::start(vec![Reply::Loop]);
    let err = camera(&cam.url, None).capture().unwrap_err();
    assert!(
        matches!(err, VisionError::Http { attempts: 1, .. }),
        "{err}"
    );
    // One attempt, with ureq's own redirects (10 by default) behind it.
    assert!(cam.paths().len() <= 11, "{:?}", cam.paths());
    let paths = cam.paths().len();
    assert!(!err.to_string().contains("attempts"), "{err}");

    // `.invalid` never resolves (RFC 2606).
    let err = camera("http://no-such-camera.invalid", None)
        .capture()
        .unwrap_err();
    assert!(
        matches!(err, VisionError::Http { attempts: 1, .. }),
        "{err}"
    );
    assert!(paths > 1, "the loop was followed: {paths}");

    for status in [401, 403, 404] {
        let cam = ScriptedCamera::start(vec![Reply::Status(status)]);
        let err = camera(&cam.url, None).capture().unwrap_err();
        assert!(
            matches!(err, VisionError::HttpStatus { attempts: 1, .. }),
            "{err}"
        );
        assert_eq!(cam.paths().len(), 1);
    }
}

/// A camera that keeps connections open (HTTP/1.1 keep-alive, every request
/// answered with `body`); counts the connections it accepted.
fn keep_alive_camera(body: Vec<u8>) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            *count.lock().unwrap() += 1;
            let body = body.clone();
            std::thread::spawn(move || loop {
                if read_head(&mut stream).is_none() {
                    return;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if stream.write_all(answer.as_bytes()).is_err() || stream.write_all(&body).is_err()
                {
                    return;
                }
            });
        }
    });
    (url, accepted)
}

#[test]
fn a_camera_without_keep_alive_opens_a_connection_per_frame() {
    for (keep, want) in [(true, 1), (false, 3)] {
        let (url, accepted) = keep_alive_camera(frame_jpeg());
        let mut c = HttpCamera::builder(&url).keep_alive(keep).build().unwrap();
        for _ in 0..3 {
            c.capture().unwrap();
        }
        assert_eq!(*accepted.lock().unwrap(), want, "keep_alive({keep})");
    }
}
