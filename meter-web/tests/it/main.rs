//! meter-web's tests: a real server on a free loopback port over a
//! simulated camera (`meter-camsim`) read by the real service.

mod browser;
mod helpers;
mod kept;
mod retrain;
mod routes;
mod security;
