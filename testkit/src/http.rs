//! Small fake HTTP servers for what a real database never does: answer a
//! write with a login page, or accept a connection and never answer.

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query.
    pub url: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
}

/// A request's headers: names in lower case, and values.
pub fn request_headers(req: &tiny_http::Request) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_owned(),
            )
        })
        .collect()
}

/// A server answering every request with one fixed answer.
pub struct FakeHttp {
    /// Base URL.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: Arc<tiny_http::Server>,
}

impl FakeHttp {
    /// Answers `status` with `content_type` (none when empty), `body` and
    /// the extra `headers`.
    pub fn start(status: u16, content_type: &str, body: &str, headers: &[(&str, &str)]) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut answer_headers: Vec<tiny_http::Header> = headers
            .iter()
            .map(|(k, v)| tiny_http::Header::from_bytes(*k, *v).unwrap())
            .collect();
        if !content_type.is_empty() {
            answer_headers
                .push(tiny_http::Header::from_bytes("Content-Type", content_type).unwrap());
        }
        let body = body.to_owned();
        {
            let (server, seen) = (server.clone(), seen.clone());
            std::thread::spawn(move || {
                for mut req in server.incoming_requests() {
                    let mut ignored = Vec::new();
                    let _ = std::io::Read::read_to_end(req.as_reader(), &mut ignored);
                    seen.lock().unwrap().push(Seen {
                        url: req.url().to_owned(),
                        headers: request_headers(&req),
                    });
                    let mut response =
                        tiny_http::Response::from_string(body.clone()).with_status_code(status);
                    for h in &answer_headers {
                        response.add_header(h.clone());
                    }
                    let _ = req.respond(response);
                }
            });
        }
        Self { url, seen, server }
    }

    /// The requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A server that accepts connections and never answers (a hung database).
pub struct Hung {
    /// Base URL.
    pub url: String,
    /// The accepted connections, held open.
    pub accepted: Arc<Mutex<Vec<TcpStream>>>,
}

impl Hung {
    /// Starts listening on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let held = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                held.lock().unwrap().push(stream);
            }
        });
        Self { url, accepted }
    }
}
