//! Building the parts from the configuration: client, store, space list.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context;
use confluence_client::{Client, ClientConfig};
use kbgate_config::Config;
use kbgate_store::Store;

/// The Confluence client of the service account named in `[confluence]`.
pub fn confluence_client(config: &Config) -> anyhow::Result<Client> {
    let c = config.confluence.as_ref().with_context(|| {
        format!(
            "{}: a [confluence] section (base_url, email, api_token_env) is needed",
            config.path.display()
        )
    })?;
    let token = c.resolve_api_token()?;
    let mut cfg = ClientConfig::new(c.base_url.clone(), c.email.as_str(), token.expose());
    cfg.requests_per_second = c.requests_per_second;
    cfg.admin_api_key = c
        .resolve_admin_api_key()?
        .map(|k| confluence_client::Secret::new(k.expose()));
    Ok(Client::new(cfg)?)
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
