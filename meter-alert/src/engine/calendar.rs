//! Consumption and the calendar: wraps, spreading consumption over local
//! days, night windows and UTC hours, and numbers and durations for people.

use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::{MeterState, Period, HOUR, MAX_SPREAD};

/// The increase from `old` to `new`: across a wrap when `old` was within 1%
/// below a power of ten and `new` within 1% above zero; else a decrease
/// counts as nothing (a hand correction).
pub fn consumption(old: f64, new: f64) -> f64 {
    if new >= old {
        return new - old;
    }
    if old > 0.0 {
        let modulus = 10f64.powf(old.log10().floor() + 1.0);
        let across = modulus - old + new;
        if new >= 0.0 && across <= modulus * 0.01 {
            return across;
        }
    }
    0.0
}

/// Spreads `used` (between `t0` and `t1`) over the day, night window and
/// hours.
pub(super) fn spread(
    ms: &mut MeterState,
    tz: &TimeZone,
    night: Option<(Time, Time)>,
    t0: i64,
    t1: i64,
    used: f64,
) {
    let part = |a: i64, b: i64| {
        let overlap = (t1.min(b) - t0.max(a)).max(0);
        used * overlap as f64 / (t1 - t0) as f64
    };
    let (start, end) = day_bounds(tz, t1);
    let day = ms.day.filter(|p| p.start == start).unwrap_or(Period {
        start,
        end,
        used: 0.0,
    });
    ms.day = Some(Period {
        used: day.used + part(start, end),
        ..day
    });
    if let Some((from, to)) = night {
        let (start, end) = night_window(tz, t1, from, to);
        let w = ms.night.filter(|p| p.start == start).unwrap_or(Period {
            start,
            end,
            used: 0.0,
        });
        ms.night = Some(Period {
            used: w.used + part(start, end),
            ..w
        });
    }
    if t1 - t0 <= MAX_SPREAD {
        let mut h = floor(t0, HOUR);
        while h < t1 {
            *ms.hourly.entry(h).or_default() += part(h, h + HOUR);
            h += HOUR;
        }
    }
}

pub(super) fn ts(t: i64) -> Timestamp {
    Timestamp::from_second(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(super) fn floor(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

pub(super) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub(super) fn to_second(d: Date, t: Time, tz: &TimeZone) -> i64 {
    tz.to_timestamp(d.to_datetime(t))
        .map_or(0, |z| z.as_second())
}

/// The local day around `t`: (midnight, next midnight).
pub(super) fn day_bounds(tz: &TimeZone, t: i64) -> (i64, i64) {
    let date = tz.to_datetime(ts(t)).date();
    let next = date.tomorrow().unwrap_or(date);
    (
        to_second(date, Time::midnight(), tz),
        to_second(next, Time::midnight(), tz),
    )
}

/// The latest night window starting at or before `t`: (start, end).
pub(super) fn night_window(tz: &TimeZone, t: i64, from: Time, to: Time) -> (i64, i64) {
    let mut date = tz.to_datetime(ts(t)).date();
    if to_second(date, from, tz) > t {
        date = date.yesterday().unwrap_or(date);
    }
    let end_date = if to > from {
        date
    } else {
        date.tomorrow().unwrap_or(date)
    };
    (to_second(date, from, tz), to_second(end_date, to, tz))
}

/// A number for people: at most three decimals, no trailing zeros.
pub(super) fn num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

pub(super) fn hm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// `42 min`, `3 h 5 min`, `2 d 4 h`.
pub(super) fn human(secs: i64) -> String {
    let m = secs.max(0) / 60;
    match m {
        0..=59 => format!("{m} min"),
        60..=1439 => format!("{} h {} min", m / 60, m % 60),
        _ => format!("{} d {} h", m / 1440, m % 1440 / 60),
    }
}
