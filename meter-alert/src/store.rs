//! Small files replaced atomically: written to a temporary file beside the
//! target, synced, renamed, and the folder synced, so a crash leaves either
//! the old or the new content, never a torn one.

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::AlertError;

/// Replaces `path` with `bytes` atomically (creating its folder).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AlertError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| AlertError::io("create", dir, e))?;
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    };
    write().map_err(|e| AlertError::io("write", path, e))
}

/// Makes renames and removals in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `value` as pretty JSON, atomically.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), AlertError> {
    let json = serde_json::to_vec_pretty(value).expect("plain data serialises");
    write_atomic(path, &json)
}

/// Reads JSON written by [`save_json`]; `None` when the file does not exist.
pub fn load_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<Option<T>, AlertError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AlertError::io("read", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| AlertError::Corrupt {
            path: path.to_owned(),
            what,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.json");
        assert_eq!(load_json::<Vec<u32>>(&p, "test").unwrap(), None);
        save_json(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(load_json::<Vec<u32>>(&p, "test").unwrap(), Some(vec![1, 2]));
        std::fs::write(&p, "[1,").unwrap();
        let e = load_json::<Vec<u32>>(&p, "test").unwrap_err().to_string();
        assert!(e.contains("state.json") && e.contains("test"), "{e}");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
