//! The battery (issue 17): bad input of every kind thrown at the real
//! `meter` binary: frames, configs, cameras (the simulator's faults and
//! fake servers), sinks, secrets and `set-value`. Every case must
//!
//! - end within [`LIMIT`];
//! - exit 1 with one clear error line (the last line of stderr, `error:
//!   ...`, naming what it expects, its cause said once and no internal type
//!   names), or log the fault and exit as expected (`meter run` keeps going);
//! - never panic;
//! - leave the stored state (`state/<meter>.json`) as it was;
//! - write nothing outside the configured folders (`state/`, `dataset/`,
//!   `unsure/`, `rejected/`, `models/`, `out/`; the working folder stays
//!   empty);
//! - print no secret: every config carries marker credentials, and every
//!   case runs with `RUST_LOG=trace`.
//!
//! The cases run on parallel threads; a failure lists every failing case.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use firmware::camsim::{FaultKind, Frames, Server, SimConfig};
use testkit::http::{FakeHttp, Hung};

use crate::helpers::{meter, rolling};

/// The longest any case may take.
const LIMIT: Duration = Duration::from_secs(20);

/// Marker credentials: none may ever be printed.
const SECRETS: &[&str] = &[
    "SECRET-PASS-456",
    "SECRET-TOKEN-789",
    "SECRET-MQTT-321",
    "SECRET-BOT-654",
    "SECRET-URL-987",
];

/// Folders a run may write into (relative to the case's folder).
const ALLOWED: &[&str] = &["state", "dataset", "unsure", "rejected", "models", "out"];

/// The servers every case can point at.
struct World {
    /// A good camera.
    good: Server,
    /// Cameras failing every capture this way.
    truncating: Server,
    failing: Server,
    hanging: Server,
    dripping: Server,
    /// Fake cameras: a login page, 401, 404, a redirect loop.
    login: FakeHttp,
    unauthorized: FakeHttp,
    missing: FakeHttp,
    redirecting: FakeHttp,
    /// A write endpoint answering 204 (the database of every config).
    db: FakeHttp,
    /// A captive portal answering writes with a login page.
    portal: FakeHttp,
    /// A database that never answers.
    hung: Hung,
    /// `[[meter]]` table of the simulator (source: the good camera).
    table: String,
    /// A state file of meter `camsim` (the value the camera shows).
    state: Vec<u8>,
    /// A sound frame of the good camera.
    frame: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn faulty(kind: FaultKind) -> Server {
    Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(rolling(13_579.4, 0.0, 9))),
        fault_every: Some((1, kind)),
        ..SimConfig::default()
    })
    .expect("simulator starts")
}

impl World {
    fn start() -> Self {
        let good = Server::start(SimConfig {
            source: Frames::Synthetic(Box::new(rolling(13_579.4, 0.0, 9))),
            ..SimConfig::default()
        })
        .expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        let setup = good.write_setup(&dir.path().join("sim")).unwrap();
        let table = std::fs::read_to_string(&setup.config).unwrap();
        let frame = good.render_frame(0).unwrap().jpeg;
        let mut world = Self {
            truncating: faulty(FaultKind::Truncate),
            failing: faulty(FaultKind::Error500),
            hanging: faulty(FaultKind::Timeout),
            dripping: faulty(FaultKind::Drip),
            login: FakeHttp::start(200, "text/html", "<html>login</html>", &[]),
            unauthorized: FakeHttp::start(401, "text/plain", "no", &[]),
            missing: FakeHttp::start(404, "text/plain", "no", &[]),
            redirecting: FakeHttp::start(302, "", "", &[("Location", "/capture")]),
            db: FakeHttp::start(204, "", "", &[]),
            portal: FakeHttp::start(200, "text/html", "<html>login</html>", &[]),
            hung: Hung::start(),
            good,
            table,
            state: Vec::new(),
            frame,
            _dir: dir,
        };
        // The state every case starts from, made by the binary itself.
        let seed = tempfile::tempdir().unwrap();
        std::fs::write(seed.path().join("meter.toml"), world.config()).unwrap();
        let o = meter()
            .args(["set-value", "--config"])
            .arg(seed.path().join("meter.toml"))
            .args(["--meter", "camsim", "13579.4"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        world.state = std::fs::read(seed.path().join("state/camsim.json")).unwrap();
        world
    }

    /// The good camera's capture URL.
    fn camera(&self) -> String {
        self.good.capture_url()
    }

    /// The base config: every folder named, the simulator's meter, a
    /// JSON-lines sink and an InfluxDB 1.x sink with a password.
    fn config(&self) -> String {
        format!(
            "state_dir = \"state\"\ndataset_dir = \"dataset\"\nunsure_dir = \"unsure\"\n\
             rejected_dir = \"rejected\"\nmodels_dir = \"models\"\npredict_deadline = \"4s\"\n\n\
             {}\n[[sink]]\ntype = \"jsonl\"\npath = \"out/readings.jsonl\"\n\n\
             [[sink]]\ntype = \"influx_v1\"\nurl = \"{}\"\ndatabase = \"meters\"\n\
             user = \"battery\"\npassword = \"SECRET-PASS-456\"\n",
            self.table, self.db.url
        )
    }

    /// The base config with the camera at `url`.
    fn config_at(&self, url: &str) -> String {
        self.config().replace(&self.camera(), url)
    }

    /// The base config with `key = value` lines added to the meter.
    fn meter_keys(&self, keys: &str) -> String {
        self.config()
            .replace("interval = \"10s\"", &format!("interval = \"10s\"\n{keys}"))
    }

    /// The base config with its interval written as `value`.
    fn interval(&self, value: &str) -> String {
        self.config()
            .replace("interval = \"10s\"", &format!("interval = {value}"))
    }

    /// The base config with `text` first (top-level keys).
    fn top(&self, text: &str) -> String {
        let config = self.config();
        // Replace a key the base sets rather than setting it twice.
        let key = text.split('=').next().unwrap_or("").trim();
        let kept: String = config
            .lines()
            .filter(|l| key.is_empty() || !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect();
        format!("{text}\n{kept}")
    }
}

/// What a case must end with.
#[derive(Clone, Copy)]
enum Expect {
    /// Exit 1, the last line of stderr `error: ...` with every word.
    Error(&'static [&'static str]),
    /// Exit with this code, and a WARN or ERROR log line with every word.
    Fault(i32, &'static [&'static str]),
    /// A command-line mistake: exit 2 (clap's convention), `error: ...`
    /// with every word first, then clap's pointer to `--help`.
    Usage(&'static [&'static str]),
}

type Prepare = Box<dyn Fn(&World, &Path) -> Vec<String> + Send + Sync>;

struct Case {
    name: &'static str,
    expect: Expect,
    /// Writes the case's files into its folder; returns the arguments.
    prepare: Prepare,
}

/// A case running `args` (`{dir}` is the case's folder, `{config}` its
/// config) on the config `config` gives.
fn case(
    name: &'static str,
    args: &'static str,
    expect: Expect,
    config: impl Fn(&World) -> String + Send + Sync + 'static,
) -> Case {
    case_with(name, args, expect, move |w, dir| {
        std::fs::write(dir.join("meter.toml"), config(w)).unwrap();
    })
}

/// As [`case`], with `write` making every file of the case.
fn case_with(
    name: &'static str,
    args: &'static str,
    expect: Expect,
    write: impl Fn(&World, &Path) + Send + Sync + 'static,
) -> Case {
    Case {
        name,
        expect,
        prepare: Box::new(move |w, dir| {
            write(w, dir);
            let d = dir.to_str().unwrap();
            args.replace("{config}", "{dir}/meter.toml")
                .replace("{dir}", d)
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        }),
    }
}

/// A case reading `predict --frame` of the bytes `frame` gives.
fn frame_case(
    name: &'static str,
    expect: Expect,
    frame: impl Fn(&World) -> Vec<u8> + Send + Sync + 'static,
) -> Case {
    case_with(
        name,
        "predict --config {config} --frame {dir}/frame.jpg",
        expect,
        move |w, dir| {
            std::fs::write(dir.join("meter.toml"), w.config()).unwrap();
            std::fs::write(dir.join("frame.jpg"), frame(w)).unwrap();
        },
    )
}

fn jpeg_of(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A JPEG whose header claims `w` x `h` pixels: the sound frame's header
/// with its size patched.
fn claimed_size(frame: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut out = frame.to_vec();
    let sof = out
        .windows(2)
        .position(|p| p == [0xFF, 0xC0] || p == [0xFF, 0xC2])
        .expect("a frame header");
    out[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    out
}

fn cases() -> Vec<Case> {
    use Expect::{Error, Fault, Usage};
    let predict = "predict --config {config}";
    let set_value = "set-value --config {config} --meter camsim 1001";
    let mut c = vec![
        // Slow ones first: they overlap the rest.
        // ---- cameras ----
        case(
            "camera never answers",
            predict,
            Error(&["camsim", "/capture"]),
            |w| w.config_at(&w.hanging.capture_url()),
        ),
        case(
            "camera drips a byte a second",
            predict,
            Error(&["camsim", "/capture"]),
            |w| w.config_at(&w.dripping.capture_url()),
        ),
        case(
            "database never answers",
            predict,
            Fault(0, &["spool"]),
            |w| w.config().replace(&w.db.url, &w.hung.url),
        ),
        case(
            "run: camera never answers",
            "run --config {config} --duration 11s",
            Fault(0, &["/capture", "timeout"]),
            |w| w.config_at(&w.hanging.capture_url()),
        ),
        case(
            "camera unreachable",
            predict,
            Error(&["camsim", "http://127.0.0.1:9/capture"]),
            |w| w.config_at("http://127.0.0.1:9/capture"),
        ),
        case(
            "camera name does not resolve",
            predict,
            Error(&["camsim", "no-such-camera.invalid"]),
            |w| w.config_at("http://no-such-camera.invalid/capture"),
        ),
        case(
            "camera answers 500",
            predict,
            Error(&["camsim", "500"]),
            |w| w.config_at(&w.failing.capture_url()),
        ),
        case(
            "camera cuts every frame",
            predict,
            Error(&["camsim", "/capture"]),
            |w| w.config_at(&w.truncating.capture_url()),
        ),
        case(
            "camera answers a login page",
            predict,
            Error(&["camsim", "text/html"]),
            |w| w.config_at(&format!("{}/capture", w.login.url)),
        ),
        case(
            "camera answers 401",
            predict,
            Error(&["camsim", "401"]),
            |w| w.config_at(&format!("{}/capture", w.unauthorized.url)),
        ),
        case(
            "camera answers 404",
            predict,
            Error(&["camsim", "404"]),
            |w| w.config_at(&format!("{}/capture", w.missing.url)),
        ),
        case(
            "camera redirects in a loop",
            predict,
            Error(&["camsim", "redirect"]),
            |w| w.config_at(&format!("{}/capture", w.redirecting.url)),
        ),
        case(
            "camera URL with a password in it",
            predict,
            Error(&["camsim", "127.0.0.1:9"]),
            |w| w.config_at("http://admin:SECRET-URL-987@127.0.0.1:9/capture"),
        ),
        case(
            "run: camera unreachable",
            "run --config {config} --count 2",
            Fault(0, &["camsim", "127.0.0.1:9"]),
            |w| w.config_at("http://127.0.0.1:9/capture"),
        ),
        case(
            "run: camera cuts every frame",
            "run --config {config} --count 2",
            Fault(0, &["camsim"]),
            |w| w.config_at(&w.truncating.capture_url()),
        ),
        case_with(
            "source folder is empty",
            predict,
            Error(&["camsim", "frames"]),
            |w, dir| {
                std::fs::create_dir_all(dir.join("frames")).unwrap();
                let d = dir.join("frames");
                std::fs::write(dir.join("meter.toml"), w.config_at(d.to_str().unwrap())).unwrap();
            },
        ),
        case(
            "source folder missing",
            predict,
            Error(&["camsim", "/no-such-folder/frames", "No such file"]),
            |w| w.config_at("/no-such-folder/frames"),
        ),
        case(
            "source is an unknown scheme",
            predict,
            Error(&["meter[0].source", "ftp://"]),
            |w| w.config_at("ftp://camera/capture"),
        ),
        case(
            "source is empty",
            predict,
            Error(&["meter[0].source"]),
            |w| w.config_at(""),
        ),
        // ---- frames (predict --frame) ----
        case_with(
            "frame file missing",
            "predict --config {config} --frame {dir}/no-such.jpg",
            Error(&["no-such.jpg", "No such file"]),
            |w, dir| std::fs::write(dir.join("meter.toml"), w.config()).unwrap(),
        ),
        case_with(
            "frame is a folder",
            "predict --config {config} --frame {dir}/out",
            Error(&["out"]),
            |w, dir| {
                std::fs::write(dir.join("meter.toml"), w.config()).unwrap();
                std::fs::create_dir_all(dir.join("out")).unwrap();
            },
        ),
        case_with(
            "frame is /dev/null",
            "predict --config {config} --frame /dev/null",
            Error(&["/dev/null"]),
            |w, dir| std::fs::write(dir.join("meter.toml"), w.config()).unwrap(),
        ),
        frame_case("frame is empty", Error(&["frame.jpg"]), |_| Vec::new()),
        frame_case("frame is text", Error(&["frame.jpg"]), |_| {
            b"this is not a picture\n".to_vec()
        }),
        frame_case("frame is random bytes", Error(&["frame.jpg"]), |_| {
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect()
        }),
        frame_case("frame cut in half", Error(&["frame.jpg"]), |w| {
            w.frame[..w.frame.len() / 2].to_vec()
        }),
        frame_case("frame header only", Error(&["frame.jpg"]), |w| {
            w.frame[..200].to_vec()
        }),
        frame_case("frame without its end marker", Error(&["frame.jpg"]), |w| {
            w.frame[..w.frame.len() - 2].to_vec()
        }),
        frame_case("frame with a corrupt middle", Error(&["frame.jpg"]), |w| {
            let mut f = w.frame.clone();
            let n = f.len();
            for b in &mut f[n / 3..n / 3 + 400] {
                *b = 0xFF;
            }
            f
        }),
        frame_case(
            "frame claims 65000 x 65000 pixels",
            Error(&["frame.jpg"]),
            |w| claimed_size(&w.frame, 65_000, 65_000),
        ),
        frame_case("frame claims 0 x 0 pixels", Error(&["frame.jpg"]), |w| {
            claimed_size(&w.frame, 0, 0)
        }),
        frame_case("frame is a PNG", Error(&["frame.jpg"]), |w| {
            let img = image::load_from_memory(&w.frame).unwrap();
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Png).unwrap();
            out.into_inner()
        }),
        frame_case(
            "frame far too small",
            Error(&["camsim", "frame.jpg"]),
            |_| {
                jpeg_of(&image::RgbImage::from_fn(160, 120, |x, y| {
                    let v = ((x * 7 + y * 13) % 200) as u8 + 20;
                    image::Rgb([v, v, v])
                }))
            },
        ),
        frame_case("frame one pixel", Error(&["frame.jpg"]), |_| {
            jpeg_of(&image::RgbImage::new(1, 1))
        }),
        frame_case("frame all black", Error(&["camsim", "frame.jpg"]), |_| {
            jpeg_of(&image::RgbImage::new(640, 480))
        }),
        frame_case("frame flat grey", Error(&["frame.jpg"]), |_| {
            jpeg_of(&image::RgbImage::from_pixel(
                640,
                480,
                image::Rgb([128, 128, 128]),
            ))
        }),
        frame_case(
            "frame grey from the middle down",
            Error(&["frame.jpg"]),
            |w| {
                let mut img = image::load_from_memory(&w.frame).unwrap().to_rgb8();
                let h = img.height();
                for y in h / 2..h {
                    for x in 0..img.width() {
                        img.put_pixel(x, y, image::Rgb([128, 128, 128]));
                    }
                }
                jpeg_of(&img)
            },
        ),
        frame_case("frame of noise", Error(&["camsim", "frame.jpg"]), |_| {
            jpeg_of(&image::RgbImage::from_fn(640, 480, |x, y| {
                let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7;
                image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
            }))
        }),
        // ---- configs ----
        case_with(
            "config missing",
            "predict --config {dir}/no-such.toml",
            Error(&["no-such.toml", "No such file"]),
            |_, _| {},
        ),
        case_with(
            "config is a folder",
            "predict --config {dir}/out",
            Error(&["out"]),
            |_, dir| std::fs::create_dir_all(dir.join("out")).unwrap(),
        ),
        case("config empty", predict, Error(&["meter"]), |_| {
            String::new()
        }),
        case("config not TOML", predict, Error(&["meter.toml"]), |_| {
            "[[meter]\nname = \"x\"\n".into()
        }),
        case(
            "config binary garbage",
            predict,
            Error(&["meter.toml"]),
            |_| {
                String::from_utf8_lossy(
                    &(0..512u32)
                        .map(|i| (i * 37 % 251) as u8)
                        .collect::<Vec<_>>(),
                )
                .into_owned()
            },
        ),
        case(
            "unknown top-level key",
            predict,
            Error(&["meter.toml", "colour"]),
            |w| w.top("colour = \"red\""),
        ),
        case(
            "unknown meter key",
            predict,
            Error(&["meter.toml", "colour"]),
            |w| w.meter_keys("colour = \"red\""),
        ),
        case(
            "interval 1e30s",
            set_value,
            Error(&["meter[0].interval", "1e30s"]),
            |w| w.interval("\"1e30s\""),
        ),
        case(
            "interval 1e30 seconds",
            set_value,
            Error(&["meter[0].interval", "outside"]),
            |w| w.interval("1e30"),
        ),
        case(
            "interval 1e19 seconds",
            set_value,
            Error(&["meter[0].interval", "outside"]),
            |w| w.interval("1e19"),
        ),
        case(
            "interval true",
            set_value,
            Error(&["meter[0].interval", "boolean"]),
            |w| w.interval("true"),
        ),
        case(
            "interval zero",
            set_value,
            Error(&["meter[0].interval", "outside"]),
            |w| w.interval("\"0s\""),
        ),
        case(
            "interval negative",
            set_value,
            Error(&["meter[0].interval", "outside"]),
            |w| w.interval("-5"),
        ),
        case(
            "interval in words",
            set_value,
            Error(&["meter[0].interval", "soon"]),
            |w| w.interval("\"soon\""),
        ),
        case(
            "retrain min_interval 1e30s",
            set_value,
            Error(&["retrain.min_interval"]),
            |w| format!("{}\n[retrain]\nmin_interval = \"1e30s\"\n", w.config()),
        ),
        case(
            "retrain check_every 1e19",
            set_value,
            Error(&["retrain.check_every", "outside"]),
            |w| format!("{}\n[retrain]\ncheck_every = 1e19\n", w.config()),
        ),
        case(
            "predict_deadline zero",
            set_value,
            Error(&["predict_deadline", "outside"]),
            |w| w.top("predict_deadline = \"0s\""),
        ),
        case(
            "run --duration 1e19s",
            "run --config {config} --duration 1e19s",
            Error(&["--duration"]),
            |w| w.config(),
        ),
        case(
            "run --duration 1e30",
            "run --config {config} --duration 1e30",
            Error(&["--duration", "outside"]),
            |w| w.config(),
        ),
        case(
            "run --shard 3/2",
            "run --config {config} --shard 3/2",
            Usage(&["--shard", "3/2"]),
            |w| w.config(),
        ),
        case(
            "search_radius 100000",
            set_value,
            Error(&["meter[0].search_radius", "1000 px"]),
            |w| w.meter_keys("search_radius = 100000"),
        ),
        case(
            "search_radius negative",
            set_value,
            Error(&["meter[0].search_radius"]),
            |w| w.meter_keys("search_radius = -1"),
        ),
        case(
            "200 digit boxes",
            set_value,
            Error(&["meter[0].digits", "200"]),
            |w| {
                let boxes: Vec<String> = (0..200)
                    .map(|i| format!("[{}, 200, 3, 64]", i * 3))
                    .collect();
                let config = w.config();
                let start = config.find("digits = [").unwrap();
                let end = start + config[start..].find("\n]").unwrap() + 2;
                format!(
                    "{}digits = [{}]{}",
                    &config[..start],
                    boxes.join(", "),
                    &config[end..]
                )
            },
        ),
        case(
            "more decimals than digits",
            set_value,
            Error(&["meter[0].decimals"]),
            |w| w.config().replace("decimals = 1", "decimals = 9"),
        ),
        case(
            "digit box of zero width",
            set_value,
            Error(&["meter[0].digits[0]"]),
            |w| {
                w.config()
                    .replace("[170, 200, 40, 64]", "[170, 200, 0, 64]")
            },
        ),
        case(
            "digit box far outside the frame",
            predict,
            Error(&["camsim"]),
            |w| {
                w.config()
                    .replace("[170, 200, 40, 64]", "[170000, 200, 40, 64]")
            },
        ),
        case(
            "digits and counter both",
            set_value,
            Error(&["meter[0].digits"]),
            |w| w.meter_keys("counter = { window = [170, 200, 290, 64], count = 6 }"),
        ),
        case(
            "meter name with a slash",
            set_value,
            Error(&["meter[0].name"]),
            |w| {
                w.config()
                    .replace("name = \"camsim\"", "name = \"../evil\"")
            },
        ),
        case(
            "two meters of one name",
            set_value,
            Error(&["meter[1].name", "camsim"]),
            |w| format!("{}\n{}", w.config(), w.table),
        ),
        case(
            "four marks",
            set_value,
            Error(&["meter[0].marks", "at most 3"]),
            |w| {
                let config = w.config();
                let line = config
                    .lines()
                    .find(|l| l.contains("mark0.png"))
                    .unwrap()
                    .to_owned();
                config.replace(&line, &format!("{line}\n{line}\n{line}\n{line}"))
            },
        ),
        case(
            "mark file missing",
            predict,
            Error(&["no-such-mark.png", "No such file"]),
            |w| w.config().replace("mark1.png", "no-such-mark.png"),
        ),
        case_with(
            "mark file not an image",
            predict,
            Error(&["mark.png"]),
            |w, dir| {
                std::fs::write(dir.join("mark.png"), "not an image").unwrap();
                let config = w.config();
                let line = config
                    .lines()
                    .find(|l| l.contains("mark1.png"))
                    .unwrap()
                    .to_owned();
                let mark = dir.join("mark.png");
                std::fs::write(
                    dir.join("meter.toml"),
                    config.replace(
                        &line,
                        &format!("  {{ image = {:?}, x = 544, y = 384 }},", mark),
                    ),
                )
                .unwrap();
            },
        ),
        case(
            "min_confidence above 1",
            set_value,
            Error(&["model.min_confidence"]),
            |w| format!("{}\n[model]\nmin_confidence = 2.0\n", w.config()),
        ),
        case(
            "max_rate_per_hour negative",
            set_value,
            Error(&["meter[0].max_rate_per_hour"]),
            |w| w.meter_keys("max_rate_per_hour = -1.0"),
        ),
        case(
            "accept_after 1",
            set_value,
            Error(&["meter[0].accept_after"]),
            |w| w.meter_keys("accept_after = 1"),
        ),
        case("rotate nan", set_value, Error(&["meter[0].rotate"]), |w| {
            w.config().replace("rotate = 0", "rotate = nan")
        }),
        case(
            "dataset_cap negative",
            set_value,
            Error(&["dataset_cap"]),
            |w| w.top("dataset_cap = -1"),
        ),
        case(
            "model file missing",
            predict,
            Error(&["no-such-model.safetensors", "model.path"]),
            |w| {
                format!(
                    "{}\n[model]\npath = \"no-such-model.safetensors\"\n",
                    w.config()
                )
            },
        ),
        case_with(
            "model file is text",
            predict,
            Error(&["model.safetensors"]),
            |w, dir| {
                std::fs::write(dir.join("model.safetensors"), "not a model").unwrap();
                std::fs::write(
                    dir.join("meter.toml"),
                    format!("{}\n[model]\npath = \"model.safetensors\"\n", w.config()),
                )
                .unwrap();
            },
        ),
        case(
            "predict --meter unknown",
            "predict --config {config} --meter garage",
            Error(&["garage", "camsim"]),
            |w| w.config(),
        ),
        // ---- state ----
        case(
            "state_dir is a file",
            set_value,
            Error(&["state_dir", "is a file"]),
            |w| w.top("state_dir = \"meter.toml\""),
        ),
        case_with(
            "state file corrupt",
            predict,
            Error(&["camsim.json", "set-value"]),
            |w, dir| {
                std::fs::write(dir.join("meter.toml"), w.config()).unwrap();
                std::fs::write(dir.join("state/camsim.json"), "{ not json").unwrap();
            },
        ),
        case_with(
            "state file of another counter",
            predict,
            Error(&["camsim.json", "set-value"]),
            |w, dir| {
                std::fs::write(
                    dir.join("meter.toml"),
                    w.config().replace("decimals = 1", "decimals = 2"),
                )
                .unwrap();
            },
        ),
        // ---- set-value ----
        case(
            "set-value unknown meter",
            "set-value --config {config} --meter garage 5",
            Error(&["garage", "camsim"]),
            |w| w.config(),
        ),
        case(
            "set-value too many decimals",
            "set-value --config {config} --meter camsim 12.345",
            Error(&["12.345"]),
            |w| w.config(),
        ),
        case(
            "set-value negative",
            "set-value --config {config} --meter camsim -5",
            Error(&["-5"]),
            |w| w.config(),
        ),
        case(
            "set-value not a number",
            "set-value --config {config} --meter camsim abc",
            Error(&["abc"]),
            |w| w.config(),
        ),
        case(
            "set-value too many digits",
            "set-value --config {config} --meter camsim 1234567890",
            Error(&["1234567890"]),
            |w| w.config(),
        ),
        case(
            "set-value 1e400",
            "set-value --config {config} --meter camsim 1e400",
            Error(&["1e400"]),
            |w| w.config(),
        ),
        case(
            "set-value nan",
            "set-value --config {config} --meter camsim NaN",
            Error(&["NaN"]),
            |w| w.config(),
        ),
        // ---- sinks and secrets ----
        case("sink type unknown", set_value, Error(&["mongo"]), |w| {
            format!("{}\n[[sink]]\ntype = \"mongo\"\nurl = \"x\"\n", w.config())
        }),
        case(
            "sink URL not a URL",
            set_value,
            Error(&["sink[2]", "url"]),
            |w| {
                format!(
                    "{}\n[[sink]]\ntype = \"influx_v1\"\nurl = \"not a url\"\ndatabase = \"m\"\n",
                    w.config()
                )
            },
        ),
        case(
            "sink password without user",
            set_value,
            Error(&["sink[2]", "user"]),
            |w| {
                format!(
                    "{}\n[[sink]]\ntype = \"influx_v1\"\nurl = \"http://127.0.0.1:9\"\ndatabase = \"m\"\npassword = \"SECRET-PASS-456\"\n",
                    w.config()
                )
            },
        ),
        case(
            "csv folder cannot be created",
            predict,
            Error(&["csv", "meter.toml"]),
            |w| {
                format!(
                    "{}\n[[sink]]\ntype = \"csv\"\npath = \"meter.toml/x/r.csv\"\n",
                    w.config()
                )
            },
        ),
        case(
            "jsonl on a full disk",
            predict,
            Error(&["sink", "/dev/full"]),
            |w| w.config().replace("out/readings.jsonl", "/dev/full"),
        ),
        case(
            "database answers a login page",
            predict,
            Fault(0, &["not an InfluxDB write endpoint"]),
            |w| w.config().replace(&w.db.url, &w.portal.url),
        ),
        case(
            "database URL with a password in it",
            predict,
            Error(&["sink[1]", "user:password@"]),
            |w| {
                w.config()
                    .replace(&w.db.url, "http://admin:SECRET-URL-987@127.0.0.1:9")
            },
        ),
        case(
            "database unreachable",
            predict,
            Fault(0, &["127.0.0.1:9"]),
            |w| w.config().replace(&w.db.url, "http://127.0.0.1:9"),
        ),
        case(
            "database refuses the password",
            predict,
            Fault(0, &["401"]),
            |w| w.config().replace(&w.db.url, &w.unauthorized.url),
        ),
        case(
            "influx_v2 token refused",
            predict,
            Fault(0, &["401"]),
            |w| {
                format!(
                    "{}\n[[sink]]\ntype = \"influx_v2\"\nurl = \"{}\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"SECRET-TOKEN-789\"\n",
                    w.config(),
                    w.unauthorized.url
                )
            },
        ),
        case(
            "mqtt broker unreachable",
            predict,
            Fault(0, &["mqtt"]),
            |w| {
                format!(
                    "{}\n[[sink]]\ntype = \"mqtt\"\nurl = \"mqtt://127.0.0.1:9\"\nuser = \"m\"\npassword = \"SECRET-MQTT-321\"\n",
                    w.config()
                )
            },
        ),
        case(
            "telegram API unreachable",
            "run --config {config} --count 1",
            Fault(0, &["telegram"]),
            |w| {
                format!(
                    "{}\n[alerts.default]\nno_stored_reading = {{ after = \"1s\", in_a_row = 1 }}\n\n\
                     [[notify]]\ntype = \"telegram\"\napi_url = \"http://127.0.0.1:9\"\n\
                     bot_token = \"123:SECRET-BOT-654\"\nchat_id = 1\n",
                    w.config_at("http://127.0.0.1:9/capture")
                )
            },
        ),
    ];
    // A config of every case above with `predict` as `run --count 1`
    // would double the time; a few of the run loop's own cases instead.
    c.push(case(
        "run --count 0",
        "run --config {config} --count 0",
        Usage(&["--count"]),
        |w| w.config(),
    ));
    c.push(case(
        "run --workers 0",
        "run --config {config} --workers 0",
        Error(&["--workers"]),
        |w| w.config(),
    ));
    c
}

/// Every file under `dir` and its bytes, by path relative to `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// Runs one case; `Err` says everything it did wrong.
fn run_case(world: &World, case: &Case) -> Result<String, String> {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("case");
    let cwd = root.path().join("cwd");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(dir.join("state/camsim.json"), &world.state).unwrap();
    let args = (case.prepare)(world, &dir);
    let before = snapshot(&dir);
    let (out, err) = (root.path().join("stdout"), root.path().join("stderr"));
    let mut child = meter()
        .args(&args)
        .current_dir(&cwd)
        .env("RUST_LOG", "trace")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("the meter binary runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&std::fs::read(&err).unwrap()).into_owned();
    let mut wrong = Vec::new();
    let Some(status) = status else {
        return Err(format!("still running after {LIMIT:?}: {args:?}"));
    };
    let code = status.code();
    for text in [&stdout, &stderr] {
        for bad in ["panicked", "RUST_BACKTRACE"] {
            if text.contains(bad) {
                wrong.push(format!("{bad:?} in the output"));
            }
        }
        for secret in SECRETS {
            if text.contains(secret) {
                let line = text.lines().find(|l| l.contains(secret)).unwrap_or("");
                wrong.push(format!("secret {secret} printed: {line}"));
            }
        }
    }
    // Warnings (retries) and errors name a URL once.
    for line in stderr
        .lines()
        .filter(|l| l.starts_with("error:") || l.contains(" WARN ") || l.contains(" ERROR "))
    {
        let urls: Vec<&str> = line
            .match_indices("http://")
            .map(|(i, _)| {
                let rest = &line[i..];
                let end = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, '"' | ')' | ',' | ';'))
                    .unwrap_or(rest.len());
                rest[..end].trim_end_matches([':', '.'])
            })
            .collect();
        if (1..urls.len()).any(|i| urls[..i].contains(&urls[i])) {
            wrong.push(format!("a URL said twice: {line}"));
        }
    }
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    let said = match case.expect {
        Expect::Error(words) => {
            let last = stderr.lines().last().unwrap_or("");
            if code != Some(1) {
                wrong.push(format!("exit code {code:?}, not 1"));
            }
            if !last.starts_with("error: ") || errors.len() != 1 {
                wrong.push(format!("not one error line at the end: {errors:?}"));
            }
            for w in words {
                if !last.contains(w) {
                    wrong.push(format!("{w:?} not in the error"));
                }
            }
            if last.matches("(os error").count() > 1 {
                wrong.push("the cause said twice".into());
            }
            for internal in ["untagged", "RawInterval", "Raw"] {
                if last.contains(internal) {
                    wrong.push(format!("an internal name ({internal}) in the error"));
                }
            }
            last.to_owned()
        }
        Expect::Usage(words) => {
            if code != Some(2) {
                wrong.push(format!("exit code {code:?}, not 2"));
            }
            let first = errors.first().copied().unwrap_or("");
            if errors.len() != 1 {
                wrong.push(format!("not one error line: {errors:?}"));
            }
            for w in words {
                if !first.contains(w) {
                    wrong.push(format!("{w:?} not in the error"));
                }
            }
            first.to_owned()
        }
        Expect::Fault(want, words) => {
            if code != Some(want) {
                wrong.push(format!("exit code {code:?}, not {want}"));
            }
            let logged = stderr.lines().find(|l| {
                (l.contains(" WARN ") || l.contains(" ERROR "))
                    && words.iter().all(|w| l.contains(w))
            });
            match logged {
                Some(l) => l.to_owned(),
                None => {
                    wrong.push(format!("no WARN or ERROR line with {words:?}"));
                    String::new()
                }
            }
        }
    };
    // The state, and everything outside the configured folders, as before.
    let after = snapshot(&dir);
    // A reading reported stored may move the state on; nothing else may.
    let stored = stdout.contains("status=stored");
    for (path, bytes) in &after {
        let allowed = ALLOWED.iter().any(|a| path.starts_with(a));
        let state = path == Path::new("state/camsim.json") && !stored;
        if (state || !allowed) && before.get(path) != Some(bytes) {
            wrong.push(format!("{} written", path.display()));
        }
    }
    for path in before.keys() {
        if !after.contains_key(path) {
            wrong.push(format!("{} removed", path.display()));
        }
    }
    if std::fs::read_dir(&cwd).unwrap().next().is_some() {
        wrong.push("files written in the working folder".into());
    }
    if wrong.is_empty() {
        Ok(format!("{took:>6.1?}  {}: {said}", case.name))
    } else {
        let tail: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains(" TRACE ") && !l.contains(" DEBUG "))
            .collect();
        let tail = tail[tail.len().saturating_sub(6)..].join("\n      ");
        Err(format!(
            "{} ({args:?}, exit {code:?}, {took:.1?}):\n    {}\n    stderr: {tail}",
            case.name,
            wrong.join("\n    ")
        ))
    }
}

#[test]
fn bad_input_of_every_kind_ends_cleanly() {
    let world = World::start();
    let cases = cases();
    assert!(cases.len() >= 66, "{} cases", cases.len());
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else {
                    return;
                };
                let r = run_case(&world, case);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let mut failed = Vec::new();
    for (_, r) in &results {
        match r {
            Ok(line) => eprintln!("ok {line}"),
            Err(e) => failed.push(e.clone()),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}
