//! Integration tests of meter-vision (one binary; modules share helpers).

mod align;
mod camsim;
mod golden;
mod helpers;
mod http;
mod real_frames;
mod sources;
