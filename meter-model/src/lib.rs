//! The candle CNN that reads roller digits: datasets, augmentation, training,
//! evaluation and inference.
//!
//! A digit image's reading is one of 100 classes, the value in tenths of a
//! step (`3.7` is a 3 rolled 70% of the way to 4). [`DigitModel`] loads a
//! model file (safetensors with JSON metadata) and predicts batches of digit
//! images on a lean single-thread inference path; [`train()`] and
//! [`evaluate`] are the library side of `meter train` and `meter eval`.
//!
//! ```
//! use meter_model::DigitModel;
//! use meter_synth::{render_digit, DigitStyle};
//!
//! let model = DigitModel::shipped();
//! let (w, h) = model.input_size();
//! let img = render_digit("4.0".parse().unwrap(), w, h, &DigitStyle::default());
//! let preds = model.predict_batch(&[img]).unwrap();
//! assert_eq!(preds.len(), 1);
//! assert!((0.0..=1.0).contains(&preds[0].confidence));
//! ```
#![deny(missing_docs)]

mod arch;
mod augment;
mod dataset;
mod error;
mod eval;
mod fast;
mod model;
mod preprocess;
mod train;
mod weights;

pub use arch::{Architecture, ARCH_NAME, ARCH_VERSION};
pub use augment::{augment, AugmentConfig};
pub use dataset::{read_source_list, Dataset, Problem, Sample, MANIFEST};
pub use error::ModelError;
pub use eval::{
    evaluate, AtConfidence, Confusion, EvalReport, Metrics, CONFIDENCE_LEVELS, EVAL_BATCH,
    TOP_CONFUSIONS,
};
pub use model::{
    DigitModel, ModelMetadata, Normalisation, TrainingSummary, ValidationSummary, AGREEMENT_SHIFT,
    FORMAT, FORMAT_VERSION, METADATA_KEY, TOP_K,
};
pub use preprocess::{fit_to_input, picture_change, UNCHANGED_BELOW};
pub use train::{
    fit_temperature, split, train, EpochStats, TrainConfig, TrainConfigBuilder, TrainEvent,
    TrainOutcome,
};

/// Number of classes: tenths 0.0 ..= 9.9.
pub const CLASSES: usize = meter_core::Tenths::CLASSES;
