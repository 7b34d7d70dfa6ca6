//! Shared state of the portal.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kbgate_config::{ExposeSecret, PortalConfig, SecretString, WidgetConfig};
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
    settings: Settings,
    policy: PolicyHandle,
    library: Library,
    sessions: Sessions,
    codes: Codes,
    audit: Audit,
    people: People,
    mailer: Option<Mailer>,
    embed: Option<EmbedVerifier>,
    api_key: Option<SecretString>,
    widget: Option<WidgetConfig>,
    limit_email: RateLimiter,
    limit_client: RateLimiter,
    limit_handover: RateLimiter,
    security: Arc<SecurityHeaders>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.inner.settings)
            .field("mailer", &self.inner.mailer)
            .field("embed", &self.inner.embed)
            .field("api_key", &self.inner.api_key)
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
    /// `[widget]`; the widget is off (its routes 404) while `allowed_origins` is empty.
    pub widget: WidgetConfig,
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
        let security = Arc::new(SecurityHeaders::new(&settings));
        let watch = Arc::new(ChangeWatch::new(store.clone()));
        let view_cache_bytes = settings.view_cache_bytes;
        let audit = Audit::new(store.clone());
        AppState {
            inner: Arc::new(Inner {
                settings,
                policy,
                library: Library::new(store.clone(), watch.clone(), view_cache_bytes),
                sessions: Sessions::new(store.clone(), watch, audit.clone()),
                codes: Codes::new(store.clone()),
                audit,
                people: People::new(store),
                mailer,
                embed: extras.embed,
                api_key: extras.api_key.filter(|k| !k.expose_secret().is_empty()),
                widget: Some(extras.widget).filter(|w| !w.allowed_origins.is_empty()),
                limit_email: RateLimiter::new(3, Duration::from_secs(15 * 60)),
                limit_client: RateLimiter::new(20, Duration::from_secs(15 * 60)),
                limit_handover: RateLimiter::new(600, Duration::from_secs(60)),
                security,
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

    /// The settings derived from `[portal]`.
    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
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

    pub(crate) fn mailer(&self) -> Option<&Mailer> {
        self.inner.mailer.as_ref()
    }

    pub(crate) fn embed(&self) -> Option<&EmbedVerifier> {
        self.inner.embed.as_ref()
    }

    pub(crate) fn api_key(&self) -> Option<&str> {
        self.inner.api_key.as_ref().map(|k| k.expose_secret())
    }

    /// The help widget's settings, `None` while it is off.
    pub(crate) fn widget(&self) -> Option<&WidgetConfig> {
        self.inner.widget.as_ref()
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

    pub(crate) fn security(&self) -> Arc<SecurityHeaders> {
        self.inner.security.clone()
    }
}
