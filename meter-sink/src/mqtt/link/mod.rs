//! The connection to the broker: one thread drives rumqttc's event loop
//! (connects, reconnects, pings, reads) and the writer hands it publishes
//! and waits for their PUBACKs.
//!
//! Exactly-once toward the spool rests on three rules:
//! - the session is clean (`clean_session`): after a reconnect rumqttc drops
//!   what it had not sent or not seen acknowledged, so the only copy that is
//!   ever re-sent is the spool's;
//! - publishes are handed to rumqttc only while connected, under the same
//!   lock under which the connection thread, on a disconnect, clears
//!   rumqttc's queue: nothing queued before a disconnect goes out after it;
//! - a PUBLISH that reached the broker but whose PUBACK was lost is found on
//!   the next connect: the sink first reads back its own retained state
//!   messages (the time of the newest reading per meter), and the writer
//!   skips readings the broker already has.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rumqttc::{Client, ConnectionError, LastWill, MqttOptions, QoS, Transport};
use time::OffsetDateTime;

mod worker;

use super::spec::MqttSpec;
use crate::error::SinkError;

/// How long a publish may wait for its PUBACK before the connection is
/// taken for hung and reset.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect delays: doubling from the first to the second.
const RECONNECT: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// One message to publish (QoS 1).
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not connected yet, or reconnecting.
    Down,
    /// Connected; reading back the retained state messages.
    Syncing,
    /// Publishing.
    Ready,
}

/// Why the broker cannot be used.
#[derive(Debug, Clone)]
enum LinkError {
    /// The broker said no (credentials, client id): retrying will not help
    /// until someone changes something.
    Refused(&'static str),
    Lost(Arc<ConnectionError>),
}

#[derive(Debug)]
struct LinkState {
    phase: Phase,
    /// Counts connections; a batch sent in one is lost when it changes.
    epoch: u64,
    error: Option<LinkError>,
    /// Whether the connection thread has tried to connect at least once.
    tried: bool,
    /// Batch of each publish handed to rumqttc and not yet sent, in order
    /// (`None`: the sink's own messages, nobody waits for them).
    queued: VecDeque<Option<u64>>,
    /// Batch of each publish sent and not yet acknowledged, by packet id.
    inflight: HashMap<u16, Option<u64>>,
    /// Acknowledged publishes per batch being waited for.
    acked: HashMap<u64, usize>,
    next_batch: u64,
    /// Capture time of the newest reading per meter on the broker, read at
    /// connect.
    broker_times: HashMap<String, OffsetDateTime>,
    /// The writer gave up waiting: reset the connection.
    reset: bool,
    stop: bool,
}

/// What the connection thread does besides keeping the connection: the
/// sink's own messages and what it receives.
pub(crate) trait Hooks: Send + 'static {
    /// Topic filters to subscribe to after each connect (besides the
    /// sink's own state topics).
    fn subscriptions(&self) -> Vec<String>;
    /// Messages to publish once connected and synchronised (discovery).
    fn on_ready(&self) -> Vec<Out>;
    /// A message on one of the subscriptions; returns messages to publish
    /// (discovery again when Home Assistant comes online).
    fn on_message(&self, topic: &str, payload: &[u8], retained: bool) -> Vec<Out>;
}

pub(crate) struct Shared {
    st: Mutex<LinkState>,
    changed: Condvar,
    url: String,
    keep_alive: Duration,
}

/// The writer's side of the connection.
#[derive(Clone)]
pub(crate) struct Link {
    shared: Arc<Shared>,
    client: Client,
}

/// A connection thread not started yet.
pub(crate) struct Starter {
    connection: rumqttc::Connection,
    link: Link,
    spec: MqttSpec,
}

/// Publishes handed to rumqttc, to wait for.
#[must_use]
pub(crate) struct Sent {
    batch: u64,
    epoch: u64,
    count: usize,
}

impl Link {
    /// The client and its (not yet running) connection thread.
    pub fn new(spec: &MqttSpec) -> Result<(Link, Starter), SinkError> {
        let broker = spec.broker()?;
        let mut options = MqttOptions::new(spec.client_id(), broker.host, broker.port);
        options
            .set_keep_alive(spec.keep_alive())
            .set_clean_session(true)
            .set_max_packet_size(256 * 1024, 256 * 1024)
            .set_request_channel_capacity(4096)
            .set_last_will(LastWill::new(
                spec.status_topic(),
                "offline",
                QoS::AtLeastOnce,
                true,
            ));
        if let (Some(user), Some(password)) = (&spec.user, &spec.password) {
            options.set_credentials(user, password);
        } else if let Some(user) = &spec.user {
            options.set_credentials(user, "");
        }
        if broker.tls {
            options.set_transport(Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(tls_config(spec)?)),
            ));
        }
        let (client, mut connection) = Client::new(options, 4096);
        connection
            .eventloop
            .network_options
            .set_connection_timeout(5);
        let link = Link {
            shared: Arc::new(Shared {
                st: Mutex::new(LinkState {
                    phase: Phase::Down,
                    epoch: 0,
                    error: None,
                    tried: false,
                    queued: VecDeque::new(),
                    inflight: HashMap::new(),
                    acked: HashMap::new(),
                    next_batch: 0,
                    broker_times: HashMap::new(),
                    reset: false,
                    stop: false,
                }),
                changed: Condvar::new(),
                url: spec.url.clone(),
                keep_alive: spec.keep_alive(),
            }),
            client,
        };
        Ok((
            link.clone(),
            Starter {
                connection,
                link,
                spec: spec.clone(),
            },
        ))
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.shared.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// Waits (up to `wait`, only while a first connection attempt is under
    /// way or the sink is synchronising) until the link is ready, then hands
    /// the messages `build` makes to rumqttc. `build` sees the broker's
    /// newest capture time per meter and may return nothing.
    pub fn send<F>(&self, wait: Duration, build: F) -> Result<Sent, SinkError>
    where
        F: FnOnce(&HashMap<String, OffsetDateTime>) -> Vec<Out>,
    {
        let deadline = Instant::now() + wait;
        let mut st = self.lock();
        while st.phase != Phase::Ready && (st.phase == Phase::Syncing || !st.tried) && !st.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self.wait(st, left);
        }
        if st.phase != Phase::Ready {
            return Err(self.not_ready(&st));
        }
        let messages = build(&st.broker_times);
        let batch = st.next_batch;
        st.next_batch += 1;
        st.acked.insert(batch, 0);
        let count = messages.len();
        self.enqueue(&mut st, messages, Some(batch))?;
        Ok(Sent {
            batch,
            epoch: st.epoch,
            count,
        })
    }

    /// Waits until the broker acknowledged every message of `sent`; on
    /// failure, says how many of them (the first ones) it did acknowledge.
    pub fn confirm(&self, sent: Sent) -> Result<(), (usize, SinkError)> {
        let mut st = self.lock();
        let mut deadline = Instant::now() + ACK_TIMEOUT;
        let mut reset_asked = false;
        let result = loop {
            let acked = st.acked.get(&sent.batch).copied().unwrap_or(0);
            if acked >= sent.count {
                break Ok(());
            }
            if st.epoch != sent.epoch {
                let mut err = self.not_ready(&st);
                if let SinkError::MqttUnreachable { what, .. } = &mut err {
                    *what = format!(
                        "connection lost before the broker confirmed {} of {} messages",
                        sent.count - acked,
                        sent.count
                    );
                }
                break Err((acked, err));
            }
            let now = Instant::now();
            if now >= deadline {
                if reset_asked {
                    log::error!(
                        "MQTT broker at {}: no answer and the connection did not reset; the unconfirmed readings stay in the spool and may reach the broker twice",
                        self.shared.url
                    );
                    break Err((
                        acked,
                        SinkError::MqttUnreachable {
                            url: self.url(),
                            what: "no acknowledgement".into(),
                            source: None,
                        },
                    ));
                }
                log::warn!(
                    "MQTT broker at {}: no acknowledgement within {ACK_TIMEOUT:?}; reconnecting",
                    self.shared.url
                );
                // The connection thread resets at its next event (a ping
                // at the latest).
                st.reset = true;
                reset_asked = true;
                // The connection thread notices the request at its next event:
                // a ping comes at the latest after one keep-alive.
                deadline = now + 2 * self.shared.keep_alive;
            }
            st = self.wait(st, deadline.saturating_duration_since(now));
        };
        st.acked.remove(&sent.batch);
        result
    }

    /// Publishes the offline status and disconnects (at most `wait` for the
    /// broker's acknowledgement); the connection thread then ends.
    pub fn shutdown(&self, offline: Out, wait: Duration) {
        let sent = self.send(Duration::ZERO, |_| vec![offline]);
        if let Ok(sent) = sent {
            let st = self.lock();
            let deadline = Instant::now() + wait;
            let mut st = st;
            while st.acked.get(&sent.batch).copied().unwrap_or(0) < sent.count
                && st.epoch == sent.epoch
            {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = self.wait(st, left);
            }
            st.acked.remove(&sent.batch);
        }
        let mut st = self.lock();
        st.stop = true;
        // Only a connected client sends DISCONNECT (which keeps the broker
        // from publishing the will: offline was published above).
        let _ = self.client.try_disconnect();
        self.shared.changed.notify_all();
    }

    fn wait<'a>(
        &self,
        st: MutexGuard<'a, LinkState>,
        timeout: Duration,
    ) -> MutexGuard<'a, LinkState> {
        self.shared
            .changed
            .wait_timeout(st, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    fn not_ready(&self, st: &LinkState) -> SinkError {
        match &st.error {
            Some(LinkError::Refused(reason)) => SinkError::MqttRefused {
                url: self.url(),
                reason,
            },
            Some(LinkError::Lost(e)) => SinkError::MqttUnreachable {
                url: self.url(),
                what: "unreachable".into(),
                source: Some(e.clone()),
            },
            None => SinkError::MqttUnreachable {
                url: self.url(),
                what: match st.phase {
                    Phase::Syncing => "connected but still reading back its state",
                    _ => "not connected yet",
                }
                .into(),
                source: None,
            },
        }
    }

    /// Hands messages to rumqttc (in order, remembering whose they are).
    /// Only called with the lock held and while connected.
    fn enqueue(
        &self,
        st: &mut LinkState,
        messages: Vec<Out>,
        batch: Option<u64>,
    ) -> Result<(), SinkError> {
        for m in messages {
            self.client
                .try_publish(m.topic, QoS::AtLeastOnce, m.retain, m.payload)
                .map_err(|e| SinkError::MqttUnreachable {
                    url: self.url(),
                    what: format!("request queue: {e}"),
                    source: None,
                })?;
            st.queued.push_back(batch);
        }
        Ok(())
    }
}

/// TLS with the ring provider: the public web roots, plus the broker's
/// own authority from `ca_file`.
fn tls_config(spec: &MqttSpec) -> Result<rustls::ClientConfig, SinkError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &spec.ca_file {
        let bad = |problem: String| SinkError::Config {
            field: "ca_file",
            problem: format!("{}: {problem}", path.display()),
        };
        let certs: Vec<_> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Config {
            field: "url",
            problem: format!("TLS: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
