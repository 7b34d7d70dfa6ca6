//! Call accounting. Sync and provisioning budgets ("a 10,000-page space is ~40 calls") are
//! asserted against these numbers, so every HTTP request the client sends is counted here and
//! in the `metrics` facade.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A snapshot of a client's call counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    /// HTTP requests sent (every attempt, retries included).
    pub total: u64,
    /// Requests per endpoint template, e.g. `GET /wiki/api/v2/spaces/{id}/pages`, with the
    /// OpenAPI documents' parameter names (`{operationKey}`, `{attachmentId}`, `{pageId}`) and
    /// `/cgraphql` per operation (`POST /cgraphql?q=GuestDataQuery`): the same keys as the
    /// simulator's `/_sim/stats`.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Retries performed (requests beyond the first of a call).
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// 5xx answers and transport failures received.
    pub failures: u64,
    /// Answers that carried `X-RateLimit-NearLimit: true` (the client slowed down after each).
    pub near_limit: u64,
    /// The rate-limit headers of the latest answer that had any (name → value), e.g.
    /// `x-ratelimit-remaining`, `retry-after`, `beta-ratelimit-policy`; for `kbgate doctor`.
    pub rate_limit_headers: BTreeMap<String, String>,
    /// Requests to the media host a download redirected to (no Confluence credentials; not
    /// Confluence API calls, so not in `total`).
    pub media_requests: u64,
}

impl CallStats {
    /// Requests made to one endpoint template (0 if never called).
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.by_endpoint.get(endpoint).copied().unwrap_or(0)
    }
}

#[derive(Default)]
pub(crate) struct StatsCell(Mutex<CallStats>);

impl StatsCell {
    fn with(&self, f: impl FnOnce(&mut CallStats)) {
        // A poisoned lock only means a panic elsewhere mid-update; counters stay usable.
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }

    pub(crate) fn request(&self, endpoint: &'static str) {
        metrics::counter!("confluence_client_requests_total", "endpoint" => endpoint).increment(1);
        self.with(|s| {
            s.total += 1;
            *s.by_endpoint.entry(endpoint.to_owned()).or_insert(0) += 1;
        });
    }

    pub(crate) fn retry(&self, endpoint: &'static str) {
        metrics::counter!("confluence_client_retries_total", "endpoint" => endpoint).increment(1);
        self.with(|s| s.retries += 1);
    }

    pub(crate) fn rate_limited(&self, endpoint: &'static str) {
        metrics::counter!("confluence_client_rate_limited_total", "endpoint" => endpoint)
            .increment(1);
        self.with(|s| s.rate_limited += 1);
    }

    pub(crate) fn failure(&self, endpoint: &'static str) {
        metrics::counter!("confluence_client_failures_total", "endpoint" => endpoint).increment(1);
        self.with(|s| s.failures += 1);
    }

    pub(crate) fn rate_limit_headers(
        &self,
        endpoint: &'static str,
        seen: Vec<(String, String)>,
        near: bool,
    ) {
        if near {
            metrics::counter!("confluence_client_near_limit_total", "endpoint" => endpoint)
                .increment(1);
        }
        self.with(|s| {
            if near {
                s.near_limit += 1;
            }
            s.rate_limit_headers = seen.into_iter().collect();
        });
    }

    pub(crate) fn media_request(&self) {
        metrics::counter!("confluence_client_media_requests_total").increment(1);
        self.with(|s| s.media_requests += 1);
    }

    pub(crate) fn snapshot(&self) -> CallStats {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn reset(&self) {
        self.with(|s| *s = CallStats::default());
    }
}
