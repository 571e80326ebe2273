//! Integration tests of meter-model; no data outside the repository needed
//! (digits are rendered with meter-synth).

mod dataset;
mod helpers;
mod model_file;
mod predict;
mod training;
