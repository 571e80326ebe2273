//! Scenario tests on synthetic series; each runs twice, straight and with a
//! restart (state saved and loaded, a new engine) after every observation,
//! and must send the same alerts both ways.

use super::*;
use crate::event::Digit;

/// 2026-03-02 00:00 UTC, a Monday; 01:00 in Berlin (UTC+1 in March).
const T0: i64 = 1_772_409_600;
const MIN: i64 = 60;

fn time(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap()
}

fn reading(
    meter: &str,
    t: i64,
    status: ReadingStatus,
    value: Option<f64>,
    reason: Option<&str>,
) -> Observation {
    Observation::Reading(ObservedReading {
        meter: meter.into(),
        time: time(t),
        value,
        raw: value,
        digits: vec![Digit {
            value: 1.0,
            confidence: 0.99,
        }],
        status,
        reason: reason.map(Into::into),
        unit: Some("m3".into()),
        rate_per_hour: None,
    })
}

fn stored(meter: &str, t: i64, v: f64) -> Observation {
    reading(meter, t, ReadingStatus::Stored, Some(v), None)
}

fn refused(meter: &str, t: i64, status: ReadingStatus) -> Observation {
    reading(meter, t, status, None, Some("value decreased by 3"))
}

fn tick(t: i64) -> Observation {
    Observation::Tick { time: time(t) }
}

/// An engine that may restart after every observation.
struct Run {
    cfg: AlertsConfig,
    engine: Engine,
    dir: tempfile::TempDir,
    restart: bool,
    alerts: Vec<Alert>,
}

impl Run {
    fn new(toml_text: &str, restart: bool) -> Self {
        let cfg: AlertsConfig = toml::from_str(toml_text).unwrap();
        let engine = Engine::new(&cfg, &["water".into()], EngineState::default()).unwrap();
        Self {
            cfg,
            engine,
            dir: tempfile::tempdir().unwrap(),
            restart,
            alerts: Vec::new(),
        }
    }

    fn feed(&mut self, obs: Observation) -> Vec<Alert> {
        let alerts = self.engine.observe(&obs);
        if self.restart {
            // What save and load do, without the disk's syncs.
            let json = serde_json::to_vec(self.engine.state()).unwrap();
            let state: EngineState = serde_json::from_slice(&json).unwrap();
            assert_eq!(
                &state,
                self.engine.state(),
                "state survives a save and load"
            );
            self.engine = Engine::new(&self.cfg, &["water".into()], state).unwrap();
        }
        self.alerts.extend(alerts.clone());
        alerts
    }

    fn summary(&self) -> Vec<(i64, AlertRule, AlertState, u32)> {
        self.alerts
            .iter()
            .map(|a| (a.time.unix_timestamp() - T0, a.rule, a.state, a.repeat))
            .collect()
    }
}

/// Runs `scenario` straight and with restarts; both must agree.
fn both(toml_text: &str, scenario: impl Fn(&mut Run)) -> Run {
    let mut straight = Run::new(toml_text, false);
    scenario(&mut straight);
    let mut restarted = Run::new(toml_text, true);
    scenario(&mut restarted);
    assert_eq!(
        straight.alerts, restarted.alerts,
        "a restart changes nothing"
    );
    straight
}

const H: i64 = HOUR;

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[test]
fn a_dripping_toilet_fires_the_leak_rule_repeats_and_resolves() {
    let run = both(
        "time_zone = 'Europe/Berlin'\n[meter.water]\ncontinuous_flow = {}",
        |run| {
            // 1.2 litres an hour, read every 10 minutes by a counter with
            // litre resolution, for 40 hours; then the drip stops.
            for i in 0..=(48 * 6) {
                let t = T0 + i * 10 * MIN;
                let hours = (t - T0).min(40 * H) as f64 / H as f64;
                run.feed(stored("water", t, round3(500.0 + 0.0012 * hours)));
            }
        },
    );
    assert_eq!(
        run.summary(),
        vec![
            (24 * H, AlertRule::ContinuousFlow, AlertState::Firing, 0),
            (36 * H, AlertRule::ContinuousFlow, AlertState::Firing, 1),
            (41 * H, AlertRule::ContinuousFlow, AlertState::Resolved, 0),
        ]
    );
    assert!(
        run.alerts[0].message.contains("leak"),
        "{}",
        run.alerts[0].message
    );
}

#[test]
fn two_showers_a_day_and_a_counter_wrap_stay_quiet() {
    let run = both(
        "time_zone = 'Europe/Berlin'\n[meter.water]\ncontinuous_flow = {}\nspike = { max_rate_per_hour = 1.0 }\ndaily_max = { max = 0.5, warn_projected = true }",
        |run| {
            // A 6-digit counter with one decimal, near its end: it wraps on
            // the second day.
            let mut value = 99_999.7f64;
            for i in 0..=(3 * 24 * 6) {
                let t = T0 + i * 10 * MIN;
                let hour = (t - T0) % (24 * H) / H;
                if (hour == 7 || hour == 19) && (t - T0) % H == 0 {
                    value += 0.1;
                }
                let shown = round3(value % 100_000.0);
                run.feed(stored("water", t, shown));
            }
        },
    );
    assert_eq!(run.summary(), vec![]);
    // Six showers; the wrap was counted as consumption, not lost or made huge.
    let used: f64 = run.engine.state().meters["water"].hourly.values().sum();
    assert!((used - 0.6).abs() < 1e-6, "{used}");
}

#[test]
fn consumption_across_a_wrap_and_a_hand_correction() {
    assert!((consumption(99_999.9, 0.2) - 0.3).abs() < 1e-9);
    assert!((consumption(9_999.98, 0.01) - 0.03).abs() < 1e-9);
    assert_eq!(
        consumption(5_000.0, 4_000.0),
        0.0,
        "a correction, not a wrap"
    );
    assert_eq!(
        consumption(99_999.9, 5_000.0),
        0.0,
        "too far past zero for a wrap"
    );
    assert_eq!(consumption(1.0, 3.5), 2.5);
}

#[test]
fn daily_max_fires_once_a_local_day_and_resolves_at_local_midnight() {
    let run = both(
        "time_zone = 'Europe/Berlin'\n[meter.water]\ndaily_max = { max = 12, warn_projected = true }",
        |run| {
            // 0.6 an hour from Monday 00:00 UTC (01:00 Berlin) for two days.
            for i in 0..=(48 * 4) {
                let t = T0 + i * 15 * MIN;
                run.feed(stored("water", t, 0.6 * (t - T0) as f64 / H as f64));
                run.feed(tick(t + MIN));
            }
        },
    );
    // Berlin's Monday began at 23:00 UTC on Sunday; readings start at
    // 01:00 Berlin. By 06:00 (a quarter of the day) 3.0 are used: the pace
    // projects exactly 12, not more; at 06:15 it projects 12.1. The maximum
    // is passed with the reading at 21:15 Berlin (12.15). Tuesday is read
    // from its midnight: 3.6 by 06:00 projects 14.4; 12.15 at 20:15.
    let day2 = 23 * H; // Tuesday 00:00 Berlin
    let day3 = 47 * H;
    assert_eq!(
        run.summary(),
        vec![
            (
                5 * H + 15 * MIN,
                AlertRule::DailyMaxProjected,
                AlertState::Firing,
                0
            ),
            (
                20 * H + 15 * MIN,
                AlertRule::DailyMax,
                AlertState::Firing,
                0
            ),
            (day2, AlertRule::DailyMax, AlertState::Resolved, 0),
            (day2, AlertRule::DailyMaxProjected, AlertState::Resolved, 0),
            (
                day2 + 6 * H,
                AlertRule::DailyMaxProjected,
                AlertState::Firing,
                0
            ),
            (
                day2 + 20 * H + 15 * MIN,
                AlertRule::DailyMax,
                AlertState::Firing,
                0
            ),
            (day3, AlertRule::DailyMax, AlertState::Resolved, 0),
            (day3, AlertRule::DailyMaxProjected, AlertState::Resolved, 0),
        ]
    );
    assert!(
        run.alerts[1].message.contains("Europe/Berlin"),
        "{}",
        run.alerts[1].message
    );
}

#[test]
fn night_use_counts_only_inside_the_local_window() {
    let run = both(
        "time_zone = 'Europe/Berlin'\n[meter.water]\nnight_use = { from = '02:00', to = '05:00', max = 0.01 }",
        |run| {
            let mut v = 10.0;
            for i in 0..=(3 * 24 * 4) {
                let t = T0 + i * 15 * MIN;
                // Berlin local hour.
                let local = ((t - T0) / H + 1) % 24;
                let day = (t - T0 + H) / (24 * H);
                // Daytime use every day; a 20-litre flush at 03:00 on the
                // second night only; 5 litres at 02:30 on the third.
                if (8..20).contains(&local) || (day == 1 && local == 3) {
                    v += 0.02;
                }
                if day == 2 && local == 2 && (t - T0) % H == 30 * MIN {
                    v += 0.005;
                }
                run.feed(stored("water", t, round3(v)));
            }
        },
    );
    // Second night: Tuesday 03:00 Berlin = 02:00 UTC (+24 h); its reading
    // at 03:15 Berlin carries the consumption of 03:00..03:15 ... the first
    // stored reading whose interval lies in the window and carries 0.02.
    let s = run.summary();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!((s[0].1, s[0].2), (AlertRule::NightUse, AlertState::Firing));
    assert!((24 * H + 2 * H..24 * H + 4 * H).contains(&s[0].0), "{s:?}");
    // Resolved when the next window begins: Wednesday 02:00 Berlin.
    assert_eq!((s[1].0, s[1].2), (48 * H + H, AlertState::Resolved));
}

#[test]
fn a_spike_fires_and_the_next_normal_rate_resolves() {
    let run = both(
        "[meter.water]\nspike = { max_rate_per_hour = 1.0 }",
        |run| {
            run.feed(stored("water", T0, 1.0));
            run.feed(stored("water", T0 + 10 * MIN, 1.1)); // 0.6/h
            run.feed(stored("water", T0 + 20 * MIN, 1.5)); // 2.4/h
            run.feed(tick(T0 + 25 * MIN));
            run.feed(stored("water", T0 + 30 * MIN, 1.55)); // 0.3/h
        },
    );
    assert_eq!(
        run.summary(),
        vec![
            (20 * MIN, AlertRule::Spike, AlertState::Firing, 0),
            (30 * MIN, AlertRule::Spike, AlertState::Resolved, 0),
        ]
    );
    assert!(
        run.alerts[0].message.contains("2.4 m3/h"),
        "{}",
        run.alerts[0].message
    );
}

#[test]
fn a_silent_camera_fires_repeats_resolves_and_survives_a_restart() {
    let cfg = "[default]\ncamera_silent = { after = '30m', repeat = '2h' }";
    let run = both(cfg, |run| {
        run.feed(stored("water", T0, 1.0));
        for m in 1..=200 {
            let t = T0 + m * MIN;
            if m % 7 == 0 {
                run.feed(Observation::CaptureFailed {
                    meter: "water".into(),
                    time: time(t),
                    error: "camera http://cam/capture: connection refused".into(),
                });
            } else {
                run.feed(tick(t));
            }
        }
        run.feed(refused("water", T0 + 201 * MIN, ReadingStatus::Unsure));
    });
    assert_eq!(
        run.summary(),
        vec![
            (30 * MIN, AlertRule::CameraSilent, AlertState::Firing, 0),
            (150 * MIN, AlertRule::CameraSilent, AlertState::Firing, 1),
            (201 * MIN, AlertRule::CameraSilent, AlertState::Resolved, 0),
        ]
    );
    assert!(
        run.alerts[0].message.contains("connection refused"),
        "{}",
        run.alerts[0].message
    );

    // A restart after a long stop of the reader: silence counts from the
    // restart, unless the rule was already firing (then it is not sent
    // again, and not forgotten).
    let mut run = Run::new(cfg, false);
    run.feed(stored("water", T0, 1.0));
    run.engine.state().save(run.dir.path()).unwrap();
    let mut engine = Engine::new(
        &run.cfg,
        &["water".into()],
        EngineState::load(run.dir.path()).unwrap(),
    )
    .unwrap();
    assert!(
        engine.observe(&tick(T0 + 5 * H)).is_empty(),
        "down is not silent"
    );
    let alerts = engine.observe(&tick(T0 + 5 * H + 30 * MIN));
    assert_eq!(alerts.len(), 1);
    engine.state().save(run.dir.path()).unwrap();
    let mut engine = Engine::new(
        &run.cfg,
        &["water".into()],
        EngineState::load(run.dir.path()).unwrap(),
    )
    .unwrap();
    assert!(
        engine.observe(&tick(T0 + 5 * H + 31 * MIN)).is_empty(),
        "not re-sent"
    );
    assert_eq!(
        engine.firing(),
        vec![("water".to_owned(), AlertRule::CameraSilent)]
    );
    let alerts = engine.observe(&stored("water", T0 + 5 * H + 40 * MIN, 1.0));
    assert_eq!(alerts[0].state, AlertState::Resolved);
}

#[test]
fn refused_readings_in_a_row_fire_with_the_frame_and_a_stored_one_resolves() {
    let run = both(
        "[default]\nno_stored_reading = { after = '6h', in_a_row = 5 }",
        |run| {
            run.feed(stored("water", T0, 1.0));
            for i in 1..=6 {
                run.feed(refused("water", T0 + i * 10 * MIN, ReadingStatus::Rejected));
            }
            run.feed(stored("water", T0 + 70 * MIN, 1.1));
            // Frames refused now and then, but never 5 in a row: after 6 hours
            // without a stored reading it fires all the same.
            for i in 0..40 {
                let t = T0 + 80 * MIN + i * 10 * MIN;
                run.feed(refused("water", t, ReadingStatus::Unsure));
                if i % 3 == 2 {
                    run.feed(Observation::CaptureFailed {
                        meter: "water".into(),
                        time: time(t + MIN),
                        error: "timeout".into(),
                    });
                }
            }
        },
    );
    let s = run.summary();
    assert_eq!(
        s[..2],
        [
            (50 * MIN, AlertRule::NoStoredReading, AlertState::Firing, 0),
            (
                70 * MIN,
                AlertRule::NoStoredReading,
                AlertState::Resolved,
                0
            ),
        ]
    );
    assert!(run.alerts[0].with_frame && !run.alerts[1].with_frame);
    assert!(
        run.alerts[0].message.contains("/set water"),
        "{}",
        run.alerts[0].message
    );
    assert!(
        run.alerts[0]
            .message
            .contains("rejected: value decreased by 3"),
        "{}",
        run.alerts[0].message
    );
    // Refused from 80 min on, 5 in a row at 120 min.
    assert_eq!(
        s[2],
        (120 * MIN, AlertRule::NoStoredReading, AlertState::Firing, 0)
    );
    assert_eq!(s.len(), 3, "{s:?}");
}

#[test]
fn refusals_for_hours_fire_even_when_never_k_in_a_row() {
    let run = both(
        "[default]\nno_stored_reading = { after = '1h', in_a_row = 50 }",
        |run| {
            run.feed(stored("water", T0, 1.0));
            for i in 1..=12 {
                let t = T0 + i * 10 * MIN;
                run.feed(refused("water", t, ReadingStatus::Unsure));
            }
        },
    );
    assert_eq!(
        run.summary(),
        vec![(60 * MIN, AlertRule::NoStoredReading, AlertState::Firing, 0)]
    );
}

#[test]
fn a_drop_in_confidence_suggests_labelling_and_retraining_and_resolves() {
    let run = both("[default]\nconfidence_drop = {}", |run| {
        let mut v = 1.0;
        // A week at 1 unsure in 20, a day at 1 in 2, then a day back at 1
        // in 20.
        for i in 0..(9 * 24 * 2) {
            let t = T0 + i * 30 * MIN;
            let bad = if (7 * 24 * 2..8 * 24 * 2).contains(&i) {
                i % 2 == 0
            } else {
                i % 20 == 0
            };
            if bad {
                run.feed(refused("water", t, ReadingStatus::Unsure));
            } else {
                v += 0.001;
                run.feed(stored("water", t, v));
            }
        }
    });
    let s = run.summary();
    assert!(s.len() >= 2, "{s:?}");
    assert_eq!(
        (s[0].1, s[0].2, s[0].3),
        (AlertRule::ConfidenceDrop, AlertState::Firing, 0)
    );
    // 20% of the last 24 hours needs about 10 of the new day's readings.
    assert!(
        (7 * 24 * H + 4 * H..7 * 24 * H + 12 * H).contains(&s[0].0),
        "{s:?}"
    );
    let m = &run.alerts[0].message;
    assert!(
        m.contains("meter label") && m.contains("meter retrain"),
        "{m}"
    );
    // While it lasts, only the daily repeats.
    let (resolved, firing) = s.split_last().unwrap();
    assert!(
        firing
            .iter()
            .all(|a| (a.1, a.2) == (AlertRule::ConfidenceDrop, AlertState::Firing)),
        "{s:?}"
    );
    // Back at the usual share, the bad day leaves the 24-hour window hour
    // by hour while the week before takes it in: the share falls under
    // three times the week's about half a day into the next day. One
    // resolution, and quiet for the rest of it.
    assert_eq!(
        (resolved.1, resolved.2),
        (AlertRule::ConfidenceDrop, AlertState::Resolved),
        "{s:?}"
    );
    assert!(
        (8 * 24 * H + 6 * H..8 * 24 * H + 18 * H).contains(&resolved.0),
        "{s:?}"
    );
    let m = &run.alerts.last().unwrap().message;
    assert!(m.contains("back to"), "{m}");
}

#[test]
fn pending_time_ignores_short_spikes() {
    let run = both(
        "[meter.water]\nspike = { max_rate_per_hour = 1.0, pending = '15m' }",
        |run| {
            run.feed(stored("water", T0, 1.0));
            run.feed(stored("water", T0 + 10 * MIN, 2.0)); // 6/h, pending
            run.feed(stored("water", T0 + 20 * MIN, 2.1)); // 0.6/h: cleared
            run.feed(stored("water", T0 + 30 * MIN, 3.0)); // pending again
            run.feed(stored("water", T0 + 40 * MIN, 4.0)); // 10 min
            run.feed(stored("water", T0 + 45 * MIN, 5.0)); // 15 min: fires
        },
    );
    assert_eq!(
        run.summary(),
        vec![(45 * MIN, AlertRule::Spike, AlertState::Firing, 0)]
    );
}

#[test]
fn a_rule_removed_from_the_config_is_forgotten_quietly() {
    let mut run = Run::new("[meter.water]\nspike = { max_rate_per_hour = 1.0 }", false);
    run.feed(stored("water", T0, 1.0));
    assert_eq!(run.feed(stored("water", T0 + 10 * MIN, 2.0)).len(), 1);
    let cfg: AlertsConfig = toml::from_str("[meter.water]\ncamera_silent = {}").unwrap();
    let mut engine = Engine::new(&cfg, &[], run.engine.state().clone()).unwrap();
    assert!(engine.observe(&tick(T0 + 11 * MIN)).is_empty());
    assert!(engine.firing().is_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Use(f64, i64),
        Refuse(bool, i64),
        Fail(i64),
        Tick(i64),
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let gap = 1i64..7200;
        prop::collection::vec(
            prop_oneof![
                4 => (0.0f64..0.5, gap.clone()).prop_map(|(u, g)| Step::Use(u, g)),
                2 => (any::<bool>(), gap.clone()).prop_map(|(u, g)| Step::Refuse(u, g)),
                1 => gap.clone().prop_map(Step::Fail),
                2 => gap.prop_map(Step::Tick),
            ],
            1..200,
        )
    }

    const ALL_BUT_SILENCE: &str = "time_zone = 'America/New_York'\n[meter.water]\ndaily_max = { max = 3, warn_projected = true, repeat = '3h' }\ncontinuous_flow = { hours = 3 }\nnight_use = { from = '23:30', to = '04:00', max = 0.4 }\nspike = { max_rate_per_hour = 2, pending = '20m' }\nno_stored_reading = { after = '2h', in_a_row = 4, repeat = '1h' }\nconfidence_drop = { min_readings = 5 }";

    fn play(run: &mut Run, steps: &[Step]) {
        let (mut t, mut v) = (T0, 99_990.0);
        for s in steps {
            let obs = match *s {
                Step::Use(u, g) => {
                    t += g;
                    v = round3((v + u) % 100_000.0);
                    stored("water", t, v)
                }
                Step::Refuse(unsure, g) => {
                    t += g;
                    refused(
                        "water",
                        t,
                        if unsure {
                            ReadingStatus::Unsure
                        } else {
                            ReadingStatus::Rejected
                        },
                    )
                }
                Step::Fail(g) => {
                    t += g;
                    Observation::CaptureFailed {
                        meter: "water".into(),
                        time: time(t),
                        error: "x".into(),
                    }
                }
                Step::Tick(g) => {
                    t += g;
                    tick(t)
                }
            };
            run.feed(obs);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Per rule: Firing(0), then only repeats numbered 1, 2, .., then
        /// Resolved; never Resolved first, never two first firings; and a
        /// restart after every observation changes nothing.
        #[test]
        fn transitions_alternate_and_restarts_change_nothing(steps in steps()) {
            let mut straight = Run::new(ALL_BUT_SILENCE, false);
            play(&mut straight, &steps);
            let mut restarted = Run::new(ALL_BUT_SILENCE, true);
            play(&mut restarted, &steps);
            prop_assert_eq!(&straight.alerts, &restarted.alerts);
            let mut firing: BTreeMap<AlertRule, u32> = BTreeMap::new();
            for a in &straight.alerts {
                match (a.state, firing.get(&a.rule).copied()) {
                    (AlertState::Firing, None) => {
                        prop_assert_eq!(a.repeat, 0);
                        firing.insert(a.rule, 0);
                    }
                    (AlertState::Firing, Some(n)) => {
                        prop_assert_eq!(a.repeat, n + 1);
                        firing.insert(a.rule, n + 1);
                    }
                    (AlertState::Resolved, Some(_)) => {
                        firing.remove(&a.rule);
                    }
                    (AlertState::Resolved, None) => prop_assert!(false, "resolved before firing: {:?}", a),
                }
            }
            let now: Vec<AlertRule> = straight.engine.firing().into_iter().map(|(_, r)| r).collect();
            prop_assert_eq!(now, firing.keys().copied().collect::<Vec<_>>());
        }

        /// Within one local day, daily_max fires exactly when the day's
        /// consumption (from the first reading, counted across the wrap)
        /// passes the maximum.
        #[test]
        fn daily_max_fires_iff_the_day_is_over(uses in prop::collection::vec(0.0f64..0.3, 1..60)) {
            let mut run = Run::new("time_zone = 'UTC'\n[meter.water]\ndaily_max = { max = 3 }", false);
            let mut v = 99_998.0;
            let mut total = 0.0;
            run.feed(stored("water", T0, v));
            for (i, u) in uses.iter().enumerate() {
                let next = round3((v + u) % 100_000.0);
                total += consumption(v, next);
                v = next;
                run.feed(stored("water", T0 + (i as i64 + 1) * 20 * MIN, v));
            }
            let fired = run.alerts.iter().filter(|a| a.rule == AlertRule::DailyMax).count();
            prop_assert_eq!(fired, usize::from(total > 3.0 + 1e-9), "total {}", total);
        }
    }
}
