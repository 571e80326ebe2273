//! Each meter's plausibility state, persisted as `<state_dir>/<meter>.json`
//! and replaced atomically (written to a temporary file, synced, renamed), so
//! a crash mid-write leaves the previous state intact.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use meter_core::{Counter, State};

/// The state file of meter `name`.
pub fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("{name}.json"))
}

/// Loads meter `name`'s state; a fresh state when there is none yet.
pub fn load(state_dir: &Path, name: &str, counter: Counter) -> anyhow::Result<State> {
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
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("state dir {}", state_dir.display()))?;
    let p = path(state_dir, name);
    let tmp = state_dir.join(format!(".{name}.json.tmp"));
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)
    };
    write().with_context(|| format!("state {}", p.display()))
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
