//! A private Mosquitto broker per test (Debian's `mosquitto`), on a free
//! loopback port, with its persistence, log and password file in a
//! temporary directory; and an observing client that records everything it
//! receives.
//!
//! When the binary is missing, `scripts/setup/mosquitto.sh` is run once to
//! install it; only if that fails too does the test skip, loudly.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, Incoming, MqttOptions, Outgoing, QoS};

use crate::ports::free_port;
use crate::servers::binary_from;

/// How the broker is set up.
#[derive(Default)]
pub struct Setup {
    /// A user and password; anonymous clients are refused when set.
    pub user: Option<(String, String)>,
    /// TLS with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A private mosquitto.
pub struct Mosquitto {
    binary: PathBuf,
    dir: tempfile::TempDir,
    /// Its port.
    pub port: u16,
    tls: bool,
    child: Option<Child>,
}

impl Mosquitto {
    /// Anonymous clients welcome; `None` if mosquitto is unavailable.
    pub fn start() -> Option<Self> {
        Self::start_with(Setup::default())
    }

    /// Starts one as set up.
    pub fn start_with(setup: Setup) -> Option<Self> {
        let binary = binary_from(&["mosquitto"], "mosquitto.sh")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let mut config = format!(
            "listener {port} 127.0.0.1\n\
             # Root keeps root: the temporary directory is not the mosquitto user's.\n\
             user root\n\
             persistence true\n\
             persistence_location {d}/\n\
             # Save after every change, so that a SIGKILL loses as little as possible.\n\
             autosave_on_changes true\n\
             autosave_interval 1\n\
             log_dest file {d}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             connection_messages true\n\
             # Keep QoS 0 messages for a disconnected persistent session too.\n\
             queue_qos0_messages true\n"
        );
        match &setup.user {
            Some((user, password)) => {
                let file = dir.path().join("passwd");
                let tool = binary_from(&["mosquitto_passwd"], "mosquitto.sh")?;
                let status = Command::new(tool)
                    .arg("-b")
                    .arg("-c")
                    .arg(&file)
                    .arg(user)
                    .arg(password)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success(), "mosquitto_passwd failed");
                config += &format!("allow_anonymous false\npassword_file {}\n", file.display());
            }
            None => config += "allow_anonymous true\n",
        }
        if let Some((cert, key)) = &setup.tls {
            config += &format!("certfile {}\nkeyfile {}\n", cert.display(), key.display());
        }
        std::fs::write(dir.path().join("mosquitto.conf"), config).unwrap();
        let mut broker = Self {
            binary,
            dir,
            port,
            tls: setup.tls.is_some(),
            child: None,
        };
        broker.restart();
        Some(broker)
    }

    /// `mqtt://127.0.0.1:<port>` (`mqtts://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// (Re)starts it on the same port and persistence.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "mosquitto already running");
        let mut child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mosquitto exited during start-up: {status}\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen within 20 s"
            );
            thread::sleep(Duration::from_millis(5));
        }
        self.child = Some(child);
    }

    /// SIGKILL, no clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The broker's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message received.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Sent because it was retained when we subscribed.
    pub retain: bool,
}

impl Received {
    /// The payload as JSON (`null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}

type Inbox = Arc<(Mutex<Vec<Received>>, Condvar)>;

/// A client that subscribes and records what it receives; reconnects by
/// itself.
pub struct Observer {
    client: Client,
    inbox: Inbox,
    stop: Arc<AtomicBool>,
}

impl Observer {
    /// Subscribes to `filters` (QoS 1) with a clean session.
    pub fn new(url: &str, filters: &[&str]) -> Self {
        Self::with_session(url, filters, None)
    }

    /// With `Some(id)`: a persistent session under that client id, so the
    /// broker keeps messages for it while it is disconnected (and, with
    /// persistence, across broker restarts), subscribed at QoS 0: the broker
    /// never delivers a message to it twice, so every copy it receives is
    /// one the publisher sent.
    pub fn with_session(url: &str, filters: &[&str], id: Option<&str>) -> Self {
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        let client_id = id.map_or_else(|| format!("observer-{}", free_port()), str::to_owned);
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(id.is_none())
            .set_max_packet_size(1 << 20, 1 << 20);
        let qos = if id.is_some() {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let (client, mut connection) = Client::new(options, 1000);
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let inbox: Inbox = Arc::default();
        let subscribed = Arc::new((Mutex::new(false), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (inbox, client, subscribed, stop) = (
                inbox.clone(),
                client.clone(),
                subscribed.clone(),
                stop.clone(),
            );
            thread::spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                match connection.recv() {
                    Ok(Ok(Event::Incoming(Incoming::ConnAck(ack)))) => {
                        // A persistent session keeps its subscriptions.
                        if !ack.session_present {
                            for f in &filters {
                                let _ = client.try_subscribe(f.clone(), qos);
                            }
                        }
                    }
                    Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => {
                        *subscribed.0.lock().unwrap() = true;
                        subscribed.1.notify_all();
                    }
                    Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => {
                        inbox.0.lock().unwrap().push(Received {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                        inbox.1.notify_all();
                    }
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => return,
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => thread::sleep(Duration::from_millis(20)),
                    Err(_) => return,
                }
            });
        }
        let (lock, cv) = &*subscribed;
        let guard = cv
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(10), |s| !*s)
            .unwrap()
            .0;
        assert!(*guard, "observer could not subscribe to {url}");
        drop(guard);
        Self {
            client,
            inbox,
            stop,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.inbox.0.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received (at most `timeout`).
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> bool {
        let (lock, cv) = &*self.inbox;
        let guard = cv
            .wait_timeout_while(lock.lock().unwrap(), timeout, |r| !done(r))
            .unwrap()
            .0;
        done(&guard)
    }

    /// Publishes (QoS 1).
    pub fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .unwrap();
    }

    /// The retained messages now on the broker under `filters`: a fresh
    /// client subscribes and collects until the marker it publishes after
    /// subscribing comes back (the broker sends retained messages first).
    pub fn retained(url: &str, filters: &[&str]) -> Vec<Received> {
        let marker = format!("test-marker/{}", free_port());
        let mut all: Vec<&str> = filters.to_vec();
        all.push(&marker);
        let o = Self::new(url, &all);
        o.publish(&marker, b"end", false);
        assert!(
            o.wait_until(Duration::from_secs(10), |r| r
                .iter()
                .any(|m| m.topic == marker)),
            "marker did not come back"
        );
        o.received()
            .into_iter()
            .filter(|m| m.retain && m.topic != marker)
            .collect()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.client.try_disconnect();
    }
}
