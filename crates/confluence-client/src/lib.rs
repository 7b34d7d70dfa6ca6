//! Typed async client for the Confluence Cloud endpoints kbgate uses: v2
//! content and access calls, v1 restrictions/search/groups/space permissions/downloads, the
//! knowledge-base permission switches (set, and per space read back through v1
//! `expand=permissions`), Jira user creation and two undocumented `/cgraphql`
//! operations.
//!
//! Works against a real `https://SITE.atlassian.net` or any base URL (the simulator). All
//! calls of one [`Client`] (and its clones) share one throttle, one retry policy and one set
//! of call counters ([`CallStats`]); see the `client` module docs for the retry rules.
//!
//! ```no_run
//! # async fn demo() -> Result<(), confluence_client::Error> {
//! use confluence_client::{Client, ClientConfig, PageListOptions};
//! use futures::TryStreamExt;
//! let cfg = ClientConfig::new(
//!     "https://example.atlassian.net".parse().unwrap(),
//!     "svc@example.com",
//!     "api-token",
//! );
//! let client = Client::new(cfg)?;
//! let spaces: Vec<_> = client.spaces(&["KB"]).try_collect().await?;
//! let pages: Vec<_> = client
//!     .space_pages(&spaces[0].id, PageListOptions::default())
//!     .try_collect()
//!     .await?;
//! # let _ = pages; Ok(()) }
//! ```

mod api;
mod client;
mod config;
mod error;
mod models;
mod paging;
pub mod scopes;
mod stats;

pub use api::{
    Download, EMAILS_CAP, PageListOptions, PageSort, USERS_BULK_CAP, Undocumented,
    V1_MEMBERS_LIMIT, V1_SEARCH_LIMIT, V1_SPACES_PER_CALL, V2_PAGE_LIMIT, tenant_info,
};
pub use client::Client;
pub use config::{
    ATLASSIAN_GATEWAY, ATLASSIAN_TOKEN_URL, ClientConfig, OAuthClientCredentials, RetryConfig,
    gateway_base,
};
pub use error::{Error, Limit, Result};
pub use models::*;
pub use paging::Paged;
/// The workspace's one secret type (credentials in [`ClientConfig`]): redacted in Debug,
/// wiped on drop, read only through [`ExposeSecret::expose_secret`].
pub use secrecy::{ExposeSecret, SecretString};
pub use stats::CallStats;
