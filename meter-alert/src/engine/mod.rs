//! The rule engine: pure (no I/O, no clock), fed with [`Observation`]s in
//! time order, answering each with the [`Alert`]s it causes.
//!
//! Rules (all per meter; see [`RulesConfig`] for their settings):
//! 1. `daily_max`: consumption since local midnight above the maximum;
//!    resolves at the next midnight. `daily_max_projected`: after a quarter
//!    of the day, the day's pace so far projects a breach.
//! 2. `continuous_flow`: each of the last N whole hours shows consumption
//!    (a leak). Undecided (no transition) while readings lag behind.
//! 3. `night_use`: consumption inside the local night window above the
//!    threshold; resolves when the next window starts.
//! 4. `spike`: the rate since the previous stored reading above the maximum.
//! 5. `camera_silent`: no frame for N minutes.
//! 6. `no_stored_reading`: K refused readings in a row, or frames refused for
//!    N minutes since the last stored one. Carries the frame.
//! 7. `confidence_drop`: the share of unsure readings in the last 24 hours
//!    is at least `min_share` and `factor` times the previous week's.
//!
//! Consumption is the increase of the stored value. A decrease is a counter
//! wrap when the old value was near a power of ten and the new one near zero
//! (the increase is counted across the wrap); any other decrease is a hand
//! correction and counts as nothing. Consumption between two readings is
//! spread evenly over the time between them, into local days, night windows
//! and UTC hours (hours only for gaps up to two hours: a long gap says
//! nothing about each hour).
//!
//! Every rule has a pending time (the condition must hold that long) and a
//! repeat interval; a rule that fires sends [`AlertState::Firing`] once,
//! then a repeat every interval, and [`AlertState::Resolved`] once when its
//! condition ends. [`EngineState`] holds all of it and is saved after every
//! observation that changes it, so a restart neither re-sends nor forgets.
//! After a restart that followed a longer stop of the reader ([`DOWNTIME`]),
//! silence is counted from the restart for rules not already firing (the
//! reader was down, not the camera).

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use time::OffsetDateTime;

use crate::config::{AlertRule, AlertsConfig, RulesConfig, Timing};
use crate::event::{Alert, AlertState, Observation, ObservedReading, ReadingStatus};
use crate::AlertError;

mod calendar;
mod state;
#[cfg(test)]
mod tests;

pub use calendar::consumption;
use calendar::{day_bounds, floor, hm, human, night_window, num, secs, spread, ts};
pub use state::{EngineState, MeterState, Period, RuleState, DOWNTIME};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
/// Longest gap between stored readings whose consumption is spread over
/// the hours in between.
const MAX_SPREAD: i64 = 2 * HOUR;
/// History kept: the confidence rule's day and week, plus a margin.
const KEEP: i64 = 8 * DAY + 2 * HOUR;

/// The rule engine.
#[derive(Debug)]
pub struct Engine {
    cfg: AlertsConfig,
    tz: TimeZone,
    state: EngineState,
    meters: Vec<String>,
    /// When this engine resumed after the reader was down ([`DOWNTIME`]).
    resumed_at: Option<i64>,
    /// Whether an observation came since this engine was made.
    started: bool,
}

/// A rule's verdict at one moment.
struct Check {
    /// `None`: cannot tell now (no transition).
    holds: Option<bool>,
    message: String,
    resolved: String,
    value: Option<f64>,
    threshold: Option<f64>,
    with_frame: bool,
}

impl Engine {
    /// An engine for `meters` (more are added as they are observed),
    /// continuing from `state` ([`EngineState::load`]).
    pub fn new(
        cfg: &AlertsConfig,
        meters: &[String],
        state: EngineState,
    ) -> Result<Self, AlertError> {
        cfg.validate()?;
        Ok(Self {
            tz: cfg.time_zone()?,
            cfg: cfg.clone(),
            state,
            meters: meters.to_vec(),
            resumed_at: None,
            started: false,
        })
    }

    /// The state to save after each observation.
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// The rules firing now: (meter, rule).
    pub fn firing(&self) -> Vec<(String, AlertRule)> {
        let mut out = Vec::new();
        for (meter, ms) in &self.state.meters {
            for (rule, st) in &ms.rules {
                if matches!(st, RuleState::Firing { .. }) {
                    out.push((meter.clone(), *rule));
                }
            }
        }
        out
    }

    /// Takes one observation; returns the alerts it causes, in order.
    pub fn observe(&mut self, obs: &Observation) -> Vec<Alert> {
        let now = obs.time().unix_timestamp();
        if !std::mem::replace(&mut self.started, true) {
            let down = self
                .state
                .last_seen
                .is_none_or(|t| now - t > secs(DOWNTIME));
            self.resumed_at = down.then_some(now);
        }
        self.state.last_seen = Some(self.state.last_seen.map_or(now, |t| t.max(now)));
        match obs {
            Observation::Reading(r) => {
                self.reading(r, now);
                self.evaluate(&r.meter, now)
            }
            Observation::CaptureFailed { meter, error, .. } => {
                let ms = self.meter_state(meter, now);
                ms.last_error = Some(error.clone());
                self.evaluate(meter, now)
            }
            Observation::Tick { .. } => {
                let mut names = self.meters.clone();
                names.extend(self.state.meters.keys().cloned());
                names.sort();
                names.dedup();
                let mut alerts = Vec::new();
                for m in names {
                    self.meter_state(&m, now);
                    alerts.extend(self.evaluate(&m, now));
                }
                alerts
            }
        }
    }

    fn meter_state(&mut self, meter: &str, now: i64) -> &mut MeterState {
        let ms = self.state.meters.entry(meter.to_owned()).or_default();
        ms.first_seen.get_or_insert(now);
        ms
    }

    fn reading(&mut self, r: &ObservedReading, t: i64) {
        let tz = self.tz.clone();
        let night = self
            .cfg
            .rules_for(&r.meter)
            .night_use
            .map(|n| (n.from, n.to));
        let ms = self.meter_state(&r.meter, t);
        if r.unit.is_some() {
            ms.unit.clone_from(&r.unit);
        }
        ms.last_frame = Some(ms.last_frame.map_or(t, |f| f.max(t)));
        let count = ms.counts.entry(floor(t, HOUR)).or_default();
        count.0 += 1;
        if r.status == ReadingStatus::Unsure {
            count.1 += 1;
        }
        match (r.status, r.value.filter(|v| v.is_finite())) {
            (ReadingStatus::Stored, Some(value)) => {
                match ms.last_stored {
                    Some((t0, v0)) if t > t0 => {
                        let used = consumption(v0, value);
                        spread(ms, &tz, night, t0, t, used);
                        ms.last_rate = Some(used / ((t - t0) as f64 / HOUR as f64));
                        ms.last_stored = Some((t, value));
                    }
                    Some(_) => {} // out of order: already past it
                    None => ms.last_stored = Some((t, value)),
                }
                ms.refused_in_a_row = 0;
            }
            (status, _) => {
                ms.refused_in_a_row += 1;
                ms.last_refusal = Some(match &r.reason {
                    Some(reason) => format!("{}: {reason}", status.as_str()),
                    None => status.as_str().to_owned(),
                });
            }
        }
        let horizon = t - KEEP;
        ms.hourly.retain(|&h, _| h >= horizon);
        ms.counts.retain(|&h, _| h >= horizon);
    }

    fn evaluate(&mut self, meter: &str, now: i64) -> Vec<Alert> {
        let rules = self.cfg.rules_for(meter);
        let checks = self.checks(meter, &rules, now);
        let ms = self
            .state
            .meters
            .get_mut(meter)
            .expect("meter_state made it");
        let checked: Vec<AlertRule> = checks.iter().map(|(r, _, _)| *r).collect();
        // A rule taken out of the config is forgotten quietly.
        ms.rules.retain(|r, _| checked.contains(r));
        let mut alerts = Vec::new();
        for (rule, timing, check) in checks {
            let Some(holds) = check.holds else { continue };
            let Some((state, repeat)) = step(&mut ms.rules, rule, holds, timing, now) else {
                continue;
            };
            alerts.push(Alert {
                meter: meter.to_owned(),
                rule,
                state,
                repeat,
                time: OffsetDateTime::from_unix_timestamp(now).expect("a valid time came in"),
                message: match state {
                    AlertState::Firing => check.message,
                    AlertState::Resolved => check.resolved,
                },
                value: check.value,
                threshold: check.threshold,
                unit: ms.unit.clone(),
                with_frame: check.with_frame && state == AlertState::Firing,
            });
        }
        alerts
    }

    fn checks(
        &self,
        meter: &str,
        rules: &RulesConfig,
        now: i64,
    ) -> Vec<(AlertRule, Timing, Check)> {
        let ms = &self.state.meters[meter];
        let unit = ms
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        let q = |x: f64| format!("{}{unit}", num(x));
        let firing = |r: AlertRule| matches!(ms.rules.get(&r), Some(RuleState::Firing { .. }));
        let mut out = Vec::new();

        if let Some(d) = &rules.daily_max {
            let (start, end) = day_bounds(&self.tz, now);
            let used = ms.day.filter(|p| p.start == start).map_or(0.0, |p| p.used);
            out.push((
                AlertRule::DailyMax,
                d.timing(),
                Check {
                    holds: Some(used > d.max),
                    message: format!(
                        "{meter}: {} used today (since midnight, {}), above the daily maximum of {}.",
                        q(used),
                        self.tz_name(),
                        q(d.max)
                    ),
                    resolved: format!("{meter}: a new day; the daily maximum of {} applies afresh.", q(d.max)),
                    value: Some(used),
                    threshold: Some(d.max),
                    with_frame: false,
                },
            ));
            if d.warn_projected {
                let elapsed = (now - start) as f64;
                let length = (end - start) as f64;
                let projected = used * length / elapsed.max(1.0);
                // Projected only after a quarter of the day: earlier, one
                // morning shower would look like a breach.
                let holds = used > d.max || (elapsed >= length / 4.0 && projected > d.max);
                out.push((
                    AlertRule::DailyMaxProjected,
                    d.timing(),
                    Check {
                        holds: Some(holds),
                        message: format!(
                            "{meter}: {} used by {}; at this pace the day ends near {}, above the daily maximum of {}.",
                            q(used),
                            self.local_time(now),
                            q(projected),
                            q(d.max)
                        ),
                        resolved: format!("{meter}: the day's pace no longer projects more than {}.", q(d.max)),
                        value: Some(projected),
                        threshold: Some(d.max),
                        with_frame: false,
                    },
                ));
            }
        }

        if let Some(c) = &rules.continuous_flow {
            let this_hour = floor(now, HOUR);
            let hours = i64::from(c.hours);
            let lowest = (1..=hours)
                .map(|i| {
                    ms.hourly
                        .get(&(this_hour - i * HOUR))
                        .copied()
                        .unwrap_or(0.0)
                })
                .fold(f64::INFINITY, f64::min);
            // Readings must reach into the current hour, else the last hour
            // is not known yet.
            let current = ms.last_stored.is_some_and(|(t, _)| t >= this_hour);
            out.push((
                AlertRule::ContinuousFlow,
                c.timing(),
                Check {
                    holds: current.then_some(lowest > c.min_per_hour),
                    message: format!(
                        "{meter}: consumption in every one of the last {hours} hours (the lowest hour {}): a leak, or a tap left running?",
                        q(lowest)
                    ),
                    resolved: format!("{meter}: an hour without consumption; the continuous flow has stopped."),
                    value: Some(lowest),
                    threshold: Some(c.min_per_hour),
                    with_frame: false,
                },
            ));
        }

        if let Some(n) = &rules.night_use {
            let (start, _) = night_window(&self.tz, now, n.from, n.to);
            let used = ms
                .night
                .filter(|p| p.start == start)
                .map_or(0.0, |p| p.used);
            out.push((
                AlertRule::NightUse,
                n.timing(),
                Check {
                    holds: Some(used > n.max),
                    message: format!(
                        "{meter}: {} used between {} and {} (local time), above {}.",
                        q(used),
                        hm(n.from),
                        hm(n.to),
                        q(n.max)
                    ),
                    resolved: format!("{meter}: a new night window began at {}.", hm(n.from)),
                    value: Some(used),
                    threshold: Some(n.max),
                    with_frame: false,
                },
            ));
        }

        if let Some(s) = &rules.spike {
            out.push((
                AlertRule::Spike,
                s.timing(),
                Check {
                    holds: ms.last_rate.map(|r| r > s.max_rate_per_hour),
                    message: format!(
                        "{meter}: {}/h since the previous reading, above the maximum of {}/h.",
                        q(ms.last_rate.unwrap_or(0.0)),
                        q(s.max_rate_per_hour)
                    ),
                    resolved: format!(
                        "{meter}: the rate is back to {}/h.",
                        q(ms.last_rate.unwrap_or(0.0))
                    ),
                    value: ms.last_rate,
                    threshold: Some(s.max_rate_per_hour),
                    with_frame: false,
                },
            ));
        }

        if let Some(c) = &rules.camera_silent {
            let last = ms.last_frame.or(ms.first_seen).unwrap_or(now);
            let since = if firing(AlertRule::CameraSilent) {
                last
            } else {
                last.max(self.resumed_at.unwrap_or(last))
            };
            let silence = now - since;
            let last_text = match ms.last_frame {
                Some(t) => format!("last frame {}", self.local_time(t)),
                None => "no frame yet".to_owned(),
            };
            let error = ms
                .last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default();
            out.push((
                AlertRule::CameraSilent,
                c.timing(),
                Check {
                    holds: Some(silence >= secs(c.after())),
                    message: format!(
                        "{meter}: no frame for {} ({last_text}{error}).",
                        human(silence)
                    ),
                    resolved: format!("{meter}: frames again ({last_text})."),
                    value: Some(silence as f64 / 60.0),
                    threshold: Some(c.after().as_secs_f64() / 60.0),
                    with_frame: false,
                },
            ));
        }

        if let Some(n) = &rules.no_stored_reading {
            let since = ms
                .last_stored
                .map(|(t, _)| t)
                .or(ms.first_seen)
                .unwrap_or(now);
            let long = now - since >= secs(n.after());
            let refused = ms.refused_in_a_row;
            let holds = refused >= n.in_a_row() || (refused > 0 && long);
            let last = ms.last_refusal.as_deref().unwrap_or("-");
            let stored = match ms.last_stored {
                Some((_, v)) => format!("stored {} again", q(v)),
                None => "a reading was stored".to_owned(),
            };
            out.push((
                AlertRule::NoStoredReading,
                n.timing(),
                Check {
                    holds: Some(holds),
                    message: format!(
                        "{meter}: no reading stored for {}; {refused} refused in a row, the last {last}. If the counter shows another value, answer /set {meter} <value>.",
                        human(now - since)
                    ),
                    resolved: format!("{meter}: {stored}."),
                    value: Some(f64::from(refused)),
                    threshold: Some(f64::from(n.in_a_row())),
                    with_frame: true,
                },
            ));
        }

        if let Some(c) = &rules.confidence_drop {
            let (factor, min_share, min_readings) = c.limits();
            let this_hour = floor(now, HOUR);
            let sum = |from: i64, to: i64| {
                ms.counts
                    .range(from..to)
                    .fold((0u32, 0u32), |(a, u), (_, (n, k))| (a + n, u + k))
            };
            let day = sum(this_hour - 23 * HOUR, this_hour + HOUR);
            let week = sum(this_hour - 23 * HOUR - 7 * DAY, this_hour - 23 * HOUR);
            let share = |(n, k): (u32, u32)| f64::from(k) / f64::from(n.max(1));
            let (today, before) = (share(day), share(week));
            let enough = day.0 >= min_readings && week.0 >= min_readings;
            out.push((
                AlertRule::ConfidenceDrop,
                c.timing(),
                Check {
                    holds: enough.then_some(today >= min_share && today >= factor * before),
                    message: format!(
                        "{meter}: {:.0}% of the last 24 hours' readings were unsure (the week before: {:.0}%). The model struggles with this meter: label the new crops (meter label) and retrain (meter retrain).",
                        today * 100.0,
                        before * 100.0
                    ),
                    resolved: format!("{meter}: unsure readings are back to {:.0}%.", today * 100.0),
                    value: Some(today),
                    threshold: Some(min_share.max(factor * before)),
                    with_frame: false,
                },
            ));
        }
        out
    }

    fn tz_name(&self) -> String {
        self.tz.iana_name().unwrap_or("local time").to_owned()
    }

    fn local_time(&self, t: i64) -> String {
        self.tz
            .to_datetime(ts(t))
            .strftime("%Y-%m-%d %H:%M")
            .to_string()
    }
}

/// Advances one rule's state; returns the alert to send, if any.
fn step(
    rules: &mut BTreeMap<AlertRule, RuleState>,
    rule: AlertRule,
    holds: bool,
    timing: Timing,
    now: i64,
) -> Option<(AlertState, u32)> {
    let fire = |rules: &mut BTreeMap<AlertRule, RuleState>| {
        rules.insert(
            rule,
            RuleState::Firing {
                since: now,
                last_sent: now,
                repeats: 0,
            },
        );
        Some((AlertState::Firing, 0))
    };
    match (rules.get(&rule).copied(), holds) {
        (None, false) => None,
        (None, true) if timing.pending.is_zero() => fire(rules),
        (None, true) => {
            rules.insert(rule, RuleState::Pending { since: now });
            None
        }
        (Some(RuleState::Pending { since }), true) => (now - since >= secs(timing.pending))
            .then(|| fire(rules))
            .flatten(),
        (Some(RuleState::Pending { .. }), false) => {
            rules.remove(&rule);
            None
        }
        (
            Some(RuleState::Firing {
                since,
                last_sent,
                repeats,
            }),
            true,
        ) => {
            let due = timing.repeat.is_some_and(|r| now - last_sent >= secs(r));
            due.then(|| {
                rules.insert(
                    rule,
                    RuleState::Firing {
                        since,
                        last_sent: now,
                        repeats: repeats + 1,
                    },
                );
                (AlertState::Firing, repeats + 1)
            })
        }
        (Some(RuleState::Firing { .. }), false) => {
            rules.remove(&rule);
            Some((AlertState::Resolved, 0))
        }
    }
}
