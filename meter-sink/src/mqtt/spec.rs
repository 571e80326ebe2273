//! The MQTT sink's configuration (`[[sink]] type = "mqtt"`) and the checks a
//! config loader runs on it before anything connects.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ha::{self, DeviceClass};
use crate::error::SinkError;

/// `[[sink]] type = "mqtt"`: where to publish and what.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSpec {
    /// `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]`
    /// (TLS, default port 8883). No user, path or query in it.
    pub url: String,
    /// User name, if the broker wants one.
    #[serde(default)]
    pub user: Option<String>,
    /// Password (with `user`). Never logged or shown in errors.
    #[serde(default)]
    pub password: Option<String>,
    /// MQTT client id (default `meter-reader-<topic_prefix>`). Two clients
    /// with the same id throw each other off the broker.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topics start with this (default `meter-reader`): state at
    /// `<prefix>/<meter>/state`, availability at `<prefix>/status`.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Whether state messages are retained (default true), so that a
    /// client that subscribes later sees the last state at once.
    #[serde(default = "yes")]
    pub retain: bool,
    /// Seconds between keep-alive pings (default 30). The broker publishes
    /// `offline` when it has heard nothing for 1.5 times this.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: u16,
    /// PEM file with the certificate authority of an `mqtts://` broker
    /// with a private certificate (the public web roots are always trusted).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Home Assistant discovery.
    #[serde(default)]
    pub discovery: DiscoverySpec,
    /// Commands received from MQTT (off unless enabled).
    #[serde(default)]
    pub commands: CommandsSpec,
}

/// `discovery = { ... }`: Home Assistant MQTT discovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySpec {
    /// Publish discovery configs (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Home Assistant's discovery prefix (default `homeassistant`).
    #[serde(default = "default_discovery_prefix")]
    pub prefix: String,
    /// One config per entity (`<prefix>/<platform>/<device>/<entity>/config`)
    /// for Home Assistant before 2024.11, instead of one per device.
    #[serde(default)]
    pub per_entity: bool,
    /// Device class per meter name, for units that fit several (`m³` is
    /// gas or water): `device_class = { cellar = "gas" }`.
    #[serde(default)]
    pub device_class: BTreeMap<String, DeviceClass>,
}

impl Default for DiscoverySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: default_discovery_prefix(),
            per_entity: false,
            device_class: BTreeMap::new(),
        }
    }
}

/// `commands = { ... }`: what the sink accepts from MQTT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsSpec {
    /// `<prefix>/<meter>/set_value` with a number: set the stored value.
    #[serde(default)]
    pub set_value: bool,
    /// `<prefix>/<meter>/read_now`: take a reading now (also a "Read now"
    /// button in Home Assistant).
    #[serde(default)]
    pub read_now: bool,
}

fn yes() -> bool {
    true
}

fn default_prefix() -> String {
    "meter-reader".into()
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

fn default_keep_alive() -> u16 {
    30
}

impl std::fmt::Debug for MqttSpec {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSpec")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("client_id", &self.client_id)
            .field("topic_prefix", &self.topic_prefix)
            .field("retain", &self.retain)
            .field("keep_alive_secs", &self.keep_alive_secs)
            .field("ca_file", &self.ca_file)
            .field("discovery", &self.discovery)
            .field("commands", &self.commands)
            .finish()
    }
}

/// What the sink needs to know about each meter when it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterInfo {
    /// The meter's name (as in the records).
    pub name: String,
    /// Its unit as configured (`kWh`, `m3`, ...).
    pub unit: Option<String>,
    /// The last stored value and when it was stored, from the service's
    /// state: the state message carries it until the sink sees a newer one.
    pub last_stored: Option<(f64, OffsetDateTime)>,
    /// The model version reading this meter (shown in the state message).
    pub model_version: Option<String>,
}

impl MeterInfo {
    /// A meter with a unit and nothing known yet.
    pub fn new(name: impl Into<String>, unit: Option<&str>) -> Self {
        Self {
            name: name.into(),
            unit: unit.map(str::to_owned),
            last_stored: None,
            model_version: None,
        }
    }
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl MqttSpec {
    /// A spec with the defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            user: None,
            password: None,
            client_id: None,
            topic_prefix: default_prefix(),
            retain: true,
            keep_alive_secs: default_keep_alive(),
            ca_file: None,
            discovery: DiscoverySpec::default(),
            commands: CommandsSpec::default(),
        }
    }

    /// Checks the settings that do not depend on the meters: the URL, the
    /// credentials, the topic prefix and client id (no MQTT wildcards).
    pub fn validate(&self) -> Result<(), SinkError> {
        self.broker()?;
        let bad = |field, problem: String| Err(SinkError::Config { field, problem });
        match (&self.user, &self.password) {
            (None, Some(_)) => return bad("password", "given without `user`".into()),
            (Some(u), _) if u.is_empty() => return bad("user", "empty".into()),
            _ => {}
        }
        topic_level_check("topic_prefix", &self.topic_prefix, true)?;
        topic_level_check("discovery.prefix", &self.discovery.prefix, true)?;
        if let Some(id) = &self.client_id {
            topic_level_check("client_id", id, false)?;
        }
        if self.keep_alive_secs == 0 {
            return bad(
                "keep_alive_secs",
                "must be at least 1 (the broker detects a dead reader by it)".into(),
            );
        }
        Ok(())
    }

    /// Checks one meter for Home Assistant discovery: its unit must be one
    /// that a device class Home Assistant's energy dashboard knows accepts
    /// (energy, gas, water), and must say which when it fits several. The
    /// config loader calls it for every meter; the error names the meter and
    /// the unit. Without discovery every meter passes.
    pub fn check_meter(&self, meter: &str, unit: Option<&str>) -> Result<(), SinkError> {
        topic_level_check("meter name", meter, false).map_err(|_| SinkError::HomeAssistant {
            meter: meter.to_owned(),
            unit: unit.map(str::to_owned),
            problem: "the name contains `/`, `+`, `#` or a control character, which MQTT topics cannot carry".into(),
        })?;
        if !self.discovery.enabled {
            return Ok(());
        }
        ha::classify(unit, self.discovery.device_class.get(meter).copied())
            .map(|_| ())
            .map_err(|problem| SinkError::HomeAssistant {
                meter: meter.to_owned(),
                unit: unit.map(str::to_owned),
                problem: problem.replace("<meter>", &toml_key(meter)),
            })
    }

    pub(crate) fn broker(&self) -> Result<Broker, SinkError> {
        let bad = |problem: String| SinkError::Config {
            field: "url",
            problem,
        };
        let (scheme, rest) = self.url.split_once("://").ok_or_else(|| {
            bad(format!(
                "{:?} must be mqtt://host[:port] or mqtts://host[:port]",
                self.url
            ))
        })?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => {
                return Err(bad(format!(
                    "{:?}: scheme must be mqtt:// or mqtts://",
                    self.url
                )))
            }
        };
        if rest.contains('@') {
            // Do not echo it: it may hold a password.
            return Err(bad(
                "must not contain a user or password; set `user` and `password` instead".into(),
            ));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad(format!(
                "{:?} must be mqtt://host[:port], without a path or query",
                self.url
            )));
        }
        let uri: ureq::http::uri::Authority = authority
            .parse()
            .map_err(|e| bad(format!("{:?} is not a URL: {e}", self.url)))?;
        let host = uri.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad(format!("{:?} has no host", self.url)));
        }
        let port_given = authority.contains(':') && !authority.ends_with(']');
        let port = match uri.port_u16() {
            Some(0) => None,
            Some(p) => Some(p),
            None if port_given => None,
            None => Some(if tls { 8883 } else { 1883 }),
        }
        .ok_or_else(|| bad(format!("{:?}: the port must be 1..65535", self.url)))?;
        Ok(Broker {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    pub(crate) fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("meter-reader-{}", self.topic_prefix.replace('/', "-")))
    }

    pub(crate) fn keep_alive(&self) -> Duration {
        Duration::from_secs(u64::from(self.keep_alive_secs.max(1)))
    }

    /// `<prefix>/status`.
    pub(crate) fn status_topic(&self) -> String {
        format!("{}/status", self.topic_prefix)
    }

    /// `<prefix>/<meter>/<leaf>` (`state`, `set_value`, `read_now`).
    pub(crate) fn meter_topic(&self, meter: &str, leaf: &str) -> String {
        format!("{}/{meter}/{leaf}", self.topic_prefix)
    }
}

/// A meter name as a TOML key (quoted unless bare).
fn toml_key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

/// A topic prefix (may hold `/`) or a single topic level: not empty, no
/// wildcards, no control characters.
fn topic_level_check(field: &'static str, value: &str, slashes: bool) -> Result<(), SinkError> {
    let problem = if value.is_empty() {
        Some("empty")
    } else if value.contains(['+', '#']) || value.chars().any(char::is_control) {
        Some("contains an MQTT wildcard (+ #) or a control character")
    } else if !slashes && value.contains('/') {
        Some("contains `/`")
    } else if slashes && (value.starts_with('/') || value.ends_with('/') || value.contains("//")) {
        Some("has an empty topic level (leading, trailing or double `/`)")
    } else {
        None
    };
    match problem {
        Some(p) => Err(SinkError::Config {
            field,
            problem: format!("{value:?} {p}"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let b = |u: &str| MqttSpec::new(u).broker();
        assert_eq!(
            b("mqtt://127.0.0.1").unwrap(),
            Broker {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(b("mqtts://broker.lan:8884/").unwrap().port, 8884);
        assert!(b("mqtts://broker.lan").unwrap().tls);
        assert_eq!(b("mqtt://[::1]:1884").unwrap().host, "::1");
        for bad in [
            "http://x",
            "x:1883",
            "mqtt://",
            "mqtt://x/topic",
            "mqtt://x?a=b",
            "mqtt://x:99999",
        ] {
            assert!(
                matches!(b(bad), Err(SinkError::Config { field: "url", .. })),
                "{bad}: {:?}",
                b(bad)
            );
        }
        let err = b("mqtt://alice:hunter2@x").unwrap_err().to_string();
        assert!(!err.contains("hunter2") && err.contains("user"), "{err}");
    }

    #[test]
    fn validation() {
        assert!(MqttSpec::new("mqtt://x").validate().is_ok());
        let mut s = MqttSpec::new("mqtt://x");
        s.topic_prefix = "home/+/meters".into();
        assert!(s.validate().is_err());
        s.topic_prefix = "home/meters/".into();
        assert!(s.validate().is_err());
        s.topic_prefix = "home/meters".into();
        s.password = Some("pw".into());
        assert!(s.validate().is_err(), "password without user");
        s.user = Some("alice".into());
        assert!(s.validate().is_ok());
        s.client_id = Some("a/b".into());
        assert!(s.validate().is_err());
        let text = format!("{s:?}");
        assert!(
            !text.contains("pw\"") && text.contains("<hidden>"),
            "{text}"
        );
    }

    #[test]
    fn toml_defaults() {
        let s: MqttSpec = toml::from_str(r#"url = "mqtt://127.0.0.1""#).unwrap();
        assert_eq!(s, MqttSpec::new("mqtt://127.0.0.1"));
        let s: MqttSpec = toml::from_str(
            r#"
url = "mqtts://broker:8883"
user = "meter"
password = "pw"
topic_prefix = "home/meters"
commands = { read_now = true }
discovery = { per_entity = true, device_class = { cellar = "water" } }
"#,
        )
        .unwrap();
        assert!(s.commands.read_now && !s.commands.set_value);
        assert_eq!(s.discovery.device_class["cellar"], DeviceClass::Water);
        assert!(toml::from_str::<MqttSpec>("url = \"mqtt://x\"\nqos = 2").is_err());
    }

    #[test]
    fn fits_a_tagged_sink_enum() {
        // As `[[sink]] type = "mqtt"` in a `#[serde(tag = "type")]` enum.
        #[derive(Debug, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum SinkSpec {
            Mqtt(MqttSpec),
        }
        let SinkSpec::Mqtt(s) =
            toml::from_str("type = \"mqtt\"\nurl = \"mqtt://x\"\nretain = false").unwrap();
        assert!(!s.retain);
        assert!(
            toml::from_str::<SinkSpec>("type = \"mqtt\"\nurl = \"mqtt://x\"\nqos = 1").is_err()
        );
    }

    #[test]
    fn meter_check_names_meter_and_unit() {
        let s = MqttSpec::new("mqtt://x");
        assert!(s.check_meter("house", Some("kWh")).is_ok());
        let err = s.check_meter("garage", Some("kW")).unwrap_err().to_string();
        assert!(err.contains("garage") && err.contains("kW"), "{err}");
        let err = s.check_meter("cellar", Some("m3")).unwrap_err().to_string();
        assert!(
            err.contains("cellar") && err.contains("gas") && err.contains("water"),
            "{err}"
        );
        let mut s = s;
        s.discovery
            .device_class
            .insert("cellar".into(), DeviceClass::Gas);
        assert!(s.check_meter("cellar", Some("m3")).is_ok());
        s.discovery
            .device_class
            .insert("house".into(), DeviceClass::Gas);
        let err = s.check_meter("house", Some("kWh")).unwrap_err().to_string();
        assert!(
            err.contains("house") && err.contains("kWh") && err.contains("gas"),
            "{err}"
        );
        assert!(s.check_meter("a+b", Some("kWh")).is_err());
        s.discovery.enabled = false;
        assert!(s.check_meter("garage", Some("kW")).is_ok());
    }
}
