//! In-memory rate limits per key (per email, per client address, per hand-over endpoint), and
//! the keys they are used with.
//!
//! Built on `governor`'s keyed GCRA limiter: a check touches only its own key (a sharded map,
//! no lock over every key), and keys whose allowance is back to full are dropped every
//! [`RETAIN_EVERY`] checks, so memory stays bounded by the keys seen within one window.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

/// Keys back at a full allowance are forgotten once every this many checks: amortised, the
/// sweep costs a fraction of a map visit per check.
const RETAIN_EVERY: u64 = 4096;

type Keyed<C> = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// What a limiter does for every key.
#[derive(Debug)]
enum Limit<C: Clock> {
    /// `max` is 0: nothing is allowed.
    Never,
    /// The window is empty: nothing is limited.
    Unlimited,
    Gcra(Keyed<C>),
}

/// Allows `max` events per `window` for each key: a burst of `max` at once, then one more every
/// `window / max` (GCRA). Unlike a strict sliding window, an event becomes possible again a
/// `window / max` after the burst rather than a whole window after it; the long-run rate,
/// `max` per `window`, is the same.
#[derive(Debug)]
pub(crate) struct RateLimiter<C: Clock = DefaultClock> {
    limit: Limit<C>,
    checks: AtomicU64,
}

impl RateLimiter {
    /// A limiter allowing `max` events per `window` and key, on the real clock.
    pub(crate) fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter::with_clock(max, window, DefaultClock::default())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter on the given clock (tests use governor's `FakeRelativeClock`).
    pub(crate) fn with_clock(max: u32, window: Duration, clock: C) -> RateLimiter<C> {
        let limit = match NonZeroU32::new(max) {
            None => Limit::Never,
            Some(burst) => match Quota::with_period(window / burst.get()) {
                None => Limit::Unlimited,
                Some(q) => Limit::Gcra(governor::RateLimiter::new(
                    q.allow_burst(burst),
                    DefaultKeyedStateStore::default(),
                    clock,
                )),
            },
        };
        RateLimiter {
            limit,
            checks: AtomicU64::new(0),
        }
    }

    /// Records an event for `key`; false when it exceeds the limit (not recorded then).
    pub(crate) fn check(&self, key: &str) -> bool {
        let gcra = match &self.limit {
            Limit::Never => return false,
            Limit::Unlimited => return true,
            Limit::Gcra(g) => g,
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            gcra.retain_recent();
        }
        gcra.check_key(&key.to_owned()).is_ok()
    }

    /// How many keys are remembered (for the tests of the sweep).
    #[cfg(test)]
    fn keys(&self) -> usize {
        match &self.limit {
            Limit::Gcra(g) => g.len(),
            _ => 0,
        }
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
    use governor::clock::FakeRelativeClock;

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
        let clock = FakeRelativeClock::default();
        let rl = RateLimiter::with_clock(2, Duration::from_secs(60), clock.clone());
        assert!(rl.check("a"));
        assert!(rl.check("a"));
        assert!(!rl.check("a"));
        assert!(rl.check("b"));
        clock.advance(Duration::from_secs(61));
        assert!(rl.check("a"));
        assert!(rl.check("a"));
        assert!(
            !rl.check("a"),
            "a whole window later, the same burst and no more"
        );
    }

    #[test]
    fn one_event_comes_back_per_window_over_max() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimiter::with_clock(3, Duration::from_secs(15 * 60), clock.clone());
        for _ in 0..3 {
            assert!(rl.check("x"));
        }
        assert!(!rl.check("x"));
        clock.advance(Duration::from_secs(4 * 60 + 59));
        assert!(!rl.check("x"), "not before window / max");
        clock.advance(Duration::from_secs(1));
        assert!(rl.check("x"));
        assert!(!rl.check("x"));
    }

    #[test]
    fn zero_allows_nothing_and_an_empty_window_limits_nothing() {
        let never = RateLimiter::new(0, Duration::from_secs(60));
        assert!(!never.check("a"));
        let always = RateLimiter::new(1, Duration::ZERO);
        for _ in 0..10 {
            assert!(always.check("a"));
        }
    }

    #[test]
    fn keys_back_at_full_allowance_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimiter::with_clock(3, Duration::from_secs(60), clock.clone());
        for i in 0..RETAIN_EVERY - 1 {
            assert!(rl.check(&format!("k{i}")));
        }
        assert_eq!(rl.keys(), (RETAIN_EVERY - 1) as usize);
        clock.advance(Duration::from_secs(61));
        // The next check sweeps: only its own key is left.
        assert!(rl.check("fresh"));
        assert_eq!(rl.keys(), 1);
        // A key still inside its window survives the sweep, and keeps its count.
        for _ in 0..2 {
            assert!(rl.check("busy"));
        }
        for i in 0..RETAIN_EVERY - 3 {
            assert!(rl.check(&format!("m{i}")));
        }
        assert!(rl.check("busy"));
        assert!(!rl.check("busy"));
    }
}
