//! Requests and responses over tiny_http: the parts of a request the routes
//! read, decoding, and the security checks (token, same origin).

use std::collections::HashMap;
use std::io::Read;

use tiny_http::{Header, Method, Request, Response};

/// Largest request body read (a box edit, a key, a value).
pub const MAX_BODY: u64 = 64 * 1024;

/// A request as the routes see it.
pub struct Req {
    /// POST or not.
    pub post: bool,
    /// Whether the method is GET or HEAD (or POST).
    pub known_method: bool,
    /// The path's segments, each percent-decoded (`/a%2Fb/c` is `["a/b", "c"]`).
    pub segments: Vec<String>,
    /// Query parameters, decoded.
    pub query: HashMap<String, String>,
    /// Request headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// The body (POST).
    pub body: Vec<u8>,
}

impl Req {
    /// Reads `req`'s parts (and its body, up to [`MAX_BODY`]).
    pub fn read(req: &mut Request) -> Result<Self, String> {
        let post = *req.method() == Method::Post;
        let known_method = matches!(req.method(), Method::Get | Method::Head | Method::Post);
        let (path, query) = match req.url().split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (req.url().to_owned(), String::new()),
        };
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s).ok_or_else(|| format!("bad escape in {s:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let query = parse_form(&query)?;
        let headers = req
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        if post {
            req.as_reader()
                .take(MAX_BODY + 1)
                .read_to_end(&mut body)
                .map_err(|e| format!("reading the body: {e}"))?;
            if body.len() as u64 > MAX_BODY {
                return Err(format!("body over {MAX_BODY} bytes"));
            }
        }
        Ok(Self {
            post,
            known_method,
            segments,
            query,
            headers,
            body,
        })
    }

    /// The path's segments as `&str`s (for matching).
    pub fn path(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The token the request carries: `Authorization: Bearer`, the
    /// `meter_token` cookie, or `?token=`.
    pub fn token(&self) -> Option<&str> {
        if let Some(t) = self
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
        {
            return Some(t.trim());
        }
        if let Some(c) = self.header("cookie") {
            for part in c.split(';') {
                if let Some(t) = part.trim().strip_prefix("meter_token=") {
                    return Some(t);
                }
            }
        }
        self.query.get("token").map(String::as_str)
    }

    /// Whether a POST comes from a page of this server: its `Origin` (or
    /// else `Referer`) names the host the request was sent to. A request
    /// with neither is refused: browsers send `Origin` with every POST, and
    /// other clients can send it too.
    pub fn same_origin(&self) -> bool {
        let Some(host) = self.header("host") else {
            return false;
        };
        let origin = format!("http://{host}");
        match (self.header("origin"), self.header("referer")) {
            (Some(o), _) => o == origin,
            (None, Some(r)) => r == origin || r.starts_with(&format!("{origin}/")),
            (None, None) => false,
        }
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Resp> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Resp::error(400, &format!("the body is not the JSON expected: {e}")))
    }
}

/// Equal tokens, compared in a time that does not depend on where they differ.
pub fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &x) in b.iter().enumerate() {
        diff |= usize::from(x ^ a.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// `%XX` and `+` decoded; `None` for a bad escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `a=1&b=2`, decoded.
pub fn parse_form(q: &str) -> Result<HashMap<String, String>, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match (percent_decode(k), percent_decode(v)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(format!("bad escape in the query {p:?}")),
            }
        })
        .collect()
}

/// A response: status, content type, body, extra headers.
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body, sent in one write.
    pub body: Vec<u8>,
    /// More headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Resp {
    /// 200 with `body`.
    pub fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    /// An HTML page.
    pub fn html(page: String) -> Self {
        Self::ok("text/html; charset=utf-8", page.into_bytes())
    }

    /// A JSON body; `<`, `>` and `&` written as `\u003c`... so that no
    /// text in it (a name from the address) can ever read as markup.
    pub fn json<T: serde::Serialize>(value: &T) -> Self {
        let text = serde_json::to_string(value).expect("values serialise");
        // These characters only occur inside JSON strings, where the
        // escapes mean the same.
        let text = text
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        Self::ok("application/json", text.into_bytes())
    }

    /// An error as JSON `{"error": ...}`.
    pub fn error(status: u16, message: &str) -> Self {
        let mut r = Self::json(&serde_json::json!({ "error": message }));
        r.status = status;
        r
    }

    /// 404 naming what was not found.
    pub fn not_found(what: &str) -> Self {
        Self::error(404, &format!("not found: {what}"))
    }

    /// With one more header.
    pub fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sends it.
    pub fn send(self, req: Request) {
        let mut r = Response::from_data(self.body)
            .with_status_code(self.status)
            .with_header(header("Content-Type", self.content_type))
            .with_header(header("Cache-Control", "no-store"))
            .with_header(header("X-Content-Type-Options", "nosniff"))
            .with_header(header("X-Frame-Options", "DENY"));
        for (k, v) in self.headers {
            r = r.with_header(header(k, &v));
        }
        if let Err(e) = req.respond(r) {
            log::debug!("web: answering: {e}");
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_compares() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%"), None);
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert!(!token_matches("abcd", "abc"));
    }
}
