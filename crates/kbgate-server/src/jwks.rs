//! Signing keys fetched from a JWKS URL: the host app's (`[embed] jwks_url`), so it can rotate
//! keys without touching kbgate, and each OpenID Provider's (`jwks_uri` of its discovery
//! document). One cache, one set of rules for both:
//!
//! - Cached for as long as the response's `Cache-Control: max-age` says, kept between
//!   [`MIN_MAX_AGE`] and [`MAX_MAX_AGE`] ([`DEFAULT_MAX_AGE`] without one; `no-store` and
//!   `no-cache` count as the minimum): a key set is neither fetched per token nor kept for
//!   days after the host app dropped a key.
//! - A token naming a `kid` the cached set lacks fetches the set again at once — the host app
//!   has just rotated — but at most once per [`REFETCH_INTERVAL`], so a flood of tokens with
//!   made-up `kid`s cannot turn kbgate into a load generator against the host app.
//! - One fetch at a time; the other requests wait for it and use its result.
//! - When a refresh fails, the previous set stays in use for at most [`STALE_GRACE`] past its
//!   expiry (the host app's JWKS endpoint being briefly down should not sign everyone out);
//!   after that, and before any set was ever fetched, tokens are refused.
//!
//! Evidence for the behaviour hosts expect: RFC 7517 (JWK Set), and the way OpenID Connect
//! relying parties treat `jwks_uri` — re-fetch on an unknown `kid`, cache per HTTP caching
//! (OpenID Connect Core 1.0, §10.1.1 "Rotation of Asymmetric Signing Keys": "the RP … fetches
//! the new keys when it sees a kid it does not recognise").

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use url::Url;

/// Shortest cache lifetime, whatever the response says.
pub(crate) const MIN_MAX_AGE: Duration = Duration::from_secs(60);
/// Longest cache lifetime, whatever the response says.
pub(crate) const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Cache lifetime of a response without `max-age`.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// Least time between two fetches caused by unknown `kid`s.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long past its expiry a set stays in use while refreshes fail.
pub(crate) const STALE_GRACE: Duration = Duration::from_secs(3600);
/// Least time between two fetches while none has succeeded yet (the endpoint is down).
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
const MAX_BYTES: usize = 64 * 1024;
/// Time limit of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The keys usable for one algorithm, with their `kid`s.
pub(crate) type Keys = Arc<Vec<(Option<String>, DecodingKey)>>;

/// Why no key set could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum JwksError {
    #[error("fetching the JWKS failed: {0}")]
    Fetch(String),
    #[error("the JWKS document is invalid or holds no usable key")]
    Invalid,
}

/// Keys fetched from a JWKS URL, cached, refreshed as the module docs say.
pub(crate) struct RemoteJwks {
    url: Url,
    client: reqwest::Client,
    /// What the keys are for, in log lines ("embed", "oidc acme").
    label: String,
    /// The algorithms accepted: keys of other algorithms in the set are ignored.
    algs: Vec<Algorithm>,
    /// [`MIN_MAX_AGE`] and [`REFETCH_INTERVAL`] (shorter in tests).
    min_max_age: Duration,
    refetch_interval: Duration,
    cached: std::sync::Mutex<Option<Fetched>>,
    /// When the last fetch failed and what it said, while no set is cached.
    failed: std::sync::Mutex<Option<(Instant, JwksError)>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Fetched {
    /// The usable keys of each accepted algorithm (empty for an algorithm without one).
    keys: Vec<(Algorithm, Keys)>,
    fetched_at: Instant,
    fresh_until: Instant,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.shown())
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Keys at `url` for tokens signed with one of `algs`, fetched with `client` (whose
    /// redirect policy and timeouts apply); `label` names them in log lines.
    pub(crate) fn new(
        url: Url,
        client: reqwest::Client,
        label: impl Into<String>,
        algs: &[Algorithm],
    ) -> RemoteJwks {
        RemoteJwks {
            url,
            client,
            label: label.into(),
            algs: algs.to_vec(),
            min_max_age: MIN_MAX_AGE,
            refetch_interval: REFETCH_INTERVAL,
            cached: std::sync::Mutex::new(None),
            failed: std::sync::Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// A shorter least time between two fetches caused by unknown `kid`s (tests of key
    /// rotation, which cannot wait [`REFETCH_INTERVAL`]).
    pub(crate) fn with_refetch_interval(mut self, d: Duration) -> RemoteJwks {
        self.refetch_interval = d;
        self
    }

    /// Where the keys come from.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The URL for log lines: scheme, host and path only (a query may carry a token).
    fn shown(&self) -> String {
        format!(
            "{}://{}{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or_default(),
            self.url.path()
        )
    }

    fn cached(&self) -> Option<Fetched> {
        self.cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The keys to try for a token signed with `alg` naming `kid`: the cached set while fresh
    /// and knowing the `kid` (or no `kid` given); otherwise a fetch, subject to the limits of
    /// the module docs. An algorithm this cache was not made for has no keys.
    pub(crate) async fn keys_for(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Keys, JwksError> {
        let now = Instant::now();
        if let Some(c) = self.cached().filter(|c| usable(c, alg, kid, now)) {
            return Ok(c.keys_of(alg));
        }
        let _one = self.fetching.lock().await;
        let now = Instant::now();
        let cached = self.cached();
        // A fetch that finished while this request waited is as good as its own.
        if let Some(c) = cached.as_ref().filter(|c| usable(c, alg, kid, now)) {
            return Ok(c.keys_of(alg));
        }
        if let Some(c) = &cached
            && now < c.fresh_until
            && now.duration_since(c.fetched_at) < self.refetch_interval
        {
            // An unknown kid right after a fetch: not fetched again; the token fails.
            return Ok(c.keys_of(alg));
        }
        if cached.is_none()
            && let Some((at, e)) = self
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            && now.duration_since(at) < RETRY_INTERVAL
        {
            // Down a moment ago: not asked again for every token.
            return Err(e);
        }
        match self.fetch().await {
            Ok((keys, max_age)) => {
                let fetched_at = Instant::now();
                let fresh = Fetched {
                    keys,
                    fetched_at,
                    fresh_until: fetched_at + max_age,
                };
                *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh.clone());
                tracing::info!(
                    of = %self.label,
                    url = %self.shown(),
                    keys = fresh.keys.iter().map(|(_, k)| k.len()).sum::<usize>(),
                    max_age_s = max_age.as_secs(),
                    "JWKS fetched"
                );
                Ok(fresh.keys_of(alg))
            }
            Err(e) => {
                tracing::warn!(of = %self.label, url = %self.shown(), error = %e, "JWKS fetch failed");
                if cached.is_none() {
                    *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, e.clone()));
                }
                match cached {
                    Some(c) if now < c.fresh_until + STALE_GRACE => {
                        // Still fresh (an unknown kid) or within the grace: keep using it,
                        // and let the next unknown kid try again only after the interval.
                        let mut slot = self.cached.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(s) = slot.as_mut() {
                            s.fetched_at = now;
                        }
                        Ok(c.keys_of(alg))
                    }
                    _ => Err(e),
                }
            }
        }
    }

    async fn fetch(&self) -> Result<(Vec<(Algorithm, Keys)>, Duration), JwksError> {
        let fail = |e: &dyn std::fmt::Display| JwksError::Fetch(e.to_string());
        let mut resp = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| fail(&e))?;
        if !resp.status().is_success() {
            return Err(fail(&format!("HTTP {}", resp.status().as_u16())));
        }
        let max_age = resp
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(cache_lifetime)
            .reduce(|a, b| match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
            .flatten()
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(self.min_max_age, MAX_MAX_AGE);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(&e))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(fail(&format!("document larger than {MAX_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|_| JwksError::Invalid)?;
        let keys: Vec<(Algorithm, Keys)> = self
            .algs
            .iter()
            .map(|&alg| (alg, Arc::new(usable_keys(alg, &set))))
            .collect();
        if keys.iter().all(|(_, k)| k.is_empty()) {
            return Err(JwksError::Invalid);
        }
        Ok((keys, max_age))
    }
}

impl Fetched {
    fn keys_of(&self, alg: Algorithm) -> Keys {
        self.keys
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, k)| k.clone())
            .unwrap_or_default()
    }
}

/// The keys of `set` usable with `alg`, with their `kid`s: a key that declares another
/// algorithm, is of another family (an RSA key for ES256) or curve (P-384 for ES256), or is
/// marked for encryption (`"use": "enc"`, RFC 7517 §4.2) is left out, so a key set can never
/// widen what the pinned algorithm accepts.
pub(crate) fn usable_keys(alg: Algorithm, set: &JwkSet) -> Vec<(Option<String>, DecodingKey)> {
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if let Some(declared) = jwk.common.key_algorithm
            && declared.to_string() != format!("{alg:?}")
        {
            continue;
        }
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        if let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm {
            let curve_fits = match alg {
                Algorithm::ES256 => ec.curve == EllipticCurve::P256,
                Algorithm::ES384 => ec.curve == EllipticCurve::P384,
                _ => false,
            };
            if !curve_fits {
                continue;
            }
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if key.family() != alg.family() {
            continue;
        }
        keys.push((jwk.common.key_id.clone(), key));
    }
    keys
}

/// Whether a cached set answers for `alg` and `kid` now.
fn usable(c: &Fetched, alg: Algorithm, kid: Option<&str>, now: Instant) -> bool {
    now < c.fresh_until
        && match kid {
            None => true,
            Some(kid) => c
                .keys_of(alg)
                .iter()
                .any(|(k, _)| k.as_deref() == Some(kid)),
        }
}

/// The lifetime one `Cache-Control` header value gives: `max-age=N` (seconds);
/// `no-store`/`no-cache` as zero (then clamped to the minimum); `None` without either.
fn cache_lifetime(value: &str) -> Option<Duration> {
    let mut life = None;
    for directive in value.split(',') {
        let d = directive.trim();
        let (name, arg) = match d.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (d, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age")
            && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
        {
            life = Some(Duration::from_secs(secs));
        }
    }
    life
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::header;
    use axum::response::IntoResponse;

    /// What the test JWKS endpoint answers: a status, a `Cache-Control` and the kids of the
    /// fixture set it serves.
    struct Endpoint {
        status: std::sync::Mutex<(u16, &'static str, Vec<&'static str>)>,
        hits: AtomicUsize,
    }

    fn fixture_set(kids: &[&str]) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwks.json");
        let all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let keys: Vec<_> = all["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| kids.contains(&k["kid"].as_str().unwrap_or("")))
            .cloned()
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    async fn serve(
        status: u16,
        cache: &'static str,
        kids: Vec<&'static str>,
    ) -> (Arc<Endpoint>, Url) {
        let ep = Arc::new(Endpoint {
            status: std::sync::Mutex::new((status, cache, kids)),
            hits: AtomicUsize::new(0),
        });
        let state = ep.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let ep = state.clone();
                async move {
                    ep.hits.fetch_add(1, Ordering::SeqCst);
                    let (status, cache, kids) = ep.status.lock().unwrap().clone();
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [(header::CACHE_CONTROL, cache)],
                        fixture_set(&kids),
                    )
                        .into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (ep, url.parse().unwrap())
    }

    fn kids(keys: &Keys) -> Vec<String> {
        keys.iter().filter_map(|(k, _)| k.clone()).collect()
    }

    #[tokio::test]
    async fn keys_are_cached_refetched_on_an_unknown_kid_and_rate_limited() {
        let (ep, url) = serve(200, "public, max-age=3600", vec!["rsa-1"]).await;
        let mut remote = RemoteJwks::new(url, reqwest::Client::new(), "test", &[Algorithm::RS256]);
        remote.refetch_interval = Duration::from_millis(300);
        assert_eq!(
            kids(
                &remote
                    .keys_for(Algorithm::RS256, Some("rsa-1"))
                    .await
                    .unwrap()
            ),
            ["rsa-1"]
        );
        // Cached: known kids and kid-less tokens fetch nothing.
        remote
            .keys_for(Algorithm::RS256, Some("rsa-1"))
            .await
            .unwrap();
        remote.keys_for(Algorithm::RS256, None).await.unwrap();
        assert_eq!(ep.hits.load(Ordering::SeqCst), 1);

        // A new kid within the interval of the last fetch: not fetched (yet).
        ep.status.lock().unwrap().2 = vec!["rsa-1", "rsa-2"];
        assert_eq!(
            kids(
                &remote
                    .keys_for(Algorithm::RS256, Some("rsa-2"))
                    .await
                    .unwrap()
            ),
            ["rsa-1"]
        );
        assert_eq!(ep.hits.load(Ordering::SeqCst), 1);

        // The host app has rotated: a token names the new key, which is fetched at once.
        tokio::time::sleep(Duration::from_millis(350)).await;
        let keys = remote
            .keys_for(Algorithm::RS256, Some("rsa-2"))
            .await
            .unwrap();
        assert_eq!(kids(&keys), ["rsa-1", "rsa-2"]);
        assert_eq!(ep.hits.load(Ordering::SeqCst), 2);

        // A flood of made-up kids right after: not one more fetch.
        for i in 0..50 {
            let kid = format!("made-up-{i}");
            assert!(kids(&remote.keys_for(Algorithm::RS256, Some(&kid)).await.unwrap()).len() == 2);
        }
        assert_eq!(
            ep.hits.load(Ordering::SeqCst),
            2,
            "unknown kids were not rate limited"
        );
    }

    #[tokio::test]
    async fn the_cache_control_lifetime_is_kept() {
        let (ep, url) = serve(200, "max-age=1", vec!["rsa-1"]).await;
        let mut remote = RemoteJwks::new(url, reqwest::Client::new(), "test", &[Algorithm::RS256]);
        remote.min_max_age = Duration::ZERO;
        remote.keys_for(Algorithm::RS256, None).await.unwrap();
        remote.keys_for(Algorithm::RS256, None).await.unwrap();
        assert_eq!(
            ep.hits.load(Ordering::SeqCst),
            1,
            "fetched again within max-age"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        remote.keys_for(Algorithm::RS256, None).await.unwrap();
        assert_eq!(
            ep.hits.load(Ordering::SeqCst),
            2,
            "not fetched again after max-age"
        );
    }

    #[tokio::test]
    async fn a_failing_endpoint_keeps_the_last_keys_for_a_grace_and_refuses_without_any() {
        // Never fetched, endpoint down: no keys, an error (the token is refused), and the
        // endpoint is not asked again for every token.
        let (ep, url) = serve(503, "no-store", vec!["rsa-1"]).await;
        let remote = RemoteJwks::new(url, reqwest::Client::new(), "test", &[Algorithm::RS256]);
        for _ in 0..10 {
            assert!(matches!(
                remote.keys_for(Algorithm::RS256, Some("rsa-1")).await,
                Err(JwksError::Fetch(_))
            ));
        }
        assert_eq!(ep.hits.load(Ordering::SeqCst), 1);

        // Fetched once, then down: the last keys stay in use (within the grace).
        let (ep, url) = serve(200, "max-age=1", vec!["rsa-1"]).await;
        let mut remote = RemoteJwks::new(url, reqwest::Client::new(), "test", &[Algorithm::RS256]);
        remote.min_max_age = Duration::ZERO;
        remote.keys_for(Algorithm::RS256, None).await.unwrap();
        ep.status.lock().unwrap().0 = 500;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            kids(&remote.keys_for(Algorithm::RS256, None).await.unwrap()),
            ["rsa-1"]
        );
        assert_eq!(ep.hits.load(Ordering::SeqCst), 2);

        // A document without a key for the algorithm is an error, not an empty set.
        let (_, url) = serve(200, "max-age=60", vec!["ed-1"]).await;
        let remote = RemoteJwks::new(url, reqwest::Client::new(), "test", &[Algorithm::RS256]);
        assert!(matches!(
            remote.keys_for(Algorithm::RS256, None).await,
            Err(JwksError::Invalid)
        ));
    }

    /// A set of every kind a provider may publish: which keys verify which algorithm.
    #[test]
    fn usable_keys_fit_type_curve_use_and_declared_algorithm() {
        let rsa = |kid: &str, extra: serde_json::Value| {
            let mut v = serde_json::json!({ "kty": "RSA", "kid": kid, "n": "sXch", "e": "AQAB" });
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            v
        };
        // RFC 7515 A.3's P-256 key, and a key declared on P-384 (never an ES256 key).
        let p256 = serde_json::json!({ "kty": "EC", "kid": "ec-256", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" });
        let p384 = serde_json::json!({ "kty": "EC", "kid": "ec-384", "crv": "P-384",
            "x": "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
            "y": "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1" });
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [
            rsa("a", serde_json::json!({})),
            rsa("enc", serde_json::json!({ "use": "enc" })),
            rsa("ps", serde_json::json!({ "alg": "PS256" })),
            { "kty": "oct", "kid": "h", "k": "c2VjcmV0" },
            p256,
            p384,
        ]}))
        .unwrap();
        let kids = |alg| -> Vec<String> {
            usable_keys(alg, &set)
                .into_iter()
                .filter_map(|(k, _)| k)
                .collect()
        };
        assert_eq!(kids(Algorithm::RS256), ["a"]);
        assert_eq!(kids(Algorithm::ES256), ["ec-256"]);
        // A symmetric key fits HS256 only, which no remote set is ever asked for (the embed
        // refuses HS256 with a JWKS; ID tokens are RS256/ES256).
        assert_eq!(kids(Algorithm::HS256), ["h"]);
        assert_eq!(kids(Algorithm::PS256), ["a", "ps"]);
    }

    /// One cache for several algorithms (an OpenID Provider signing RS256 and ES256): each
    /// algorithm gets only its own keys, from one fetch.
    #[tokio::test]
    async fn one_fetch_serves_each_accepted_algorithm_its_own_keys() {
        let (ep, url) = serve(200, "max-age=600", vec!["rsa-1", "ed-1"]).await;
        let remote = RemoteJwks::new(
            url,
            reqwest::Client::new(),
            "test",
            &[Algorithm::RS256, Algorithm::EdDSA],
        );
        assert_eq!(
            kids(&remote.keys_for(Algorithm::RS256, None).await.unwrap()),
            ["rsa-1"]
        );
        assert_eq!(
            kids(
                &remote
                    .keys_for(Algorithm::EdDSA, Some("ed-1"))
                    .await
                    .unwrap()
            ),
            ["ed-1"]
        );
        assert!(
            remote
                .keys_for(Algorithm::ES256, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(ep.hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn cache_control_gives_the_lifetime() {
        assert_eq!(
            cache_lifetime("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            cache_lifetime("max-age=\"120\", must-revalidate"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(cache_lifetime("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_lifetime("private, no-cache"), Some(Duration::ZERO));
        assert_eq!(cache_lifetime("public"), None);
        assert_eq!(cache_lifetime("max-age=soon"), None);
    }
}
