//! Integration tests of meter-core: assembly against the synthetic odometer,
//! and plausibility replays.

mod assembly;
mod helpers;
mod plausibility;
