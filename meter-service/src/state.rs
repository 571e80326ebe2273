//! Each meter's plausibility state, persisted as `<state_dir>/<meter>.json`
//! and replaced atomically ([`write_atomic`](crate::files::write_atomic)), so
//! a crash mid-write leaves the previous state intact.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use meter_core::{Counter, State};

use crate::config::MeterConfig;

/// The state file of meter `name`.
pub fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.json"))
}

/// Refuses a `state_dir` that is (or lies under) a file, in those words
/// rather than the OS's "File exists" or "Not a directory".
fn check_dir(state_dir: &Path) -> anyhow::Result<()> {
    if let Some(file) = state_dir
        .ancestors()
        .find(|a| a.exists())
        .filter(|a| !a.is_dir())
    {
        bail!(
            "state_dir {}: {} is a file, not a folder",
            state_dir.display(),
            file.display()
        );
    }
    Ok(())
}

/// Loads meter `name`'s state; a fresh state when there is none yet.
pub fn load(state_dir: &Path, name: &str, counter: Counter) -> anyhow::Result<State> {
    check_dir(state_dir)?;
    let p = path(state_dir, name);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::new(counter)),
        Err(e) => return Err(e).with_context(|| format!("state {}", p.display())),
    };
    let state: State = serde_json::from_str(&text).with_context(|| {
        format!(
            "state {}: not a valid state file (fix or delete it, or run `meter set-value`)",
            p.display()
        )
    })?;
    if state.counter != counter {
        bail!(
            "state {}: written for a counter of {}, the config now says {}; run `meter set-value --meter {name} VALUE`",
            p.display(),
            state.counter,
            counter
        );
    }
    Ok(state)
}

/// Saves meter `name`'s state atomically.
pub fn save(state_dir: &Path, name: &str, state: &State) -> anyhow::Result<()> {
    check_dir(state_dir)?;
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("state dir {}", state_dir.display()))?;
    let p = path(state_dir, name);
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    crate::files::write_atomic(&p, &json).with_context(|| format!("state {}", p.display()))
}

/// A stored value corrected by hand (`meter set-value`, the web page, the
/// Telegram bot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetValue {
    /// The new value as the counter shows it.
    pub value: String,
    /// The value it replaced, when there was a readable one.
    pub previous: Option<String>,
}

/// Makes `text` (the value as the counter shows it, `12345.6`) meter
/// `meter`'s stored value, with the current time: the reference for the
/// next reading's plausibility check. An unreadable old state (or one of
/// another counter shape) is exactly when a hand correction is needed, so
/// it is replaced with a warning.
pub fn set_value(state_dir: &Path, meter: &MeterConfig, text: &str) -> anyhow::Result<SetValue> {
    let counter = meter.counter;
    let ticks = counter
        .parse(text)
        .with_context(|| format!("meter {}", meter.name))?;
    // Before the old state is read: its failure would only be a warning.
    check_dir(state_dir)?;
    let previous = match load(state_dir, &meter.name, counter) {
        Ok(s) => s.stored.map(|t| counter.format_units(t.ticks)),
        Err(e) => {
            log::warn!("replacing unreadable state: {e:#}");
            None
        }
    };
    let new = State::with_value(counter, ticks, time::OffsetDateTime::now_utc());
    save(state_dir, &meter.name, &new)?;
    Ok(SetValue {
        value: counter.format_units(ticks),
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn round_trip_and_counter_check() {
        let dir = tempfile::tempdir().unwrap();
        let c = Counter::new(6, 1).unwrap();
        assert_eq!(load(dir.path(), "m", c).unwrap(), State::new(c));
        let s = State::with_value(c, 12345, datetime!(2024-01-01 0:00 UTC));
        save(dir.path(), "m", &s).unwrap();
        assert_eq!(load(dir.path(), "m", c).unwrap(), s);
        let e = load(dir.path(), "m", Counter::new(5, 1).unwrap()).unwrap_err();
        assert!(format!("{e:#}").contains("set-value"));
        std::fs::write(path(dir.path(), "m"), "{").unwrap();
        let e = format!("{:#}", load(dir.path(), "m", c).unwrap_err());
        assert!(e.contains("m.json"), "{e}");
    }
}
