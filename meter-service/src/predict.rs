//! One reading of each meter (`meter predict`, from cron), within the
//! config's `predict_deadline`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use meter_model::DigitModel;
use meter_vision::{FileSource, FrameSource, StopSignal};
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
    deadline: StopSignal,
}

impl OneShot {
    /// Loads the current model and opens the sinks for `meters`; readings
    /// are also published on `bus`. The config's `predict_deadline` starts
    /// now: camera requests still running then are abandoned.
    pub fn new(
        cfg: ResolvedConfig,
        meters: &[&MeterConfig],
        bus: Arc<Bus>,
    ) -> anyhow::Result<Self> {
        let deadline = StopSignal::with_deadline(Instant::now() + cfg.predict_deadline);
        let model = load_current_model(&cfg)?;
        let sinks = crate::open::open_sinks(&cfg, meters, None)?;
        Ok(Self {
            filers: Filers::new(&cfg),
            store: Store::new(sinks.sinks, bus),
            model,
            cfg,
            deadline,
        })
    }

    /// Reads `meter` once: from `frame` when given (read now, whatever the
    /// file's time), else from its source (a folder's newest frame).
    pub fn read(&self, meter: &MeterConfig, frame: Option<&Path>) -> anyhow::Result<Report> {
        let mut reader = MeterReader::new(&self.cfg, meter, self.model.clone(), &self.filers)?;
        let (frame, time) = match frame {
            Some(p) => {
                let f = FileSource::new(p, Some(self.cfg.rejected_dir.clone()))
                    .next_frame()?
                    .with_context(|| format!("{}: no frame", p.display()))?;
                (f, OffsetDateTime::now_utc())
            }
            None => {
                let options = crate::open::source_options(&self.cfg, &self.deadline);
                let f = meter
                    .source
                    .read_once(&options)
                    .with_context(|| format!("meter {}", meter.name))?;
                let t = capture_time(&f);
                (f, t)
            }
        };
        self.store.read_and_store(&mut reader, frame, time)
    }

    /// Delivers what the sinks hold until the deadline (at least a moment);
    /// a database that is away keeps the readings in its spool for the
    /// next run (logged, not an error).
    pub fn close(&self) -> bool {
        let grace = Instant::now() + crate::run::CLOSE_GRACE;
        let deadline = self.deadline.deadline().map_or(grace, |d| d.max(grace));
        self.store.close(deadline)
    }
}
