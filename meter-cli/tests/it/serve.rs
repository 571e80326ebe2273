//! `meter serve`, and the page inside `meter run` with `[serve]`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::{assert_error, meter, rolling, run, s, sim_meter};

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(url).call().expect("the page answers");
    let body = r.body_mut().read_to_vec().unwrap();
    (
        r.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Kills the child if the test fails before it ends it.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap()
}

#[test]
fn serve_alone_and_inside_run() {
    let sim = sim_meter(rolling(500.0, 0.1, 3), "50ms", "");
    let config = s(&sim.config).to_owned();

    // Beyond loopback without a token: a clear error, nothing served.
    let o = run(&["serve", "--config", &config, "--listen", "0.0.0.0:0"]);
    assert_error(&o, &["needs a token", "0.0.0.0"]);

    // Alone: the stored values, no live frames.
    let mut child = Reap(
        meter()
            .args(["serve", "--config", &config, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("serving ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    let (st, body) = get(&format!("{url}api/meters"));
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"name\":\"camsim\""), "{body}");
    assert!(body.contains("\"running\":false"), "{body}");
    assert_eq!(get(&format!("{url}api/meters/camsim/frame.jpg")).0, 404);
    assert!(sigterm(&mut child.0).success());

    // Inside `meter run` with [serve]: the live readings and frames.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&sim.config).unwrap();
    std::fs::write(
        &sim.config,
        format!("[serve]\nlisten = \"127.0.0.1:{port}\"\n\n{text}"),
    )
    .unwrap();
    let mut child = Reap(
        meter()
            .args(["run", "--config", &config])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        assert!(Instant::now() < deadline, "no reading on the page in 60 s");
        std::thread::sleep(Duration::from_millis(200));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let Ok(mut r) = agent.get(&format!("{url}api/meters")).call() else {
            continue;
        };
        let body = r.body_mut().read_to_string().unwrap();
        if body.contains("\"raw_text\"") {
            break body;
        }
    };
    assert!(body.contains("\"running\":true"), "{body}");
    assert_eq!(get(&format!("{url}api/meters/camsim/frame.jpg")).0, 200);

    // Boxes saved in the editor: the running meter reads with them next.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let cfg = meter_service::config::ResolvedConfig::load(&sim.config).unwrap();
    let mut boxes = cfg.meters[0].geometry.regions().unwrap().boxes();
    boxes[0][0] += 1;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(&format!("{url}api/meters/camsim/boxes"))
        .header("Origin", url.trim_end_matches('/'))
        .send(format!(
            "{{\"digits\": {}}}",
            serde_json::to_string(&boxes).unwrap()
        ))
        .unwrap();
    let body = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the run took the new boxes");
        if line.contains("meter camsim: reading with the new boxes") {
            break;
        }
    }
    // A model version made current on the page: the run reads with it next.
    let r = agent
        .post(&format!("{url}api/models/0/use"))
        .header("Origin", url.trim_end_matches('/'))
        .send("{}")
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the run took the model");
        if line.contains("meter camsim: reading with model generation 1") {
            break;
        }
    }
    assert!(sigterm(&mut child.0).success());
}
