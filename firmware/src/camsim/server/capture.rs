//! `/capture`: the firmware's flash sequence, the queued and standing
//! faults, the frame and its headers, and writing the response (in one
//! write, or dripping).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tiny_http::{Method, Request};

use super::super::truth::{HEADER_FILE, HEADER_FLASH};
use super::super::{FaultKind, FaultSpec};
use super::{text, Shared};
use crate::led::{FlashConfig, FlashLed, LedAction, LedEvent};

/// Holds the LED gauge up while a capture's flash is on.
struct LedGauge<'a> {
    shared: &'a Shared,
    on: bool,
}

impl LedGauge<'_> {
    fn set(&mut self, duty: u8) {
        let on = duty > 0;
        if on != self.on {
            if on {
                self.shared.leds_on.fetch_add(1, Ordering::Relaxed);
            } else {
                self.shared.leds_on.fetch_sub(1, Ordering::Relaxed);
            }
            self.on = on;
        }
    }
}

impl Drop for LedGauge<'_> {
    fn drop(&mut self) {
        self.set(0);
    }
}

pub(super) fn capture(shared: &Shared, req: Request) {
    let (seq, settings, fault) = {
        let mut st = shared.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let standing = shared
            .fault_every
            .filter(|(n, _)| seq % u64::from(*n) == u64::from(*n) - 1)
            .map(|(_, kind)| FaultSpec::from(kind));
        (seq, st.settings.clone(), st.faults.pop_front().or(standing))
    };
    let ms = |t: Instant| t.duration_since(shared.started).as_millis() as u64;
    // The flash sequence of the firmware: on, warm up, grab, off.
    let flash_cfg = FlashConfig::builder()
        .warmup_ms(
            shared
                .flash_warmup
                .as_millis()
                .min(u128::from(u32::MAX / 2)) as u32,
        )
        .max_on_ms(u32::MAX)
        .build()
        .unwrap_or_default();
    let mut led = FlashLed::new(flash_cfg);
    let mut gauge = LedGauge { shared, on: false };
    led.handle(
        ms(Instant::now()),
        LedEvent::SetIntensity(settings.led_intensity),
    );
    let mut step = led.handle(ms(Instant::now()), LedEvent::CaptureRequested);
    gauge.set(step.duty);
    let duty = step.duty;
    if step.action != LedAction::Grab {
        if !shared.sleep(shared.flash_warmup) {
            led.handle(ms(Instant::now()), LedEvent::CaptureFailed);
            return;
        }
        step = led.handle(ms(Instant::now()), LedEvent::Tick);
    }
    debug_assert_eq!(step.action, LedAction::Grab);

    match fault.map(|f| f.kind) {
        Some(FaultKind::Error500) => {
            gauge.set(led.handle(ms(Instant::now()), LedEvent::CaptureFailed).duty);
            let _ = req.respond(text(500, "Camera capture failed\n"));
            return;
        }
        Some(FaultKind::Timeout) => {
            gauge.set(led.handle(ms(Instant::now()), LedEvent::CaptureFailed).duty);
            drop(gauge);
            let hold = fault.and_then(|f| f.delay).unwrap_or(shared.timeout_hold);
            shared.sleep(hold);
            // Abandon the response without writing a byte.
            drop(req.into_writer());
            return;
        }
        _ => {}
    }

    let frame = shared.source.frame(
        seq,
        shared.started.elapsed(),
        &settings,
        duty,
        shared.out_size(&settings),
    );
    gauge.set(led.handle(ms(Instant::now()), LedEvent::FrameCaptured).duty);
    drop(gauge);
    let frame = match frame {
        Ok(f) => f,
        Err(e) => {
            log::error!("frame {seq}: {e}");
            let _ = req.respond(text(500, format!("Camera capture failed: {e}\n")));
            return;
        }
    };
    let mut body = frame.jpeg;
    match fault {
        Some(FaultSpec {
            kind: FaultKind::Truncate,
            ..
        }) => {
            // Cut somewhere in the middle, reproducibly per frame.
            let frac = ChaCha8Rng::seed_from_u64(seq).gen_range(0.3..0.8);
            body.truncate((body.len() as f64 * frac) as usize);
        }
        Some(FaultSpec {
            kind: FaultKind::Slow,
            delay,
        }) if !shared.sleep(delay.unwrap_or(shared.slow_delay)) => return,
        _ => {}
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut headers: Vec<(&str, String)> = vec![
        ("Content-Type", "image/jpeg".into()),
        ("Content-Disposition", "inline; filename=capture.jpg".into()),
        ("Access-Control-Allow-Origin", "*".into()),
        (
            "X-Timestamp",
            format!("{}.{:06}", now.as_secs(), now.subsec_micros()),
        ),
        (HEADER_FLASH, duty.to_string()),
    ];
    match &frame.truth {
        Some(truth) => {
            log::debug!(
                "frame {seq}: value {} shift {:?} rotation {:.2}",
                truth.value_text(),
                truth.shift,
                truth.rotation_deg
            );
            headers.extend(truth.headers());
        }
        None => headers.push((super::super::HEADER_SEQ, seq.to_string())),
    }
    if let Some(file) = frame
        .file
        .filter(|f| f.bytes().all(|b| (b' '..=b'~').contains(&b)))
    {
        headers.push((HEADER_FILE, file));
    }
    if let Some(FaultSpec {
        kind: FaultKind::Drip,
        delay,
    }) = fault
    {
        let every = delay.unwrap_or(Duration::from_secs(1));
        if let Err(e) = respond_dripping(shared, req, &headers, &body, every) {
            log::debug!("frame {seq}: client went away: {e}");
        }
        return;
    }
    // Counted before sending, so a client that has the frame sees the count.
    if !matches!(fault.map(|f| f.kind), Some(FaultKind::Truncate)) {
        shared.frames_served.fetch_add(1, Ordering::Relaxed);
    }
    let head_only = *req.method() == Method::Head;
    if let Err(e) = respond_in_one_write(req, &headers, &body, head_only) {
        log::debug!("frame {seq}: client went away: {e}");
    }
}

/// The `drip` fault: the head at once, then one byte of the body per
/// `every`, until the body is out, the client gives up or the server stops.
fn respond_dripping(
    shared: &Shared,
    req: Request,
    headers: &[(&str, String)],
    body: &[u8],
    every: Duration,
) -> std::io::Result<()> {
    use std::io::Write;
    let head = response_head(&req, headers, body.len());
    let mut w = req.into_writer();
    w.write_all(&head)?;
    w.flush()?;
    for byte in body {
        if !shared.sleep(every) {
            return Ok(());
        }
        w.write_all(std::slice::from_ref(byte))?;
        w.flush()?;
    }
    Ok(())
}

/// Status line and headers of a `200` with a `Content-Length`.
fn response_head(req: &Request, headers: &[(&str, String)], body_len: usize) -> Vec<u8> {
    let close = req
        .headers()
        .iter()
        .any(|h| h.field.equiv("Connection") && h.value.as_str().eq_ignore_ascii_case("close"))
        || req.http_version() == &tiny_http::HTTPVersion(1, 0);
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: meter-camsim\r\n");
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes a `200` with a `Content-Length` (never chunked, as the firmware)
/// in a single write. tiny_http sends the head and the body separately and
/// its sockets keep Nagle's algorithm on, so the body's last segment would
/// wait for the client's delayed ACK (40 ms on Linux) on every frame.
fn respond_in_one_write(
    req: Request,
    headers: &[(&str, String)],
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = response_head(&req, headers, body.len());
    if !head_only {
        out.extend_from_slice(body);
    }
    let mut w = req.into_writer();
    w.write_all(&out)?;
    w.flush()
}
