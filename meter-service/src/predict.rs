//! One reading of each meter (`meter predict`, from cron).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use meter_model::DigitModel;
use meter_vision::{FileSource, FrameSource};
use time::OffsetDateTime;

use crate::config::{MeterConfig, ResolvedConfig};
use crate::events::Bus;
use crate::reader::{capture_time, Filers, MeterReader};
use crate::registry::load_current_model;
use crate::report::Report;
use crate::store::Store;

/// Reads meters once each, through the same path as the run loop.
#[derive(Debug)]
pub struct OneShot {
    cfg: ResolvedConfig,
    model: DigitModel,
    filers: Filers,
    store: Store,
}

impl OneShot {
    /// Loads the current model and opens the sinks; readings are also
    /// published on `bus`.
    pub fn new(cfg: ResolvedConfig, bus: Arc<Bus>) -> anyhow::Result<Self> {
        let model = load_current_model(&cfg)?;
        let sinks = crate::open::open_sinks(&cfg, None)?;
        Ok(Self {
            filers: Filers::new(&cfg),
            store: Store::new(sinks, bus),
            model,
            cfg,
        })
    }

    /// Reads `meter` once: from `frame` when given (read now, whatever the
    /// file's time), else from its source (a folder's newest frame).
    pub fn read(&self, meter: &MeterConfig, frame: Option<&Path>) -> anyhow::Result<Report> {
        let mut reader = MeterReader::new(&self.cfg, meter, self.model.clone(), &self.filers)?;
        let rejected = Some(self.cfg.rejected_dir.clone());
        let (frame, time) = match frame {
            Some(p) => {
                let f = FileSource::new(p, rejected)
                    .next_frame()?
                    .with_context(|| format!("{}: no frame", p.display()))?;
                (f, OffsetDateTime::now_utc())
            }
            None => {
                let f = crate::open::one_frame(meter, &self.cfg.rejected_dir)?;
                let t = capture_time(&f);
                (f, t)
            }
        };
        self.store.read_and_store(&mut reader, frame, time)
    }

    /// Delivers what the sinks hold; a database that is away keeps the
    /// readings in its spool for the next run (logged, not an error).
    pub fn flush(&self) -> bool {
        self.store.flush()
    }
}
