//! Integration tests of the `meter` binary: commands, bad input, and reading
//! the camera simulator end to end over real HTTP.

mod bad_input;
mod battery;
mod classify;
mod commands;
mod e2e;
mod eval_counters;
mod helpers;
mod influx;
mod mqtt;
mod real_frames;
mod retrain;
mod serve;
mod stop;
