//! Free loopback ports.

use std::net::TcpListener;
use std::sync::Mutex;

/// A free loopback port (bound and released; fine for tests).
pub fn free_port() -> u16 {
    // Never the same port twice in this process: a server that is down for
    // a restart test must get its port back, not find it handed to another
    // test's server (whose answers would then look like its own).
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}
