//! [`Source`] over the real Confluence client: which endpoint answers which question.

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use confluence_client::{Client, Content, PageListOptions};
use futures::{StreamExt, TryStreamExt};

use super::source::{
    AttachmentMeta, Change, ChangeKind, PageBody, PageMeta, ScanItem, Source, SourceError,
    SourceIcon, SourceSpace, SourceStream,
};

/// The expansions of the structure scan: no body, so Confluence serves up to 200 a call.
const STRUCTURE_EXPAND: &[&str] = &[
    "version",
    "ancestors",
    "metadata.labels",
    "restrictions.read.restrictions.user",
    "restrictions.read.restrictions.group",
];

/// Reads Confluence through `confluence_client` (one throttle, retries, call counts).
#[derive(Clone)]
pub struct ConfluenceSource {
    client: Client,
}

impl ConfluenceSource {
    /// Wraps a configured client.
    pub fn new(client: Client) -> Self {
        ConfluenceSource { client }
    }

    /// The underlying client (for its call statistics).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn err(e: confluence_client::Error) -> SourceError {
    if matches!(e, confluence_client::Error::NotFound { .. }) {
        SourceError::not_found(e.to_string())
    } else {
        SourceError::other(e.to_string())
    }
}

/// CQL string literal: quotes and backslashes escaped.
fn cql_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `now("-Nm")`: "modified in the last N minutes", computed by Confluence itself, so the site's
/// or account's time zone cannot shift the window (a literal date is read in that zone: at
/// UTC-8 a UTC literal would start the window 8 hours late and miss changes). N is rounded up
/// to whole minutes (CQL's precision). Evidence: Atlassian's CQL function reference
/// (developer.atlassian.com/cloud/confluence/cql-functions/ — `now()` with `"-4h"`, `"-15m"`
/// increments) and its field reference ("dates … in the user's time zone").
pub fn cql_since(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = u64::try_from((now - since).num_seconds()).unwrap_or(0);
    let minutes = secs.div_ceil(60).max(1);
    format!("now(\"-{minutes}m\")")
}

fn to_body(p: confluence_client::Page) -> PageBody {
    let created = p.created_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let (version, updated) = match &p.version {
        Some(v) => (
            i64::from(v.number.unwrap_or(1)),
            v.created_at.unwrap_or(created),
        ),
        None => (1, created),
    };
    PageBody {
        parent_id: p.parent_id.filter(|_| {
            // Only pages are parents in the mirror (folders/whiteboards are not mirrored).
            p.parent_type.as_deref().is_none_or(|t| t == "page")
        }),
        position: p.position.unwrap_or(0),
        version,
        created_at: created,
        updated_at: updated,
        body_storage: p
            .body
            .and_then(|b| b.storage)
            .map(|s| s.value)
            .unwrap_or_default(),
        id: p.id,
        title: p.title,
    }
}

/// Content types the structure scan lists: pages, and folders (which can hold pages and carry
/// read restrictions). v1 CQL `type in (page, folder)` lists both in one scan — evidence:
/// dust-tt/dust PR #14839 ("leverages the legacy Cloud API (V1) to use CQL to list both folders
/// and pages within one call"). Other containers a page may sit under (whiteboards, databases,
/// smart links) are not listed: a page below one counts as restricted (fail closed).
const SCAN_TYPES: &str = "type in (page, folder)";

/// `None` for content that is not current (archived, trashed): it is not in the mirror, and a
/// page archived since the last sync leaves it as a deleted one would.
fn to_scan_item(c: Content) -> Option<ScanItem> {
    if c.status.as_deref().is_some_and(|s| s != "current") {
        return None;
    }
    // Cloud ignores an expansion it will not serve instead of failing: an answer without the
    // read restrictions says nothing about them, so the item counts as restricted (fail
    // closed) rather than open.
    let restricted = c
        .restrictions
        .as_ref()
        .and_then(|r| r.read.as_ref())
        .and_then(|r| r.restrictions.as_ref())
        .is_none_or(|s| {
            s.user.as_ref().is_some_and(|u| !u.results.is_empty())
                || s.group.as_ref().is_some_and(|g| !g.results.is_empty())
        });
    let labels = c
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .map(|l| l.labels().iter().map(|l| l.name.clone()).collect())
        .unwrap_or_default();
    if c.content_type != "page" {
        return Some(ScanItem::Container {
            id: c.id,
            restricted,
        });
    }
    // Ancestors come root first: the nearest page ancestor is the parent in the mirror, and
    // every container between it and the page is remembered (nearest first).
    let ancestors = c.ancestors.as_deref().unwrap_or_default();
    let nearest_page = ancestors.iter().rposition(|a| a.content_type == "page");
    let parent_id = nearest_page.map(|i| ancestors[i].id.clone());
    let containers = ancestors[nearest_page.map_or(0, |i| i + 1)..]
        .iter()
        .rev()
        .map(|a| a.id.clone())
        .collect();
    Some(ScanItem::Page(PageMeta {
        containers,
        version: c
            .version
            .as_ref()
            .and_then(|v| v.number)
            .map_or(1, i64::from),
        parent_id,
        labels,
        restricted,
        title: c.title,
        id: c.id,
    }))
}

fn to_attachment(c: Content) -> Option<AttachmentMeta> {
    let page_id = c
        .container
        .as_ref()
        .and_then(|v| v.get("id"))
        .and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })?;
    let ext = c.extensions.as_ref();
    let media_type = ext
        .and_then(|e| e.get("mediaType"))
        .and_then(|v| v.as_str())
        .unwrap_or("application/octet-stream")
        .to_string();
    let file_size = ext
        .and_then(|e| e.get("fileSize"))
        .and_then(|v| v.as_i64())
        .unwrap_or(-1);
    let (version, updated_at) = match &c.version {
        Some(v) => (
            v.number.map_or(1, i64::from),
            v.when.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        ),
        None => (1, DateTime::<Utc>::UNIX_EPOCH),
    };
    Some(AttachmentMeta {
        id: c.id,
        page_id,
        title: c.title,
        media_type,
        file_size,
        version,
        updated_at,
    })
}

#[async_trait]
impl Source for ConfluenceSource {
    /// `POST /wiki/api/v2/users-bulk` (scope `read:user:confluence`), 250 ids per call.
    async fn user_names(
        &self,
        account_ids: &[String],
    ) -> Result<HashMap<String, String>, SourceError> {
        let users = self.client.users_bulk(account_ids).await.map_err(err)?;
        Ok(users
            .into_iter()
            .filter_map(|u| {
                let name = u.display_name?.trim().to_owned();
                (!name.is_empty()).then_some((u.account_id, name))
            })
            .collect())
    }

    async fn spaces(&self, keys: &[String]) -> Result<Vec<SourceSpace>, SourceError> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let spaces: Vec<_> = self
            .client
            .spaces_with_details(&keys)
            .try_collect()
            .await
            .map_err(err)?;
        Ok(spaces
            .into_iter()
            .map(|s| SourceSpace {
                name: s.name.unwrap_or_else(|| s.key.clone()),
                description: s
                    .description
                    .and_then(|d| d.plain)
                    .map(|b| b.value.trim().to_owned())
                    .unwrap_or_default(),
                icon: s.icon.and_then(|i| {
                    Some(SourceIcon {
                        path: i.path.filter(|p| !p.is_empty())?,
                        download: i.api_download_link.filter(|l| !l.is_empty()),
                    })
                }),
                id: s.id,
                key: s.key,
                homepage_id: s.homepage_id,
            })
            .collect())
    }

    fn page_bodies<'a>(&'a self, space_id: &'a str) -> SourceStream<'a, PageBody> {
        self.client
            .space_pages(space_id, PageListOptions::default())
            .map_err(err)
            // Asked with `status=current`; an archived page is dropped even if a server
            // ignores the filter.
            .try_filter(|p| {
                futures::future::ready(p.status.as_deref().is_none_or(|s| s == "current"))
            })
            .map_ok(to_body)
            .boxed()
    }

    async fn page(&self, id: &str) -> Result<Option<PageBody>, SourceError> {
        match self.client.page(id, false).await {
            Ok(p) if p.status.as_deref().is_none_or(|s| s == "current") => Ok(Some(to_body(p))),
            Ok(_) => Ok(None),
            Err(confluence_client::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    fn page_metas<'a>(&'a self, space_key: &'a str) -> SourceStream<'a, ScanItem> {
        let cql = format!("space = {} AND {SCAN_TYPES}", cql_str(space_key));
        self.client
            .content_search(&cql, STRUCTURE_EXPAND)
            .map_err(err)
            .try_filter_map(|c| futures::future::ready(Ok(to_scan_item(c))))
            .boxed()
    }

    fn attachment_metas<'a>(&'a self, space_key: &'a str) -> SourceStream<'a, AttachmentMeta> {
        let cql = format!("space = {} AND type = attachment", cql_str(space_key));
        self.client
            .content_search(&cql, &["container", "version"])
            .map_err(err)
            .try_filter_map(|c| async move { Ok(to_attachment(c)) })
            .boxed()
    }

    fn changed_since<'a>(
        &'a self,
        space_key: &'a str,
        since: DateTime<Utc>,
    ) -> SourceStream<'a, Change> {
        let cql = format!(
            "space = {} AND lastmodified >= {}",
            cql_str(space_key),
            cql_since(since, Utc::now())
        );
        self.client
            .search(&cql)
            .map_err(err)
            .try_filter_map(|r| async move {
                Ok(r.content.map(|c| Change {
                    kind: match c.content_type.as_str() {
                        "page" => ChangeKind::Page,
                        "attachment" => ChangeKind::Attachment,
                        _ => ChangeKind::Other,
                    },
                    id: c.id,
                }))
            })
            .boxed()
    }

    async fn download(
        &self,
        att: &AttachmentMeta,
    ) -> Result<SourceStream<'static, Bytes>, SourceError> {
        let d = self
            .client
            .download_attachment(&att.page_id, &att.id)
            .await
            .map_err(err)?;
        Ok(d.bytes.map_err(err).boxed())
    }

    async fn download_icon(&self, link: &str) -> Result<SourceStream<'static, Bytes>, SourceError> {
        let d = self.client.download_space_icon(link).await.map_err(err)?;
        Ok(d.bytes.map_err(err).boxed())
    }

    fn calls(&self) -> u64 {
        self.client.stats().total
    }
}
