//! Home Assistant MQTT discovery: which device class and unit spelling a
//! meter gets, and the discovery configs.
//!
//! References (Home Assistant documentation):
//! - discovery messages, device-based (`<prefix>/device/<id>/config` with
//!   `components`, since 2024.11) and per-entity:
//!   <https://www.home-assistant.io/integrations/mqtt/#discovery-messages>;
//! - units each sensor device class accepts (energy, gas, water) and the
//!   state classes the energy dashboard needs:
//!   <https://www.home-assistant.io/integrations/sensor/#device-class>;
//! - `default_entity_id` replaces the deprecated `object_id` (2025.10).
//!
//! Full key names are used, no abbreviations.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::spec::{MeterInfo, MqttSpec};

/// The Home Assistant sensor device classes a meter can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// Electricity (kWh, ...).
    Energy,
    /// Gas (m³, ...).
    Gas,
    /// Water (m³, L, ...).
    Water,
}

impl DeviceClass {
    /// Home Assistant's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Energy => "energy",
            Self::Gas => "gas",
            Self::Water => "water",
        }
    }

    /// The units Home Assistant accepts for it, in its spelling.
    pub fn units(self) -> &'static [&'static str] {
        match self {
            Self::Energy => &[
                "kWh", "Wh", "MWh", "GWh", "TWh", "mWh", "J", "kJ", "MJ", "GJ", "cal", "kcal",
                "Mcal", "Gcal",
            ],
            Self::Gas => &["m³", "ft³", "CCF", "L"],
            Self::Water => &["m³", "L", "gal", "ft³", "CCF"],
        }
    }

    const ALL: [DeviceClass; 3] = [Self::Energy, Self::Gas, Self::Water];
}

impl std::fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Home Assistant's spelling of a unit as people write it in a config
/// (`m3` → `m³`, `l` → `L`, `kwh` → `kWh`); `None` if it is none of the
/// units of [`DeviceClass::units`].
pub fn ha_unit(unit: &str) -> Option<&'static str> {
    let unit = unit.trim();
    if let Some(u) = DeviceClass::ALL
        .iter()
        .flat_map(|c| c.units())
        .find(|u| **u == unit)
    {
        return Some(u);
    }
    // Case-insensitive spellings that cannot be confused (unlike mWh/MWh).
    Some(match unit.to_lowercase().as_str() {
        "kwh" => "kWh",
        "m3" | "m^3" | "cbm" | "cubic meters" | "cubic metres" => "m³",
        "ft3" | "ft^3" | "cu ft" | "cubic feet" => "ft³",
        "ccf" => "CCF",
        "l" | "liter" | "litre" | "liters" | "litres" => "L",
        "gallon" | "gallons" | "gal" => "gal",
        _ => return None,
    })
}

/// The device class and unit spelling for a meter, or why it has none
/// (a sentence naming the unit, for [`MqttSpec::check_meter`]).
pub(crate) fn classify(
    unit: Option<&str>,
    chosen: Option<DeviceClass>,
) -> Result<(DeviceClass, &'static str), String> {
    let accepted = || {
        DeviceClass::ALL
            .iter()
            .map(|c| format!("{c} ({})", c.units().join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let Some(given) = unit else {
        return Err(format!(
            "has no unit; Home Assistant needs one of {}",
            accepted()
        ));
    };
    let Some(spelled) = ha_unit(given) else {
        return Err(format!(
            "unit {given:?} is not accepted by Home Assistant's energy dashboard device classes: {}",
            accepted()
        ));
    };
    let fits: Vec<DeviceClass> = DeviceClass::ALL
        .into_iter()
        .filter(|c| c.units().contains(&spelled))
        .collect();
    match (chosen, fits.as_slice()) {
        (Some(c), _) if fits.contains(&c) => Ok((c, spelled)),
        (Some(c), _) => Err(format!(
            "unit {given:?} is not accepted by Home Assistant's device class {c}, which takes {}",
            c.units().join(", ")
        )),
        (None, [only]) => Ok((*only, spelled)),
        (None, several) => Err(format!(
            "unit {given:?} fits Home Assistant's device classes {}; choose one with `discovery.device_class = {{ <meter> = \"{}\" }}`",
            several.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" and "),
            several[0]
        )),
    }
}

/// Lowercase letters, digits and `_`: usable in discovery topics, unique
/// ids and entity ids.
pub(crate) fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// The device id of a meter (discovery topic, unique ids).
pub(crate) fn device_id(spec: &MqttSpec, meter: &str) -> String {
    format!("{}_{}", slug(&spec.topic_prefix), slug(meter))
}

/// One discovery message: topic and JSON payload.
pub(crate) type Message = (String, Vec<u8>);

/// One entity of a meter's device.
struct Component {
    id: &'static str,
    platform: &'static str,
    config: Map<String, Value>,
}

fn components(
    spec: &MqttSpec,
    meter: &MeterInfo,
    class: DeviceClass,
    unit: &str,
) -> Vec<Component> {
    let device = device_id(spec, &meter.name);
    let meter_slug = slug(&meter.name);
    let state = spec.meter_topic(&meter.name, "state");
    let mut list = vec![
        (
            "value",
            "sensor",
            json!({
                // null: the entity is named after the device alone.
                "name": null,
                "device_class": class.as_str(),
                // Home Assistant takes any decrease for a meter reset; the
                // value published is only ever a stored one, which never
                // decreases.
                "state_class": "total_increasing",
                "unit_of_measurement": unit,
                "value_template": "{{ value_json.value }}",
            }),
        ),
        (
            "raw",
            "sensor",
            json!({
                "name": "Raw reading",
                "unit_of_measurement": unit,
                "entity_category": "diagnostic",
                "icon": "mdi:counter",
                "value_template": "{{ value_json.raw }}",
            }),
        ),
        (
            "confidence",
            "sensor",
            json!({
                "name": "Confidence",
                "unit_of_measurement": "%",
                "state_class": "measurement",
                "entity_category": "diagnostic",
                "icon": "mdi:eye-check",
                "value_template": "{{ none if value_json.confidence_min is none else (value_json.confidence_min * 100) | round(1) }}",
            }),
        ),
        (
            "status",
            "sensor",
            json!({
                "name": "Status",
                "device_class": "enum",
                "options": ["stored", "unsure", "rejected"],
                "value_template": "{{ value_json.status }}",
            }),
        ),
        (
            "problem",
            "binary_sensor",
            json!({
                "name": "Problem",
                "device_class": "problem",
                "value_template": "{{ 'OFF' if value_json.status == 'stored' else 'ON' }}",
                "json_attributes_topic": state,
                "json_attributes_template": "{{ {'reason': value_json.reason, 'raw': value_json.raw} | tojson }}",
            }),
        ),
        (
            "last_reading",
            "sensor",
            json!({
                "name": "Last reading",
                "device_class": "timestamp",
                "entity_category": "diagnostic",
                "value_template": "{{ value_json.time }}",
            }),
        ),
    ];
    if spec.commands.read_now {
        list.push((
            "read_now",
            "button",
            json!({
                "name": "Read now",
                "command_topic": spec.meter_topic(&meter.name, "read_now"),
                "payload_press": "PRESS",
                "icon": "mdi:camera",
            }),
        ));
    }
    list.into_iter()
        .map(|(id, platform, config)| {
            let Value::Object(mut config) = config else {
                unreachable!("json! of an object")
            };
            config.insert("unique_id".into(), json!(format!("{device}_{id}")));
            let entity = if id == "value" {
                meter_slug.clone()
            } else {
                format!("{meter_slug}_{id}")
            };
            config.insert(
                "default_entity_id".into(),
                json!(format!("{platform}.{entity}")),
            );
            if platform != "button" {
                config.insert("state_topic".into(), json!(state));
            }
            Component {
                id,
                platform,
                config,
            }
        })
        .collect()
}

fn device_block(meter: &MeterInfo, class: DeviceClass, device: &str) -> Value {
    json!({
        "identifiers": [device],
        "name": meter.name,
        "manufacturer": "meter-reader",
        "model": format!("Camera-read {class} meter"),
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

fn origin() -> Value {
    json!({ "name": "meter-reader", "sw_version": env!("CARGO_PKG_VERSION") })
}

/// The retained discovery messages of one meter, in the configured mode,
/// and the topics of the other mode (to clear with empty payloads, so that
/// switching modes leaves no doubled entities). `None` when the meter has
/// no device class ([`MqttSpec::check_meter`] refuses that at config load).
pub(crate) fn discovery(spec: &MqttSpec, meter: &MeterInfo) -> Option<(Vec<Message>, Vec<String>)> {
    let (class, unit) = classify(
        meter.unit.as_deref(),
        spec.discovery.device_class.get(&meter.name).copied(),
    )
    .ok()?;
    let device = device_id(spec, &meter.name);
    let prefix = &spec.discovery.prefix;
    let device_topic = format!("{prefix}/device/{device}/config");
    let comps = components(spec, meter, class, unit);
    let entity_topic = |c: &Component| format!("{prefix}/{}/{device}/{}/config", c.platform, c.id);
    let encode = |v: &Value| serde_json::to_vec(v).expect("JSON values encode");
    if spec.discovery.per_entity {
        let messages = comps
            .iter()
            .map(|c| {
                let mut config = c.config.clone();
                config.insert("device".into(), device_block(meter, class, &device));
                config.insert("origin".into(), origin());
                config.insert("availability_topic".into(), json!(spec.status_topic()));
                config.insert("qos".into(), json!(1));
                (entity_topic(c), encode(&Value::Object(config)))
            })
            .collect();
        Some((messages, vec![device_topic]))
    } else {
        let components: Map<String, Value> = comps
            .iter()
            .map(|c| {
                let mut config = c.config.clone();
                config.insert("platform".into(), json!(c.platform));
                (c.id.to_owned(), Value::Object(config))
            })
            .collect();
        let payload = json!({
            "device": device_block(meter, class, &device),
            "origin": origin(),
            "availability_topic": spec.status_topic(),
            "qos": 1,
            "components": components,
        });
        let mut stale: Vec<String> = comps.iter().map(entity_topic).collect();
        if !spec.commands.read_now {
            // A button published when commands were on.
            stale.push(format!("{prefix}/button/{device}/read_now/config"));
        }
        Some((vec![(device_topic, encode(&payload))], stale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_spellings() {
        assert_eq!(ha_unit("kWh"), Some("kWh"));
        assert_eq!(ha_unit("kwh"), Some("kWh"));
        assert_eq!(ha_unit("m3"), Some("m³"));
        assert_eq!(ha_unit(" m³ "), Some("m³"));
        assert_eq!(ha_unit("l"), Some("L"));
        assert_eq!(ha_unit("MWh"), Some("MWh"));
        assert_eq!(ha_unit("mWh"), Some("mWh"));
        assert_eq!(ha_unit("mwh"), None, "MWh or mWh?");
        assert_eq!(ha_unit("kW"), None);
        assert_eq!(ha_unit("pulses"), None);
    }

    #[test]
    fn classes() {
        assert_eq!(
            classify(Some("kwh"), None),
            Ok((DeviceClass::Energy, "kWh"))
        );
        assert_eq!(classify(Some("gal"), None), Ok((DeviceClass::Water, "gal")));
        assert_eq!(
            classify(Some("m3"), Some(DeviceClass::Water)),
            Ok((DeviceClass::Water, "m³"))
        );
        assert!(classify(Some("m3"), None)
            .unwrap_err()
            .contains("gas and water"));
        assert!(classify(Some("gal"), Some(DeviceClass::Gas)).is_err());
        assert!(classify(None, None).unwrap_err().contains("no unit"));
    }

    #[test]
    fn slugs_and_ids() {
        assert_eq!(slug("Haus.Strom-1"), "haus_strom_1");
        assert_eq!(slug("__a..b__"), "a_b");
        let spec = MqttSpec::new("mqtt://x");
        assert_eq!(device_id(&spec, "house"), "meter_reader_house");
    }

    #[test]
    fn device_config_shape() {
        let mut spec = MqttSpec::new("mqtt://x");
        spec.commands.read_now = true;
        let meter = MeterInfo::new("house", Some("kWh"));
        let (messages, stale) = discovery(&spec, &meter).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].0,
            "homeassistant/device/meter_reader_house/config"
        );
        let v: Value = serde_json::from_slice(&messages[0].1).unwrap();
        let value = &v["components"]["value"];
        assert_eq!(value["platform"], "sensor");
        assert_eq!(value["device_class"], "energy");
        assert_eq!(value["state_class"], "total_increasing");
        assert_eq!(value["unit_of_measurement"], "kWh");
        assert_eq!(value["default_entity_id"], "sensor.house");
        assert_eq!(value["state_topic"], "meter-reader/house/state");
        assert_eq!(
            v["components"]["read_now"]["command_topic"],
            "meter-reader/house/read_now"
        );
        assert!(v["components"]["read_now"].get("state_topic").is_none());
        assert_eq!(stale.len(), 7);
        assert!(!String::from_utf8_lossy(&messages[0].1).contains("object_id"));
        spec.discovery.per_entity = true;
        let (messages, stale) = discovery(&spec, &meter).unwrap();
        assert_eq!(messages.len(), 7);
        assert_eq!(stale, ["homeassistant/device/meter_reader_house/config"]);
        assert!(messages
            .iter()
            .any(|(t, _)| t == "homeassistant/binary_sensor/meter_reader_house/problem/config"));
    }
}
