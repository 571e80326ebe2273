//! `meter prepare`: creates a meter's folder layout and a commented config
//! file with the paths filled in.

use std::path::PathBuf;

use crate::Outcome;

/// Arguments of `meter prepare`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The folder to set up (created if missing).
    #[arg(long)]
    pub root: PathBuf,
    /// The meter's name.
    #[arg(long, default_value = "house")]
    pub meter: String,
    /// The camera's URL (or a JPEG file / folder of frames).
    #[arg(long, default_value = "http://192.168.1.50")]
    pub source: String,
    /// Replace an existing `meter.toml`.
    #[arg(long)]
    pub force: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let config = meter_service::setup::prepare(&args.root, &args.meter, &args.source, args.force)?;
    let root = config.parent().unwrap_or(&args.root).display();
    outln!("prepared {root}");
    outln!("next: put a frame into {root}/frames, then");
    outln!(
        "  meter roi --frame {root}/frames/FRAME.jpg --config {} --out {root}/roi",
        config.display()
    );
    outln!(
        "and edit {} until the boxes sit on the digits",
        config.display()
    );
    Ok(Outcome::Done)
}
