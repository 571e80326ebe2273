//! Writes a labelled training set of simulator digits: whole synthetic
//! frames (the camera simulator's look: noise, jitter, rotation, flash
//! reflection) cut into digit images by the real vision pipeline, filed as
//! `<out>/<label>/synth-<frame>-<digit>.png`. Half the frames end in 99.x so
//! that rolling higher digits are well represented.
//!
//! A model that should read the simulator (the demo, the end-to-end tests)
//! needs some of these in its training data:
//!
//! ```sh
//! cargo run -p meter-cli --example synth_digits -- target/synth-digits 1500
//! meter train --data ../shared/data/meter-digits --data target/synth-digits --out model.safetensors
//! ```

use std::path::PathBuf;

use anyhow::Context;
use meter_synth::{FrameParams, MeterLayout};
use meter_vision::{Aligner, Mark, Pipeline, Regions};
use rand::{Rng, SeedableRng};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .context("usage: synth_digits OUT_DIR [FRAMES] [SEED]")?,
    );
    let frames: usize = args.next().map_or(Ok(1500), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(42), |a| a.parse())?;
    let layout = MeterLayout::default();
    let mut aligner = Aligner::builder();
    for (k, m) in layout.marks.iter().enumerate() {
        let template = image::imageops::grayscale(&layout.mark_template(k).context("mark")?);
        aligner = aligner.mark(Mark {
            template,
            x: m[0].into(),
            y: m[1].into(),
        });
    }
    let (w, h) = meter_model::DigitModel::shipped().input_size();
    let pipeline = Pipeline::builder()
        .aligner(aligner.build()?)
        .regions(Regions::Boxes(layout.digits.clone()))
        .digit_size(w, h)
        .build()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut written = 0;
    for k in 0..frames {
        let mut counter: f64 = rng.gen_range(0.0..1_000_000.0);
        if rng.gen_bool(0.5) {
            counter = (counter / 100.0).floor() * 100.0 + 99.0 + rng.gen_range(0.0..1.0);
        }
        let shot = layout.render(&FrameParams {
            counter,
            rotation_deg: rng.gen_range(-1.0..1.0),
            shift: (rng.gen_range(-3.0..3.0), rng.gen_range(-3.0..3.0)),
            noise: 4.0,
            hotspot: Some((
                (rng.gen_range(300.0..360.0), rng.gen_range(140.0..160.0)),
                45.0,
                rng.gen_range(0.0..70.0),
            )),
            seed: k as u64,
        });
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(shot.image).write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )?;
        let processed = match pipeline.process_jpeg(&jpeg, "synthetic") {
            Ok(p) => p,
            Err(e) => {
                eprintln!("frame {k}: {e}");
                continue;
            }
        };
        for (i, (img, t)) in processed.digits.iter().zip(&shot.digits).enumerate() {
            let dir = out.join(t.to_string());
            std::fs::create_dir_all(&dir)?;
            img.save(dir.join(format!("synth-{k}-{i}.png")))?;
            written += 1;
        }
    }
    println!("wrote {written} digit images into {}", out.display());
    Ok(())
}
