//! The meter-reader service as a library: everything between a config file
//! and stored readings, for the `meter` binary and any Rust program that
//! embeds the reader.
//!
//! - [`config`]: the config file, read in two stages (raw, then resolved
//!   and validated; every error names the file and the key).
//! - [`MeterReader`] and [`Store::read_and_store`]: the one path from a
//!   frame to a stored reading (vision, model, decision, sinks, state,
//!   dataset filing).
//! - [`Service`]: the run loop (a bounded pool of workers, schedules,
//!   stop, model hot swap, retraining in the background).
//! - [`events`]: the event stream every listener subscribes to.
//! - [`registry`] and [`retrain`]: numbered model versions and the policy
//!   that promotes a fine-tuned one.
//! - [`counters`]: the reading-level evaluation (`meter eval --counters`).
//! - [`files`]: the dataset-file conventions; [`label`]: the labelling
//!   session; [`state`]: each meter's persisted state.
//!
//! ```no_run
//! use meter_service::{config::ResolvedConfig, events::{Event, Subscriber}, RunOptions, Service};
//!
//! struct Print;
//! impl Subscriber for Print {
//!     fn name(&self) -> String { "print".into() }
//!     fn handle(&mut self, event: &Event) -> anyhow::Result<()> {
//!         if let Event::Reading(r) = event {
//!             println!("{}", r.report.log_line());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let cfg = ResolvedConfig::load("meter.toml".as_ref())?;
//! let service = Service::new(cfg, RunOptions { count: Some(3), ..Default::default() })?;
//! service.subscribe(Box::new(Print))?;
//! let summary = service.run()?;
//! println!("{} stored", summary.stored);
//! # Ok::<(), anyhow::Error>(())
//! ```
#![deny(missing_docs)]

pub mod alerting;
pub mod config;
pub mod counters;
pub mod events;
pub mod files;
pub mod label;
pub mod live;
pub mod open;
pub mod overlay;
pub mod predict;
mod reader;
pub mod registry;
mod report;
pub mod retrain;
mod run;
pub mod setup;
pub mod state;
mod store;

pub use meter_vision::StopSignal;
pub use predict::OneShot;
pub use reader::{capture_time, pipeline, Filers, MeterReader, ReaderHealth, Taken};
pub use report::{DigitReport, Report, Status};
pub use run::{
    Reconfigure, RunOptions, RunSummary, Service, Shard, SharedModel, CLOSE_GRACE, DEFAULT_WORKERS,
};
pub use store::{NamedSink, Store};
