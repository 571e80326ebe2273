//! The connection thread: drives rumqttc's event loop, reconnects with
//! backoff, keeps the bookkeeping of what the broker acknowledged, reads
//! back the retained state at connect and passes the rest to the [`Hooks`].

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rumqttc::{ConnectReturnCode, ConnectionError, Event, Incoming, Outgoing, QoS};

use super::super::state;
use super::{Hooks, Link, LinkError, Out, Phase, Starter, RECONNECT};

impl Starter {
    /// Runs the connection thread.
    pub fn start(self, hooks: impl Hooks) {
        let name = format!("mqtt {}", self.spec.url);
        let spawned = thread::Builder::new()
            .name(name)
            .spawn(move || Worker::new(self, hooks).run());
        if let Err(e) = spawned {
            log::error!("cannot start the MQTT connection thread: {e}");
        }
    }
}

struct Worker<H> {
    connection: rumqttc::Connection,
    link: Link,
    hooks: H,
    state_prefix: String,
    sync_topic: String,
    state_filter: String,
    backoff: Duration,
}

impl<H: Hooks> Worker<H> {
    fn new(s: Starter, hooks: H) -> Self {
        Self {
            state_prefix: format!("{}/", s.spec.topic_prefix),
            sync_topic: format!("{}/_sync/{}", s.spec.topic_prefix, s.spec.client_id()),
            state_filter: s.spec.meter_topic("+", "state"),
            connection: s.connection,
            link: s.link,
            hooks,
            backoff: RECONNECT.0,
        }
    }

    fn run(mut self) {
        loop {
            if self.link.lock().stop {
                return;
            }
            match self.connection.recv() {
                Ok(Ok(event)) => {
                    if !self.event(event) {
                        return;
                    }
                }
                Ok(Err(e)) => {
                    self.down(e);
                    self.pause();
                }
                Err(_) => return,
            }
            let reset = std::mem::take(&mut self.link.lock().reset);
            if reset {
                self.down(ConnectionError::FlushTimeout);
            }
        }
    }

    /// Sleeps the reconnect delay (waking early to stop).
    fn pause(&mut self) {
        let until = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(RECONNECT.1);
        let mut st = self.link.lock();
        while !st.stop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self.link.wait(st, left);
        }
    }

    /// The connection failed or dropped: forget what was under way.
    fn down(&mut self, e: ConnectionError) {
        let mut st = self.link.lock();
        // Under the lock no writer can queue: clear what rumqttc still
        // holds (sent and unacknowledged, or never sent). The clean session
        // drops it at the next connect; the spool has the readings.
        self.connection.eventloop.clean();
        // rumqttc keeps a packet-id collision across `clean` and would stall
        // the next session on it; in a clean session it has no meaning.
        self.connection.eventloop.state.collision = None;
        st.queued.clear();
        st.inflight.clear();
        let was = st.phase;
        st.phase = Phase::Down;
        st.tried = true;
        st.epoch += 1;
        let error = match &e {
            ConnectionError::ConnectionRefused(code) => match refusal(*code) {
                Some(reason) => LinkError::Refused(reason),
                None => LinkError::Lost(Arc::new(e)),
            },
            _ => LinkError::Lost(Arc::new(e)),
        };
        let url = &self.link.shared.url;
        let same_kind = matches!(
            (&st.error, &error),
            (Some(LinkError::Refused(a)), LinkError::Refused(b)) if a == b
        ) || matches!(
            (&st.error, &error),
            (Some(LinkError::Lost(_)), LinkError::Lost(_))
        );
        match &error {
            // One line per change, not one per retry; at info, since the
            // spool's delivery reports the refusal as the error it is for
            // the readings waiting.
            LinkError::Refused(reason) if !same_kind => log::info!(
                "MQTT broker at {url} refused the connection: {reason}; retrying every {:?}",
                RECONNECT.1
            ),
            LinkError::Lost(e) if was != Phase::Down || !same_kind => {
                log::warn!(
                    "MQTT broker at {url}: {}; reconnecting",
                    crate::spooling::ErrorChain(&**e)
                )
            }
            _ => log::debug!("MQTT broker at {url}: still unavailable"),
        }
        st.error = Some(error);
        self.link.shared.changed.notify_all();
    }

    /// Handles one event; false to stop.
    fn event(&mut self, event: Event) -> bool {
        match event {
            Event::Incoming(Incoming::ConnAck(_)) => self.connected(),
            Event::Incoming(Incoming::Publish(p)) => self.message(&p.topic, &p.payload, p.retain),
            Event::Incoming(Incoming::PubAck(ack)) => {
                let mut st = self.link.lock();
                if let Some(Some(batch)) = st.inflight.remove(&ack.pkid) {
                    if let Some(n) = st.acked.get_mut(&batch) {
                        *n += 1;
                    }
                    self.link.shared.changed.notify_all();
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let mut st = self.link.lock();
                match st.queued.pop_front() {
                    Some(batch) => {
                        st.inflight.insert(pkid, batch);
                    }
                    None => log::error!("MQTT: a publish went out that the sink did not queue"),
                }
            }
            Event::Outgoing(Outgoing::AwaitAck(_)) => {
                // Only when the broker acknowledges out of order, which MQTT
                // forbids for QoS 1; the packet-id bookkeeping would be off.
                log::warn!(
                    "MQTT broker at {} acknowledged out of order; reconnecting",
                    self.link.shared.url
                );
                self.link.lock().reset = true;
            }
            Event::Outgoing(Outgoing::Disconnect) => return false,
            _ => {}
        }
        true
    }

    fn connected(&mut self) {
        self.backoff = RECONNECT.0;
        let mut st = self.link.lock();
        if st.error.is_some() {
            log::info!("MQTT broker at {}: connected", self.link.shared.url);
        }
        st.phase = Phase::Syncing;
        st.tried = true;
        st.broker_times.clear();
        let online = Out {
            topic: self.online_topic(),
            payload: b"online".to_vec(),
            retain: true,
        };
        let mut filters = vec![self.state_filter.clone(), self.sync_topic.clone()];
        filters.extend(self.hooks.subscriptions());
        let subscribed = self.link.client.try_subscribe_many(
            filters
                .into_iter()
                .map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce)),
        );
        // The broker sends the retained state messages before it handles
        // the marker published after the subscription, so the marker coming
        // back means they have all arrived.
        let marker = Out {
            topic: self.sync_topic.clone(),
            payload: st.epoch.to_string().into_bytes(),
            retain: false,
        };
        let queued = subscribed.map_err(|e| e.to_string()).and_then(|()| {
            self.link
                .enqueue(&mut st, vec![online, marker], None)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = queued {
            log::error!("MQTT: cannot queue the connect messages: {e}");
            st.reset = true;
        }
    }

    fn online_topic(&self) -> String {
        format!("{}status", self.state_prefix)
    }

    fn message(&mut self, topic: &str, payload: &[u8], retained: bool) {
        let mut st = self.link.lock();
        if topic == self.sync_topic {
            if st.phase == Phase::Syncing && payload == st.epoch.to_string().as_bytes() {
                let _ = self.link.client.try_unsubscribe(self.state_filter.clone());
                st.phase = Phase::Ready;
                st.error = None;
                let ready = self.hooks.on_ready();
                if let Err(e) = self.link.enqueue(&mut st, ready, None) {
                    log::error!("MQTT: cannot queue the discovery messages: {e}");
                }
                self.link.shared.changed.notify_all();
            }
            return;
        }
        if let Some(meter) = topic
            .strip_prefix(&self.state_prefix)
            .and_then(|rest| rest.strip_suffix("/state"))
        {
            if st.phase == Phase::Syncing && retained && !meter.contains('/') {
                if let Some(t) = state::message_time(payload) {
                    let newest = st.broker_times.entry(meter.to_owned()).or_insert(t);
                    *newest = (*newest).max(t);
                }
            }
            return;
        }
        drop(st);
        let out = self.hooks.on_message(topic, payload, retained);
        if !out.is_empty() {
            let mut st = self.link.lock();
            if st.phase == Phase::Ready {
                if let Err(e) = self.link.enqueue(&mut st, out, None) {
                    log::error!("MQTT: cannot queue messages: {e}");
                }
            }
        }
    }
}

/// A refusal that retrying will not cure, in words (no secret in them).
fn refusal(code: ConnectReturnCode) -> Option<&'static str> {
    Some(match code {
        ConnectReturnCode::BadUserNamePassword => {
            "bad user name or password; check the sink's `user` and `password`"
        }
        ConnectReturnCode::NotAuthorized => {
            "not authorised (a wrong user name or password, or the broker's access rules); check the sink's `user` and `password`"
        }
        ConnectReturnCode::BadClientId => "client id rejected; check the sink's `client_id`",
        ConnectReturnCode::RefusedProtocolVersion => "the broker does not speak MQTT 3.1.1",
        ConnectReturnCode::ServiceUnavailable | ConnectReturnCode::Success => return None,
    })
}
