//! The candle CNN that reads roller digits: datasets, augmentation, training, evaluation and inference.
#![deny(missing_docs)]
