//! A local fake of the Telegram Bot API on a loopback port (tiny_http):
//! records every request, checks that a photo part is a whole JPEG, blocks
//! on `getUpdates` like the real one, and injects faults.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A fault for the next call of a method.
#[derive(Debug, Clone)]
pub enum Fault {
    /// An error status with Telegram's JSON (and `retry_after`).
    Status(u16, &'static str, Option<u64>),
    /// Accept, then answer nothing for this long.
    Hang(Duration),
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `sendMessage`, `sendPhoto`, `getUpdates`.
    pub method: String,
    /// The JSON body, or the multipart form's text fields as an object.
    pub body: Value,
    /// The photo part, when there was one.
    pub photo: Option<Vec<u8>>,
    /// What the fake answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    faults: VecDeque<(String, Fault)>,
    updates: Vec<Value>,
    next_update: i64,
    message_id: i64,
}

/// The fake server; stops when dropped.
pub struct FakeTelegram {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    token: String,
    state: Arc<(Mutex<State>, Condvar)>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FakeTelegram {
    /// Starts a fake that accepts `token`.
    pub fn start(token: &str) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        state.0.lock().unwrap().next_update = 100;
        let stop = Arc::new(AtomicBool::new(false));
        // Several workers: a long poll and a hang each hold one.
        let threads = (0..6)
            .map(|_| {
                let (server, state, stop, token) = (
                    server.clone(),
                    state.clone(),
                    stop.clone(),
                    token.to_owned(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(50)) {
                            handle(req, &state, &token, &stop);
                        }
                    }
                })
            })
            .collect();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            token: token.to_owned(),
            state,
            stop,
            threads,
        }
    }

    /// Injects a fault into the next call of `method`.
    pub fn fault(&self, method: &str, fault: Fault) {
        self.state
            .0
            .lock()
            .unwrap()
            .faults
            .push_back((method.to_owned(), fault));
    }

    /// A message from `chat` waiting in `getUpdates`.
    pub fn send_update(&self, chat: i64, text: &str) {
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap();
        let id = s.next_update;
        s.next_update += 1;
        s.updates.push(json!({
            "update_id": id,
            "message": {"message_id": id, "date": 0, "chat": {"id": chat, "type": "private", "username": format!("user{chat}")}, "text": text}
        }));
        cv.notify_all();
    }

    /// Requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.0.lock().unwrap().requests.clone()
    }

    /// Waits until `done` holds for the requests, or panics after 20 s.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.requests();
            if done(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "waited 20 s for {what}; requests: {r:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The token it accepts.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.state.1.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn handle(
    mut req: tiny_http::Request,
    state: &(Mutex<State>, Condvar),
    token: &str,
    stop: &AtomicBool,
) {
    let url = req.url().to_owned();
    let (got_token, method) = url
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
        .map(|(t, m)| (t.to_owned(), m.to_owned()))
        .unwrap_or_default();
    let content_type = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| h.value.as_str().to_owned())
        .unwrap_or_default();
    let mut raw = Vec::new();
    let _ = req.as_reader().read_to_end(&mut raw);
    let (body, photo) = if let Some(b) = content_type.split("boundary=").nth(1) {
        parse_multipart(&raw, b)
    } else {
        (serde_json::from_slice(&raw).unwrap_or(Value::Null), None)
    };
    let (lock, cv) = state;
    let fault = {
        let mut s = lock.lock().unwrap();
        let i = s.faults.iter().position(|(m, _)| *m == method);
        i.and_then(|i| s.faults.remove(i)).map(|(_, f)| f)
    };
    let (status, answer) = match fault {
        _ if got_token != token => (
            401,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
        ),
        Some(Fault::Hang(d)) => {
            // Recorded on arrival: the client gives up before the answer.
            lock.lock().unwrap().requests.push(Request {
                method: method.clone(),
                body: body.clone(),
                photo: photo.clone(),
                status: 504,
            });
            let until = Instant::now() + d;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = req.respond(tiny_http::Response::from_string("").with_status_code(504));
            return;
        }
        Some(Fault::Status(code, description, retry_after)) => {
            let mut v = json!({"ok": false, "error_code": code, "description": description});
            if let Some(s) = retry_after {
                v["parameters"] = json!({"retry_after": s});
            }
            (code, v)
        }
        None => match method.as_str() {
            "sendMessage" | "sendPhoto" => {
                if method == "sendPhoto" && !photo.as_deref().is_some_and(whole_jpeg) {
                    (
                        400,
                        json!({"ok": false, "error_code": 400, "description": "Bad Request: IMAGE_PROCESS_FAILED"}),
                    )
                } else {
                    let mut s = lock.lock().unwrap();
                    s.message_id += 1;
                    (
                        200,
                        json!({"ok": true, "result": {"message_id": s.message_id}}),
                    )
                }
            }
            "getUpdates" => {
                let offset = body["offset"].as_i64().unwrap_or(0);
                let wait = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0));
                let deadline = Instant::now() + wait;
                let mut s = lock.lock().unwrap();
                // Asking for `offset` confirms everything before it.
                s.updates
                    .retain(|u| u["update_id"].as_i64().unwrap() >= offset);
                while s.updates.is_empty()
                    && Instant::now() < deadline
                    && !stop.load(Ordering::SeqCst)
                {
                    s = cv.wait_timeout(s, Duration::from_millis(50)).unwrap().0;
                }
                (200, json!({"ok": true, "result": s.updates.clone()}))
            }
            _ => (
                404,
                json!({"ok": false, "error_code": 404, "description": "Not Found"}),
            ),
        },
    };
    lock.lock().unwrap().requests.push(Request {
        method,
        body,
        photo,
        status,
    });
    let resp = tiny_http::Response::from_string(answer.to_string())
        .with_status_code(status)
        .with_header(
            "Content-Type: application/json"
                .parse::<tiny_http::Header>()
                .unwrap(),
        );
    let _ = req.respond(resp);
}

/// A JPEG from its start marker to its end marker that decodes.
pub fn whole_jpeg(b: &[u8]) -> bool {
    b.starts_with(&[0xFF, 0xD8])
        && b.ends_with(&[0xFF, 0xD9])
        && image::load_from_memory_with_format(b, image::ImageFormat::Jpeg).is_ok()
}

/// The text fields (as a JSON object) and the `photo` file of a form.
fn parse_multipart(raw: &[u8], boundary: &str) -> (Value, Option<Vec<u8>>) {
    let delimiter = format!("--{boundary}");
    let mut fields = serde_json::Map::new();
    let mut photo = None;
    let mut rest = raw;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let body_start = head_end + 4;
        let Some(next) = find(&rest[body_start..], format!("\r\n{delimiter}").as_bytes()) else {
            break;
        };
        let content = &rest[body_start..body_start + next];
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default();
        if head.contains("filename=") {
            photo = Some(content.to_vec());
        } else {
            fields.insert(
                name.to_owned(),
                Value::String(String::from_utf8_lossy(content).to_string()),
            );
        }
        rest = &rest[body_start + next + 2..];
    }
    (Value::Object(fields), photo)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
