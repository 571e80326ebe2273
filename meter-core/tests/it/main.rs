//! Integration tests of meter-core: assembly against the synthetic odometer,
//! plausibility replays, and the reading-level decision against the
//! per-digit rule.

mod assembly;
mod helpers;
mod plausibility;
mod reading;
