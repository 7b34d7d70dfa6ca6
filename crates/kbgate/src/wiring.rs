//! Building the parts from the configuration: client, store, space list.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context;
use confluence_client::{Client, ClientConfig};
use kbgate_config::{Config, ConfluenceAuth, ConfluenceConfig, Gateway};
use kbgate_store::Store;

/// The Confluence client of the service account named in `[confluence]`: Basic on the site
/// for a classic token; through the gateway (cloud id from the config, or read from the site's
/// `/_edge/tenant_info`) for a scoped token or OAuth client credentials.
pub async fn confluence_client(config: &Config) -> anyhow::Result<Client> {
    Ok(Client::new(confluence_client_config(config).await?)?)
}

/// The configuration of [`confluence_client`], for callers that adjust it (the doctor waits
/// less for a rate limit than a sync does).
pub async fn confluence_client_config(config: &Config) -> anyhow::Result<ClientConfig> {
    let c = config.confluence.as_ref().with_context(|| {
        format!(
            "{}: a [confluence] section (base_url, email, api_token_env) is needed",
            config.path.display()
        )
    })?;
    let secret = c.resolve_api_token()?;
    let mut cfg = match &c.auth {
        ConfluenceAuth::ApiToken { email, .. } => {
            ClientConfig::new(c.base_url.clone(), email.as_str(), secret.expose())
        }
        ConfluenceAuth::ScopedToken { email, gateway, .. } => {
            let mut cfg = ClientConfig::new(
                gateway_base_of(c, gateway).await?,
                email.as_str(),
                secret.expose(),
            );
            cfg.site_url = Some(c.base_url.clone());
            cfg
        }
        ConfluenceAuth::OAuth {
            client_id,
            token_url,
            gateway,
            ..
        } => {
            let mut cfg = ClientConfig::new(gateway_base_of(c, gateway).await?, "", "");
            cfg.site_url = Some(c.base_url.clone());
            cfg.oauth = Some(confluence_client::OAuthClientCredentials {
                client_id: client_id.clone(),
                client_secret: confluence_client::Secret::new(secret.expose()),
                token_url: token_url.clone(),
            });
            cfg
        }
    };
    cfg.requests_per_second = c.requests_per_second;
    cfg.admin_api_key = c
        .resolve_admin_api_key()?
        .map(|k| confluence_client::Secret::new(k.expose()));
    Ok(cfg)
}

/// `{gateway}/ex/confluence/{cloudId}`, asking the site for its cloud id when the config does
/// not name it.
async fn gateway_base_of(c: &ConfluenceConfig, gateway: &Gateway) -> anyhow::Result<url::Url> {
    let cloud_id = match &gateway.cloud_id {
        Some(id) => id.clone(),
        None => {
            confluence_client::tenant_info(&c.base_url, std::time::Duration::from_secs(30))
                .await
                .with_context(|| {
                    format!(
                        "cannot read the cloud id of {} (set [confluence] cloud_id)",
                        c.base_url
                    )
                })?
                .cloud_id
        }
    };
    Ok(confluence_client::gateway_base(&gateway.url, &cloud_id))
}

/// Opens (and migrates) the store named in `[store]`.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.store.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.store.data_dir.display()
        )
    })?;
    kbgate_store::open(config.store.url.expose(), &config.store.data_dir)
        .await
        .with_context(|| format!("cannot open the store {}", config.store.url.redacted()))
}

/// Every space named by an audience, once, in a stable order.
pub fn mirrored_spaces(config: &Config) -> Vec<String> {
    config
        .policy
        .audiences()
        .iter()
        .flat_map(|a| a.spaces.iter().map(|s| s.as_str().to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The attachment size cap.
pub fn max_attachment_bytes(config: &Config) -> u64 {
    config
        .confluence
        .as_ref()
        .map_or(50 * 1024 * 1024, |c| c.max_attachment_bytes)
}
