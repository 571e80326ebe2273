//! Integration tests of the `meter` binary: commands, bad input, and reading
//! the camera simulator end to end over real HTTP.

mod bad_input;
mod classify;
mod commands;
mod e2e;
mod eval_counters;
mod helpers;
mod influx;
mod real_frames;
// meter-sink's private influxd per test (free port, temp dir), reused as is.
#[allow(dead_code)]
#[path = "../../../meter-sink/tests/it/server.rs"]
mod influx_server;
mod retrain;
mod stop;
