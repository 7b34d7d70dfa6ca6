//! Shared state of the portal.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kbgate_config::{ExposeSecret, PortalConfig, SecretString, WidgetConfig};
use kbgate_store::Store;

use crate::admin::{AdminSessions, Desk};
use crate::audit::Audit;
use crate::brand::{Brand, BrandError, BrandHandle};
use crate::changes::ChangeWatch;
use crate::codes::Codes;
use crate::insights::Insights;
use crate::library::Library;
use crate::mail::Mailer;
use crate::oidc::{Oidc, OidcProvider};
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
    insights: Arc<Insights>,
    oidc: Oidc,
    widget: Option<WidgetConfig>,
    limit_email: RateLimiter,
    limit_client: RateLimiter,
    limit_handover: RateLimiter,
    brand: BrandHandle,
    login_url: Option<url::Url>,
    admins: kbgate_policy::AdminPolicy,
    admin_session: Duration,
    desk: Desk,
    admin_sessions: AdminSessions,
    sync_now: Option<Arc<tokio::sync::Notify>>,
    sync_interval: Option<Duration>,
    /// The sign-in providers' origins, allowed as CSP `form-action` (see [`Live::new`]).
    form_action: Vec<String>,
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
    /// `form_action`: the sign-in providers' origins. The sign-in form's post is answered
    /// with a redirect to the provider, which CSP `form-action` governs too (CSP Level 3
    /// §6.4.1: redirects of a form submission are checked).
    fn new(
        settings: Settings,
        mailer: Option<Mailer>,
        embed: Option<EmbedVerifier>,
        api_key: Option<SecretString>,
        form_action: &[String],
    ) -> Live {
        Live {
            security: SecurityHeaders::new(&settings).with_form_action(form_action),
            settings,
            mailer,
            embed,
            api_key: api_key.filter(|k| !k.expose_secret().is_empty()),
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
    /// The Jira site issue keys in pages link to (`[confluence] jira_url`); `None`: keys
    /// show as plain text.
    pub jira_url: Option<url::Url>,
    /// `[embed] login_url`: where a person without a session is sent to be handed over again.
    pub login_url: Option<url::Url>,
    /// `[[oidc]]` providers: addresses of their bound domains sign in there.
    pub oidc: Vec<OidcProvider>,
    /// `[admin]`: who may use the admin console (default: nobody; `/admin` is a 404).
    pub admin: kbgate_config::AdminConfig,
    /// Wakes the service's sync loop for a round now (the console's "sync now"); `None`
    /// when this process runs no background sync.
    pub sync_now: Option<Arc<tokio::sync::Notify>>,
    /// `[sync] interval`, shown by the console.
    pub sync_interval: Option<Duration>,
    /// `[widget]`; the widget is off (its routes 404) while `allowed_origins` is empty.
    pub widget: WidgetConfig,
}

impl AppState {
    /// Builds the state from `[portal]` as loaded (or [`PortalConfig::new`] with fields
    /// adjusted). `mailer` `None` disables magic links (the form still answers the same,
    /// without sending).
    ///
    /// A brand whose files cannot be read is logged and replaced by the unbranded portal;
    /// [`AppState::from_config`] refuses it instead.
    pub fn new(
        portal: &PortalConfig,
        store: Arc<dyn Store>,
        policy: PolicyHandle,
        mailer: Option<Mailer>,
        extras: Extras,
    ) -> AppState {
        let brand = Brand::load(&portal.brand).unwrap_or_else(|e| {
            tracing::error!("{e}; serving the unbranded portal");
            Brand::unbranded()
        });
        AppState::with_brand(portal, brand, store, policy, mailer, extras)
    }

    pub(crate) fn with_brand(
        portal: &PortalConfig,
        brand: Brand,
        store: Arc<dyn Store>,
        policy: PolicyHandle,
        mailer: Option<Mailer>,
        extras: Extras,
    ) -> AppState {
        let settings = Settings::from_config(portal);
        let settings_record_emails = settings.record_emails;
        let oidc = Oidc::new(extras.oidc);
        let form_action = oidc.origins();
        let watch = Arc::new(ChangeWatch::new(store.clone()));
        let view_cache_bytes = settings.view_cache_bytes;
        let audit = Audit::new(store.clone());
        AppState {
            inner: Arc::new(Inner {
                live: RwLock::new(Arc::new(Live::new(
                    settings,
                    mailer,
                    extras.embed,
                    extras.api_key,
                    &form_action,
                ))),
                policy,
                library: Library::new(store.clone(), watch.clone(), view_cache_bytes).with_content(
                    crate::access::ContentSettings {
                        jira_site: extras
                            .jira_url
                            .as_ref()
                            .map(|u| u.as_str().trim_end_matches('/').to_owned()),
                        show_staff_names: portal.show_staff_names,
                    },
                ),
                sessions: Sessions::new(store.clone(), watch, audit.clone()),
                codes: Codes::new(store.clone()),
                audit,
                people: People::new(store.clone()),
                insights: Arc::new(Insights::new(store.clone(), settings_record_emails)),
                admins: extras.admin.admins,
                admin_session: extras.admin.session,
                desk: Desk::new(store.clone()),
                admin_sessions: AdminSessions::new(store),
                sync_now: extras.sync_now,
                sync_interval: extras.sync_interval,
                oidc,
                widget: Some(extras.widget).filter(|w| !w.allowed_origins.is_empty()),
                limit_email: RateLimiter::new(3, Duration::from_secs(15 * 60)),
                limit_client: RateLimiter::new(20, Duration::from_secs(15 * 60)),
                limit_handover: RateLimiter::new(600, Duration::from_secs(60)),
                brand: BrandHandle::new(brand),
                login_url: extras.login_url,
                form_action,
            }),
        }
    }

    /// Installs the brand of a reloaded configuration (its files read now). Pages rendered
    /// under the old brand are dropped from the caches. On error the running brand stays.
    pub fn set_brand(&self, brand: &kbgate_config::BrandConfig) -> Result<(), BrandError> {
        let brand = Brand::load(brand)?;
        self.inner.brand.replace(brand);
        self.inner.library.clear_cache();
        Ok(())
    }

    /// The brand in force.
    pub(crate) fn brand(&self) -> Arc<Brand> {
        self.inner.brand.current()
    }

    /// `[embed] login_url`.
    pub(crate) fn login_url(&self) -> Option<&url::Url> {
        self.inner.login_url.as_ref()
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
        let live = Arc::new(Live::new(
            settings,
            mailer,
            extras.embed,
            extras.api_key,
            &self.inner.form_action,
        ));
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

    pub(crate) fn insights(&self) -> &Arc<Insights> {
        &self.inner.insights
    }

    pub(crate) fn oidc(&self) -> &Oidc {
        &self.inner.oidc
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

    /// The `[admin]` rule (who may open the console).
    pub(crate) fn admins(&self) -> &kbgate_policy::AdminPolicy {
        &self.inner.admins
    }

    pub(crate) fn admin_session_lifetime(&self) -> Duration {
        self.inner.admin_session
    }

    /// The admin console's store access (every method takes an `Admin`).
    pub(crate) fn desk(&self) -> &Desk {
        &self.inner.desk
    }

    pub(crate) fn admin_sessions(&self) -> &AdminSessions {
        &self.inner.admin_sessions
    }

    pub(crate) fn sync_now(&self) -> Option<&tokio::sync::Notify> {
        self.inner.sync_now.as_deref()
    }

    pub(crate) fn sync_interval(&self) -> Option<Duration> {
        self.inner.sync_interval
    }
}
