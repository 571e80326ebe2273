//! Reading-level evaluation on real roller photos: counters of 5 to 8
//! rollers composed from each listed meter's labelled photos
//! (`meter_synth::Plan`), rendered as frames, cut by the vision pipeline
//! (JPEG, marks, boxes), read by the shipped model and judged by
//! `meter_core::judge`, single frames and rising histories with the state
//! kept. Prints a table per meter to stderr and the JSON report to stdout.
//!
//! ```sh
//! cargo run --release -p meter-model --example counters -- \
//!     ../shared/data/meter-digits models/validation-sources.txt --rule reading --keep-unchanged
//! ```
//! Options: `--rule per_digit|reading` (default reading), `--keep-unchanged`
//! (rollers whose crop matches the one at the last stored reading keep its
//! position), `--seed N` (1), `--singles N` (200), `--histories N` (10),
//! `--len N` (50), `--max-rate R` (units per hour; none by default),
//! `--model FILE`, `--dump FILE` (one line per frame, for analysis),
//! `--floors S,H,W` (exit 1 unless single frames are stored at least S,
//! history frames at least H (fractions), and at most W are stored wrong).

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::PathBuf;

use image::RgbImage;
use meter_core::{judge, Decision, DecisionRule, Evidence, Posterior, Roller, Rules, State};
use meter_model::{picture_change, read_source_list, Dataset, DigitModel, UNCHANGED_BELOW};
use meter_synth::{evaluate, CropBank, MeterLayout, Outcome, Plan, Report, StreamKind, Tally};
use meter_vision::{Aligner, Mark, Pipeline, Regions};

struct Args {
    data: PathBuf,
    sources: PathBuf,
    rule: DecisionRule,
    keep: bool,
    plan: Plan,
    max_rate: Option<f64>,
    model: Option<PathBuf>,
    dump: Option<PathBuf>,
    floors: Option<(f64, f64, usize)>,
}

fn parse() -> Result<Args, Box<dyn std::error::Error>> {
    let usage = "usage: counters DATA_DIR SOURCES_FILE [--rule per_digit|reading] \
                 [--keep-unchanged] [--seed N] [--singles N] [--histories N] [--len N] \
                 [--max-rate R] [--model FILE] [--dump FILE] [--floors S,H,W]";
    let mut it = std::env::args().skip(1);
    let data = it.next().ok_or(usage)?.into();
    let sources = it.next().ok_or(usage)?.into();
    let mut a = Args {
        data,
        sources,
        rule: DecisionRule::Reading,
        keep: false,
        plan: Plan::default(),
        max_rate: None,
        model: None,
        dump: None,
        floors: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rule" => {
                a.rule = match value()?.as_str() {
                    "per_digit" => DecisionRule::PerDigit,
                    "reading" => DecisionRule::Reading,
                    other => return Err(format!("--rule {other}: per_digit or reading").into()),
                }
            }
            "--keep-unchanged" => a.keep = true,
            "--seed" => a.plan.seed = value()?.parse()?,
            "--singles" => a.plan.single_frames = value()?.parse()?,
            "--histories" => a.plan.histories = value()?.parse()?,
            "--len" => a.plan.history_len = value()?.parse()?,
            "--max-rate" => a.max_rate = Some(value()?.parse()?),
            "--model" => a.model = Some(value()?.into()),
            "--dump" => a.dump = Some(value()?.into()),
            "--floors" => {
                let v = value()?;
                let parts: Vec<&str> = v.split(',').collect();
                let [s, h, w] = parts[..] else {
                    return Err(format!("--floors {v}: expected S,H,W").into());
                };
                a.floors = Some((s.parse()?, h.parse()?, w.parse()?));
            }
            _ => return Err(format!("unknown option {flag}; {usage}").into()),
        }
    }
    Ok(a)
}

fn pipeline(
    layout: &MeterLayout,
    size: (u32, u32),
) -> Result<Pipeline, Box<dyn std::error::Error>> {
    let mut aligner = Aligner::builder();
    for (k, m) in layout.marks.iter().enumerate() {
        let template = image::imageops::grayscale(&layout.mark_template(k).ok_or("mark")?);
        aligner = aligner.mark(Mark {
            template,
            x: m[0].into(),
            y: m[1].into(),
        });
    }
    Ok(Pipeline::builder()
        .aligner(aligner.build()?)
        .regions(Regions::Boxes(layout.digits.clone()))
        .digit_size(size.0, size.1)
        .build()?)
}

fn jpeg(img: RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut out), 90);
    // Encoding into memory cannot fail for an RGB image.
    let _ = enc.encode_image(&image::DynamicImage::ImageRgb8(img));
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let model = match &args.model {
        Some(p) => DigitModel::load(p)?,
        None => DigitModel::shipped(),
    };
    let size = model.input_size();
    let sources = read_source_list(&args.sources)?;
    let data = Dataset::load(&args.data, size)?;
    let rules = Rules {
        decision: args.rule,
        max_rate_per_hour: args.max_rate,
        ..Rules::default()
    };
    let mut dump = match &args.dump {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let mut report = Report::default();
    // Picture changes of rollers that stood still and of rollers that moved.
    let (mut still, mut moved) = (Vec::new(), Vec::new());
    let mut pipelines: HashMap<u8, Pipeline> = HashMap::new();
    for source in &sources {
        let photos = data
            .samples
            .iter()
            .filter(|s| &s.source == source)
            .map(|s| (s.label, s.image.clone()));
        let bank = CropBank::new(source.clone(), size, photos)?;
        let streams = args.plan.compose(&bank)?;
        let mut state = None;
        let mut refs: Vec<Option<RgbImage>> = Vec::new();
        let mut prev: Vec<RgbImage> = Vec::new();
        evaluate(
            &bank,
            &streams,
            &mut report,
            |f| -> Result<Outcome, Box<dyn std::error::Error>> {
                let stream = &streams[f.stream];
                let truth = stream.frames[f.index].ticks;
                let n = usize::from(f.counter.digits());
                if f.index == 0 {
                    state = Some(State::new(f.counter));
                    refs = vec![None; n];
                    prev.clear();
                }
                let pipe = match pipelines.entry(f.counter.digits()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(pipeline(f.layout, size)?)
                    }
                };
                let crops = pipe.process_jpeg(&jpeg(f.image), "composed")?.digits;
                let preds = model.predict_batch(&crops)?;
                let st = state.as_ref().ok_or("no state")?;
                if !prev.is_empty() {
                    let (a, b) = (
                        f.counter.positions(stream.frames[f.index - 1].ticks),
                        f.counter.positions(truth),
                    );
                    for k in 0..n {
                        let c = picture_change(&prev[k], &crops[k]);
                        if a[k] == b[k] {
                            still.push(c)
                        } else {
                            moved.push(c)
                        }
                    }
                }
                let unchanged: Vec<bool> = refs
                    .iter()
                    .zip(&crops)
                    .map(|(r, c)| {
                        args.keep
                            && r.as_ref()
                                .is_some_and(|r| picture_change(r, c) < UNCHANGED_BELOW)
                    })
                    .collect();
                let j = judge(
                    st,
                    &rules,
                    &Evidence {
                        predictions: &preds,
                        unchanged: &unchanged,
                    },
                    f.time,
                )?;
                if let Some(d) = dump.as_mut() {
                    let rollers: Vec<Roller<'_>> = preds
                        .iter()
                        .map(|p| Roller::Read(&p.distribution))
                        .collect();
                    let post = Posterior::new(f.counter, &rollers).ok_or("rollers")?;
                    let min_conf = preds.iter().map(|p| p.confidence).fold(1.0f32, f32::min);
                    let best = post
                        .candidates()
                        .first()
                        .map_or((0, 0.0), |c| (c.ticks, c.probability));
                    writeln!(
                    d,
                    "{source}\t{:?}\t{}\t{}\t{truth}\t{}\t{}\t{}\t{:.5}\t{:.5}\t{}\t{:.5}\t{:.5}\t{}",
                    stream.kind,
                    f.stream,
                    f.index,
                    j.reading.ticks,
                    j.decision.status(),
                    j.decision.stored_ticks().map_or(-1, |t| t as i64),
                    j.probability,
                    post.consistency(),
                    best.0,
                    best.1,
                    min_conf,
                    unchanged.iter().filter(|u| **u).count(),
                )?;
                }
                if let Decision::Stored { .. } = j.decision {
                    refs = crops.iter().cloned().map(Some).collect();
                }
                prev = crops;
                state = Some(j.next);
                Ok(Outcome {
                    stored: j.decision.stored_ticks(),
                    unsure: matches!(j.decision, Decision::Unsure(_)),
                    raw: j.reading.ticks,
                })
            },
        )?;
    }
    print_table(&report);
    let pct = |v: &mut Vec<f32>, q: f64| {
        v.sort_by(f32::total_cmp);
        v.get(((v.len().saturating_sub(1)) as f64 * q) as usize)
            .copied()
            .unwrap_or(f32::NAN)
    };
    eprintln!(
        "picture change between consecutive frames: still rollers (n {}) median {:.3}, 99.9% {:.3}, max {:.3}; moved rollers (n {}) min {:.3}, 0.1% {:.3}, median {:.3}",
        still.len(),
        pct(&mut still, 0.5),
        pct(&mut still, 0.999),
        pct(&mut still, 1.0),
        moved.len(),
        pct(&mut moved, 0.0),
        pct(&mut moved, 0.001),
        pct(&mut moved, 0.5),
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some((single, history, wrong)) = args.floors {
        let get = |k| report.overall.get(&k).copied().unwrap_or_default();
        let (s, h) = (get(StreamKind::Single), get(StreamKind::History));
        let w = s.stored_wrong + h.stored_wrong;
        if s.stored_share() < single || h.stored_share() < history || w > wrong {
            return Err(format!(
                "below the floors: single frames stored {:.3} (floor {single}), histories {:.3} ({history}), {w} stored wrong (at most {wrong})",
                s.stored_share(),
                h.stored_share()
            )
            .into());
        }
    }
    Ok(())
}

fn print_table(report: &Report) {
    let row = |name: &str, kind: StreamKind, t: &Tally| {
        eprintln!(
            "{name:<28} {:<8} {:>5} {:>7.1}% {:>6} {:>7.1}% {:>7.1}%",
            format!("{kind:?}"),
            t.frames,
            100.0 * t.stored_share(),
            t.stored_wrong,
            100.0 * t.unsure as f64 / t.frames.max(1) as f64,
            100.0 * t.raw_right_share(),
        )
    };
    eprintln!(
        "{:<28} {:<8} {:>5} {:>8} {:>6} {:>8} {:>8}",
        "meter", "kind", "n", "stored", "wrong", "unsure", "raw ok"
    );
    for (meter, kinds) in &report.meters {
        for (kind, t) in kinds {
            row(meter, *kind, t);
        }
    }
    for (kind, t) in &report.overall {
        row("ALL", *kind, t);
    }
}
