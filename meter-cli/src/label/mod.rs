//! The labelling session behind `meter classify`: shows one digit image at a
//! time with its neighbours and the model's guess, reads answers from any
//! key source (a raw terminal, lines of text, a script), and files each
//! answer into `dataset/<label>/`.
//!
//! Keys: `0`-`9` a settled digit (`N.0`); that digit then `.` and a tenth
//! for a rolling one (`3.7`); Enter accepts the guess; `s` skips; `u` undoes
//! the last answer (or the one being typed); `q` quits. A digit answer is
//! kept in hand until the next key, so that `.` can still make it rolling;
//! every other key, and quitting, files it first.
//!
//! Guarantees: an image is never lost (moves are renames, copies are written
//! whole then renamed; undo reverses them), and never filed twice: files are
//! named by a hash of their pixels (`<meter>-<hash>.png`), and an image
//! already in the dataset is relabelled, not copied. A journal file records
//! every answer, skip and undo; frames already filed or skipped are not
//! asked again, so a session resumes where it stopped.

pub mod items;
pub mod render;

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use image::RgbImage;
use meter_core::{DigitPrediction, Tenths};

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
    fn describe(&self) -> String {
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

/// 64-bit FNV-1a of an image's size and pixels: its file name in the dataset.
pub fn image_hash(img: &RgbImage) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let (w, ht) = img.dimensions();
    for b in w
        .to_le_bytes()
        .iter()
        .chain(ht.to_le_bytes().iter())
        .chain(img.as_raw().iter())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The hash in a dataset file name `<anything>-<16 hex digits>.<ext>`.
fn hash_of_name(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    let (_, hex) = stem.rsplit_once('-')?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Every hash-named image in the label folders of `dataset_dir`.
pub fn dataset_index(dataset_dir: &Path) -> anyhow::Result<HashMap<u64, PathBuf>> {
    Ok(label_files(dataset_dir)?
        .into_iter()
        .filter_map(|p| hash_of_name(&p).map(|h| (h, p)))
        .collect())
}

/// The (non-hidden) files in the label folders (`N.M`) of `dataset_dir`;
/// none when it does not exist yet.
pub fn label_files(dataset_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dataset_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dataset_dir.display())),
    };
    for entry in entries {
        let sub = entry
            .with_context(|| format!("reading {}", dataset_dir.display()))?
            .path();
        let is_label = sub
            .file_name()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.parse::<Tenths>().is_ok());
        if !(is_label && sub.is_dir()) {
            continue;
        }
        for f in std::fs::read_dir(&sub).with_context(|| format!("reading {}", sub.display()))? {
            let p = f
                .with_context(|| format!("reading {}", sub.display()))?
                .path();
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if p.is_file() && !hidden {
                files.push(p);
            }
        }
    }
    Ok(files)
}

/// The session's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where label folders are.
    pub dataset_dir: PathBuf,
    /// The journal file (appended to).
    pub journal: PathBuf,
    /// Terminal width in cells.
    pub cols: u16,
    /// Terminal height in cells.
    pub rows: u16,
    /// Ask again the images skipped in earlier sessions.
    pub revisit_skipped: bool,
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

/// The journal: one tab-separated line per event, synced as written.
struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    fn open(path: &Path) -> anyhow::Result<Self> {
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

    fn record(&mut self, fields: &[&str]) -> anyhow::Result<()> {
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
    fn skipped(path: &Path) -> anyhow::Result<HashSet<u64>> {
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

/// Renames `from` to `to`, copying (then removing) across file systems.
fn move_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    let ctx = || format!("moving {} to {}", from.display(), to.display());
    write_atomic(to, &std::fs::read(from).with_context(ctx)?).with_context(ctx)?;
    std::fs::remove_file(from).with_context(ctx)
}

/// Writes the whole file beside `path`, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_file_name(format!(".{}.tmp", file_name(path)));
    let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn png_bytes(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .context("encoding PNG")?;
    Ok(out.into_inner())
}

/// A labelling session over `items`.
pub struct Session<W: Write> {
    items: Vec<Item>,
    opts: Options,
    out: W,
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

impl<W: Write> Session<W> {
    /// Drops the items already answered (frames filed into the dataset,
    /// images skipped earlier, duplicates among `items`) and opens the journal.
    pub fn new(items: Vec<Item>, opts: Options, out: W) -> anyhow::Result<Self> {
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
            out,
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

    /// Runs until `q`, the end of `keys`, or an error; every answer given
    /// is filed before it returns.
    pub fn run<I>(mut self, keys: I) -> anyhow::Result<Summary>
    where
        I: IntoIterator<Item = io::Result<Key>>,
    {
        let mut keys = keys.into_iter();
        loop {
            self.draw()?;
            let key = match keys.next() {
                None => break,
                Some(k) => k.context("reading keys")?,
            };
            self.message.clear();
            if !self.handle(key)? {
                break;
            }
        }
        self.commit_pending()?;
        self.summary.left = self.items.len() - self.cur.min(self.items.len());
        write!(self.out, "\x1b[0m")?;
        self.out.flush()?;
        Ok(self.summary)
    }

    /// Handles one key; `false` to stop.
    fn handle(&mut self, key: Key) -> anyhow::Result<bool> {
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
                        Op::Removed { path, bytes } => write_atomic(path, bytes)?,
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
                    write_atomic(&dest, &png_bytes(&item.image)?)?;
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

    fn draw(&mut self) -> anyhow::Result<()> {
        let n = self.items.len();
        let mut s = String::from("\x1b[H\x1b[2J");
        let nl = "\x1b[K\r\n";
        let shown = if self.typing_tenth {
            self.pending.map(|p| p.idx)
        } else {
            (self.cur < n).then_some(self.cur)
        };
        let pic_rows = self.opts.rows.saturating_sub(8).max(4);
        let pic_cols = self.opts.cols.saturating_sub(2).max(8);
        match shown {
            Some(i) => {
                let it = &self.items[i];
                s += &format!(
                    "\x1b[1mmeter classify\x1b[0m  {}  {}  ({} of {}){nl}",
                    it.meter,
                    it.origin.describe(),
                    i + 1,
                    n
                );
                let strip = render::digit_strip(&it.context, it.position, pic_cols, pic_rows);
                for line in render::half_blocks(&strip) {
                    s += " ";
                    s += &line;
                    s += nl;
                }
                s += &match &it.guess {
                    Some(g) => {
                        let also: Vec<String> = g
                            .top
                            .iter()
                            .skip(1)
                            .take(3)
                            .map(|(t, p)| format!("{t} {:.0}%", 100.0 * p))
                            .collect();
                        format!(
                            "guess \x1b[1m{}\x1b[0m  confidence {:.0}%   also: {}{nl}",
                            g.tenths,
                            100.0 * g.confidence,
                            also.join(", ")
                        )
                    }
                    None => format!("guess -{nl}"),
                };
            }
            None => {
                s += &format!("\x1b[1mmeter classify\x1b[0m  all {n} images answered{nl}");
            }
        }
        let typed = match (self.typing_tenth, self.pending) {
            (true, Some(p)) => format!("{}._  (type the tenth)", p.label.floor_digit()),
            _ => String::new(),
        };
        s += &format!("answer> {typed}{nl}");
        if let Some(p) = self.pending.filter(|_| !self.typing_tenth) {
            s += &format!(
                "last: {} -> {}{}{nl}",
                self.items[p.idx].origin.describe(),
                p.label,
                if p.amendable {
                    "  (`.` and a tenth make it rolling)"
                } else {
                    ""
                }
            );
        } else if let Some(d) = self.done.last().filter(|_| !self.typing_tenth) {
            let what = match &d.action {
                Action::Filed { label, .. } => format!("filed as {label}"),
                Action::Skipped => "skipped".into(),
            };
            s += &format!("last: {} {what}{nl}", self.items[d.idx].origin.describe());
        } else {
            s += nl;
        }
        let answered = self.answered();
        let secs = self.started.elapsed().as_secs_f64();
        let speed = if answered > 0 {
            let per = secs / answered as f64;
            let left = n.saturating_sub(self.cur) as f64 * per;
            format!(
                " · {per:.1} s/image · ~{:.0} min left",
                (left / 60.0).ceil()
            )
        } else {
            String::new()
        };
        s += &format!(
            "progress {}/{n} · filed {} · skipped {}{}{speed}{nl}",
            self.cur.min(n),
            self.summary.filed + usize::from(self.pending.is_some()),
            self.summary.skipped,
            if self.summary.earlier > 0 {
                format!(" · {} done earlier", self.summary.earlier)
            } else {
                String::new()
            },
        );
        s += &format!("keys: 0-9 digit · 3 . 7 rolling 3.7 · Enter accept guess · s skip · u undo · q quit{nl}");
        if !self.message.is_empty() {
            s += &format!("\x1b[33m{}\x1b[0m{nl}", self.message);
        }
        self.out.write_all(s.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
