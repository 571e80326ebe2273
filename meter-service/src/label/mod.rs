//! The labelling session behind `meter classify` and the web page's
//! labeller: one digit image at a time with its neighbours and the model's
//! guess ([`Session::view`]); answers come as keys from any source (a raw
//! terminal, lines of text, a browser, a script) and are filed into
//! `dataset/<label>/`.
//!
//! Keys: `0`-`9` a settled digit (`N.0`); that digit then `.` and a tenth
//! for a rolling one (`3.7`); Enter accepts the guess; `s` skips; `u` undoes
//! the last answer (or the one being typed); `q` quits. A digit answer is
//! kept in hand until the next key, so that `.` can still make it rolling;
//! every other key, and quitting, files it first.
//!
//! Guarantees: an image is never lost (moves are renames, copies are written
//! whole then renamed; undo reverses them), and never filed twice: files are
//! named by the naming rule of [`files`](crate::files), and an image already
//! in the dataset (filed by hand or by the reader) is relabelled, not copied. A journal file records
//! every answer, skip and undo; frames already filed or skipped are not
//! asked again, so a session resumes where it stopped.

pub mod items;
mod journal;

use journal::Journal;

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use image::RgbImage;
use meter_core::{DigitPrediction, Tenths};

use crate::config::ResolvedConfig;
use crate::files::{dataset_index, move_file, png_bytes, write_atomic};

/// One key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter / Return.
    Enter,
    /// Backspace.
    Backspace,
    /// Escape.
    Esc,
}

/// Keys from lines of text (piped or typed input): each line's characters
/// in turn, an empty line as Enter. So `3.7`, `4`, `` (accept), `s`, `u`.
pub fn keys_from_lines<R: BufRead>(reader: R) -> impl Iterator<Item = io::Result<Key>> {
    reader.lines().flat_map(|line| -> Vec<io::Result<Key>> {
        match line {
            Err(e) => vec![Err(e)],
            Ok(l) if l.trim().is_empty() => vec![Ok(Key::Enter)],
            Ok(l) => l.trim().chars().map(|c| Ok(Key::Char(c))).collect(),
        }
    })
}

/// Where a digit image comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A file in the `unsure/` queue: moved into the dataset when answered.
    Unsure {
        /// The file.
        path: PathBuf,
        /// Its bytes (restored on undo when the image was a duplicate).
        bytes: Vec<u8>,
    },
    /// A crop of a frame: written into the dataset when answered.
    Frame {
        /// The frame file.
        frame: PathBuf,
        /// Which digit, from the left (0-based).
        digit: usize,
    },
}

impl Origin {
    /// `unsure <file>` or `frame <file> digit <n>`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Unsure { path, .. } => format!("unsure {}", file_name(path)),
            Origin::Frame { frame, digit } => {
                format!("frame {} digit {}", file_name(frame), digit + 1)
            }
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One digit image to label.
#[derive(Debug, Clone)]
pub struct Item {
    /// Hash of its pixels: its identity and its file name.
    pub hash: u64,
    /// The meter it belongs to (file name prefix).
    pub meter: String,
    /// The picture filed.
    pub image: RgbImage,
    /// Its frame's digits, left to right, this one included.
    pub context: Arc<Vec<RgbImage>>,
    /// Its place in `context`.
    pub position: usize,
    /// Where it comes from.
    pub origin: Origin,
    /// The model's reading.
    pub guess: Option<DigitPrediction>,
}

/// The session's settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Where label folders are.
    pub dataset_dir: PathBuf,
    /// The journal file (appended to).
    pub journal: PathBuf,
    /// Ask again the images skipped in earlier sessions.
    pub revisit_skipped: bool,
}

impl SessionOptions {
    /// The config's dataset folder and the labelling journal in its
    /// `state_dir`, shared by every labeller (terminal and browser).
    pub fn for_config(cfg: &ResolvedConfig, revisit_skipped: bool) -> Self {
        Self {
            dataset_dir: cfg.dataset_dir.clone(),
            journal: cfg.state_dir.join("classify.journal"),
            revisit_skipped,
        }
    }
}

/// What a session did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Images filed (net of undos).
    pub filed: usize,
    /// Images skipped (net of undos).
    pub skipped: usize,
    /// Undos.
    pub undone: usize,
    /// Images not answered.
    pub left: usize,
    /// Images not asked: filed or skipped in an earlier session.
    pub earlier: usize,
}

#[derive(Debug)]
enum Op {
    Moved { from: PathBuf, to: PathBuf },
    Wrote { path: PathBuf },
    Removed { path: PathBuf, bytes: Vec<u8> },
}

#[derive(Debug)]
enum Action {
    Filed { label: Tenths, ops: Vec<Op> },
    Skipped,
}

#[derive(Debug)]
struct Done {
    idx: usize,
    action: Action,
    prev_index: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    idx: usize,
    label: Tenths,
    /// A digit key (`.` may follow), not an accepted guess.
    amendable: bool,
}

/// A labelling session over `items`.
pub struct Session {
    items: Vec<Item>,
    opts: SessionOptions,
    index: HashMap<u64, PathBuf>,
    journal: Journal,
    cur: usize,
    pending: Option<Pending>,
    typing_tenth: bool,
    done: Vec<Done>,
    message: String,
    started: Instant,
    summary: Summary,
}

impl Session {
    /// Drops the items already answered (frames filed into the dataset,
    /// images skipped earlier, duplicates among `items`) and opens the journal.
    pub fn new(items: Vec<Item>, opts: SessionOptions) -> anyhow::Result<Self> {
        let index = dataset_index(&opts.dataset_dir)?;
        let skipped = if opts.revisit_skipped {
            HashSet::new()
        } else {
            Journal::skipped(&opts.journal)?
        };
        let mut seen = HashSet::new();
        let total = items.len();
        let items: Vec<Item> = items
            .into_iter()
            .filter(|it| {
                let filed =
                    matches!(it.origin, Origin::Frame { .. }) && index.contains_key(&it.hash);
                seen.insert(it.hash) && !filed && !skipped.contains(&it.hash)
            })
            .collect();
        let journal = Journal::open(&opts.journal)?;
        let summary = Summary {
            earlier: total - items.len(),
            ..Summary::default()
        };
        Ok(Self {
            items,
            opts,
            index,
            journal,
            cur: 0,
            pending: None,
            typing_tenth: false,
            done: Vec::new(),
            message: String::new(),
            started: Instant::now(),
            summary,
        })
    }

    /// Images to ask about.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is nothing to ask.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Runs until `q`, the end of `keys`, or an error, calling `show` with
    /// the view before each key and once at the end; every answer given is
    /// filed before it returns.
    pub fn run<I>(
        mut self,
        keys: I,
        mut show: impl FnMut(&View<'_>) -> io::Result<()>,
    ) -> anyhow::Result<Summary>
    where
        I: IntoIterator<Item = io::Result<Key>>,
    {
        let mut keys = keys.into_iter();
        loop {
            show(&self.view())?;
            let key = match keys.next() {
                None => break,
                Some(k) => k.context("reading keys")?,
            };
            if !self.handle(key)? {
                break;
            }
        }
        self.finish()
    }

    /// Files the answer in hand and says what the session did.
    pub fn finish(mut self) -> anyhow::Result<Summary> {
        self.commit_pending()?;
        self.summary.left = self.items.len() - self.cur.min(self.items.len());
        Ok(self.summary)
    }

    /// Handles one key; `false` when the session should end (`q`, or
    /// Enter with nothing left).
    pub fn handle(&mut self, key: Key) -> anyhow::Result<bool> {
        self.message.clear();
        let n = self.items.len();
        if self.typing_tenth {
            match key {
                Key::Char(c) if c.is_ascii_digit() => {
                    let p = self.pending.as_mut().expect("a digit answer in hand");
                    let tenth = c as u8 - b'0';
                    p.label = Tenths::new(p.label.floor_digit() * 10 + tenth).expect("0..=99");
                    p.amendable = false;
                    self.typing_tenth = false;
                }
                Key::Esc | Key::Backspace => self.typing_tenth = false,
                Key::Char('u') => {
                    let p = self.pending.take().expect("a digit answer in hand");
                    self.cur = p.idx;
                    self.typing_tenth = false;
                    self.message = "answer dropped".into();
                }
                Key::Char('q') => {
                    self.typing_tenth = false;
                    return Ok(false);
                }
                _ => self.message = "type the tenth, 0-9 (Esc keeps N.0)".into(),
            }
            return Ok(true);
        }
        match key {
            Key::Char(c) if c.is_ascii_digit() => {
                if self.cur < n {
                    self.commit_pending()?;
                    let label = Tenths::new((c as u8 - b'0') * 10).expect("0..=90");
                    self.pending = Some(Pending {
                        idx: self.cur,
                        label,
                        amendable: true,
                    });
                    self.cur += 1;
                } else {
                    self.message = "all done: u undoes, q quits".into();
                }
            }
            Key::Char('.') | Key::Char(',') => match self.pending {
                Some(p) if p.amendable => self.typing_tenth = true,
                _ => self.message = "`.` follows a digit key: 3 . 7 for a rolling 3.7".into(),
            },
            Key::Enter => {
                if self.cur >= n {
                    return Ok(false);
                }
                match self.items[self.cur].guess.as_ref().map(|g| g.tenths) {
                    Some(label) => {
                        self.commit_pending()?;
                        self.pending = Some(Pending {
                            idx: self.cur,
                            label,
                            amendable: false,
                        });
                        self.cur += 1;
                    }
                    None => self.message = "no guess to accept: type the digit".into(),
                }
            }
            Key::Char('s') => {
                if self.cur < n {
                    self.commit_pending()?;
                    let hash = format!("{:016x}", self.items[self.cur].hash);
                    self.journal.record(&["skipped", &hash])?;
                    self.done.push(Done {
                        idx: self.cur,
                        action: Action::Skipped,
                        prev_index: None,
                    });
                    self.summary.skipped += 1;
                    self.cur += 1;
                }
            }
            Key::Char('u') => self.undo()?,
            Key::Char('q') | Key::Esc => return Ok(false),
            Key::Char(c) => {
                self.message = format!("{c:?}: keys are 0-9, `.`, Enter, s, u, q");
            }
            Key::Backspace => self.undo()?,
        }
        Ok(true)
    }

    fn undo(&mut self) -> anyhow::Result<()> {
        if let Some(p) = self.pending.take() {
            self.cur = p.idx;
            self.message = "answer dropped".into();
            return Ok(());
        }
        let Some(d) = self.done.pop() else {
            self.message = "nothing to undo".into();
            return Ok(());
        };
        let hash = self.items[d.idx].hash;
        match &d.action {
            Action::Filed { ops, label } => {
                for op in ops.iter().rev() {
                    match op {
                        Op::Moved { from, to } => move_file(to, from)?,
                        Op::Wrote { path } => std::fs::remove_file(path)
                            .with_context(|| format!("removing {}", path.display()))?,
                        Op::Removed { path, bytes } => write_atomic(path, bytes)
                            .with_context(|| format!("writing {}", path.display()))?,
                    }
                }
                match &d.prev_index {
                    Some(p) => self.index.insert(hash, p.clone()),
                    None => self.index.remove(&hash),
                };
                self.summary.filed -= 1;
                self.message = format!("undone: {label} for the image shown");
            }
            Action::Skipped => {
                self.summary.skipped -= 1;
                self.message = "undone: skip".into();
            }
        }
        self.journal.record(&["undone", &format!("{hash:016x}")])?;
        self.summary.undone += 1;
        self.cur = d.idx;
        Ok(())
    }

    fn commit_pending(&mut self) -> anyhow::Result<()> {
        self.typing_tenth = false;
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let done = self.file(p.idx, p.label)?;
        self.done.push(done);
        self.summary.filed += 1;
        Ok(())
    }

    /// Files item `idx` as `label`.
    fn file(&mut self, idx: usize, label: Tenths) -> anyhow::Result<Done> {
        let item = &self.items[idx];
        let dir = self.opts.dataset_dir.join(label.to_string());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let prev = self.index.get(&item.hash).cloned();
        let ext = prev
            .as_deref()
            .or(match &item.origin {
                Origin::Unsure { path, .. } => Some(path.as_path()),
                Origin::Frame { .. } => None,
            })
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .unwrap_or("png")
            .to_ascii_lowercase();
        let dest = dir.join(format!("{}-{:016x}.{ext}", item.meter, item.hash));
        let mut ops = Vec::new();
        match &prev {
            // Already in the dataset: relabel that copy; an unsure duplicate goes.
            Some(old) => {
                if *old != dest {
                    move_file(old, &dest)?;
                    ops.push(Op::Moved {
                        from: old.clone(),
                        to: dest.clone(),
                    });
                }
                if let Origin::Unsure { path, bytes } = &item.origin {
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing {}", path.display()))?;
                    ops.push(Op::Removed {
                        path: path.clone(),
                        bytes: bytes.clone(),
                    });
                }
            }
            None => match &item.origin {
                Origin::Unsure { path, .. } => {
                    move_file(path, &dest)?;
                    ops.push(Op::Moved {
                        from: path.clone(),
                        to: dest.clone(),
                    });
                }
                Origin::Frame { .. } => {
                    write_atomic(&dest, &png_bytes(&item.image)?)
                        .with_context(|| format!("writing {}", dest.display()))?;
                    ops.push(Op::Wrote { path: dest.clone() });
                }
            },
        }
        let hash = format!("{:016x}", item.hash);
        let origin = item.origin.describe();
        self.index.insert(item.hash, dest.clone());
        self.journal.record(&[
            "filed",
            &hash,
            &label.to_string(),
            &dest.display().to_string(),
            &origin,
        ])?;
        Ok(Done {
            idx,
            action: Action::Filed { label, ops },
            prev_index: prev,
        })
    }

    fn answered(&self) -> usize {
        self.summary.filed + self.summary.skipped + usize::from(self.pending.is_some())
    }

    /// What to show now.
    pub fn view(&self) -> View<'_> {
        let n = self.items.len();
        let shown = if self.typing_tenth {
            self.pending.map(|p| p.idx)
        } else {
            (self.cur < n).then_some(self.cur)
        };
        let typed = match (self.typing_tenth, self.pending) {
            (true, Some(p)) => Some(p.label.floor_digit()),
            _ => None,
        };
        let last = if self.typing_tenth {
            None
        } else if let Some(p) = self.pending {
            Some(Last {
                item: &self.items[p.idx],
                outcome: LastOutcome::InHand {
                    label: p.label,
                    amendable: p.amendable,
                },
            })
        } else {
            self.done.last().map(|d| Last {
                item: &self.items[d.idx],
                outcome: match &d.action {
                    Action::Filed { label, .. } => LastOutcome::Filed(*label),
                    Action::Skipped => LastOutcome::Skipped,
                },
            })
        };
        let answered = self.answered();
        let elapsed = self.started.elapsed();
        let per_image = (answered > 0).then(|| elapsed / answered as u32);
        View {
            shown: shown.map(|i| (i, &self.items[i])),
            total: n,
            typed_digit: typed,
            last,
            message: &self.message,
            position: self.cur.min(n),
            filed: self.summary.filed + usize::from(self.pending.is_some()),
            skipped: self.summary.skipped,
            earlier: self.summary.earlier,
            per_image,
            left: per_image.map(|p| p * n.saturating_sub(self.cur) as u32),
        }
    }
}

/// What a session shows: the image asked about, the answer being typed, the
/// last answer, and the progress.
#[derive(Debug)]
pub struct View<'a> {
    /// The image asked about and its index, `None` when all are answered.
    pub shown: Option<(usize, &'a Item)>,
    /// Images in the session.
    pub total: usize,
    /// The whole digit of a rolling answer being typed (`3._`).
    pub typed_digit: Option<u8>,
    /// The last answer.
    pub last: Option<Last<'a>>,
    /// A hint or confirmation for the user (may be empty).
    pub message: &'a str,
    /// Images answered or passed so far.
    pub position: usize,
    /// Images filed (the answer in hand included).
    pub filed: usize,
    /// Images skipped.
    pub skipped: usize,
    /// Images answered in earlier sessions.
    pub earlier: usize,
    /// Time per answer so far.
    pub per_image: Option<Duration>,
    /// Estimated time left.
    pub left: Option<Duration>,
}

/// The last answer and what became of it.
#[derive(Debug)]
pub struct Last<'a> {
    /// The image answered.
    pub item: &'a Item,
    /// What happened.
    pub outcome: LastOutcome,
}

/// What became of the last answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastOutcome {
    /// A digit answer kept in hand (`.` may still make it rolling).
    InHand {
        /// The label.
        label: Tenths,
        /// Whether `.` and a tenth may follow.
        amendable: bool,
    },
    /// Filed as this label.
    Filed(Tenths),
    /// Skipped.
    Skipped,
}

#[cfg(test)]
mod tests;
