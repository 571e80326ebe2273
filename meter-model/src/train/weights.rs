//! Weights in and out of the training network: seeded initial weights,
//! copying a [`Weights`] into the `VarMap` and reading it back.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::arch::Architecture;
use crate::weights::Weights;
use crate::ModelError;

/// Seeded initial weights: Kaiming-uniform convolutions and head, identity batch-norm.
pub(crate) fn random_weights(arch: &Architecture, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1417_0000);
    let mut map = BTreeMap::new();
    for (name, shape) in arch.tensor_shapes() {
        let n: usize = shape.iter().product();
        let values = if name.ends_with("running_var")
            || (name.starts_with("bn") && name.ends_with("weight"))
        {
            vec![1.0; n]
        } else if name.starts_with("bn") || name == "head.bias" {
            vec![0.0; n]
        } else {
            let fan_in: usize = shape[1..].iter().product();
            let bound = (6.0 / fan_in as f32).sqrt();
            (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
        };
        map.insert(name, (shape, values));
    }
    Weights(map)
}

pub(super) fn set_weights(varmap: &VarMap, w: &Weights) -> Result<(), ModelError> {
    let data = varmap.data().lock().expect("varmap lock");
    for (name, (shape, values)) in &w.0 {
        let var = data.get(name).ok_or_else(|| ModelError::MissingTensor {
            origin: "training network".into(),
            name: name.clone(),
        })?;
        var.set(&Tensor::from_slice(values, shape.as_slice(), &Device::Cpu)?)?;
    }
    Ok(())
}

pub(super) fn get_weights(varmap: &VarMap, arch: &Architecture) -> Result<Weights, ModelError> {
    let data = varmap.data().lock().expect("varmap lock");
    weights_from(|name| data.get(name).map(|v| v.as_tensor().clone()), arch)
}

/// The architecture's tensors, looked up by name.
pub(super) fn weights_from(
    get: impl Fn(&str) -> Option<Tensor>,
    arch: &Architecture,
) -> Result<Weights, ModelError> {
    let mut map = BTreeMap::new();
    for (name, shape) in arch.tensor_shapes() {
        let t = get(&name).ok_or_else(|| ModelError::MissingTensor {
            origin: "training network".into(),
            name: name.clone(),
        })?;
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        map.insert(name, (shape, values));
    }
    Ok(Weights(map))
}
