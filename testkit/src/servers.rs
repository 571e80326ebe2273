//! Real database servers for the tests: a private `influxd` (Debian's
//! influxdb 1.6.7) or `victoria-metrics` (+ `vmauth`) per test, on free
//! loopback ports, with all data in a temporary directory.
//!
//! When a binary is missing, `scripts/setup/influxdb.sh` is run once to
//! install it; only if that fails too does the test skip, loudly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ports::free_port;

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")]);
    for dir in dirs {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs a setup script once per test process.
fn install(script: &str) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|s| s == script) {
        return;
    }
    done.push(script.to_owned());
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/setup")
        .join(script);
    eprintln!("tests: server binaries missing, running {}", path.display());
    match Command::new("bash").arg(&path).status() {
        Ok(s) if s.success() => {}
        other => eprintln!("tests: {} failed: {other:?}", path.display()),
    }
}

/// The binary, installing it if needed; `None` (after a loud message) if it
/// cannot be had.
pub fn binary(names: &[&str]) -> Option<PathBuf> {
    binary_from(names, "influxdb.sh")
}

/// The binary, installing it with `scripts/setup/<script>` if needed.
pub fn binary_from(names: &[&str], script: &str) -> Option<PathBuf> {
    if let Some(p) = find_binary(names) {
        return Some(p);
    }
    install(script);
    let found = find_binary(names);
    if found.is_none() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: {names:?} not installed and scripts/setup/{script} could not install it; \
             this test did NOT run against a real server !!!!!!!!\n"
        );
    }
    found
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn wait_until_up(url: &str, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = agent().get(url).call() {
            if r.status().is_success() {
                return;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during start-up: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer {url} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private influxd.
pub struct Influxd {
    binary: PathBuf,
    dir: tempfile::TempDir,
    /// HTTP port.
    pub port: u16,
    child: Option<Child>,
    /// Admin credentials when auth is enabled.
    pub admin: Option<(String, String)>,
    /// Torn WAL entries cut before restarts
    /// ([`meter_sink::influxdb_wal::cut_torn_wal_tails`]).
    pub torn_wal_tails_cut: usize,
}

impl Influxd {
    /// Starts one without authentication; `None` if influxd is unavailable.
    pub fn start() -> Option<Self> {
        Self::start_with(false, "")
    }

    /// Starts one with `auth-enabled` and an admin user `admin`/`admin-pw`.
    pub fn start_with_auth() -> Option<Self> {
        Self::start_with(true, "")
    }

    /// Starts one with extra settings in its `[data]` section (e.g. a
    /// tiny `cache-max-memory-size`, which makes every write fail with 500).
    pub fn start_with_data_settings(data: &str) -> Option<Self> {
        Self::start_with(false, data)
    }

    /// Rewrites the `[data]` extras and restarts (same port and data).
    pub fn reconfigure(&mut self, data: &str) {
        self.kill();
        let path = self.dir.path().join("influxdb.conf");
        let config = std::fs::read_to_string(&path).unwrap();
        let start = config.find("# extra data settings\n").unwrap();
        let end = config.find("# end of extra data settings\n").unwrap();
        let config = format!(
            "{}# extra data settings\n{data}\n{}",
            &config[..start],
            &config[end..]
        );
        std::fs::write(&path, config).unwrap();
        self.restart();
    }

    fn start_with(auth: bool, data: &str) -> Option<Self> {
        let binary = binary(&["influxd"])?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let config = format!(
            r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
# extra data settings
{data}
# end of extra data settings
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  auth-enabled = {auth}
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"#,
            rpc = free_port(),
        );
        std::fs::write(dir.path().join("influxdb.conf"), config).unwrap();
        let mut server = Self {
            binary,
            dir,
            port,
            child: None,
            admin: None,
            torn_wal_tails_cut: 0,
        };
        server.restart();
        if auth {
            // With auth on and no users, influxd lets the first admin be created.
            server.query(
                None,
                "CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES",
            );
            server.admin = Some(("admin".into(), "admin-pw".into()));
        }
        Some(server)
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "influxd already running");
        // influxd 1.6.7 would otherwise write behind a torn WAL entry and
        // lose those writes at the next kill (see the module's docs); the
        // tests that kill it are about our writer, not about that.
        let cuts = meter_sink::influxdb_wal::cut_torn_wal_tails(&self.dir.path().join("wal"))
            .expect("repair influxd's WAL");
        self.torn_wal_tails_cut += cuts.len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("influxd.log"))
            .unwrap();
        let mut child = Command::new(&self.binary)
            .arg("run")
            .arg("-config")
            .arg(self.dir.path().join("influxdb.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start influxd");
        wait_until_up(&format!("{}/ping", self.url()), &mut child, "influxd");
        // The answer must come from this influxd (its command line names our
        // config), not from another process that took the port while it was
        // down: writes acknowledged by that one would look lost from ours.
        let config = self.dir.path().join("influxdb.conf");
        let vars = agent()
            .get(&format!("{}/debug/vars", self.url()))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        assert!(
            vars.contains(&config.display().to_string()),
            "port {} is answered by another process, not the influxd of {}",
            self.port,
            config.display()
        );
        self.child = Some(child);
    }

    /// influxd's WAL segment files.
    pub fn wal_segments(&self) -> Vec<PathBuf> {
        meter_sink::influxdb_wal::wal_segments(&self.dir.path().join("wal")).unwrap()
    }

    /// SIGKILL, no clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGSTOP (`true`) or SIGCONT (`false`) to our influxd: a hung
    /// server that accepts connections but never answers.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("influxd not running").id();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Runs an InfluxQL statement (as admin when auth is on); panics on an
    /// error answer. Returns the JSON result.
    pub fn query(&self, db: Option<&str>, q: &str) -> Value {
        self.query_epoch(db, q, "s")
    }

    /// [`query`](Self::query) with times in `epoch` units (`s`, `ms`).
    pub fn query_epoch(&self, db: Option<&str>, q: &str, epoch: &str) -> Value {
        let mut req = agent()
            .post(format!("{}/query", self.url()))
            .query("q", q)
            .query("epoch", epoch);
        if let Some(db) = db {
            req = req.query("db", db);
        }
        if let Some((u, p)) = &self.admin {
            req = req.query("u", u).query("p", p);
        }
        let mut resp = req.send_empty().expect("influxd /query");
        let text = resp.body_mut().read_to_string().unwrap();
        assert!(
            resp.status().is_success(),
            "query {q:?} failed: {} {text}",
            resp.status()
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        if let Some(err) = v["results"][0]["error"].as_str() {
            panic!("query {q:?} failed: {err}");
        }
        v
    }

    /// `CREATE DATABASE`.
    pub fn create_database(&self, db: &str) {
        self.query(None, &format!("CREATE DATABASE \"{db}\""));
    }

    /// Rows of the first series of a query: `columns` and `values`.
    pub fn rows(&self, db: &str, q: &str) -> (Vec<String>, Vec<Vec<Value>>) {
        let v = self.query(Some(db), q);
        let series = &v["results"][0]["series"];
        let Some(first) = series.get(0) else {
            return (Vec::new(), Vec::new());
        };
        let columns = first["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        let values = first["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect();
        (columns, values)
    }

    /// Like [`rows`](Self::rows) with every number as a float, so that
    /// `6` and `6.0` compare equal.
    pub fn rows_f64(&self, db: &str, q: &str) -> (Vec<String>, Vec<Vec<Value>>) {
        let (columns, rows) = self.rows(db, q);
        let rows = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.as_f64().map_or(v, |x| serde_json::json!(x)))
                    .collect()
            })
            .collect();
        (columns, rows)
    }

    /// The server's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("influxd.log")).unwrap_or_default()
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private VictoriaMetrics (accepts the 2.x write API), optionally behind
/// vmauth with a bearer token (for the token tests).
pub struct VictoriaMetrics {
    _dir: tempfile::TempDir,
    /// VictoriaMetrics' own port.
    pub port: u16,
    /// vmauth's port, when started with a token.
    pub auth_port: Option<u16>,
    children: Vec<Child>,
}

impl VictoriaMetrics {
    /// Starts VictoriaMetrics, and vmauth accepting `token` if given.
    pub fn start(token: Option<&str>) -> Option<Self> {
        let vm = binary(&["victoria-metrics", "victoria-metrics-prod"])?;
        let vmauth = match token {
            Some(_) => Some(binary(&["vmauth", "vmauth-prod"])?),
            None => None,
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(vm)
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-loggerLevel=ERROR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics");
        wait_until_up(
            &format!("http://127.0.0.1:{port}/health"),
            &mut child,
            "victoria-metrics",
        );
        let mut server = Self {
            _dir: dir,
            port,
            auth_port: None,
            children: vec![child],
        };
        if let (Some(vmauth), Some(token)) = (vmauth, token) {
            let config = server._dir.path().join("auth.yml");
            std::fs::write(
                &config,
                format!("users:\n- bearer_token: \"{token}\"\n  url_prefix: \"http://127.0.0.1:{port}\"\n"),
            )
            .unwrap();
            let auth_port = free_port();
            let mut child = Command::new(vmauth)
                .arg(format!("-auth.config={}", config.display()))
                .arg(format!("-httpListenAddr=127.0.0.1:{auth_port}"))
                .arg("-loggerLevel=ERROR")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start vmauth");
            // vmauth's own /health is not proxied.
            wait_until_up(
                &format!("http://127.0.0.1:{auth_port}/health"),
                &mut child,
                "vmauth",
            );
            server.children.push(child);
            server.auth_port = Some(auth_port);
        }
        Some(server)
    }

    /// VictoriaMetrics' URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// vmauth's URL.
    pub fn auth_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.auth_port.expect("started without vmauth")
        )
    }

    /// All samples of metrics matching `selector`, after a flush:
    /// `(name, labels, values, timestamps in ms)`.
    pub fn export(&self, selector: &str) -> Vec<Value> {
        let a = agent();
        a.get(format!("{}/internal/force_flush", self.url()))
            .call()
            .unwrap();
        let mut resp = a
            .get(format!("{}/api/v1/export", self.url()))
            .query("match[]", selector)
            .call()
            .unwrap();
        let text = resp.body_mut().read_to_string().unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
