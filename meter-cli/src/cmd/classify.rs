//! `meter classify`: label digit images in the terminal (the session is
//! [`meter_service::label`]; this draws it).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{execute, terminal};

use meter_service::config::ResolvedConfig;
use meter_service::label::{items, keys_from_lines, Key, Session, SessionOptions, View};
use meter_service::registry;

use crate::render::screen;
use crate::Outcome;

/// Arguments of `meter classify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The meter (needed with --frames when the config has several).
    #[arg(long, value_name = "NAME")]
    pub meter: Option<String>,
    /// Cut the JPEG frames of this folder into digits with the meter's boxes.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "unsure",
        required_unless_present = "unsure"
    )]
    pub frames: Option<PathBuf>,
    /// Label the crops of unsure readings (`unsure_dir`).
    #[arg(long)]
    pub unsure: bool,
    /// Ask again about images skipped in earlier sessions.
    #[arg(long)]
    pub revisit_skipped: bool,
    /// Read answers as lines (`3`, `3.7`, empty = accept, `s`, `u`, `q`)
    /// even on a terminal.
    #[arg(long)]
    pub lines: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let cfg = ResolvedConfig::load(&args.config)?;
    let model = registry::load_current_model(&cfg)?;
    let mut warnings = Vec::new();
    let mut warn = |w: String| warnings.push(w);
    let mut list = match &args.frames {
        Some(dir) => {
            let meter = match &args.meter {
                Some(name) => cfg.meter(name)?,
                None if cfg.meters.len() == 1 => &cfg.meters[0],
                None => anyhow::bail!(
                    "config {} has {} meters: say which with --meter NAME",
                    cfg.path.display(),
                    cfg.meters.len()
                ),
            };
            items::from_frames(dir, meter, model.input_size(), &mut warn)?
        }
        None => {
            if let Some(name) = &args.meter {
                cfg.meter(name)?;
            }
            items::from_unsure(&cfg.unsure_dir, args.meter.as_deref(), &mut warn)?
        }
    };
    for w in &warnings {
        log::warn!("{w}");
    }
    items::add_guesses(&mut list, &model)?;
    let interactive = io::stdin().is_terminal() && io::stdout().is_terminal() && !args.lines;
    let (cols, rows) = if interactive {
        terminal::size().unwrap_or((100, 30))
    } else {
        (100, 30)
    };
    let opts = SessionOptions::for_config(&cfg, args.revisit_skipped);
    let session = Session::new(list, opts)?;
    if session.is_empty() {
        drop(session);
        outln!("nothing to label");
        return Ok(Outcome::Done);
    }
    let mut stdout = io::stdout().lock();
    let mut show = |view: &View<'_>| -> io::Result<()> {
        stdout.write_all(screen(view, cols, rows).as_bytes())?;
        stdout.flush()
    };
    let summary = if interactive {
        let _raw = RawMode::enter()?;
        session.run(TerminalKeys, &mut show)?
    } else {
        session.run(keys_from_lines(io::stdin().lock()), &mut show)?
    };
    stdout.write_all(b"\x1b[0m")?;
    drop(stdout);
    outln!(
        "filed {}, skipped {}, undone {}, left {}{} -> {}",
        summary.filed,
        summary.skipped,
        summary.undone,
        summary.left,
        if summary.earlier > 0 {
            format!(" ({} answered in earlier sessions)", summary.earlier)
        } else {
            String::new()
        },
        cfg.dataset_dir.display()
    );
    Ok(Outcome::Done)
}

/// Raw mode on the alternate screen; restored when dropped (also on error).
struct RawMode;

impl RawMode {
    fn enter() -> anyhow::Result<Self> {
        terminal::enable_raw_mode().context("terminal raw mode")?;
        let guard = RawMode;
        execute!(
            io::stdout(),
            terminal::EnterAlternateScreen,
            crossterm::cursor::Hide
        )
        .context("terminal")?;
        Ok(guard)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = execute!(
            io::stdout(),
            crossterm::cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
        let _ = io::stdout().flush();
    }
}

/// Key presses from the raw terminal; Ctrl-C and Ctrl-D quit.
struct TerminalKeys;

impl Iterator for TerminalKeys {
    type Item = io::Result<Key>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let ev = match event::read() {
                Ok(ev) => ev,
                Err(e) => return Some(Err(e)),
            };
            let Event::Key(k) = ev else { continue };
            if k.kind != KeyEventKind::Press {
                continue;
            }
            let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
            return Some(Ok(match k.code {
                KeyCode::Char('c' | 'd') if ctrl => Key::Char('q'),
                KeyCode::Char(c) => Key::Char(c),
                KeyCode::Enter => Key::Enter,
                KeyCode::Backspace => Key::Backspace,
                KeyCode::Esc => Key::Esc,
                _ => continue,
            }));
        }
    }
}
