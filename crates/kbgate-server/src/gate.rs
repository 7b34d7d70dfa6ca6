//! The one gate: the current policy, sessions, and the extractors that turn a request into a
//! [`Viewer`] — the only value [`crate::library::Library`] accepts.
//!
//! A handler that reads content takes [`CurrentViewer`] (browser session) or [`ApiViewer`]
//! (session, or the host app's API key naming an email). Both re-evaluate the policy *as it is
//! now* on every request, so a reload, a removed domain or an expired audience applies to the
//! next request of an existing session.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::{HeaderMap, header, request::Parts};
use chrono::{DateTime, Utc};
use kbgate_policy::{Email, Policy, Viewer};
use kbgate_store::{AuditEvent, CodeRecord, PersonRecord, SessionRecord, Store, StoreError};

use crate::changes::ChangeWatch;
use crate::error::Error;
use crate::secret::{Opaque, ct_eq};
use crate::settings::Settings;
use crate::state::AppState;

/// The policy in force, replaceable at run time (SIGHUP, file change). Cheap to clone; all
/// clones see a replacement.
///
/// Removing a domain *ends* its sessions; putting it back does not revive them. A session the
/// policy refuses is ended by the request that finds it refused; sessions nobody uses are
/// ended by a sweep: [`PolicyHandle::replace`] queues the outgoing policy and the new one
/// (the outgoing one as of now: it also ends the sessions of audiences that expired while it
/// was in force), and the portal's sweeper ([`crate::serve`]) ends, in the store, every session
/// a queued policy refuses. Until a queued policy is swept, every request is checked against
/// it as well as the current one, so a quick remove-and-restore cannot slip an old cookie
/// through before the sweep. Putting a domain back always takes a replacement, whose sweep
/// of the outgoing policy ends what that policy refused.
#[derive(Clone)]
pub struct PolicyHandle(Arc<PolicyShared>);

struct PolicyShared {
    current: RwLock<Arc<Policy>>,
    /// Installed policies whose sweep has not finished, oldest first.
    /// Each with the time it was queued: it speaks only for sessions opened before then.
    unswept: std::sync::Mutex<Vec<Queued>>,
    /// `unswept.len()`, read without the lock on every request.
    unswept_len: std::sync::atomic::AtomicUsize,
    installed: tokio::sync::Notify,
    /// Bumped by every replacement.
    generation: std::sync::atomic::AtomicU64,
}

/// A policy waiting for its sweep.
#[derive(Clone)]
pub(crate) struct Queued {
    pub(crate) policy: Arc<Policy>,
    /// Sessions opened before this time are the ones it decides about.
    pub(crate) at: DateTime<Utc>,
}

impl PolicyHandle {
    /// Starts with `policy`.
    pub fn new(policy: Policy) -> PolicyHandle {
        PolicyHandle(Arc::new(PolicyShared {
            current: RwLock::new(Arc::new(policy)),
            unswept: std::sync::Mutex::new(Vec::new()),
            unswept_len: std::sync::atomic::AtomicUsize::new(0),
            installed: tokio::sync::Notify::new(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Replaces the policy; the next request is decided by the new one, and sessions it
    /// refuses are ended (see the type's docs).
    pub fn replace(&self, policy: Policy) {
        let policy = Arc::new(policy);
        {
            // Queued before the swap, under one lock with it: a request never sees the new
            // policy without the queue that holds the outgoing one.
            let mut unswept = self.lock_unswept();
            // A poisoned lock only means a writer panicked; the stored Arc is still whole.
            let mut guard = self.0.current.write().unwrap_or_else(|p| p.into_inner());
            let outgoing = std::mem::replace(&mut *guard, policy.clone());
            let at = Utc::now();
            unswept.push(Queued {
                policy: outgoing,
                at,
            });
            unswept.push(Queued { policy, at });
            self.0
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0
                .unswept_len
                .store(unswept.len(), std::sync::atomic::Ordering::SeqCst);
        }
        self.0.installed.notify_one();
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.0
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes with every replacement.
    pub(crate) fn generation(&self) -> u64 {
        self.0.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn lock_unswept(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        self.0.unswept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Issues a viewer for `email` under the current policy.
    pub(crate) fn viewer(&self, email: &Email, now: DateTime<Utc>) -> Result<Viewer, Error> {
        self.current()
            .viewer(email, now)
            .map_err(|_| Error::Forbidden)
    }

    /// Whether a *session* of `email`, opened at `opened`, may go on: the current policy
    /// admits it, and so does every queued policy not yet swept that was replaced after the
    /// session was opened (such a policy that refuses the email has ended, or is about to
    /// end, the session).
    pub(crate) fn session_viewer(
        &self,
        email: &Email,
        opened: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Viewer, Error> {
        if self.0.unswept_len.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            let unswept = self.lock_unswept().clone();
            if unswept
                .iter()
                .any(|q| opened < q.at && q.policy.viewer(email, now).is_err())
            {
                return Err(Error::Forbidden);
            }
        }
        self.viewer(email, now)
    }

    /// Queued policies not yet swept, oldest first.
    pub(crate) fn unswept(&self) -> Vec<Queued> {
        self.lock_unswept().clone()
    }

    /// Marks the first `n` queued policies as swept.
    pub(crate) fn mark_swept(&self, n: usize) {
        let mut unswept = self.lock_unswept();
        let n = n.min(unswept.len());
        unswept.drain(..n);
        self.0
            .unswept_len
            .store(unswept.len(), std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until a policy is installed (returns at once if one was since the last wait).
    pub(crate) async fn installed(&self) {
        self.0.installed.notified().await;
    }
}

impl std::fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyHandle")
    }
}

/// Single-use code purposes.
pub(crate) const PURPOSE_HANDOVER: &str = "handover";
pub(crate) const PURPOSE_MAGIC: &str = "magic-link";
/// Verification link of an access request (`/request-access/confirm`).
pub(crate) const PURPOSE_ACCESS_REQUEST: &str = "access-request";

/// Sessions, single-use codes, used token ids, the audit log and access requests: the only
/// store access the sign-in flows have (mirror content is reachable only through the library).
pub(crate) struct Sessions {
    store: Arc<dyn Store>,
    watch: Arc<ChangeWatch>,
    /// Active sessions by id hash, with the session change stamp they were read under: a
    /// signed-in request reads nothing from the store while no session was revoked anywhere
    /// (see [`crate::changes`]).
    cache: quick_cache::sync::Cache<[u8; 32], CachedSession>,
}

#[derive(Clone)]
struct CachedSession {
    stamp: i64,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    /// The stored email, parsed once.
    email: Email,
    /// The sign-out form's token, derived once.
    csrf: String,
}

/// An active session as a request sees it.
pub(crate) struct ActiveSession {
    pub(crate) email: Email,
    /// When the session was opened.
    pub(crate) created_at: DateTime<Utc>,
    /// Token for the sign-out form (derived from the session id).
    pub(crate) csrf: String,
}

/// Most sessions kept in memory (about 300 bytes each); beyond, the least used are read from
/// the store again when they come back.
const SESSION_CACHE_ITEMS: usize = 100_000;

/// Activity is written to the store at most this often per session.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

fn store_err(e: StoreError) -> Error {
    Error::internal(e)
}

impl Sessions {
    pub(crate) fn new(store: Arc<dyn Store>, watch: Arc<ChangeWatch>) -> Sessions {
        Sessions {
            store,
            watch,
            cache: quick_cache::sync::Cache::new(SESSION_CACHE_ITEMS),
        }
    }

    /// Creates a session for a verified email; returns the id for the cookie.
    pub(crate) async fn create(
        &self,
        email: &Email,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<Opaque, Error> {
        let id = Opaque::generate();
        let absolute = chrono::Duration::from_std(settings.session_absolute)
            .map_err(|_| Error::BadRequest("bad session lifetime"))?;
        let rec = SessionRecord {
            id_hash: id.hash(),
            email: email.as_str().to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + absolute,
            revoked: false,
        };
        self.store.create_session(&rec).await.map_err(store_err)?;
        Ok(id)
    }

    /// The session's email if the session is active and not idle for too long. An idle
    /// session is revoked on the spot. A stored email that no longer parses (parser rules
    /// tightened) makes the session worthless: `None` too.
    pub(crate) async fn resolve(
        &self,
        id: &Opaque,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<Option<ActiveSession>, Error> {
        let key = id.digest();
        let stamp = self.watch.current().await?.sessions;
        // Beyond chrono's range (thousands of years) is as good as no idle limit.
        let idle =
            chrono::Duration::from_std(settings.session_idle).unwrap_or(chrono::Duration::MAX);
        if let Some(mut c) = self.cache.get(&key).filter(|c| c.stamp == stamp) {
            // Expired, or idle as far as this process saw: the store decides (another process
            // may have seen activity this one did not).
            if now < c.expires_at && now - c.last_seen_at <= idle {
                if now - c.last_seen_at > TOUCH_EVERY {
                    self.store
                        .touch_session(&id.hash(), now)
                        .await
                        .map_err(store_err)?;
                    c.last_seen_at = now;
                    self.cache.insert(key, c.clone());
                }
                return Ok(Some(ActiveSession {
                    email: c.email,
                    created_at: c.created_at,
                    csrf: c.csrf,
                }));
            }
        }
        let hash = id.hash();
        let Some(mut rec) = self
            .store
            .active_session(&hash, now)
            .await
            .map_err(store_err)?
        else {
            self.cache.remove(&key);
            return Ok(None);
        };
        if now - rec.last_seen_at > idle {
            self.store.revoke_session(&hash).await.map_err(store_err)?;
            self.cache.remove(&key);
            return Ok(None);
        }
        // Touch at most once a minute: fewer writes, same idle semantics to the minute.
        if now - rec.last_seen_at > TOUCH_EVERY {
            self.store
                .touch_session(&hash, now)
                .await
                .map_err(store_err)?;
            rec.last_seen_at = now;
        }
        let Ok(email) = Email::parse(&rec.email) else {
            return Ok(None);
        };
        let csrf = id.derive("csrf");
        // Filed under the stamp read before the session: a revocation committed after that
        // read moves the stamp, so this entry is never used past it.
        self.cache.insert(
            key,
            CachedSession {
                stamp,
                created_at: rec.created_at,
                expires_at: rec.expires_at,
                last_seen_at: rec.last_seen_at,
                email: email.clone(),
                csrf: csrf.clone(),
            },
        );
        Ok(Some(ActiveSession {
            email,
            created_at: rec.created_at,
            csrf,
        }))
    }

    pub(crate) fn clear_cache(&self) {
        self.cache.clear();
    }

    /// Deletes expired sessions, codes and used token ids.
    pub(crate) async fn purge_expired(&self) -> Result<u64, Error> {
        self.store
            .purge_expired(Utc::now())
            .await
            .map_err(store_err)
    }

    pub(crate) async fn revoke(&self, id: &Opaque) -> Result<bool, Error> {
        let ended = self
            .store
            .revoke_session(&id.hash())
            .await
            .map_err(store_err)?;
        // The store's change stamp has moved too; forgetting it here is only tidiness.
        self.cache.remove(&id.digest());
        Ok(ended)
    }

    /// Ends a session the policy refused, with an audit record.
    pub(crate) async fn end_refused(&self, id: &Opaque) -> Result<(), Error> {
        if self.revoke(id).await? {
            self.audit(
                "policy",
                "session.end",
                serde_json::json!({ "reason": "refused by the policy" }),
            )
            .await;
        }
        Ok(())
    }

    /// Ends, in the store, every active session opened before `before` whose email `policy`
    /// refuses. Returns how many sessions ended.
    pub(crate) async fn end_sessions_refused_by(
        &self,
        policy: &Policy,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let sessions = self.store.active_sessions(now).await.map_err(store_err)?;
        let mut verdicts: std::collections::HashMap<String, bool> =
            std::collections::HashMap::new();
        let mut ended = 0;
        for rec in sessions {
            if rec.created_at >= before {
                continue;
            }
            let refused = *verdicts
                .entry(rec.email.clone())
                .or_insert_with(|| match Email::parse(&rec.email) {
                    Ok(e) => policy.viewer(&e, now).is_err(),
                    Err(_) => true,
                });
            if refused
                && self
                    .store
                    .revoke_session(&rec.id_hash)
                    .await
                    .map_err(store_err)?
            {
                ended += 1;
            }
        }
        if ended > 0 {
            self.audit(
                "policy",
                "session.end",
                serde_json::json!({ "reason": "refused by the policy", "sessions": ended }),
            )
            .await;
        }
        Ok(ended)
    }

    pub(crate) async fn consume_jti(&self, jti: &str, exp: i64) -> Result<bool, Error> {
        // Keep the record past the token's expiry plus the largest leeway, so a replay inside the
        // leeway window is still caught.
        let until = DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or_else(Utc::now)
            + chrono::Duration::seconds(360);
        let key = format!("embed:{jti}");
        self.store.consume_jti(&key, until).await.map_err(store_err)
    }

    pub(crate) async fn create_code(
        &self,
        purpose: &str,
        email: &Email,
        return_to: &str,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Opaque, Error> {
        let code = Opaque::generate();
        let ttl = chrono::Duration::from_std(ttl).map_err(|_| Error::BadRequest("bad ttl"))?;
        let rec = CodeRecord {
            code_hash: code.hash(),
            purpose: purpose.to_owned(),
            email: email.as_str().to_owned(),
            return_to: Some(return_to.to_owned()),
            created_at: now,
            expires_at: now + ttl,
        };
        self.store.create_code(&rec).await.map_err(store_err)?;
        Ok(code)
    }

    pub(crate) async fn consume_code(
        &self,
        code: &Opaque,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CodeRecord>, Error> {
        self.store
            .consume_code(&code.hash(), purpose, now)
            .await
            .map_err(store_err)
    }

    /// Records a verified access request: the person is added to the people native mode
    /// provisions when the policy's access-request rule
    /// ([`Policy::may_request_access`], the one `kbgate people` and `kbgate plan` use)
    /// qualifies the address. The outcome goes to the audit log with the domain, never the
    /// address; the caller answers the same either way.
    pub(crate) async fn record_access_request(
        &self,
        policy: &Policy,
        email: &Email,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let domain = email.domain().as_str();
        let outcome = if !policy.may_request_access(email, now) {
            "domain-not-granted"
        } else {
            let added = self
                .store
                .add_person(&PersonRecord {
                    email: email.as_str().to_owned(),
                    domain: domain.to_owned(),
                    source: "access-request".into(),
                    created_at: now,
                })
                .await
                .map_err(store_err)?;
            if added { "recorded" } else { "already-known" }
        };
        self.store
            .append_audit(&AuditEvent {
                ts: now,
                actor: "system".into(),
                action: "provision.access-request".into(),
                // Only the domain: the address itself is personal data the log does not need.
                detail: serde_json::json!({ "outcome": outcome, "domain": domain, "source": source }),
            })
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Appends an audit event; failures are logged, not fatal (the sign-in already happened).
    pub(crate) async fn audit(&self, actor: &str, action: &str, detail: serde_json::Value) {
        let ev = AuditEvent {
            ts: Utc::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail,
        };
        if let Err(e) = self.store.append_audit(&ev).await {
            tracing::warn!(error = %e, action, "audit write failed");
        }
    }
}

/// Name of the session cookie. `__Host-` binds it to this exact origin when it can be Secure.
pub(crate) fn cookie_name(settings: &Settings) -> &'static str {
    if settings.cookie_secure {
        "__Host-kbgate_session"
    } else {
        "kbgate_session"
    }
}

/// The session id presented in the request's cookies, if well formed.
pub(crate) fn session_cookie(headers: &HeaderMap, settings: &Settings) -> Option<Opaque> {
    read_cookie(headers, cookie_name(settings))
}

/// The opaque value of cookie `name`, if present and well formed.
pub(crate) fn read_cookie(headers: &HeaderMap, name: &str) -> Option<Opaque> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| Opaque::parse(v.trim()))
}

/// `Set-Cookie` value that installs a session id.
pub(crate) fn set_cookie(settings: &Settings, id: &Opaque) -> String {
    format!(
        "{}={}; Path=/; HttpOnly; {}Max-Age={}",
        cookie_name(settings),
        id.expose(),
        cookie_flags(settings),
        settings.session_absolute.as_secs()
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie(settings: &Settings) -> String {
    format!(
        "{}=; Path=/; HttpOnly; {}Max-Age=0",
        cookie_name(settings),
        cookie_flags(settings)
    )
}

/// Whether the browser says the request comes from another site: an `Origin` other than
/// ours, or `Sec-Fetch-Site: cross-site` / `same-site`. `Origin: null` is not foreign by
/// itself: browsers send it for a same-origin form post under the portal's own
/// `Referrer-Policy: no-referrer` (form tokens cover what headers cannot tell).
pub(crate) fn cross_site(headers: &HeaderMap, settings: &Settings) -> bool {
    let foreign_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
        origin.as_bytes() != b"null" && origin.as_bytes() != settings.origin().as_bytes()
    });
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site");
    foreign_origin || cross_site
}

pub(crate) fn cookie_flags(settings: &Settings) -> &'static str {
    match (settings.same_site_none(), settings.cookie_secure) {
        (true, _) => "SameSite=None; Secure; ",
        (false, true) => "SameSite=Lax; Secure; ",
        (false, false) => "SameSite=Lax; ",
    }
}

/// A signed-in browser: the viewer under the current policy, and the session it came from.
pub struct CurrentViewer {
    pub viewer: Viewer,
    /// Token for the sign-out form (derived from the session id).
    pub(crate) csrf: String,
}

impl FromRequestParts<AppState> for CurrentViewer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let settings = state.settings();
        let id = session_cookie(&parts.headers, settings).ok_or(Error::Unauthorized)?;
        let now = Utc::now();
        let session = state
            .sessions()
            .resolve(&id, settings, now)
            .await?
            .ok_or(Error::Unauthorized)?;
        let viewer = match state
            .policy()
            .session_viewer(&session.email, session.created_at, now)
        {
            Ok(v) => v,
            Err(e) => {
                // The policy no longer admits this person: the session ends here, so that
                // putting the domain back later does not revive this cookie.
                state.sessions().end_refused(&id).await?;
                return Err(e);
            }
        };
        Ok(CurrentViewer {
            viewer,
            csrf: session.csrf,
        })
    }
}

/// The caller of the JSON API: a browser session, or the host app with its API key naming
/// the person (`X-Kbgate-Email` header or `?email=`). The policy decides either way.
pub struct ApiViewer {
    pub viewer: Viewer,
}

/// Header the host app uses to name the person it acts for.
pub const EMAIL_HEADER: &str = "x-kbgate-email";

#[derive(serde::Deserialize)]
struct EmailQuery {
    email: Option<String>,
}

/// Checks `Authorization: Bearer <api key>`: `Ok(true)` for the right key, `Ok(false)` when
/// no bearer is presented, `Err(Unauthorized)` for a wrong key or when no key is configured.
pub(crate) fn check_api_key(headers: &HeaderMap, state: &AppState) -> Result<bool, Error> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Ok(false);
    };
    let presented = auth
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(Error::Unauthorized)?;
    let expected = state.api_key().ok_or(Error::Unauthorized)?;
    if ct_eq(presented, expected) {
        Ok(true)
    } else {
        Err(Error::Unauthorized)
    }
}

/// The host app's backend, proven by its API key. Taking it as an extractor checks the key
/// before the body is read, so a caller without the key learns nothing, not even whether its
/// JSON would have been accepted.
pub(crate) struct HostApp;

impl FromRequestParts<AppState> for HostApp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if check_api_key(&parts.headers, state)? {
            Ok(HostApp)
        } else {
            Err(Error::Unauthorized)
        }
    }
}

impl FromRequestParts<AppState> for ApiViewer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if check_api_key(&parts.headers, state)? {
            let from_header = parts
                .headers
                .get(EMAIL_HEADER)
                .map(|v| v.to_str().map(str::to_owned))
                .transpose()
                .map_err(|_| Error::BadRequest("the email header is not valid text"))?;
            let from_query = Query::<EmailQuery>::try_from_uri(&parts.uri)
                .map_err(|_| Error::BadRequest("the query string is malformed"))?
                .0
                .email;
            let raw = from_header.or(from_query).ok_or(Error::BadRequest(
                "name the person with X-Kbgate-Email or ?email=",
            ))?;
            let email = Email::parse(raw.trim())
                .map_err(|_| Error::BadRequest("the email address is invalid"))?;
            let viewer = state.policy().viewer(&email, Utc::now())?;
            return Ok(ApiViewer { viewer });
        }
        let cv = CurrentViewer::from_request_parts(parts, state).await?;
        Ok(ApiViewer { viewer: cv.viewer })
    }
}

/// The client's address (for rate limits): the peer, when the server was started with
/// connect info — or, when the peer is one of the trusted proxies, the client that the proxies'
/// `X-Forwarded-For` names (see [`client_ip`]).
pub(crate) struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Ok(ClientAddr(client_ip(
            peer,
            forwarded,
            &state.settings().trusted_proxies,
        )))
    }
}

/// Who the client is behind trusted proxies. Each proxy appends the address it received the
/// request from to `X-Forwarded-For`, so the list is read from the right: trusted proxies are
/// skipped, and the first address that is not one is the client — everything left of it was
/// written by the client itself and proves nothing. A peer that is not a trusted proxy is
/// the client (its header is ignored: anyone can send one); an unparsable entry stops the
/// walk at the last trusted hop.
pub(crate) fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut client = peer?;
    if !is_trusted(&client) {
        return Some(client);
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::settings::tests::{at, framed};

    #[test]
    fn cookie_flags_follow_settings() {
        let local = at("http://127.0.0.1:8080");
        let id = Opaque::generate();
        let c = set_cookie(&local, &id);
        assert!(c.starts_with("kbgate_session="));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Secure"));
        let prod = at("https://kb.example.com");
        let c = set_cookie(&prod, &id);
        assert!(c.starts_with("__Host-kbgate_session="));
        assert!(c.contains("SameSite=Lax; Secure"));
        let framed = framed("https://kb.example.com", &["https://app.example.com"]);
        assert!(set_cookie(&framed, &id).contains("SameSite=None; Secure"));
        assert!(clear_cookie(&framed).contains("Max-Age=0"));
    }

    #[test]
    fn reads_the_session_cookie() {
        let s = at("http://localhost:8080");
        let id = Opaque::generate();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("a=b; kbgate_session={}; c=d", id.expose())
                .parse()
                .unwrap(),
        );
        assert_eq!(session_cookie(&h, &s), Some(id));
        h.insert(header::COOKIE, "kbgate_session=short".parse().unwrap());
        assert_eq!(session_cookie(&h, &s), None);
    }
}

#[cfg(test)]
mod client_ip_tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let none: Vec<ipnet::IpNet> = Vec::new();
        // No trusted proxies: the header is the client's own word and is ignored.
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), ["198.51.100.1"].into_iter(), &none),
            Some(ip("203.0.113.9"))
        );
        // A peer that is not trusted cannot pick another client's bucket either.
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(
                Some(ip("203.0.113.9")),
                ["198.51.100.1"].into_iter(),
                &trusted
            ),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(client_ip(None, std::iter::empty(), &trusted), None);
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        let peer = Some(ip("10.0.0.2"));
        // The client forged a leftmost entry; the proxies appended the real hops.
        assert_eq!(
            client_ip(
                peer,
                ["1.2.3.4, 198.51.100.7, 10.0.0.5"].into_iter(),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        // Several header lines count as one list, in order.
        assert_eq!(
            client_ip(
                peer,
                ["1.2.3.4", "198.51.100.8 , 10.1.1.1"].into_iter(),
                &trusted
            ),
            Some(ip("198.51.100.8"))
        );
        // No header: the proxy itself is all we know.
        assert_eq!(client_ip(peer, std::iter::empty(), &trusted), peer);
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            client_ip(peer, ["198.51.100.9, junk, 10.0.0.9"].into_iter(), &trusted),
            Some(ip("10.0.0.9"))
        );
        assert_eq!(
            client_ip(Some(ip("::1")), ["2001:db8::7"].into_iter(), &trusted),
            Some(ip("2001:db8::7"))
        );
    }
}
