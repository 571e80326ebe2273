//! Test support for the workspace's tests, used only as a dev-dependency:
//!
//! - [`data`]: the real data's folders (`../shared/data/meter-digits`,
//!   `meter-frames`, or `METER_DIGITS_DIR` / `METER_FRAMES_DIR`), and the
//!   rule that a data test must not skip where the data is present;
//! - [`ports`]: free loopback ports;
//! - [`servers`]: a private `influxd` or VictoriaMetrics per test;
//! - [`mosquitto`]: a private Mosquitto broker and an observing client;
//! - [`http`]: fake HTTP servers for what real ones never do (a login page
//!   answering a write, a server that never answers).

pub mod data;
pub mod http;
pub mod mosquitto;
pub mod ports;
pub mod servers;

pub use ports::free_port;
