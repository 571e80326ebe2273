//! The camera's HTTP requests as values: parsed from a request target
//! (`/control?var=quality&val=10`) by the device or the simulator, and
//! written back into one by a client.

use crate::ControlError;

/// A request target split into its path and decoded query parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    path: String,
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Splits `/path?a=1&b=x%20y` (`+` and `%XX` decoded; a malformed
    /// escape is kept as text; never fails).
    pub fn parse(target: &str) -> Query {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Query {
            path: percent_decode(path),
            pairs,
        }
    }

    /// The path, e.g. `/control`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The first value of parameter `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A request of the CameraWebServer API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraRequest {
    /// `GET /capture`: one JPEG frame.
    Capture,
    /// `GET /status`: the settings as JSON.
    Status,
    /// `GET /control?var=NAME&val=V`: change a setting.
    Control {
        /// The variable name.
        var: String,
        /// The value as sent.
        val: String,
    },
}

impl CameraRequest {
    /// The request a target names; `Ok(None)` when it is not one of the
    /// camera's endpoints, an error (`404` on the device) when `/control`
    /// lacks `var` or `val`.
    pub fn parse(target: &str) -> Result<Option<CameraRequest>, ControlError> {
        let q = Query::parse(target);
        Ok(Some(match q.path() {
            "/capture" => Self::Capture,
            "/status" => Self::Status,
            "/control" => {
                let var = q
                    .get("var")
                    .ok_or(ControlError::MissingParameter { name: "var" })?;
                let val = q
                    .get("val")
                    .ok_or(ControlError::MissingParameter { name: "val" })?;
                Self::Control {
                    var: var.to_owned(),
                    val: val.to_owned(),
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The request target, e.g. `/control?var=led_intensity&val=128`
    /// (append it to `http://HOST`).
    pub fn target(&self) -> String {
        match self {
            Self::Capture => "/capture".into(),
            Self::Status => "/status".into(),
            Self::Control { var, val } => format!(
                "/control?var={}&val={}",
                percent_encode(var),
                percent_encode(val)
            ),
        }
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = Query::parse("/control?var=led_intensity&val=12%33&x=a+b&flag");
        assert_eq!(q.path(), "/control");
        assert_eq!(q.get("var"), Some("led_intensity"));
        assert_eq!(q.get("val"), Some("123"));
        assert_eq!(q.get("x"), Some("a b"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("nope"), None);
        let q = Query::parse("/f?a=%4&b=%&c=%zz");
        assert_eq!(q.get("a"), Some("%4"));
        assert_eq!(q.get("b"), Some("%"));
        assert_eq!(q.get("c"), Some("%zz"));
    }

    #[test]
    fn camera_requests() {
        assert_eq!(
            CameraRequest::parse("/capture?_cb=1"),
            Ok(Some(CameraRequest::Capture))
        );
        assert_eq!(CameraRequest::parse("/stream"), Ok(None));
        assert_eq!(
            CameraRequest::parse("/control?var=quality"),
            Err(ControlError::MissingParameter { name: "val" })
        );
        let c = CameraRequest::Control {
            var: "led_intensity".into(),
            val: "128".into(),
        };
        assert_eq!(c.target(), "/control?var=led_intensity&val=128");
        assert_eq!(CameraRequest::parse(&c.target()), Ok(Some(c)));
    }
}
