//! Shared state of the portal.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kbgate_config::{ExposeSecret, PortalConfig, SecretString};
use kbgate_store::Store;

use crate::audit::Audit;
use crate::changes::ChangeWatch;
use crate::codes::Codes;
use crate::library::Library;
use crate::mail::Mailer;
use crate::people::People;
use crate::policy_handle::PolicyHandle;
use crate::ratelimit::RateLimiter;
use crate::security::SecurityHeaders;
use crate::sessions::Sessions;
use crate::settings::Settings;
use crate::token::EmbedVerifier;

/// Everything the handlers share. Cheap to clone.
///
/// The store is split on purpose: mirror content only through [`Library`] (whose methods all
/// take a `Viewer`), sign-in records only through the crate-private facades (sessions, codes, audit, people).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    /// What a config reload replaces (see [`AppState::reload`]); read once or twice per
    /// request, swapped whole.
    live: RwLock<Arc<Live>>,
    policy: PolicyHandle,
    library: Library,
    sessions: Sessions,
    codes: Codes,
    audit: Audit,
    people: People,
    limit_email: RateLimiter,
    limit_client: RateLimiter,
    limit_handover: RateLimiter,
}

/// The part of the state a config reload may replace while serving: session lifetimes,
/// magic-link lifetime and mail delivery, the framing origins (CSP and cookie flags), the
/// embed keys and the host app's API key.
pub(crate) struct Live {
    pub(crate) settings: Settings,
    pub(crate) security: SecurityHeaders,
    pub(crate) mailer: Option<Mailer>,
    pub(crate) embed: Option<EmbedVerifier>,
    api_key: Option<SecretString>,
}

impl Live {
    fn new(settings: Settings, mailer: Option<Mailer>, extras: Extras) -> Live {
        Live {
            security: SecurityHeaders::new(&settings),
            settings,
            mailer,
            embed: extras.embed,
            api_key: extras.api_key.filter(|k| !k.expose_secret().is_empty()),
        }
    }

    /// The host app's API key, if one is configured.
    pub(crate) fn api_key(&self) -> Option<&str> {
        self.api_key.as_ref().map(|k| k.expose_secret())
    }
}

/// The current settings, held for the rest of a request (a reload meanwhile does not change
/// them under it).
pub(crate) struct LiveSettings(Arc<Live>);

impl Deref for LiveSettings {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.0.settings
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let live = self.live();
        f.debug_struct("AppState")
            .field("settings", &live.settings)
            .field("mailer", &live.mailer)
            .field("embed", &live.embed)
            .field("api_key", &live.api_key)
            .finish_non_exhaustive()
    }
}

/// Optional parts of the state; see [`AppState::new`].
#[derive(Default)]
pub struct Extras {
    /// Verifies embed hand-over tokens; without it `/auth/embed` answers 404.
    pub embed: Option<EmbedVerifier>,
    /// The host app's API key (hand-over and JSON API on behalf of a person).
    pub api_key: Option<SecretString>,
}

impl AppState {
    /// Builds the state from `[portal]` as loaded (or [`PortalConfig::new`] with fields
    /// adjusted). `mailer` `None` disables magic links (the form still answers the same,
    /// without sending).
    pub fn new(
        portal: &PortalConfig,
        store: Arc<dyn Store>,
        policy: PolicyHandle,
        mailer: Option<Mailer>,
        extras: Extras,
    ) -> AppState {
        let settings = Settings::from_config(portal);
        let watch = Arc::new(ChangeWatch::new(store.clone()));
        let view_cache_bytes = settings.view_cache_bytes;
        let audit = Audit::new(store.clone());
        AppState {
            inner: Arc::new(Inner {
                live: RwLock::new(Arc::new(Live::new(settings, mailer, extras))),
                policy,
                library: Library::new(store.clone(), watch.clone(), view_cache_bytes),
                sessions: Sessions::new(store.clone(), watch, audit.clone()),
                codes: Codes::new(store.clone()),
                audit,
                people: People::new(store),
                limit_email: RateLimiter::new(3, Duration::from_secs(15 * 60)),
                limit_client: RateLimiter::new(20, Duration::from_secs(15 * 60)),
                limit_handover: RateLimiter::new(600, Duration::from_secs(60)),
            }),
        }
    }

    /// Forgets what the portal keeps in memory between store changes (sessions, page views,
    /// page trees); the next requests read the store again. The store's change stamps already
    /// cover every write kbgate makes; this is for writes they cannot see, such as a test that
    /// back-dates a session's last activity to stand for time passing.
    pub fn clear_caches(&self) {
        self.inner.sessions.clear_cache();
        self.inner.library.clear_cache();
    }

    /// The policy handle (replace the policy through it on reload).
    pub fn policy(&self) -> &PolicyHandle {
        &self.inner.policy
    }

    /// Applies a reloaded `[portal]`, mailer and embed keys to the next requests. What only
    /// takes effect at start (listen address, public URL, trusted proxies, connection limits
    /// and timeouts, view cache size) is kept as it was: the caller says those need a restart.
    pub fn reload(&self, portal: &PortalConfig, mailer: Option<Mailer>, extras: Extras) {
        let old = self.live();
        let mut settings = Settings::from_config(portal);
        settings.keep_restart_only(&old.settings);
        let live = Arc::new(Live::new(settings, mailer, extras));
        *self.inner.live.write().unwrap_or_else(|e| e.into_inner()) = live;
    }

    /// What a reload may replace, as it is now.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.inner
            .live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The settings derived from `[portal]`, as of the last reload.
    pub(crate) fn settings(&self) -> LiveSettings {
        LiveSettings(self.live())
    }

    /// The library (mirror reads for a viewer).
    pub(crate) fn library(&self) -> &Library {
        &self.inner.library
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub(crate) fn codes(&self) -> &Codes {
        &self.inner.codes
    }

    pub(crate) fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    pub(crate) fn people(&self) -> &People {
        &self.inner.people
    }

    pub(crate) fn limit_email(&self) -> &RateLimiter {
        &self.inner.limit_email
    }

    pub(crate) fn limit_client(&self) -> &RateLimiter {
        &self.inner.limit_client
    }

    pub(crate) fn limit_handover(&self) -> &RateLimiter {
        &self.inner.limit_handover
    }
}
