//! `meter serve`: a local web page over the meter-reader service.
//!
//! - the overview of every meter (the last frame with its marks and digit
//!   boxes, the digits read, the stored and raw value, the status, the
//!   camera's health), refreshed by polling;
//! - each meter's history from the file sinks (an SVG chart, consumption
//!   per day, the readings not stored with the digit images the reader
//!   kept of them), and "set value";
//! - the labeller of the `unsure/` queue (the same
//!   [`Session`](meter_service::label::Session) as `meter classify`), a
//!   retrain button and the model versions;
//! - the box editor (drag and resize the digit boxes and marks, propose,
//!   save into the config file with comments kept);
//! - a JSON API and `/metrics` in the Prometheus text format.
//!
//! Security: it listens on 127.0.0.1 unless told otherwise, and elsewhere
//! only with a token; every state-changing request is a POST that passes
//! the token (when one is set) and a same-origin check; meters are looked up
//! by name in the config, never used as paths. See `docs/web.md`.

#![deny(missing_docs)]

mod app;
mod editor;
mod history;
mod html;
mod http;
mod kept;
mod label;
mod pages;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use meter_service::config::{ResolvedConfig, ServeConfig};
use meter_service::live::Live;
use meter_service::Reconfigure;

pub use app::App;

/// What went wrong starting the server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The listen address is not an address.
    #[error("serve.listen {listen:?}: not an address like 127.0.0.1:8090")]
    BadAddress {
        /// The address as given.
        listen: String,
    },
    /// Listening beyond this machine without a token.
    #[error(
        "serve.listen {listen}: listening beyond this machine needs a token \
         (`token_env = \"VAR\"` or `token` in [serve]); without one the page \
         would let anyone on the network change the config"
    )]
    NoToken {
        /// The address.
        listen: SocketAddr,
    },
    /// The port could not be opened.
    #[error("serve.listen {listen}: cannot listen")]
    Listen {
        /// The address.
        listen: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Threads answering requests (each request is short; the frame and the
/// overview are the slow ones).
pub const THREADS: usize = 4;

/// A running web server; stopped when dropped.
pub struct Server {
    http: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

/// Checks `serve` (address, token) without opening anything.
pub fn check(serve: &ServeConfig) -> Result<SocketAddr, WebError> {
    let listen: SocketAddr = serve.listen.parse().map_err(|_| WebError::BadAddress {
        listen: serve.listen.clone(),
    })?;
    if !listen.ip().is_loopback() && serve.token.is_none() {
        return Err(WebError::NoToken { listen });
    }
    Ok(listen)
}

impl Server {
    /// Serves `cfg`'s meters on `serve.listen`. `live` is what the service
    /// last saw (empty when no service runs here); `service` is where a
    /// service running here (`meter run`) takes saved boxes, `None` when
    /// none runs.
    pub fn start(
        cfg: ResolvedConfig,
        serve: &ServeConfig,
        live: Arc<Live>,
        service: Option<Arc<Reconfigure>>,
    ) -> Result<Self, WebError> {
        let listen = check(serve)?;
        let listener =
            TcpListener::bind(listen).map_err(|source| WebError::Listen { listen, source })?;
        // Accepted sockets inherit TCP_NODELAY: a response written as header
        // then body is not held back by Nagle's algorithm waiting for the
        // client's delayed ACK (40 ms a frame).
        rustix::net::sockopt::set_tcp_nodelay(&listener, true).map_err(|e| WebError::Listen {
            listen,
            source: e.into(),
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| WebError::Listen { listen, source })?;
        let http = Arc::new(
            tiny_http::Server::from_listener(listener, None).map_err(|e| WebError::Listen {
                listen,
                source: std::io::Error::other(e.to_string()),
            })?,
        );
        let app = Arc::new(App::new(cfg, live, serve.token.clone(), service));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(THREADS);
        for i in 0..THREADS {
            let http = http.clone();
            let app = app.clone();
            let stopping = stopping.clone();
            let t = std::thread::Builder::new()
                .name(format!("web-{i}"))
                .spawn(move || loop {
                    match http.recv() {
                        Ok(req) => app.handle(req),
                        Err(_) if stopping.load(Ordering::Relaxed) => break,
                        Err(e) => log::warn!("web: {e}"),
                    }
                })
                .map_err(|source| WebError::Listen { listen, source })?;
            threads.push(t);
        }
        log::info!("web page on http://{addr}/");
        Ok(Self {
            http,
            stopping,
            addr,
            threads,
        })
    }

    /// The address it listens on (the port chosen when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops answering and ends the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        for _ in 0..self.threads.len() {
            self.http.unblock();
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::error!("a web thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
