//! One module per subcommand; each has `Args` and `run`.

pub mod classify;
pub mod eval;
pub mod model;
pub mod predict;
pub mod prepare;
pub mod repair_wal;
pub mod retrain;
pub mod roi;
pub mod run;
pub mod serve;
pub mod set_value;
pub mod train;
