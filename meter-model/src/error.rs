//! The crate's typed error.

use std::path::PathBuf;

/// Everything that can go wrong loading, saving, training or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file or folder could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid (or are a truncated) safetensors file.
    #[error("{origin}: not a valid safetensors model file")]
    Format {
        /// Where the bytes came from (a path or a name).
        origin: String,
        /// The underlying error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// The file has no `meter_model` metadata: it is not a meter-reader digit model.
    #[error("{origin}: no meter-reader model metadata (key {key:?}) in the safetensors header")]
    MissingMetadata {
        /// Where the bytes came from.
        origin: String,
        /// The metadata key that was looked for.
        key: &'static str,
    },
    /// The metadata is not valid JSON of the expected shape.
    #[error("{origin}: invalid model metadata")]
    BadMetadata {
        /// Where the bytes came from.
        origin: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The model was made for another format, architecture or class count.
    #[error("{origin}: incompatible model: {what} is {got}, expected {expected}")]
    Incompatible {
        /// Where the bytes came from.
        origin: String,
        /// What differs.
        what: &'static str,
        /// What this version supports.
        expected: String,
        /// What the file says.
        got: String,
    },
    /// A weight tensor is missing.
    #[error("{origin}: missing tensor {name:?}")]
    MissingTensor {
        /// Where the bytes came from.
        origin: String,
        /// The tensor's name.
        name: String,
    },
    /// A weight tensor has the wrong shape or type.
    #[error("{origin}: tensor {name:?} has shape {got:?} ({dtype}), expected {expected:?} (F32)")]
    TensorShape {
        /// Where the bytes came from.
        origin: String,
        /// The tensor's name.
        name: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape in the file.
        got: Vec<usize>,
        /// The element type in the file.
        dtype: String,
    },
    /// A weight is not finite (NaN or infinite).
    #[error("{origin}: tensor {name:?} contains non-finite values")]
    NonFinite {
        /// Where the bytes came from.
        origin: String,
        /// The tensor's name.
        name: String,
    },
    /// An image of a batch has no pixels.
    #[error("image {index} of the batch is empty ({width}x{height})")]
    EmptyImage {
        /// Its position in the batch.
        index: usize,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// The network's output for an image is not a probability distribution
    /// (non-finite logits: a broken model).
    #[error("image {index} of the batch: the model's output is not a distribution")]
    BadOutput {
        /// Its position in the batch.
        index: usize,
        /// Why.
        #[source]
        source: meter_core::DistributionError,
    },
    /// A dataset's manifest could not be parsed.
    #[error("{path}:{line}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The 1-based line number (0 when unknown).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A dataset folder holds no usable image.
    #[error(
        "{path}: no labelled images found (expected folders named N or N.M, or a manifest.csv)"
    )]
    EmptyDataset {
        /// The dataset folder.
        path: PathBuf,
    },
    /// A training or evaluation setting is invalid.
    #[error("invalid setting {field}: {message}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why it is invalid.
        message: String,
    },
    /// The candle tensor library failed (training or reference inference).
    #[error("tensor computation failed")]
    Candle(#[from] candle_core::Error),
}
