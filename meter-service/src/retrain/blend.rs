//! Weight-space blending of a fine-tuned model with the model it started
//! from (`alpha * tuned + (1 - alpha) * base`, every tensor, batch-norm
//! statistics included). Fine-tuning on one meter's few hundred images
//! forgets a little of the others; a blend keeps most of the gain on the new
//! meter and most of the old accuracy elsewhere (Wortsman et al., "Robust
//! fine-tuning of zero-shot models", 2022).

use std::collections::HashMap;

use anyhow::{bail, Context};
use meter_model::{DigitModel, METADATA_KEY};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// `alpha * tuned + (1 - alpha) * base`, with `tuned`'s metadata. Both must
/// be the same architecture (every tensor's name and shape agree).
pub fn blend(base: &DigitModel, tuned: &DigitModel, alpha: f32) -> anyhow::Result<DigitModel> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&alpha),
        "blend weight {alpha} outside 0..=1"
    );
    let (a_bytes, b_bytes) = (base.to_bytes()?, tuned.to_bytes()?);
    let a = SafeTensors::deserialize(&a_bytes).context("base model")?;
    let b = SafeTensors::deserialize(&b_bytes).context("tuned model")?;
    let mut out: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut names = b.names();
    names.sort();
    if names.len() != a.names().len() {
        bail!(
            "models differ: {} tensors vs {}",
            a.names().len(),
            names.len()
        );
    }
    for name in names {
        let tb = b.tensor(name).context("tuned model")?;
        let ta = a
            .tensor(name)
            .with_context(|| format!("base model has no tensor {name}"))?;
        if ta.shape() != tb.shape() || ta.dtype() != Dtype::F32 || tb.dtype() != Dtype::F32 {
            bail!(
                "tensor {name}: base {:?} {:?} vs tuned {:?} {:?}",
                ta.dtype(),
                ta.shape(),
                tb.dtype(),
                tb.shape()
            );
        }
        let f = |d: &[u8]| -> Vec<f32> {
            d.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let mixed: Vec<u8> = f(ta.data())
            .into_iter()
            .zip(f(tb.data()))
            .flat_map(|(x, y)| ((1.0 - alpha) * x + alpha * y).to_le_bytes())
            .collect();
        out.push((name.to_owned(), tb.shape().to_vec(), mixed));
    }
    let (_, header) = SafeTensors::read_metadata(&b_bytes).context("tuned model")?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .context("tuned model has no metadata")?
        .clone();
    let views = out
        .iter()
        .map(|(n, s, d)| TensorView::new(Dtype::F32, s.clone(), d).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(
        views,
        &Some(HashMap::from([(METADATA_KEY.to_owned(), json)])),
    )?;
    Ok(DigitModel::from_bytes(&bytes, "blended model")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    #[test]
    fn the_ends_are_the_two_models() {
        let base = DigitModel::shipped();
        let img = RgbImage::from_fn(20, 32, |x, y| {
            image::Rgb([(x * 12) as u8, (y * 7) as u8, 90])
        });
        let (w, h) = base.input_size();
        let img = meter_model::fit_to_input(&img, w, h).into_owned();
        let same = blend(&base, &base, 0.3).unwrap();
        let l0 = base.logits(std::slice::from_ref(&img)).unwrap();
        let l1 = same.logits(std::slice::from_ref(&img)).unwrap();
        for (x, y) in l0.iter().zip(&l1) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
        assert!(blend(&base, &base, 1.5).is_err());
    }
}
