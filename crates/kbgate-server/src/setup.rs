//! Building the state from the loaded configuration (what `kbgate serve` and `kbgate demo` do).

use std::sync::Arc;

use kbgate_config::{Config, EmbedKey, ExposeSecret, MagicLinkDelivery};
use kbgate_store::Store;

use crate::mail::{MailError, Mailer};
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

/// The embed verifier and API key of a configuration (`None`s without `[embed]`).
pub(crate) fn embed_from_config(config: &Config) -> Result<Extras, SetupError> {
    let Some(e) = &config.embed else {
        return Ok(Extras::default());
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
    }
    .with_limits(e.leeway, e.max_token_lifetime);
    Ok(Extras {
        embed: Some(verifier),
        api_key: e.resolve_api_key()?,
    })
}

impl AppState {
    /// Everything from the configuration: `[portal]`, mailer, embed verifier and API key.
    /// The policy handle is passed in so the caller can replace it on reload.
    pub fn from_config(
        config: &Config,
        store: Arc<dyn Store>,
        policy: PolicyHandle,
    ) -> Result<AppState, SetupError> {
        let mailer = mailer_from_config(config)?;
        let extras = embed_from_config(config)?;
        Ok(AppState::new(
            &config.portal,
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
