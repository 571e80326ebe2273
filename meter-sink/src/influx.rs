//! InfluxDB over HTTP: the 1.x `/write` API and the 2.x `/api/v2/write` API.

use std::time::Duration;

use crate::error::SinkError;
use crate::http::{self, Answer};
use crate::record::Record;
use crate::{defaults, line, Sink};

/// What a write URL that does not answer `204` is not.
const ENDPOINT: &str = "an InfluxDB write endpoint";

/// Which write API, with its target and credentials.
#[derive(Clone)]
enum Api {
    V1 {
        database: String,
        retention_policy: Option<String>,
        credentials: Option<(String, String)>,
    },
    V2 {
        org: String,
        bucket: String,
        token: String,
    },
}

impl std::fmt::Debug for Api {
    // Never print passwords or tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V1 {
                database,
                retention_policy,
                credentials,
            } => f
                .debug_struct("V1")
                .field("database", database)
                .field("retention_policy", retention_policy)
                .field("user", &credentials.as_ref().map(|c| &c.0))
                .finish_non_exhaustive(),
            Self::V2 { org, bucket, .. } => f
                .debug_struct("V2")
                .field("org", org)
                .field("bucket", bucket)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone)]
struct InfluxConfig {
    url: String,
    api: Api,
    timeout: Duration,
    batch_size: usize,
}

/// Builds an [`InfluxSink`]; [`build`](Self::build) validates the settings.
#[derive(Debug, Clone)]
pub struct InfluxBuilder {
    config: InfluxConfig,
}

impl InfluxBuilder {
    fn new(url: &str, api: Api) -> Self {
        Self {
            config: InfluxConfig {
                url: url.trim_end_matches('/').to_owned(),
                api,
                timeout: defaults::HTTP_TIMEOUT,
                batch_size: defaults::BATCH_SIZE,
            },
        }
    }

    /// 1.x user and password, sent in a `Basic` authorization header
    /// (never in the URL, which HTTP clients and proxies log). Ignored for
    /// 2.x.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        if let Api::V1 { credentials, .. } = &mut self.config.api {
            *credentials = Some((user.into(), password.into()));
        }
        self
    }

    /// 1.x retention policy (default: the database's default). Ignored for 2.x.
    pub fn retention_policy(mut self, rp: impl Into<String>) -> Self {
        if let Api::V1 {
            retention_policy, ..
        } = &mut self.config.api
        {
            *retention_policy = Some(rp.into());
        }
        self
    }

    /// Timeout of one HTTP request, connect to last byte (default
    /// [`defaults::HTTP_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Lines per HTTP request (default [`defaults::BATCH_SIZE`]).
    pub fn batch_size(mut self, lines: usize) -> Self {
        self.config.batch_size = lines;
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<InfluxSink, SinkError> {
        let c = self.config;
        let bad = |field, problem: &str| SinkError::Config {
            field,
            problem: problem.to_owned(),
        };
        http::check_base_url(&c.url)?;
        match &c.api {
            Api::V1 {
                database,
                retention_policy,
                ..
            } => {
                if database.is_empty() {
                    return Err(bad("database", "empty"));
                }
                if retention_policy.as_deref() == Some("") {
                    return Err(bad("retention_policy", "empty"));
                }
            }
            Api::V2 { org, bucket, token } => {
                for (field, value) in [("org", org), ("bucket", bucket), ("token", token)] {
                    if value.is_empty() {
                        return Err(bad(field, "empty"));
                    }
                }
            }
        }
        if c.batch_size == 0 {
            return Err(bad("batch_size", "must be at least 1"));
        }
        if c.timeout.is_zero() {
            return Err(bad("timeout", "must be positive"));
        }
        let agent = http::agent(c.timeout);
        Ok(InfluxSink { config: c, agent })
    }
}

/// Writes records to InfluxDB over HTTP, in batches, with millisecond
/// precision. A batch counts as written only when the server answers `204`
/// (see [`http`](crate::http)).
///
/// Transient failures (unreachable, 5xx) and refusals (4xx) are returned as
/// typed errors; wrap the sink in a [`SpoolingSink`](crate::SpoolingSink) to
/// keep the data and retry.
#[derive(Debug)]
pub struct InfluxSink {
    config: InfluxConfig,
    agent: ureq::Agent,
}

impl InfluxSink {
    /// InfluxDB 1.x (`/write?db=..`); also VictoriaMetrics and other 1.x
    /// compatible servers.
    pub fn v1(url: &str, database: impl Into<String>) -> InfluxBuilder {
        InfluxBuilder::new(
            url,
            Api::V1 {
                database: database.into(),
                retention_policy: None,
                credentials: None,
            },
        )
    }

    /// InfluxDB 2.x / 3.x (`/api/v2/write?org=..&bucket=..`, token auth);
    /// also VictoriaMetrics (tested), which keeps replayed duplicates unless
    /// started with `-dedup.minScrapeInterval=1ms`.
    pub fn v2(
        url: &str,
        org: impl Into<String>,
        bucket: impl Into<String>,
        token: impl Into<String>,
    ) -> InfluxBuilder {
        InfluxBuilder::new(
            url,
            Api::V2 {
                org: org.into(),
                bucket: bucket.into(),
                token: token.into(),
            },
        )
    }

    /// Records sent per request.
    pub fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// Sends one body of line protocol (millisecond timestamps) in one
    /// request; `Ok` only when the server answered `204`.
    pub fn write_lines(&self, body: &[u8]) -> Result<(), SinkError> {
        let url = &self.config.url;
        let (endpoint, request) = match &self.config.api {
            Api::V1 {
                database,
                retention_policy,
                credentials,
            } => {
                let endpoint = format!("{url}/write");
                let mut req = self
                    .agent
                    .post(&endpoint)
                    .query("db", database)
                    .query("precision", "ms");
                if let Some(rp) = retention_policy {
                    req = req.query("rp", rp);
                }
                if let Some((user, password)) = credentials {
                    req = req.header("Authorization", http::basic_auth(user, password));
                }
                (endpoint, req)
            }
            Api::V2 { org, bucket, token } => {
                let endpoint = format!("{url}/api/v2/write");
                let req = self
                    .agent
                    .post(&endpoint)
                    .query("org", org)
                    .query("bucket", bucket)
                    .query("precision", "ms")
                    .header("Authorization", format!("Token {token}"));
                (endpoint, req)
            }
        };
        let response = request
            .content_type("text/plain; charset=utf-8")
            .send(body)
            .map_err(|e| SinkError::Unreachable {
                url: url.clone(),
                source: Box::new(e),
            })?;
        let (status, message) = match http::answer(response, &endpoint, 204, ENDPOINT)? {
            Answer::Delivered => return Ok(()),
            Answer::Refused { status, message } => (status, message),
        };
        let url = url.clone();
        Err(match status {
            // vmauth (the usual auth proxy in front of VictoriaMetrics)
            // answers an unknown token with 400 rather than 401.
            400 if message.contains("auth token") => SinkError::Unauthorized {
                url,
                status,
                message,
            },
            400 => SinkError::BadLine { url, message },
            401 | 403 => SinkError::Unauthorized {
                url,
                status,
                message,
            },
            404 => SinkError::DatabaseNotFound {
                url,
                target: self.target(),
                message,
            },
            500.. => SinkError::ServerError {
                url,
                status,
                message,
            },
            _ => SinkError::Rejected {
                url,
                status,
                message,
            },
        })
    }

    fn target(&self) -> String {
        match &self.config.api {
            Api::V1 { database, .. } => database.clone(),
            Api::V2 { org, bucket, .. } => format!("{org}/{bucket}"),
        }
    }
}

impl Sink for InfluxSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        records.iter().try_for_each(Record::validate)?;
        let mut buf = Vec::new();
        for batch in records.chunks(self.config.batch_size) {
            buf.clear();
            buf = line::encode(batch, buf);
            self.write_lines(&buf)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates() {
        assert!(InfluxSink::v1("http://127.0.0.1:8086", "meters")
            .build()
            .is_ok());
        assert!(InfluxSink::v1("http://127.0.0.1:8086/", "meters")
            .build()
            .is_ok());
        for url in ["127.0.0.1:8086", "ftp://x", "http://x/?db=a", "not a url"] {
            let err = InfluxSink::v1(url, "meters").build().unwrap_err();
            assert!(
                matches!(err, SinkError::Config { field: "url", .. }),
                "{url}: {err}"
            );
        }
        assert!(InfluxSink::v1("http://x", "").build().is_err());
        assert!(InfluxSink::v2("http://x", "org", "bucket", "")
            .build()
            .is_err());
        assert!(InfluxSink::v1("http://x", "m")
            .batch_size(0)
            .build()
            .is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let s = InfluxSink::v1("http://x", "m")
            .credentials("alice", "hunter2")
            .build()
            .unwrap();
        let v2 = InfluxSink::v2("http://x", "o", "b", "sekrit")
            .build()
            .unwrap();
        let text = format!("{s:?} {v2:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("sekrit"),
            "{text}"
        );
        assert!(text.contains("alice"));
    }

    #[test]
    fn an_unknown_host_is_permanent() {
        // `.invalid` never resolves (RFC 2606).
        let mut s = InfluxSink::v1("http://no-such-host.invalid:8086", "m")
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let err = s
            .write(&[crate::record::tests_support::sample()])
            .unwrap_err();
        assert!(matches!(err, SinkError::Unreachable { .. }), "{err:?}");
        assert!(!err.is_transient(), "{err:?}");
    }

    #[test]
    fn unreachable_is_transient() {
        // Port 9 (discard) on loopback: nothing listens there in test machines.
        let mut s = InfluxSink::v1("http://127.0.0.1:9", "m")
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let err = s
            .write(&[crate::record::tests_support::sample()])
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
    }
}
