//! The softmax temperature the shipped model's log-loss prefers on each
//! source (meter) of a labelled folder, and on 100 of its images drawn at
//! random: how far one temperature is from right for single meters
//! (models/README.md, "Two causes found").
//!
//! ```sh
//! cargo run -p meter-model --example fit_temperature -- \
//!     ../shared/data/meter-digits models/validation-sources.txt
//! ```

use std::path::Path;

use meter_model::{fit_temperature, read_source_list, Dataset, DigitModel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, sources] = args.as_slice() else {
        return Err("usage: fit_temperature DATA_DIR SOURCES_FILE".into());
    };
    let model = DigitModel::shipped();
    let all = Dataset::load(Path::new(data), model.input_size())?;
    println!("shipped model: {:.2}", model.metadata().temperature);
    for source in read_source_list(Path::new(sources))? {
        let mut one = Dataset {
            samples: all
                .samples
                .iter()
                .filter(|s| s.source == source)
                .cloned()
                .collect(),
            problems: Vec::new(),
        };
        if one.is_empty() {
            continue;
        }
        let t_all = fit_temperature(&model, &one)?;
        let n = one.len();
        one.subsample(100, 1);
        let t_100 = fit_temperature(&model, &one)?;
        println!("{source:30} {n:5} images: {t_all:.2} (100 of them: {t_100:.2})");
    }
    Ok(())
}
