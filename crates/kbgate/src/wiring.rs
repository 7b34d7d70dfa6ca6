//! Building the parts from the configuration: client, store, and the plain options of
//! provision, which does not read `kbgate-config` itself (the mirror's options and the space
//! list are `kbgate_service::sync_options` and `mirrored_spaces`).

use std::sync::Arc;

use anyhow::Context;
use confluence_client::{Client, ClientConfig};
use kbgate_config::{Config, ConfluenceAuth, ConfluenceConfig, Gateway};
use kbgate_provision::ReconcileOptions;
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
            ClientConfig::new(c.base_url.clone(), email.as_str(), secret)
        }
        ConfluenceAuth::ScopedToken { email, gateway, .. } => {
            let mut cfg =
                ClientConfig::new(gateway_base_of(c, gateway).await?, email.as_str(), secret);
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
                client_secret: secret,
                token_url: token_url.clone(),
            });
            cfg
        }
    };
    cfg.requests_per_second = c.requests_per_second;
    cfg.admin_api_key = c.resolve_admin_api_key()?;
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
    kbgate_store::private_fs::create_dir_all(&config.store.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.store.data_dir.display()
        )
    })?;
    kbgate_store::open(config.store.url.expose(), &config.store.data_dir)
        .await
        .with_context(|| format!("cannot open the store {}", config.store.url.redacted()))
}

/// Native mode's options from `[confluence]`: the opt-in for undocumented APIs, the default
/// product-access group, the number of paid users and the invitation wait and retry; the rest
/// at provision's defaults.
pub fn reconcile_options(c: &ConfluenceConfig) -> ReconcileOptions {
    ReconcileOptions {
        allow_undocumented_apis: c.allow_undocumented_apis,
        default_access_group: c.default_access_group.clone(),
        licensed_users: c
            .licensed_users
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        invite_wait: c.invite_wait,
        // Bounded by the config (at most 7 days), so the conversion cannot fail; the
        // default is the fallback all the same.
        invite_retry_after: chrono::Duration::from_std(c.invite_retry_after)
            .unwrap_or(kbgate_provision::DEFAULT_INVITE_RETRY_AFTER),
        ..ReconcileOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Config {
        let text = format!(
            "[confluence]\nbase_url = \"https://example.atlassian.net\"\nemail = \"svc@example.com\"\n\
             api_token_env = \"T\"\nallow_undocumented_apis = true\n{extra}"
        );
        Config::from_str_with_env(&text, std::path::Path::new("kbgate.toml"), &|_| None).unwrap()
    }

    /// Moved here from kbgate-provision when provision stopped reading the config.
    #[test]
    fn reconcile_options_come_from_the_config() {
        let c = load("default_access_group = \"staff-and-customers\"\nlicensed_users = 42\n");
        let o = reconcile_options(c.confluence.as_ref().unwrap());
        assert!(o.allow_undocumented_apis);
        assert_eq!(o.default_access_group, "staff-and-customers");
        assert_eq!(o.licensed_users, Some(42));
        let c = load("");
        let o = reconcile_options(c.confluence.as_ref().unwrap());
        assert_eq!(o.default_access_group, "confluence-users");
        assert_eq!(o.licensed_users, None);
        // The configuration's default and provision's programmatic one name the same group.
        assert_eq!(
            kbgate_config::DEFAULT_ACCESS_GROUP,
            kbgate_provision::DEFAULT_ACCESS_GROUP
        );
    }
}
