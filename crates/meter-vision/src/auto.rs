//! Proposes the counter window and digit boxes of a new meter.
