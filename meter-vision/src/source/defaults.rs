//! Every default of the frame sources, in one place.

use std::time::Duration;

/// Time allowed to open a connection to the camera.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Time allowed for the camera's answer, headers and body (a capture with
/// flash takes about a second).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts per camera call, the first one included. Only failures that
/// may heal are retried (timeouts, cut transfers, 5xx, corrupt JPEGs).
pub const ATTEMPTS: u32 = 3;

/// Wait before the first retry, doubled for each further one.
pub const BACKOFF: Duration = Duration::from_millis(250);

/// How long an idle camera connection is kept for the next request. A
/// camera read less often than this gets a fresh connection per frame
/// (see [`SourceOptions::frame_interval`](super::SourceOptions)).
pub const KEEP_IDLE: Duration = Duration::from_secs(15);

/// Largest camera answer accepted (an UXGA JPEG is under 1 MiB).
pub const MAX_BODY: u64 = 2 << 20;

/// Largest frame read from standard input.
pub const STDIN_MAX_BYTES: u64 = 16 << 20;

/// Most frames kept in a `rejected/` folder; the oldest go first.
pub const REJECTED_CAP: usize = 200;

/// How often a thread waiting for a camera answer looks at its
/// [`StopSignal`](super::StopSignal): a stop takes at most this long.
pub const STOP_POLL: Duration = Duration::from_millis(20);
