//! Integration tests of meter-vision (one binary; modules share helpers).

mod align;
mod auto;
mod camsim;
mod golden;
mod helpers;
mod http;
mod moved;
mod real_frames;
mod rotated;
mod sources;
mod tracker;
