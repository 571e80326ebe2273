//! The `[[sink]]` configuration: what to open, checked and opened here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::SinkError;
use crate::mqtt::{MeterInfo, MqttHandle, MqttSpec};
use crate::{CsvSink, InfluxSink, JsonLinesSink, Sink, SpoolingSink};

/// One configured sink, as written in a `[[sink]]` table:
///
/// ```toml
/// [[sink]]
/// type = "influx_v1"            # or influx_v2, csv, jsonl
/// url = "http://127.0.0.1:8086"
/// database = "meters"
/// user = "meter"                # optional, with password
/// password = "…"
/// retention_policy = "autogen"  # optional
///
/// [[sink]]
/// type = "influx_v2"
/// url = "http://127.0.0.1:8086"
/// org = "home"
/// bucket = "meters"
/// token = "…"
///
/// [[sink]]
/// type = "csv"                  # or jsonl
/// path = "readings.csv"         # relative to the caller's base folder
///
/// [[sink]]
/// type = "mqtt"                 # see `mqtt::MqttSpec` for every key
/// url = "mqtt://127.0.0.1:1883"
/// ```
///
/// Database sinks are opened behind a durable spool
/// ([`SpoolingSink`]) with the [`defaults`](crate::defaults).
/// `Debug` never shows the password or token.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SinkSpec {
    /// InfluxDB 1.x `/write` (also VictoriaMetrics).
    InfluxV1 {
        /// Server URL, `http(s)://host:port`.
        url: String,
        /// Database.
        database: String,
        /// User (with `password`).
        user: Option<String>,
        /// Password (with `user`); sent in a Basic authorization header.
        password: Option<String>,
        /// Retention policy (default: the database's default).
        retention_policy: Option<String>,
    },
    /// InfluxDB 2.x/3.x `/api/v2/write` (also VictoriaMetrics).
    InfluxV2 {
        /// Server URL, `http(s)://host:port`.
        url: String,
        /// Organisation.
        org: String,
        /// Bucket.
        bucket: String,
        /// API token.
        token: String,
    },
    /// A CSV file, appended to.
    Csv {
        /// The file; a relative path is taken from the base folder.
        path: PathBuf,
    },
    /// A JSON-lines file, appended to.
    Jsonl {
        /// The file; a relative path is taken from the base folder.
        path: PathBuf,
    },
    /// An MQTT broker, with Home Assistant discovery.
    Mqtt(MqttSpec),
}

/// An opened sink, with the MQTT sink's handle (commands, model versions).
pub struct Opened {
    /// The sink.
    pub sink: Box<dyn Sink + Send>,
    /// For an MQTT sink: its commands and state.
    pub mqtt: Option<MqttHandle>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("mqtt", &self.mqtt.is_some())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct(self.kind());
        match self {
            Self::InfluxV1 {
                url,
                database,
                user,
                retention_policy,
                ..
            } => d
                .field("url", url)
                .field("database", database)
                .field("user", user)
                .field("retention_policy", retention_policy)
                .finish_non_exhaustive(),
            Self::InfluxV2 {
                url, org, bucket, ..
            } => d
                .field("url", url)
                .field("org", org)
                .field("bucket", bucket)
                .finish_non_exhaustive(),
            Self::Csv { path } | Self::Jsonl { path } => d.field("path", path).finish(),
            Self::Mqtt(m) => d.field("spec", m).finish(),
        }
    }
}

impl SinkSpec {
    /// The `type` key's value (`influx_v1`, `influx_v2`, `csv`, `jsonl`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InfluxV1 { .. } => "influx_v1",
            Self::InfluxV2 { .. } => "influx_v2",
            Self::Csv { .. } => "csv",
            Self::Jsonl { .. } => "jsonl",
            Self::Mqtt(_) => "mqtt",
        }
    }

    /// A short name for logs, and the name of the sink's spool folder:
    /// `influx_v1-0`, `csv-1` (`index` is the sink's place in the config).
    /// Stable: a renamed label would orphan a spool.
    pub fn label(&self, index: usize) -> String {
        format!("{}-{index}", self.kind())
    }

    /// The file of a CSV or JSON-lines sink, resolved against `base_dir`.
    pub fn file(&self, base_dir: &Path) -> Option<PathBuf> {
        match self {
            Self::Csv { path } | Self::Jsonl { path } => Some(base_dir.join(path)),
            Self::InfluxV1 { .. } | Self::InfluxV2 { .. } | Self::Mqtt(_) => None,
        }
    }

    /// Checks the settings without opening anything. Errors are
    /// [`SinkError::Config`] naming the key (`url`, `password`, ...).
    pub fn validate(&self) -> Result<(), SinkError> {
        match self {
            Self::Mqtt(m) => m.validate(),
            _ => self.database().map(drop),
        }
    }

    /// Opens the sink: files (their folder created) relative to
    /// `base_dir`; databases and brokers behind a durable spool in
    /// `spool_root/<label>`, which starts delivering what an earlier run
    /// left there. `meters` are the meters whose readings it will get (the
    /// MQTT sink announces them to Home Assistant). Errors are
    /// [`SinkError::Opening`] naming the sink.
    pub fn open(
        &self,
        index: usize,
        base_dir: &Path,
        spool_root: &Path,
        meters: &[MeterInfo],
    ) -> Result<Opened, SinkError> {
        let spool = spool_root.join(self.label(index));
        let open = || -> Result<Opened, SinkError> {
            if let Self::Mqtt(m) = self {
                let (sink, handle) = crate::mqtt::open(m, spool.clone(), meters)?;
                return Ok(Opened {
                    sink: Box::new(sink),
                    mqtt: Some(handle),
                });
            }
            let plain = |sink: Box<dyn Sink + Send>| Opened { sink, mqtt: None };
            if let Some(db) = self.database()? {
                return Ok(plain(Box::new(
                    SpoolingSink::builder(db, spool.clone()).build()?,
                )));
            }
            let path = self.file(base_dir).unwrap_or_default();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| SinkError::io("cannot create folder", dir, e))?;
            }
            Ok(plain(match self {
                Self::Csv { .. } => Box::new(CsvSink::create(path)?),
                _ => Box::new(JsonLinesSink::create(path)?),
            }))
        };
        open().map_err(|source| SinkError::Opening {
            sink: self.describe(index, base_dir),
            source: Box::new(source),
        })
    }

    /// `influx_v1-0 (http://host:8086)`, `csv-1 (/srv/readings.csv)`.
    fn describe(&self, index: usize, base_dir: &Path) -> String {
        let what = match self {
            Self::InfluxV1 { url, .. } | Self::InfluxV2 { url, .. } => url.clone(),
            Self::Mqtt(m) => m.url.clone(),
            Self::Csv { .. } | Self::Jsonl { .. } => self
                .file(base_dir)
                .unwrap_or_default()
                .display()
                .to_string(),
        };
        format!("{} ({what})", self.label(index))
    }

    /// The database client of a database sink, validated; `None` for files.
    fn database(&self) -> Result<Option<InfluxSink>, SinkError> {
        let missing = |field, other| SinkError::Config {
            field,
            problem: format!(
                "missing: give both `user` and `password`, or neither (`{other}` is set)"
            ),
        };
        let sink = match self {
            Self::InfluxV1 {
                url,
                database,
                user,
                password,
                retention_policy,
            } => {
                let mut b = InfluxSink::v1(url, database.clone());
                match (user, password) {
                    (Some(u), Some(p)) => b = b.credentials(u.clone(), p.clone()),
                    (None, None) => {}
                    (Some(_), None) => return Err(missing("password", "user")),
                    (None, Some(_)) => return Err(missing("user", "password")),
                }
                if let Some(rp) = retention_policy {
                    b = b.retention_policy(rp.clone());
                }
                b.build()?
            }
            Self::InfluxV2 {
                url,
                org,
                bucket,
                token,
            } => InfluxSink::v2(url, org.clone(), bucket.clone(), token.clone()).build()?,
            Self::Mqtt(_) => return Ok(None),
            Self::Csv { path } | Self::Jsonl { path } => {
                if path.as_os_str().is_empty() {
                    return Err(SinkError::Config {
                        field: "path",
                        problem: "empty".into(),
                    });
                }
                return Ok(None);
            }
        };
        Ok(Some(sink))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<SinkSpec, String> {
        toml::from_str::<SinkSpec>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_todays_sink_tables() {
        let v1 = parse(
            "type = \"influx_v1\"\nurl = \"http://127.0.0.1:8086\"\ndatabase = \"meters\"\nuser = \"u\"\npassword = \"hunter2\"\n",
        )
        .unwrap();
        assert_eq!(v1.label(0), "influx_v1-0");
        v1.validate().unwrap();
        assert!(!format!("{v1:?}").contains("hunter2"), "{v1:?}");
        let v2 = parse("type = \"influx_v2\"\nurl = \"https://x\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"sekrit\"\n").unwrap();
        assert!(!format!("{v2:?}").contains("sekrit"), "{v2:?}");
        let csv = parse("type = \"csv\"\npath = \"out/r.csv\"\n").unwrap();
        assert_eq!(csv.label(3), "csv-3");
        assert_eq!(
            csv.file(Path::new("/srv")),
            Some(PathBuf::from("/srv/out/r.csv"))
        );
        let err = parse("type = \"csv\"\npath = \"r.csv\"\nuser = \"x\"\n").unwrap_err();
        assert!(err.contains("user"), "{err}");
        let err = parse("type = \"sqlite\"\npath = \"r\"\n").unwrap_err();
        assert!(err.contains("sqlite"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let field = |text: &str| match parse(text).unwrap().validate() {
            Err(SinkError::Config { field, .. }) => field,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            field("type = \"influx_v1\"\nurl = \"ftp://x\"\ndatabase = \"m\"\n"),
            "url"
        );
        assert_eq!(
            field("type = \"influx_v1\"\nurl = \"http://x\"\ndatabase = \"m\"\nuser = \"u\"\n"),
            "password"
        );
        assert_eq!(
            field("type = \"influx_v1\"\nurl = \"http://x\"\ndatabase = \"m\"\npassword = \"p\"\n"),
            "user"
        );
        assert_eq!(
            field("type = \"influx_v2\"\nurl = \"http://x\"\norg = \"o\"\nbucket = \"\"\ntoken = \"t\"\n"),
            "bucket"
        );
        assert_eq!(field("type = \"jsonl\"\npath = \"\"\n"), "path");
    }

    #[test]
    fn a_file_sink_whose_folder_cannot_be_created_names_the_sink() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let spec = parse("type = \"csv\"\npath = \"file/sub/r.csv\"\n").unwrap();
        let Err(err) = spec.open(2, dir.path(), dir.path(), &[]) else {
            panic!("opened")
        };
        let text = format!("{err}");
        assert!(text.starts_with("sink csv-2 ("), "{text}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("cannot create folder"), "{cause}");
        // Relative paths are taken from the base folder.
        let ok = parse("type = \"jsonl\"\npath = \"a/b/r.jsonl\"\n").unwrap();
        ok.open(0, dir.path(), dir.path(), &[]).unwrap();
        assert!(dir.path().join("a/b/r.jsonl").is_file());
    }
}
