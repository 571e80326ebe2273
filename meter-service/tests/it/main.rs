//! Integration tests of the service library: the read-and-store path, the
//! run loop, the event stream and the dataset-file conventions, on meters
//! rendered by meter-synth into folders of frames; the configuration
//! reproductions of issue 17, and bounded fuzzing of frames and configs.

mod config;
mod counters;
mod files;
mod fuzz;
mod helpers;
mod run;
mod store;
