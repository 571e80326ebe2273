//! The rules every network sink follows when it talks HTTP.
//!
//! - **A write counts as delivered only when the server says so**: the one
//!   status its API documents for a stored write (InfluxDB 1.x and 2.x and
//!   VictoriaMetrics: `204 No Content`). Any other 1xx, 2xx or 3xx answer is
//!   [`SinkError::NotAcknowledged`], naming the status, the content type and
//!   the URL: a captive portal's `200 text/html` must not empty a spool.
//! - **Redirects are not followed**: a write endpoint does not redirect, a
//!   login portal does.
//! - **Secrets never go into URLs**: credentials travel in headers, which
//!   ureq's own logging redacts up to the levels of
//!   [`HTTP_CLIENT_LOG_CAPS`](crate::HTTP_CLIENT_LOG_CAPS).

use std::io::Read;
use std::time::Duration;

use crate::error::SinkError;

/// An HTTP client for one sink: `timeout` for a whole request (connect to
/// last byte; connecting alone gets at most
/// [`defaults::CONNECT_TIMEOUT`](crate::defaults::CONNECT_TIMEOUT)), no
/// redirects followed, error statuses returned as answers.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(crate::defaults::CONNECT_TIMEOUT)))
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// How a server answered a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The documented success status: the data is stored.
    Delivered,
    /// A 4xx or 5xx refusal, with the server's explanation (its JSON
    /// `error` or `message`, or the start of the body).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's explanation (`(no message)` when it gave none).
        message: String,
    },
}

/// Applies the delivery rule to `response`: `delivered` (e.g. 204) is
/// [`Answer::Delivered`], 4xx/5xx are [`Answer::Refused`], anything else is
/// [`SinkError::NotAcknowledged`] naming `url` and `endpoint` (e.g. `"an
/// InfluxDB write endpoint"`). `url` must hold no secret.
pub fn answer(
    response: ureq::http::Response<ureq::Body>,
    url: &str,
    delivered: u16,
    endpoint: &'static str,
) -> Result<Answer, SinkError> {
    let status = response.status().as_u16();
    if status == delivered {
        return Ok(Answer::Delivered);
    }
    if status >= 400 {
        return Ok(Answer::Refused {
            status,
            message: server_message(response.into_body()),
        });
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("-")
        .to_owned();
    Err(SinkError::NotAcknowledged {
        url: url.to_owned(),
        status,
        content_type,
        endpoint,
    })
}

/// The server's explanation: InfluxDB answers `{"error": ".."}` (1.x) or
/// `{"message": ".."}` (2.x); anything else is shown as text, shortened.
fn server_message(body: ureq::Body) -> String {
    let mut text = String::new();
    // A failure to read the explanation leaves it empty; the status says enough.
    let _ = body.into_reader().take(4096).read_to_string(&mut text);
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&text) {
        for key in ["error", "message"] {
            if let Some(serde_json::Value::String(m)) = map.get(key) {
                return m.clone();
            }
        }
    }
    let text = text.trim();
    if text.is_empty() {
        "(no message)".to_owned()
    } else {
        text.chars().take(300).collect()
    }
}

/// Checks a sink's base URL: `http(s)://host[:port][/path]`, no query (the
/// sink adds its own), no user info (credentials have their own keys and
/// must not end up in logs). Errors name the key `url`.
pub fn check_base_url(url: &str) -> Result<(), SinkError> {
    let bad = |problem: String| SinkError::Config {
        field: "url",
        problem,
    };
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(bad(format!(
            "{url:?} is not an http:// or https:// URL with a host"
        )));
    }
    if uri.query().is_some() {
        return Err(bad(format!(
            "{url:?} must not have a query; the sink's other keys say where to write"
        )));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // Not echoed: the user info may hold a password.
        return Err(bad(
            "must not contain user:password@; use the sink's credential keys".into(),
        ));
    }
    Ok(())
}

/// `Basic` authorization header value for `user` and `password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for ok in [
            "http://127.0.0.1:8086",
            "https://influx.example",
            "http://h/prefix",
        ] {
            check_base_url(ok).unwrap();
        }
        for bad in [
            "127.0.0.1:8086",
            "ftp://x",
            "http://x/?db=a",
            "not a url",
            "http://u:pw@x",
        ] {
            let err = check_base_url(bad).unwrap_err();
            assert!(
                matches!(err, SinkError::Config { field: "url", .. }),
                "{bad}: {err}"
            );
        }
        let err = check_base_url("http://u:hunter2@x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn basic_auth_is_rfc7617() {
        // RFC 7617's example.
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
