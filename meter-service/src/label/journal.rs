//! The labelling journal: every answer, skip and undo, one line each, so a
//! session resumes where the last one stopped.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The journal: one tab-separated line per event, synced as written.
pub(super) struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening journal {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    pub(super) fn record(&mut self, fields: &[&str]) -> anyhow::Result<()> {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = format!("{now}\t{}\n", fields.join("\t"));
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing journal {}", self.path.display()))
    }

    /// Hashes skipped and not undone, from earlier sessions.
    pub(super) fn skipped(path: &Path) -> anyhow::Result<HashSet<u64>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
            Err(e) => return Err(e).with_context(|| format!("reading journal {}", path.display())),
        };
        let mut set = HashSet::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(kind), Some(hash)) = (f.get(1), f.get(2)) else {
                continue;
            };
            let Ok(hash) = u64::from_str_radix(hash, 16) else {
                continue;
            };
            match *kind {
                "skipped" => {
                    set.insert(hash);
                }
                "undone" | "filed" => {
                    set.remove(&hash);
                }
                _ => {}
            }
        }
        Ok(set)
    }
}
