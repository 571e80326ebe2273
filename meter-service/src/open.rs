//! Opening the configured sinks and frame sources.

use std::path::{Path, PathBuf};

use anyhow::Context;
use meter_sink::{CsvSink, InfluxSink, JsonLinesSink, Sink, SpoolingSink};
use meter_vision::{FileSource, FolderOrder, FolderSource, Frame, FrameSource, HttpCamera};

use crate::config::{MeterConfig, ResolvedConfig, SinkConfig, SourceConfig};
use crate::run::Shard;
use crate::store::NamedSink;

/// Opens every configured sink; database sinks sit behind a durable spool
/// (one per shard: processes sharing a config never share a spool).
pub fn open_sinks(cfg: &ResolvedConfig, shard: Option<Shard>) -> anyhow::Result<Vec<NamedSink>> {
    let mut out: Vec<NamedSink> = Vec::new();
    for (i, s) in cfg.sinks.iter().enumerate() {
        let label = s.label(i);
        let ctx = || format!("sink[{i}] ({label})");
        let spool_dir = match shard {
            None => cfg.spool_dir.join(&label),
            Some(sh) => cfg
                .spool_dir
                .join(format!("{label}-shard{}of{}", sh.index, sh.count)),
        };
        let sink: Box<dyn Sink + Send> = match s {
            SinkConfig::InfluxV1 {
                url,
                database,
                credentials,
                retention_policy,
            } => {
                let mut b = InfluxSink::v1(url, database.clone());
                if let Some((u, p)) = credentials {
                    b = b.credentials(u.clone(), p.clone());
                }
                if let Some(rp) = retention_policy {
                    b = b.retention_policy(rp.clone());
                }
                let influx = b.build().with_context(ctx)?;
                Box::new(
                    SpoolingSink::builder(influx, spool_dir)
                        .build()
                        .with_context(ctx)?,
                )
            }
            SinkConfig::InfluxV2 {
                url,
                org,
                bucket,
                token,
            } => {
                let influx = InfluxSink::v2(url, org.clone(), bucket.clone(), token.clone())
                    .build()
                    .with_context(ctx)?;
                Box::new(
                    SpoolingSink::builder(influx, spool_dir)
                        .build()
                        .with_context(ctx)?,
                )
            }
            SinkConfig::Csv(p) => {
                mkparent(p)?;
                Box::new(CsvSink::create(p).with_context(ctx)?)
            }
            SinkConfig::Jsonl(p) => {
                mkparent(p)?;
                Box::new(JsonLinesSink::create(p).with_context(ctx)?)
            }
        };
        out.push((label, sink));
    }
    Ok(out)
}

fn mkparent(p: &Path) -> anyhow::Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    Ok(())
}

/// Opens the meter's frame source.
pub fn open_source(
    meter: &MeterConfig,
    rejected_dir: &Path,
) -> anyhow::Result<Box<dyn FrameSource + Send>> {
    let rejected = Some(rejected_dir.to_path_buf());
    Ok(match &meter.source {
        SourceConfig::Http(url) => {
            // The simulator's set-up names the capture URL; the client wants the base.
            let base = url.strip_suffix("/capture").unwrap_or(url);
            let cam = HttpCamera::builder(base)
                .rejected_dir(rejected_dir)
                .build()
                .with_context(|| format!("meter {}: source", meter.name))?;
            Box::new(Camera(cam))
        }
        SourceConfig::File(p) => Box::new(Repeat {
            path: p.clone(),
            rejected,
        }),
        SourceConfig::Folder(p) => Box::new(
            FolderSource::new(p, FolderOrder::Name, rejected)
                .with_context(|| format!("meter {}: source", meter.name))?,
        ),
    })
}

/// The camera as an endless source.
struct Camera(HttpCamera);

impl FrameSource for Camera {
    fn next_frame(&mut self) -> Result<Option<Frame>, meter_vision::VisionError> {
        self.0.capture().map(Some)
    }
}

/// A file read afresh on every reading (a camera that writes one file).
struct Repeat {
    path: PathBuf,
    rejected: Option<PathBuf>,
}

impl FrameSource for Repeat {
    fn next_frame(&mut self) -> Result<Option<Frame>, meter_vision::VisionError> {
        FileSource::new(&self.path, self.rejected.clone()).next_frame()
    }
}

/// The most recently modified `.jpg`/`.jpeg` file of `dir` (by name among
/// equals).
pub fn newest_jpeg(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_jpeg = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
        if !is_jpeg || !path.is_file() {
            continue;
        }
        let t = std::fs::metadata(&path)?.modified()?;
        if best.as_ref().is_none_or(|(bt, bp)| (t, &path) > (*bt, bp)) {
            best = Some((t, path));
        }
    }
    best.map(|(_, p)| p)
        .with_context(|| format!("no .jpg frame in {}", dir.display()))
}

/// One frame of `meter` for a one-shot reading (`meter predict`): the
/// camera's next frame, the file, or a folder's newest frame (a camera that
/// uploads into a folder, read from cron).
pub fn one_frame(meter: &MeterConfig, rejected_dir: &Path) -> anyhow::Result<Frame> {
    if let SourceConfig::Folder(dir) = &meter.source {
        let newest = newest_jpeg(dir)
            .with_context(|| format!("meter {}: source {}", meter.name, dir.display()))?;
        return FileSource::new(&newest, Some(rejected_dir.to_path_buf()))
            .next_frame()?
            .with_context(|| format!("{}: no frame", newest.display()));
    }
    open_source(meter, rejected_dir)?
        .next_frame()
        .with_context(|| format!("meter {}", meter.name))?
        .with_context(|| {
            format!(
                "meter {}: source {} gave no frame",
                meter.name, meter.source
            )
        })
}
