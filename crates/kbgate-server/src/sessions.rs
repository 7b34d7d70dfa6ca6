//! Browser sessions: created on sign-in, resolved (through a cache kept honest by the
//! store's change stamps) on every signed-in request, ended on sign-out, on idleness or when
//! the policy refuses them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kbgate_policy::{Email, Policy};
use kbgate_store::{SessionRecord, Store, StoreError};

use crate::audit::Audit;
use crate::changes::ChangeWatch;
use crate::error::Error;
use crate::secret::Opaque;
use crate::settings::Settings;

/// Sign-in sessions in the store, with an in-memory cache. Together with [`crate::codes`],
/// [`crate::audit`] and [`crate::people`], the only store access the sign-in flows have
/// (mirror content is reachable only through the library).
pub(crate) struct Sessions {
    store: Arc<dyn Store>,
    watch: Arc<ChangeWatch>,
    /// Where the sessions the policy ends are recorded.
    audit: Audit,
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
    pub(crate) fn new(store: Arc<dyn Store>, watch: Arc<ChangeWatch>, audit: Audit) -> Sessions {
        Sessions {
            store,
            watch,
            audit,
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
        self.create_for(email, settings.session_absolute, now).await
    }

    /// Creates a session that ends `lifetime` after `now` at the latest (the help widget's
    /// shorter sign-ins); idleness ends it as any other session.
    pub(crate) async fn create_for(
        &self,
        email: &Email,
        lifetime: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Opaque, Error> {
        let id = Opaque::generate();
        let absolute = chrono::Duration::from_std(lifetime)
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

    /// The email of an ended (revoked), unexpired session, to tell its holder why it ended.
    pub(crate) async fn ended_email(
        &self,
        id: &Opaque,
        now: DateTime<Utc>,
    ) -> Result<Option<Email>, Error> {
        Ok(self
            .store
            .ended_session(&id.hash(), now)
            .await
            .map_err(store_err)?
            .and_then(|rec| Email::parse(&rec.email).ok()))
    }

    /// Ends a session the policy refused, with an audit record.
    pub(crate) async fn end_refused(&self, id: &Opaque) -> Result<(), Error> {
        if self.revoke(id).await? {
            self.audit
                .record(
                    "policy",
                    "session.end",
                    serde_json::json!({ "reason": "refused by the policy" }),
                )
                .await;
        }
        Ok(())
    }

    /// Ends, in the store, every active session opened before `before` whose email `policy`
    /// refuses, but those of `admins` (kept for the console). Returns how many sessions ended.
    pub(crate) async fn end_sessions_refused_by(
        &self,
        policy: &Policy,
        admins: &kbgate_policy::AdminPolicy,
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
                    Ok(e) => policy.viewer(&e, now).is_err() && !admins.is_admin(&e),
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
            self.audit
                .record(
                    "policy",
                    "session.end",
                    serde_json::json!({ "reason": "refused by the policy", "sessions": ended }),
                )
                .await;
        }
        Ok(ended)
    }
}
