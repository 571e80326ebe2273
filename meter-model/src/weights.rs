//! Named f32 weight tensors, checked against the architecture.

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors};

use crate::arch::Architecture;
use crate::ModelError;

/// Weight tensors by name: (shape, row-major values).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Weights(pub(crate) BTreeMap<String, (Vec<usize>, Vec<f32>)>);

impl Weights {
    /// The values of a tensor known to exist (checked at construction).
    pub(crate) fn get(&self, name: &str) -> &[f32] {
        &self.0[name].1
    }

    /// Reads and checks every tensor the architecture needs.
    pub(crate) fn from_safetensors(
        st: &SafeTensors<'_>,
        arch: &Architecture,
        origin: &str,
    ) -> Result<Self, ModelError> {
        let mut map = BTreeMap::new();
        for (name, shape) in arch.tensor_shapes() {
            let view = st.tensor(&name).map_err(|_| ModelError::MissingTensor {
                origin: origin.to_owned(),
                name: name.clone(),
            })?;
            if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
                return Err(ModelError::TensorShape {
                    origin: origin.to_owned(),
                    name,
                    expected: shape,
                    got: view.shape().to_vec(),
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(ModelError::NonFinite {
                    origin: origin.to_owned(),
                    name,
                });
            }
            map.insert(name, (shape, values));
        }
        Ok(Self(map))
    }

    /// Serialises with the given metadata.
    pub(crate) fn to_safetensors(
        &self,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<Vec<u8>, safetensors::SafeTensorError> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .0
            .iter()
            .map(|(n, (s, v))| {
                (
                    n.clone(),
                    s.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
            .iter()
            .map(|(n, s, b)| {
                safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                    .map(|v| (n.clone(), v))
            })
            .collect::<Result<_, _>>()?;
        safetensors::serialize(views, &Some(metadata))
    }
}
