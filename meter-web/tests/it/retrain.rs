//! "Retrain now": `POST /api/retrain` starts a real fine-tune on the
//! dataset in the background; `GET /api/retrain` shows it running, then its
//! outcome with the numbers.

use std::time::Duration;

use crate::helpers::{get_text, post, site};

fn status(s: &crate::helpers::Site) -> serde_json::Value {
    let (st, body) = get_text(&s.url("/api/retrain"));
    assert_eq!(st, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn retrain_runs_then_shows_its_outcome_with_the_numbers() {
    let s = site("", 1);
    let cfg = s.cfg();
    let o = s.origin();
    assert_eq!(status(&s)["state"], "idle");
    let model = meter_service::registry::load_current_model(&cfg).unwrap();
    // The fewest that pass the retrain's minimum of training and
    // validation images with a margin, so that it finishes in seconds.
    meter_synth::write_whole_digits(&cfg.dataset_dir, model.input_size(), 6).unwrap();
    // The validation part the retrain scores on: the dataset's images
    // (the reader's own and the synthetic ones) picked by hash.
    let data = meter_model::Dataset::load(&cfg.dataset_dir, model.input_size()).unwrap();
    let validation = data
        .samples
        .iter()
        .filter(|s| meter_service::retrain::is_validation(&s.image))
        .count();

    let (st, body) = post(&s.url("/api/retrain"), Some(&o), "");
    assert_eq!(st, 200, "{body}");
    let started: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(started["state"], "running", "{body}");
    assert!(started["started"].is_string(), "{body}");
    // Training takes many optimiser steps; a second start meanwhile is
    // refused rather than run twice.
    let (st, body) = post(&s.url("/api/retrain"), Some(&o), "");
    assert_eq!(st, 409, "{body}");

    let mut now = status(&s);
    for _ in 0..6000 {
        if now["state"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        now = status(&s);
    }
    let state = now["state"].as_str().unwrap().to_owned();
    let message = now["message"].as_str().unwrap().to_owned();
    assert!(
        state == "promoted" || state == "refused",
        "{state}: {message}"
    );
    // Both models' scores on the validation images, with their count.
    assert_eq!(message.matches("exact").count(), 2, "{message}");
    assert_eq!(
        message.matches(&format!("(n {validation})")).count(),
        2,
        "{message}"
    );
    let reg = meter_service::registry::Registry::load(&cfg.models_dir).unwrap();
    let (st, models) = get_text(&s.url("/api/models"));
    assert_eq!(st, 200, "{models}");
    let models: serde_json::Value = serde_json::from_str(&models).unwrap();
    if state == "promoted" {
        assert!(message.starts_with("promoted v1"), "{message}");
        assert_eq!(reg.current_version(), 1);
        assert_eq!(models["current"], 1);
    } else {
        assert!(message.starts_with("refused, v0 kept"), "{message}");
        assert_eq!(reg.current_version(), 0);
    }
}
