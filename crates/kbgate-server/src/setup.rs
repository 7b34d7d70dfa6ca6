//! Building the state from the loaded configuration (what `kbgate serve` and `kbgate demo` do).

use std::sync::Arc;

use kbgate_config::{Config, EmbedKey, ExposeSecret, MagicLinkDelivery};
use kbgate_store::Store;

use crate::mail::{MailError, Mailer};
use crate::oidc::OidcProvider;
use crate::policy_handle::PolicyHandle;
use crate::state::{AppState, Extras};
use crate::token::{EmbedAlgorithm, EmbedKeyError, EmbedVerifier};

/// Why the portal could not be set up from the configuration. Never contains secrets.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("embed key: {0}")]
    EmbedKey(#[from] EmbedKeyError),
    #[error("embed secret or API key: {0}")]
    Secret(#[from] kbgate_config::SecretError),
    #[error("reading {path}: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("magic-link mail: {0}")]
    Mail(#[from] MailError),
    #[error("[portal] from is required to send magic links by SMTP")]
    MissingFrom,
    #[error("HTTP client for the embed JWKS: {0}")]
    Http(String),
    #[error("{0}")]
    Brand(#[from] crate::brand::BrandError),
    #[error("oidc client secret: {0}")]
    OidcSecret(kbgate_config::SecretError),
    #[error(transparent)]
    Oidc(#[from] crate::oidc::OidcSetupError),
}

fn algorithm(a: kbgate_config::EmbedAlgorithm) -> EmbedAlgorithm {
    match a {
        kbgate_config::EmbedAlgorithm::HS256 => EmbedAlgorithm::Hs256,
        kbgate_config::EmbedAlgorithm::EdDSA => EmbedAlgorithm::EdDsa,
        kbgate_config::EmbedAlgorithm::ES256 => EmbedAlgorithm::Es256,
        kbgate_config::EmbedAlgorithm::RS256 => EmbedAlgorithm::Rs256,
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::KeyFile {
        path: path.display().to_string(),
        source,
    })
}

/// The magic-link mailer of a configuration.
pub(crate) fn mailer_from_config(config: &Config) -> Result<Mailer, SetupError> {
    let from = config.portal.from.clone();
    match &config.portal.magic_link {
        MagicLinkDelivery::Smtp(url) => {
            let from = from.ok_or(SetupError::MissingFrom)?;
            Ok(Mailer::smtp(url.expose(), &from)?)
        }
        MagicLinkDelivery::Outbox(dir) => Ok(Mailer::outbox(
            dir,
            from.as_deref().unwrap_or("kbgate <kbgate@localhost>"),
        )?),
    }
}

/// The HTTP client fetching the host app's JWKS: no redirects (a key set is fetched from
/// exactly the configured URL, never from wherever a response points), rustls.
fn jwks_client() -> Result<reqwest::Client, SetupError> {
    reqwest::Client::builder()
        .user_agent(concat!("kbgate/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| SetupError::Http(e.to_string()))
}

/// The embed verifier and API key of a configuration (`None`s without `[embed]`).
pub(crate) fn embed_from_config(config: &Config) -> Result<Extras, SetupError> {
    let Some(e) = &config.embed else {
        return Ok(Extras {
            admin: config.admin.clone(),
            ..Extras::default()
        });
    };
    let alg = algorithm(e.algorithm);
    let verifier = match &e.key {
        EmbedKey::Secret(_) => {
            let secret = e.resolve_secret()?;
            EmbedVerifier::hs256(secret.expose_secret().as_bytes(), &e.issuer, &e.audience)?
        }
        EmbedKey::PublicKeyFile(path) => {
            EmbedVerifier::public_pem(alg, &read(path)?, &e.issuer, &e.audience)?
        }
        EmbedKey::JwksFile(path) => {
            let text = String::from_utf8(read(path)?).map_err(|_| EmbedKeyError::BadJwks(alg))?;
            EmbedVerifier::jwks(alg, &text, &e.issuer, &e.audience)?
        }
        EmbedKey::JwksUrl(url) => {
            EmbedVerifier::jwks_url(alg, url.clone(), jwks_client()?, &e.issuer, &e.audience)?
        }
    }
    .with_limits(e.leeway, e.max_token_lifetime);
    Ok(Extras {
        embed: Some(verifier),
        api_key: e.resolve_api_key()?,
        login_url: e.login_url.clone(),
        admin: config.admin.clone(),
        ..Extras::default()
    })
}

/// The `[[oidc]]` providers of a configuration, client secrets read.
pub(crate) fn oidc_from_config(config: &Config) -> Result<Vec<OidcProvider>, SetupError> {
    config
        .oidc
        .iter()
        .map(|p| {
            let secret = p.resolve_client_secret().map_err(SetupError::OidcSecret)?;
            Ok(OidcProvider::new(p, secret)?)
        })
        .collect()
}

impl AppState {
    /// Everything from the configuration: `[portal]`, mailer, embed verifier and API key.
    /// The policy handle is passed in so the caller can replace it on reload.
    pub fn from_config(
        config: &Config,
        store: Arc<dyn Store>,
        policy: PolicyHandle,
    ) -> Result<AppState, SetupError> {
        AppState::from_config_with_sync(config, store, policy, None)
    }

    /// [`AppState::from_config`] for a process that syncs in the background: the admin
    /// console's "sync now" wakes its sync loop through `sync_now`.
    pub fn from_config_with_sync(
        config: &Config,
        store: Arc<dyn Store>,
        policy: PolicyHandle,
        sync_now: Option<Arc<tokio::sync::Notify>>,
    ) -> Result<AppState, SetupError> {
        let mailer = mailer_from_config(config)?;
        let mut extras = embed_from_config(config)?;
        extras.jira_url = config.confluence.as_ref().and_then(|c| c.jira_url.clone());
        extras.oidc = oidc_from_config(config)?;
        extras.widget = config.widget.clone();
        extras.sync_interval = sync_now.as_ref().map(|_| config.sync.interval);
        extras.sync_now = sync_now;
        let brand = crate::brand::Brand::load(&config.portal.brand)?;
        Ok(AppState::with_brand(
            &config.portal,
            brand,
            store,
            policy,
            Some(mailer),
            extras,
        ))
    }
}

impl AppState {
    /// Re-reads what [`AppState::reload`] can apply from a reloaded configuration: `[portal]`,
    /// the mailer and the embed keys / API key (their files and variables are read again).
    /// On an error nothing changes and the running settings stay.
    pub fn reload_from_config(&self, config: &Config) -> Result<(), SetupError> {
        let mailer = mailer_from_config(config)?;
        let extras = embed_from_config(config)?;
        self.reload(&config.portal, Some(mailer), extras);
        Ok(())
    }
}
