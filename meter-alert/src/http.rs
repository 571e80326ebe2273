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

/// The parts of a secret URL that must not be quoted back: the whole URL,
/// its path and query, user info, long path segments (an id or topic) and
/// query values.
pub(crate) fn url_secrets(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, tail) = rest
        .find(['/', '?', '#'])
        .map_or((rest, ""), |i| rest.split_at(i));
    if let Some((user, _)) = authority.rsplit_once('@') {
        out.extend(user.split(':').map(str::to_owned));
    }
    out.push(tail.to_owned());
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    out.extend(path.split('/').filter(|s| s.len() >= 8).map(str::to_owned));
    out.extend(
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
            .filter(|v| v.len() >= 4)
            .map(str::to_owned),
    );
    out.retain(|s| !s.is_empty() && s != "/");
    // Longest first, so a part is not left half-replaced.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
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
        let parts = url_secrets("http://u:pw@ha:8123/api/webhook/abcdefgh123?token=xyz1&a=b");
        for p in [
            "u",
            "pw",
            "/api/webhook/abcdefgh123?token=xyz1&a=b",
            "abcdefgh123",
            "xyz1",
        ] {
            assert!(parts.iter().any(|s| s == p), "{p} in {parts:?}");
        }
        assert!(!parts.iter().any(|s| s == "api" || s == "b"));
    }
}
