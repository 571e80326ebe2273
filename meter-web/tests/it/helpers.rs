//! A simulated meter read once by the service, and an HTTP client.

use std::path::PathBuf;
use std::sync::Arc;

use firmware::camsim::{Advance, Frames, Server, SimConfig, SyntheticConfig};
use meter_service::config::{ResolvedConfig, ServeConfig};
use meter_service::live::Live;
use meter_service::{RunOptions, Service};

/// A simulated meter, read once, and the web server over it.
pub struct Site {
    /// The camera simulator (kept running).
    pub _camera: Server,
    /// The config file.
    pub config: PathBuf,
    /// Its folder.
    pub dir: tempfile::TempDir,
    /// What the service saw.
    pub live: Arc<Live>,
    /// The web server.
    pub web: meter_web::Server,
}

impl Site {
    /// The server's address with `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.web.addr())
    }

    /// The origin a page of this server sends.
    pub fn origin(&self) -> String {
        format!("http://{}", self.web.addr())
    }

    /// The config, loaded.
    pub fn cfg(&self) -> ResolvedConfig {
        ResolvedConfig::load_with_env(&self.config, &Default::default()).unwrap()
    }
}

/// The config of a simulated meter: its `[[meter]]` table (with `extra`
/// keys), a JSON-lines sink, folders under a temp dir.
pub fn setup(extra: &str) -> (Server, PathBuf, tempfile::TempDir) {
    setup_with("", extra)
}

/// As [`setup`], with `top` (top-level keys and tables) first in the file.
pub fn setup_with(top: &str, extra: &str) -> (Server, PathBuf, tempfile::TempDir) {
    let camera = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(SyntheticConfig {
            start: 1234.0,
            advance: Advance::PerFrame(0.1),
            seed: 7,
            ..SyntheticConfig::default()
        })),
        ..SimConfig::default()
    })
    .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let setup = camera.write_setup(&dir.path().join("sim")).unwrap();
    let mut table = std::fs::read_to_string(&setup.config).unwrap();
    if extra.contains("unit =") {
        table = table.replace("unit = \"kWh\"", "");
    }
    let table = table.replace(
        "interval = \"10s\"",
        &format!("interval = \"10ms\"\n{extra}"),
    );
    let config = dir.path().join("meter.toml");
    std::fs::write(
        &config,
        format!(
            "# the test's config\n{top}\n{table}\n[[sink]]\ntype = \"jsonl\"\npath = \"readings.jsonl\"\n"
        ),
    )
    .unwrap();
    (camera, config, dir)
}

/// A simulated meter read `count` times by the service, then served.
pub fn site(extra: &str, count: u64) -> Site {
    site_with("", extra, count)
}

/// As [`site`], with `top` first in the config (see [`setup_with`]).
pub fn site_with(top: &str, extra: &str, count: u64) -> Site {
    let (camera, config, dir) = setup_with(top, extra);
    let cfg = ResolvedConfig::load_with_env(&config, &Default::default()).unwrap();
    let service = Service::new(
        cfg.clone(),
        RunOptions {
            count: Some(count),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let live = service.live().clone();
    let reconfigure = service.reconfigure().clone();
    service.run().unwrap();
    let serve = ServeConfig {
        listen: "127.0.0.1:0".into(),
        token: None,
    };
    let web = meter_web::Server::start(cfg, &serve, live.clone(), Some(reconfigure)).unwrap();
    Site {
        _camera: camera,
        config,
        dir,
        live,
        web,
    }
}

/// A client that returns error statuses as answers.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// GET: status and body.
pub fn get(url: &str) -> (u16, Vec<u8>) {
    let mut r = agent().get(url).call().expect("the server answers");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_vec().unwrap())
}

/// GET: status and body as text.
pub fn get_text(url: &str) -> (u16, String) {
    let (s, b) = get(url);
    (s, String::from_utf8_lossy(&b).into_owned())
}

/// POST `json` with `origin` as the Origin header (none when `None`).
pub fn post(url: &str, origin: Option<&str>, json: &str) -> (u16, String) {
    let mut req = agent().post(url).header("Content-Type", "application/json");
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let mut r = req.send(json).expect("the server answers");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap())
}

/// Files `crops` into the `unsure/` queue as `meter run` names them (one
/// frame of meter `camsim`).
pub fn write_unsure(cfg: &ResolvedConfig, crops: &[image::RgbImage]) {
    std::fs::create_dir_all(&cfg.unsure_dir).unwrap();
    for (k, c) in crops.iter().enumerate() {
        let hash = meter_service::files::image_hash(c);
        c.save(
            cfg.unsure_dir
                .join(format!("camsim-20240101000000-d{k}-read1-{hash:016x}.png")),
        )
        .unwrap();
    }
}
