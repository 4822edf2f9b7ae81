//! Log lines an outsider can cause, at most once a minute per distinct key:
//! a caller retrying every round must not drown the log.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a key stays quiet after it was logged.
const QUIET_FOR: Duration = Duration::from_secs(60);

/// Distinct keys remembered at once (past this, the oldest is forgotten).
const MAX_KEYS: usize = 64;

/// Remembers which keys were logged in the last minute.
pub struct LogLimit(Mutex<Vec<(String, Instant)>>);

impl LogLimit {
    /// An empty limiter (usable in a `static`).
    pub const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    /// True when `key` was not logged in the last minute (and marks it so).
    pub fn first_in_a_while(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.0.lock();
        seen.retain(|(_, at)| now.duration_since(*at) < QUIET_FOR);
        if seen.iter().any(|(k, _)| k == key) {
            return false;
        }
        if seen.len() >= MAX_KEYS {
            seen.remove(0);
        }
        seen.push((key.to_owned(), now));
        true
    }
}

impl Default for LogLimit {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_logged_once_and_the_table_stays_bounded() {
        let l = LogLimit::new();
        assert!(l.first_in_a_while("a"));
        assert!(!l.first_in_a_while("a"));
        for i in 0..200 {
            l.first_in_a_while(&format!("k{i}"));
        }
        assert!(l.0.lock().len() <= MAX_KEYS);
    }
}
