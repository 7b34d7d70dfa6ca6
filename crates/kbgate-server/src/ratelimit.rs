//! A small in-memory sliding-window rate limiter (per email, per client address), and the
//! keys it is used with.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
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

/// The per-client key: an IPv4 address, or the /64 network of an IPv6 address (one host
/// usually holds a whole /64 and picks any address in it at will). An IPv4-mapped IPv6
/// address is its IPv4 address.
pub(crate) fn client_key(addr: Option<IpAddr>) -> String {
    match addr {
        None => String::new(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The per-email key: the mailbox the mail reaches, as the policy and revocation compare
/// addresses. The domain is already canonical; the local part is compared without case
/// (`Alice@` and `alice@` are one mailbox everywhere in practice, and revocation by email
/// already ignores case) and without a `+tag` (sub-addresses deliver to the same mailbox), so
/// neither spelling opens a fresh allowance against the same inbox.
pub(crate) fn mailbox_key(email: &kbgate_policy::Email) -> String {
    let local = email.local_part();
    let local = local.split_once('+').map_or(local, |(base, _)| base);
    format!("{}@{}", local.to_ascii_lowercase(), email.domain().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64() {
        let key = |s: &str| client_key(Some(s.parse().unwrap()));
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:198.51.100.7"), key("198.51.100.7"));
        assert_ne!(key("198.51.100.7"), key("198.51.100.8"));
        assert_eq!(client_key(None), "");
    }

    #[test]
    fn one_mailbox_one_key() {
        let key = |s: &str| mailbox_key(&kbgate_policy::Email::parse(s).unwrap());
        assert_eq!(key("Alice@ACME.com"), "alice@acme.com");
        assert_eq!(key("ALICE@acme.com"), key("alice@acme.com"));
        assert_eq!(key("alice+kb@acme.com"), key("alice@acme.com"));
        assert_ne!(key("alice@acme.com"), key("bob@acme.com"));
        assert_ne!(key("alice@acme.com"), key("alice@eu.acme.com"));
    }

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
