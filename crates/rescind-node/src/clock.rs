//! Wall-clock time, injected so the simulator can skew and drive it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds, as this node believes it.
pub trait WallClock: Send + Sync + 'static {
    /// Milliseconds since the unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn WallClock>;
