//! Integration tests of the service library: the read-and-store path, the
//! run loop, the event stream and the dataset-file conventions, on meters
//! rendered by meter-synth into folders of frames.

mod counters;
mod files;
mod helpers;
mod run;
mod store;
