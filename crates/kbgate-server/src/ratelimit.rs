//! A small in-memory sliding-window rate limiter (per email, per client address).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows at most `max` events per `window` for each key.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    events: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Above this many keys, stale ones are swept on the next check.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    /// A limiter allowing `max` events per `window` and key.
    pub fn new(max: usize, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            events: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event for `key` at `now`; false when it exceeds the limit (not recorded then).
    pub fn check_at(&self, key: &str, now: Instant) -> bool {
        // A poisoned lock only means another thread panicked mid-update; the map is still usable.
        let mut map = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = map.entry(key.to_owned()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.max {
            return false;
        }
        q.push_back(now);
        true
    }

    /// [`RateLimiter::check_at`] now.
    pub fn check(&self, key: &str) -> bool {
        self.check_at(key, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_window() {
        let rl = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(rl.check_at("a", t0));
        assert!(rl.check_at("a", t0));
        assert!(!rl.check_at("a", t0));
        assert!(rl.check_at("b", t0));
        assert!(rl.check_at("a", t0 + Duration::from_secs(61)));
    }
}
