//! Integration tests of the firmware crate: the simulator over real HTTP on
//! loopback, and properties of the flash-LED state machine.

mod api;
mod capture;
mod cli;
mod faults;
mod led;
mod setup;

use std::time::Duration;

use firmware::camsim::{Advance, FrameTruth, Frames, Server, SimConfig, SyntheticConfig};

/// Mean absolute difference per channel value of two same-sized images.
pub fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// An HTTP client that returns 4xx/5xx as responses, with a time limit.
pub fn client(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// A generous client for requests expected to succeed (the machine may be busy).
pub fn patient() -> ureq::Agent {
    client(Duration::from_secs(60))
}

/// One GET: status, headers as a lookup, body.
pub struct Got {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn truth(&self) -> FrameTruth {
        FrameTruth::from_headers(|n| self.header(n))
            .expect("well-formed truth headers")
            .expect("truth headers present")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn get_with(agent: &ureq::Agent, url: &str) -> Result<Got, ureq::Error> {
    let mut resp = agent.get(url).call()?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .body_mut()
        .with_config()
        .limit(50 * 1024 * 1024)
        .read_to_vec()?;
    Ok(Got {
        status,
        headers,
        body,
    })
}

pub fn get(url: &str) -> Got {
    get_with(&patient(), url).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A synthetic meter without random disturbances, advancing `step` per frame.
pub fn still_meter(step: f64) -> SyntheticConfig {
    SyntheticConfig {
        advance: Advance::PerFrame(step),
        noise: 0.0,
        jitter_px: 0.0,
        max_rotation_deg: 0.0,
        hotspot: None,
        ..SyntheticConfig::default()
    }
}

pub fn start(source: SyntheticConfig) -> Server {
    Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(source)),
        ..SimConfig::default()
    })
    .expect("simulator starts")
}
