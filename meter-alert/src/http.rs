//! The HTTP plumbing shared by Telegram and webhooks: one request, its
//! answer read, every failure turned into an [`AlertError`] whose texts
//! have the secrets replaced by `***`.

use std::time::Duration;

use crate::error::{redact, Redacted};
use crate::AlertError;

/// Longest body text quoted in an error.
const QUOTE: usize = 300;

/// An agent that reports HTTP error statuses as answers, not errors.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("meter-reader/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A successful answer: status and body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

/// What a request becomes: an answer (any status), or a redacted error.
pub(crate) fn finish(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    target: &str,
    secrets: &[&str],
) -> Result<(Answer, Option<Duration>), AlertError> {
    let unreachable = |e: &dyn std::fmt::Display| AlertError::Unreachable {
        target: target.to_owned(),
        source: Redacted(redact(&e.to_string(), secrets)),
    };
    let mut resp = result.map_err(|e| unreachable(&e))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(&e))?;
    Ok((Answer { status, body }, retry_after))
}

/// The start of a body, for an error message, redacted.
pub(crate) fn quote(body: &str, secrets: &[&str]) -> String {
    let mut end = body.len().min(QUOTE);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let text = redact(body[..end].trim(), secrets);
    if end < body.len() {
        format!("{text}…")
    } else {
        text
    }
}

/// `scheme://host[:port]/…`: where a secret URL points, safe to print.
pub(crate) fn safe_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            // user:password@host
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_url_keeps_only_scheme_and_host() {
        assert_eq!(
            safe_url("http://user:pw@ha.local:8123/api/webhook/SECRET?x=1"),
            "http://ha.local:8123/…"
        );
        assert_eq!(safe_url("nonsense"), "(not a URL)");
        assert_eq!(quote(&"é".repeat(400), &[]).chars().count(), 151);
        assert_eq!(quote("token T in body", &["T"]), "token *** in body");
    }
}
