//! A local HTTP receiver for webhooks (tiny_http): records what arrives and
//! answers with a status the test sets, or hangs.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST`, ...
    pub method: String,
    /// Path and query.
    pub url: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// What was answered.
    pub status: u16,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The receiver; stops when dropped.
pub struct Recorder {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The status answered.
    pub status: Arc<AtomicU16>,
    /// Whether to hang instead of answering.
    pub hang: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Recorder {
    /// Starts one answering 200.
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let hang = Arc::new(AtomicBool::new(false));
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|_| {
                let (server, status, hang, received, stop) = (
                    server.clone(),
                    status.clone(),
                    hang.clone(),
                    received.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(50))
                        else {
                            continue;
                        };
                        while hang.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        let mut body = Vec::new();
                        let _ = req.as_reader().read_to_end(&mut body);
                        let code = status.load(Ordering::SeqCst);
                        received.lock().unwrap().push(Received {
                            method: req.method().to_string(),
                            url: req.url().to_owned(),
                            headers: testkit::http::request_headers(&req),
                            body,
                            status: code,
                        });
                        // The answer quotes the path back (secrets and all), as some
                        // servers' error pages do.
                        let path = req.url().to_owned();
                        let _ = req
                            .respond(tiny_http::Response::from_string(path).with_status_code(code));
                    }
                })
            })
            .collect();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            status,
            hang,
            received,
            stop,
            threads,
        }
    }

    /// Everything received.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// What was received and answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits until `n` requests were accepted, or panics after 30 s.
    pub fn wait_accepted(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {n} requests, got {}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.hang.store(false, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
