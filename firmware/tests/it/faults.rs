//! Fault injection: truncated JPEGs, 500s, slow answers and no answers.

use std::time::Duration;

use firmware::camsim::{FaultKind, FaultSpec, Frames, Server, SimConfig, SyntheticConfig};

use crate::{client, get, get_with, patient, start, still_meter};

fn fault(sim: &Server, query: &str) -> crate::Got {
    get(&format!("{}/fault?{query}", sim.url()))
}

#[test]
fn truncated_jpeg_is_short_unterminated_and_undecodable_as_whole() {
    let sim = start(still_meter(0.1));
    let reply = fault(&sim, "kind=truncate&count=2");
    assert_eq!(reply.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (v["queued"].as_u64(), v["pending"].as_u64()),
        (Some(2), Some(2))
    );
    let whole = sim.render_frame(0).unwrap().jpeg;
    for seq in 0..2u64 {
        let got = get(&sim.capture_url());
        assert_eq!(got.status, 200);
        assert_eq!(
            got.header("content-length"),
            Some(got.body.len().to_string())
        );
        assert_eq!(got.truth().seq, seq);
        assert!(got.body.len() < whole.len() * 9 / 10, "cut short");
        assert_eq!(&got.body[..2], &[0xFF, 0xD8], "still starts as a JPEG");
        assert!(!got.body.ends_with(&[0xFF, 0xD9]), "no end-of-image marker");
    }
    let got = get(&sim.capture_url());
    assert!(got.body.ends_with(&[0xFF, 0xD9]), "faults are used up");
    image::load_from_memory(&got.body).unwrap();
    assert_eq!(
        sim.frames_served(),
        1,
        "truncated frames are not counted as served"
    );
}

#[test]
fn error500_then_recovery() {
    let sim = start(SyntheticConfig::default());
    fault(&sim, "kind=error500");
    let got = get(&sim.capture_url());
    assert_eq!(got.status, 500);
    let got = get(&sim.capture_url());
    assert_eq!(got.status, 200);
    assert_eq!(
        got.truth().seq,
        1,
        "the failed capture took a sequence number"
    );
    assert_eq!(sim.leds_on(), 0);
}

#[test]
fn faults_apply_in_order_and_can_be_cleared() {
    let sim = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(still_meter(0.1))),
        faults: vec![FaultKind::Error500.into()],
        ..SimConfig::default()
    })
    .unwrap();
    sim.inject(FaultKind::Truncate.into(), 1);
    fault(&sim, "kind=error500&count=3");
    assert_eq!(get(&sim.capture_url()).status, 500);
    assert!(!get(&sim.capture_url()).body.ends_with(&[0xFF, 0xD9]));
    assert_eq!(get(&sim.capture_url()).status, 500);
    let v: serde_json::Value = serde_json::from_slice(&fault(&sim, "kind=clear").body).unwrap();
    assert_eq!(v["pending"], 0);
    assert_eq!(get(&sim.capture_url()).status, 200);
    // Bad requests are refused and queue nothing.
    for q in [
        "",
        "kind=melt",
        "kind=slow&count=0",
        "kind=slow&count=x",
        "kind=slow&delay_ms=-1",
    ] {
        assert_eq!(fault(&sim, q).status, 400, "{q}");
    }
    assert_eq!(get(&sim.capture_url()).status, 200);
}

#[test]
fn slow_answer_trips_a_short_client_timeout_but_arrives() {
    let sim = start(SyntheticConfig::default());
    sim.inject(
        FaultSpec {
            kind: FaultKind::Slow,
            delay: Some(Duration::from_secs(5)),
        },
        1,
    );
    let impatient = client(Duration::from_millis(500));
    match get_with(&impatient, &sim.capture_url()) {
        Err(ureq::Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {:?}", other.map(|g| g.status)),
    }
    // A patient client gets a slow frame in full.
    fault(&sim, "kind=slow&delay_ms=300");
    let got = get_with(&patient(), &sim.capture_url()).unwrap();
    assert_eq!(got.status, 200);
    image::load_from_memory(&got.body).unwrap();
}

#[test]
fn timeout_never_answers_and_leaves_the_led_off() {
    let sim = start(SyntheticConfig::default());
    fault(&sim, "kind=timeout&delay_ms=600000");
    let impatient = client(Duration::from_millis(800));
    match get_with(&impatient, &sim.capture_url()) {
        Err(ureq::Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {:?}", other.map(|g| g.status)),
    }
    assert_eq!(sim.leds_on(), 0, "flash off while the request hangs");
    // Other requests are served meanwhile.
    assert_eq!(get(&sim.capture_url()).status, 200);
    // Stopping releases the held request promptly (not after 10 minutes).
    sim.stop();
}

#[test]
fn abandoned_timeout_sends_nothing() {
    let sim = start(SyntheticConfig::default());
    sim.inject(
        FaultSpec {
            kind: FaultKind::Timeout,
            delay: Some(Duration::from_millis(200)),
        },
        1,
    );
    // After the hold the server gives up without a status line: the client
    // sees an error or its own timeout, never a response.
    let r = get_with(&client(Duration::from_secs(3)), &sim.capture_url());
    assert!(r.is_err(), "got a response: {:?}", r.map(|g| g.status));
}

#[test]
fn standing_fault_hits_every_nth_capture_and_queued_faults_come_first() {
    let sim = Server::start(SimConfig {
        source: Frames::Synthetic(Box::new(still_meter(0.1))),
        fault_every: Some((3, FaultKind::Error500)),
        ..SimConfig::default()
    })
    .unwrap();
    let statuses: Vec<u16> = (0..7).map(|_| get(&sim.capture_url()).status).collect();
    assert_eq!(statuses, [200, 200, 500, 200, 200, 500, 200]);
    sim.inject(FaultKind::Truncate.into(), 1);
    let got = get(&sim.capture_url()); // seq 7: the queued truncation
    assert!(!got.body.ends_with(&[0xFF, 0xD9]));
    assert_eq!(get(&sim.capture_url()).status, 500); // seq 8: standing
}

#[test]
fn drip_sends_the_head_at_once_then_the_jpeg_a_byte_at_a_time() {
    use std::io::{Read, Write};
    let sim = start(SyntheticConfig::default());
    sim.inject(
        FaultSpec {
            kind: FaultKind::Drip,
            delay: Some(Duration::from_millis(5)),
        },
        1,
    );
    let addr = sim.url().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /capture HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 1000, "the whole frame is announced: {head}");
    let mut start = [0u8; 3];
    stream.read_exact(&mut start).unwrap();
    assert_eq!(start, [0xFF, 0xD8, 0xFF], "a JPEG, dripping");
    // Stopping ends the drip (the rest never comes).
    sim.stop();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.len() < length - 3, "{} of {length}", rest.len());
}
