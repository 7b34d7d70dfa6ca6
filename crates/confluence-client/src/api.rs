//! The endpoints kbgate uses, one method each. Paths, parameters and bodies follow the
//! OpenAPI documents in `shared/specs/` (v2 2026-04, v1/Jira 2023-08).

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::{Call, Client, Idempotency};
use crate::error::{Error, Result};
use crate::models::*;
use crate::paging::{Cursor, Paged};

/// Largest `limit` v2 list endpoints accept.
pub const V2_PAGE_LIMIT: u32 = 250;
/// Largest `limit` of v1 group member listings.
pub const V1_MEMBERS_LIMIT: u32 = 200;
/// `limit` asked of v1 search endpoints (the server may clamp; cursors are followed anyway).
pub const V1_SEARCH_LIMIT: u32 = 250;
/// Account ids per `users-bulk` request.
pub const USERS_BULK_CAP: usize = 250;
/// Emails per check-access/invite request.
pub const EMAILS_CAP: usize = 100;
/// Space keys per v1 `GET /wiki/rest/api/space` request, also its `limit`: the spec's default
/// page size, so no "fixed system limit" can make a request answer less than it asked for
/// (`_links.next` is followed anyway).
pub const V1_SPACES_PER_CALL: usize = 25;

/// The call-count key of [`Client::download_space_icon`] (the link's own path varies).
const SPACE_ICON_EP: &str = "GET {space icon apiDownloadLink}";
const READ_CONTENT: &str = "permission to view the space (Can view) and its pages";
const VIEW_USERS: &str = "permission to use Confluence and view user profiles";
const SITE_ADMIN: &str = "Confluence administrator (site admin) rights";
const SPACE_ADMIN: &str = "space admin permission on this space (or Confluence admin)";
const JIRA_ADMIN: &str = "Jira administrator (or site admin) rights to create users";

/// Sort orders of v2 page listings (`sort=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSort {
    /// `id`.
    Id,
    /// `-id`.
    IdDesc,
    /// `created-date`.
    Created,
    /// `-created-date`.
    CreatedDesc,
    /// `modified-date`.
    Modified,
    /// `-modified-date`: newest first, for change scans.
    ModifiedDesc,
    /// `title`.
    Title,
    /// `-title`.
    TitleDesc,
}

impl PageSort {
    fn as_str(self) -> &'static str {
        match self {
            PageSort::Id => "id",
            PageSort::IdDesc => "-id",
            PageSort::Created => "created-date",
            PageSort::CreatedDesc => "-created-date",
            PageSort::Modified => "modified-date",
            PageSort::ModifiedDesc => "-modified-date",
            PageSort::Title => "title",
            PageSort::TitleDesc => "-title",
        }
    }
}

/// Options of [`Client::space_pages`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageListOptions {
    /// Ask for `body-format=storage` (bodies come with the list: ~40 calls per 10,000 pages).
    pub storage_body: bool,
    /// Sort order; server default (id) when `None`.
    pub sort: Option<PageSort>,
    /// Page size, capped at [`V2_PAGE_LIMIT`].
    pub limit: u32,
}

impl Default for PageListOptions {
    fn default() -> Self {
        Self {
            storage_body: true,
            sort: None,
            limit: V2_PAGE_LIMIT,
        }
    }
}

/// A streamed attachment download.
pub struct Download {
    /// `Content-Type` of the file.
    pub content_type: Option<String>,
    /// `Content-Length`, if the server sent it.
    pub content_length: Option<u64>,
    /// The bytes, chunk by chunk; the file is never held whole in memory.
    pub bytes: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("content_type", &self.content_type)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// Why one download attempt failed: worth asking Confluence for a fresh link, or not.
enum DownloadFailure {
    Retry(Error),
    Fatal(Error),
}

/// A 401/403 on the download endpoint is about the download, not the credentials.
fn download_error(e: Error) -> Error {
    match e {
        Error::Unauthorized { path, message } => Error::DownloadRefused {
            status: 401,
            path,
            message,
        },
        Error::Forbidden { path, message, .. } => Error::DownloadRefused {
            status: 403,
            path,
            message,
        },
        e => e,
    }
}

/// Where a redirect answer points, resolved against the request URL.
fn redirect_target(from: &url::Url, resp: &reqwest::Response) -> Result<url::Url> {
    let bad = |message: &str| Error::InvalidResponse {
        path: from.path().to_owned(),
        message: message.to_owned(),
    };
    let loc = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("a redirect without a Location"))?;
    let next = from
        .join(loc)
        .map_err(|_| bad("a redirect to an unreadable Location"))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad("a redirect to a non-HTTP location"));
    }
    Ok(next)
}

/// The answer's body as a [`Download`] stream.
fn into_download(resp: reqwest::Response, path: String) -> Download {
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_length = resp.content_length();
    let bytes = resp
        .bytes_stream()
        .map(move |r| {
            r.map_err(|e| Error::Transport {
                path: path.clone(),
                message: e.without_url().to_string(),
            })
        })
        .boxed();
    Download {
        content_type,
        content_length,
        bytes,
    }
}

fn limit(l: u32, cap: u32) -> String {
    l.clamp(1, cap).to_string()
}

/// `GET https://SITE/_edge/tenant_info` (no credentials): the site's cloud id, from which the
/// gateway base of scoped tokens and service accounts is built
/// (`https://api.atlassian.com/ex/confluence/{cloudId}`). Evidence: the community guide
/// "A Guide to Service Accounts in Atlassian Cloud – Part 3" and docs.getdx.com's Confluence
/// connector ("Find your cloud ID … at https://<my-site>/_edge/tenant_info … {\"cloudId\": …}").
pub async fn tenant_info(site: &url::Url, timeout: std::time::Duration) -> Result<TenantInfo> {
    let mut url = site.clone();
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty().extend(["_edge", "tenant_info"]);
    }
    let path = url.path().to_owned();
    let transport = |e: reqwest::Error| Error::Transport {
        path: path.clone(),
        message: e.without_url().to_string(),
    };
    let resp = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(transport)?
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(transport)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(transport)?;
    if !status.is_success() {
        return Err(Error::InvalidResponse {
            path,
            message: format!(
                "{status}: the site did not tell its cloud id (is base_url the site, https://SITE.atlassian.net?)"
            ),
        });
    }
    serde_json::from_slice(&body).map_err(|source| Error::Decode { path, source })
}

impl Client {
    // ------------------------------------------------------------ v2 content

    /// `GET /wiki/api/v2/spaces?keys=…`: the spaces with these keys (all visible spaces when
    /// `keys` is empty).
    pub fn spaces(&self, keys: &[&str]) -> Paged<Space> {
        self.spaces_paged(keys, false)
    }

    /// Like [`Client::spaces`], each space with its description as plain text
    /// (`description-format=plain`) and its icon (`include-icon=true`), at no extra call.
    /// Both parameters are in Atlassian's v2 OpenAPI document of `GET /wiki/api/v2/spaces`
    /// (`shared/specs/confluence-cloud-rest-v2.openapi.json`, schemas `SpaceDescription` and
    /// `SpaceIcon`; <https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-space/#api-spaces-get>).
    pub fn spaces_with_details(&self, keys: &[&str]) -> Paged<Space> {
        self.spaces_paged(keys, true)
    }

    fn spaces_paged(&self, keys: &[&str], details: bool) -> Paged<Space> {
        const EP: &str = "GET /wiki/api/v2/spaces";
        let mut urls = Vec::new();
        let chunks: Vec<Vec<&str>> = if keys.is_empty() {
            vec![Vec::new()]
        } else {
            keys.chunks(V2_PAGE_LIMIT as usize)
                .map(<[_]>::to_vec)
                .collect()
        };
        for chunk in chunks {
            let mut url = self.url(&["wiki", "api", "v2", "spaces"]);
            {
                let mut q = url.query_pairs_mut();
                if !chunk.is_empty() {
                    q.append_pair("keys", &chunk.join(","));
                }
                q.append_pair("limit", &V2_PAGE_LIMIT.to_string());
                if details {
                    q.append_pair("description-format", "plain");
                    q.append_pair("include-icon", "true");
                }
            }
            urls.push(url);
        }
        let client = self.clone();
        futures::stream::iter(urls)
            .flat_map(move |u| client.paged(EP, u, READ_CONTENT, Cursor::Next))
            .boxed()
    }

    /// `GET /wiki/api/v2/spaces/{id}/pages`: every current page of a space, with storage bodies
    /// by default.
    pub fn space_pages(&self, space_id: &str, opts: PageListOptions) -> Paged<Page> {
        let mut url = self.url(&["wiki", "api", "v2", "spaces", space_id, "pages"]);
        {
            let mut q = url.query_pairs_mut();
            // The v2 document (2026-04): "By default, `current` and `archived` are used":
            // archived pages must not reach a mirror of what readers may see.
            q.append_pair("status", "current");
            if opts.storage_body {
                q.append_pair("body-format", "storage");
            }
            if let Some(s) = opts.sort {
                q.append_pair("sort", s.as_str());
            }
            q.append_pair("limit", &limit(opts.limit, V2_PAGE_LIMIT));
        }
        self.paged(
            "GET /wiki/api/v2/spaces/{id}/pages",
            url,
            READ_CONTENT,
            Cursor::Next,
        )
    }

    /// `GET /wiki/api/v2/pages/{id}?body-format=storage[&include-labels=true]`: one page.
    pub async fn page(&self, id: &str, include_labels: bool) -> Result<Page> {
        let mut url = self.url(&["wiki", "api", "v2", "pages", id]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("body-format", "storage");
            if include_labels {
                q.append_pair("include-labels", "true");
            }
        }
        self.json(Call::get("GET /wiki/api/v2/pages/{id}", url, READ_CONTENT))
            .await
    }

    /// `GET /wiki/api/v2/pages/{id}/attachments`: a page's attachments.
    pub fn page_attachments(&self, page_id: &str) -> Paged<Attachment> {
        let mut url = self.url(&["wiki", "api", "v2", "pages", page_id, "attachments"]);
        url.query_pairs_mut()
            .append_pair("limit", &V2_PAGE_LIMIT.to_string());
        self.paged(
            "GET /wiki/api/v2/pages/{id}/attachments",
            url,
            READ_CONTENT,
            Cursor::Next,
        )
    }

    /// `GET /wiki/api/v2/pages/{id}/labels`: a page's labels.
    pub fn page_labels(&self, page_id: &str) -> Paged<Label> {
        let mut url = self.url(&["wiki", "api", "v2", "pages", page_id, "labels"]);
        url.query_pairs_mut()
            .append_pair("limit", &V2_PAGE_LIMIT.to_string());
        self.paged(
            "GET /wiki/api/v2/pages/{id}/labels",
            url,
            READ_CONTENT,
            Cursor::Next,
        )
    }

    /// `GET /wiki/api/v2/labels/{id}/pages`: pages carrying a label (no bodies).
    pub fn label_pages(&self, label_id: &str) -> Paged<Page> {
        let mut url = self.url(&["wiki", "api", "v2", "labels", label_id, "pages"]);
        url.query_pairs_mut()
            .append_pair("limit", &V2_PAGE_LIMIT.to_string());
        self.paged(
            "GET /wiki/api/v2/labels/{id}/pages",
            url,
            READ_CONTENT,
            Cursor::Next,
        )
    }

    /// `GET /wiki/api/v2/spaces/{id}/permissions`: a space's permission assignments.
    pub fn space_permissions(&self, space_id: &str) -> Paged<SpacePermissionAssignment> {
        let mut url = self.url(&["wiki", "api", "v2", "spaces", space_id, "permissions"]);
        url.query_pairs_mut()
            .append_pair("limit", &V2_PAGE_LIMIT.to_string());
        self.paged(
            "GET /wiki/api/v2/spaces/{id}/permissions",
            url,
            SPACE_ADMIN,
            Cursor::Next,
        )
    }

    /// `GET /wiki/rest/api/space?spaceKey=…&expand=permissions`: the spaces with these keys,
    /// each with its permissions, including the knowledge-base view switches (a `read space`
    /// permission with `unlicensedAccess` or `anonymousAccess`; see [`SpaceV1::unlicensed_view`]).
    /// [`V1_SPACES_PER_CALL`] keys a request; keys of spaces that do not exist or that the
    /// account may not view are absent from the answer. Nothing is asked when `keys` is empty.
    /// (v1 and deprecated in favour of v2, but v2 shows neither switch.)
    pub fn spaces_with_permissions(&self, keys: &[&str]) -> Paged<SpaceV1> {
        const EP: &str = "GET /wiki/rest/api/space";
        let urls: Vec<url::Url> = keys
            .chunks(V1_SPACES_PER_CALL)
            .map(|chunk| {
                let mut url = self.url(&["wiki", "rest", "api", "space"]);
                {
                    let mut q = url.query_pairs_mut();
                    for k in chunk {
                        q.append_pair("spaceKey", k);
                    }
                    q.append_pair("expand", "permissions")
                        .append_pair("limit", &V1_SPACES_PER_CALL.to_string())
                        .append_pair("start", "0");
                }
                url
            })
            .collect();
        let client = self.clone();
        futures::stream::iter(urls)
            .flat_map(move |u| {
                client.paged(
                    EP,
                    u,
                    SPACE_ADMIN,
                    Cursor::StartLimit {
                        limit: V1_SPACES_PER_CALL,
                    },
                )
            })
            .boxed()
    }

    // ------------------------------------------------------------ v2 users and access

    /// `POST /wiki/api/v2/users-bulk`, split into requests of [`USERS_BULK_CAP`] ids.
    /// Unknown ids are simply absent from the answer. Read-only, so retried like a GET.
    pub async fn users_bulk<S: AsRef<str>>(&self, account_ids: &[S]) -> Result<Vec<User>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            results: Vec<User>,
        }
        let mut out = Vec::with_capacity(account_ids.len());
        for chunk in account_ids.chunks(USERS_BULK_CAP) {
            let ids: Vec<&str> = chunk.iter().map(AsRef::as_ref).collect();
            let call = Call::with_json(
                Method::POST,
                "POST /wiki/api/v2/users-bulk",
                self.url(&["wiki", "api", "v2", "users-bulk"]),
                &json!({ "accountIds": ids }),
                Idempotency::Idempotent,
                VIEW_USERS,
            )?;
            let a: Answer = self.json(call).await?;
            out.extend(a.results);
        }
        Ok(out)
    }

    /// `POST /wiki/api/v2/user/access/check-access-by-email`, split into requests of
    /// [`EMAILS_CAP`] and merged. Read-only, so retried like a GET. A persistent 503 means the
    /// API is disabled on the site ([`Error::ServiceUnavailable`]).
    pub async fn check_access_by_email<S: AsRef<str>>(&self, emails: &[S]) -> Result<AccessCheck> {
        let mut out = AccessCheck::default();
        for chunk in emails.chunks(EMAILS_CAP) {
            let list: Vec<&str> = chunk.iter().map(AsRef::as_ref).collect();
            let call = Call::with_json(
                Method::POST,
                "POST /wiki/api/v2/user/access/check-access-by-email",
                self.url(&[
                    "wiki",
                    "api",
                    "v2",
                    "user",
                    "access",
                    "check-access-by-email",
                ]),
                &json!({ "emails": list }),
                Idempotency::Idempotent,
                SITE_ADMIN,
            )?;
            let a: Option<AccessCheck> = self.json(call).await?;
            if let Some(a) = a {
                out.emails_without_access.extend(a.emails_without_access);
                out.invalid_emails.extend(a.invalid_emails);
            }
        }
        Ok(out)
    }

    /// `POST /wiki/api/v2/user/access/invite-by-email`, split into requests of [`EMAILS_CAP`].
    /// Asynchronous on Confluence's side; invalid emails and those with access are ignored by
    /// the server. A write: retried only when refused before acting (429, 503+Retry-After).
    /// Note: an invite grants the site's default product access (a paid seat; AX-274).
    pub async fn invite_by_email<S: AsRef<str>>(&self, emails: &[S]) -> Result<()> {
        for chunk in emails.chunks(EMAILS_CAP) {
            let list: Vec<&str> = chunk.iter().map(AsRef::as_ref).collect();
            let call = Call::with_json(
                Method::POST,
                "POST /wiki/api/v2/user/access/invite-by-email",
                self.url(&["wiki", "api", "v2", "user", "access", "invite-by-email"]),
                &json!({ "emails": list }),
                Idempotency::Write,
                SITE_ADMIN,
            )?;
            self.bytes(call).await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ v1 content

    /// `GET /wiki/rest/api/content/{id}/restriction/byOperation/read` with users and groups
    /// expanded. Restrictions inherit to descendants: check ancestors too.
    pub async fn read_restrictions(&self, content_id: &str) -> Result<ContentRestriction> {
        let mut url = self.url(&[
            "wiki",
            "rest",
            "api",
            "content",
            content_id,
            "restriction",
            "byOperation",
            "read",
        ]);
        url.query_pairs_mut()
            .append_pair("expand", "restrictions.user,restrictions.group");
        self.json(Call::get(
            "GET /wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}",
            url,
            READ_CONTENT,
        ))
        .await
    }

    /// `GET /wiki/rest/api/search?cql=…`, following the `_links.next` cursor. Dates in CQL are
    /// `yyyy/MM/dd HH:mm`.
    pub fn search(&self, cql: &str) -> Paged<SearchResult> {
        let mut url = self.url(&["wiki", "rest", "api", "search"]);
        url.query_pairs_mut()
            .append_pair("cql", cql)
            .append_pair("limit", &V1_SEARCH_LIMIT.to_string());
        self.paged("GET /wiki/rest/api/search", url, READ_CONTENT, Cursor::Next)
    }

    /// How many items a CQL query matches: one `GET /wiki/rest/api/search?cql=…&limit=1`, its
    /// `totalSize`. For estimates (`kbgate doctor`): Cloud may round large totals.
    pub async fn count(&self, cql: &str) -> Result<u64> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Total {
            #[serde(default)]
            total_size: Option<u64>,
            #[serde(default)]
            size: Option<u64>,
        }
        let mut url = self.url(&["wiki", "rest", "api", "search"]);
        url.query_pairs_mut()
            .append_pair("cql", cql)
            .append_pair("limit", "1");
        let t: Total = self
            .json(Call::get("GET /wiki/rest/api/search", url, READ_CONTENT))
            .await?;
        Ok(t.total_size.or(t.size).unwrap_or(0))
    }

    /// `GET /wiki/rest/api/content/search?cql=…&expand=…`, following `_links.next`. The bulk
    /// way to read hierarchy, labels and restrictions of a whole space, e.g. expand
    /// `version`, `ancestors`, `metadata.labels`, `restrictions.read.restrictions.user`,
    /// `restrictions.read.restrictions.group`, `body.storage`, `container`.
    pub fn content_search(&self, cql: &str, expand: &[&str]) -> Paged<Content> {
        let mut url = self.url(&["wiki", "rest", "api", "content", "search"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("cql", cql);
            if !expand.is_empty() {
                q.append_pair("expand", &expand.join(","));
            }
            q.append_pair("limit", &V1_SEARCH_LIMIT.to_string());
        }
        self.paged(
            "GET /wiki/rest/api/content/search",
            url,
            READ_CONTENT,
            Cursor::Next,
        )
    }

    /// `GET /wiki/rest/api/content/{pageId}/child/attachment/{attId}/download`: the file,
    /// streamed.
    ///
    /// On Cloud this answers `302` to a signed, short-lived URL on the media host (another
    /// origin, `api.media.atlassian.com`), which authenticates by the token in its query. The
    /// redirect is followed by hand with a client that carries **no** Confluence credentials;
    /// a link that expired before use is asked for again (three tries). The attachment's
    /// `_links.download` / v2 `downloadLink` (`/wiki/download/attachments/…`) is never used:
    /// since Atlassian CHANGE-2735 it answers 401 with `WWW-Authenticate: OAuth` to API
    /// tokens. Evidence: pchuri/confluence-cli issue #198 and PR #199 (servlet path 401, REST
    /// path 302 → 200 on `api.media.atlassian.com` with `?token=<JWT>`), epam/dm.ai PR #252,
    /// Sanofi-IADC/konviw PR #670, jackchuka/confluence-md PR #44, atlassian-python-api
    /// issue #1601.
    pub async fn download_attachment(
        &self,
        page_id: &str,
        attachment_id: &str,
    ) -> Result<Download> {
        let url = self.url(&[
            "wiki",
            "rest",
            "api",
            "content",
            page_id,
            "child",
            "attachment",
            attachment_id,
            "download",
        ]);
        let mut last = None;
        for _ in 0..3 {
            match self.download_once(url.clone()).await {
                Ok(d) => return Ok(d),
                Err(DownloadFailure::Retry(e)) => last = Some(e),
                Err(DownloadFailure::Fatal(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::InvalidResponse {
            path: url.path().to_owned(),
            message: "the download did not complete".into(),
        }))
    }

    /// A space icon's bytes, from the icon's `apiDownloadLink` (v2 `SpaceIcon`: "3LO apps
    /// should use this link instead of the value provided in the `path` property"; the
    /// `path`, under `/wiki/download/`, answers 401 to API tokens since CHANGE-2735, see
    /// [`Client::download_attachment`]). The link is a path on the site; it answers like an
    /// attachment's REST download (302 to the media host, followed without credentials).
    /// Refused unless it is a plain `/wiki/…` path: the credentials never go elsewhere.
    pub async fn download_space_icon(&self, api_download_link: &str) -> Result<Download> {
        let url = self.site_path(api_download_link)?;
        let mut last = None;
        for _ in 0..3 {
            match self.download_once_as(SPACE_ICON_EP, url.clone()).await {
                Ok(d) => return Ok(d),
                Err(DownloadFailure::Retry(e)) => last = Some(e),
                Err(DownloadFailure::Fatal(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::InvalidResponse {
            path: url.path().to_owned(),
            message: "the download did not complete".into(),
        }))
    }

    /// A site-relative `/wiki/…` path (with its query) as a URL under the client's base (the
    /// site, or the API gateway's `/ex/confluence/{cloudId}`).
    fn site_path(&self, link: &str) -> Result<url::Url> {
        let bad = || Error::InvalidResponse {
            path: "space icon".into(),
            message: "the icon's download link is not a path on the site".into(),
        };
        let (path, query) = match link.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (link, None),
        };
        let plain = |c: char| c.is_ascii_alphanumeric() || "/-._~%+".contains(c);
        if !path.starts_with("/wiki/")
            || path.contains("//")
            || path.split('/').any(|s| s == "." || s == "..")
            // Encoded dots, slashes and backslashes: no traversal a server would decode.
            || ["%2e", "%2f", "%5c"]
                .iter()
                .any(|e| path.to_ascii_lowercase().contains(e))
            || !path.chars().all(plain)
            || query.is_some_and(|q| q.contains('#'))
        {
            return Err(bad());
        }
        let mut url = self.url(&[]);
        let joined = format!("{}{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url.set_query(query);
        Ok(url)
    }

    async fn download_once(&self, url: url::Url) -> std::result::Result<Download, DownloadFailure> {
        self.download_once_as(
            "GET /wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download",
            url,
        )
        .await
    }

    async fn download_once_as(
        &self,
        endpoint: &'static str,
        url: url::Url,
    ) -> std::result::Result<Download, DownloadFailure> {
        let mut target = url;
        // Same-origin hops (a proxy or the site canonicalising a path) keep the credentials;
        // the first hop to another origin goes to the media host without them.
        for _ in 0..5 {
            let path = target.path().to_owned();
            let mut call = Call::get(endpoint, target.clone(), READ_CONTENT);
            call.streaming = true;
            let resp = self
                .response(call)
                .await
                .map_err(|e| DownloadFailure::Fatal(download_error(e)))?;
            if !resp.status().is_redirection() {
                return Ok(into_download(resp, path));
            }
            let next = redirect_target(&target, &resp).map_err(DownloadFailure::Fatal)?;
            if next.origin() == target.origin() {
                target = next;
                continue;
            }
            return self.media_download(next).await;
        }
        Err(DownloadFailure::Fatal(Error::InvalidResponse {
            path: target.path().to_owned(),
            message: "too many redirects".into(),
        }))
    }

    /// The signed media URL, fetched without any Confluence credential (the client used here
    /// never has an `Authorization` header and follows no redirects).
    async fn media_download(
        &self,
        url: url::Url,
    ) -> std::result::Result<Download, DownloadFailure> {
        // The path only: the query holds the signed token.
        let path = format!("{}{}", url.origin().ascii_serialization(), url.path());
        self.inner.stats.media_request();
        let resp = self.inner.plain.get(url).send().await.map_err(|e| {
            DownloadFailure::Retry(Error::Transport {
                path: path.clone(),
                message: e.without_url().to_string(),
            })
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(into_download(resp, path));
        }
        let body = resp.bytes().await.unwrap_or_default();
        let message = crate::error::atlassian_message(&body);
        let e = match status.as_u16() {
            s @ (401 | 403 | 410) => Error::DownloadRefused {
                status: s,
                path,
                message,
            },
            s => Error::Server {
                status: s,
                path,
                message,
            },
        };
        // An expired link or a passing media-host failure: ask Confluence for a fresh link.
        if status.is_client_error() && !matches!(status.as_u16(), 401 | 403 | 410 | 429) {
            Err(DownloadFailure::Fatal(e))
        } else {
            Err(DownloadFailure::Retry(e))
        }
    }

    /// `GET /wiki/rest/api/user/current`: who the credentials are (account id, email, time
    /// zone). One call; `kbgate doctor` starts with it.
    pub async fn current_user(&self) -> Result<UserV1> {
        let url = self.url(&["wiki", "rest", "api", "user", "current"]);
        self.json(Call::get(
            "GET /wiki/rest/api/user/current",
            url,
            VIEW_USERS,
        ))
        .await
    }

    /// `GET /wiki/rest/api/user/current?expand=operations`: whether the account holds the
    /// global `administer` operation (Confluence administrator), which native delivery needs.
    /// The v1 document's `User.operations` lists `{operation, targetType}` pairs.
    pub async fn current_user_is_admin(&self) -> Result<bool> {
        #[derive(Deserialize)]
        struct Op {
            operation: String,
            #[serde(default, rename = "targetType")]
            target_type: Option<String>,
        }
        #[derive(Deserialize)]
        struct Me {
            #[serde(default)]
            operations: Option<Vec<Op>>,
        }
        let mut url = self.url(&["wiki", "rest", "api", "user", "current"]);
        url.query_pairs_mut().append_pair("expand", "operations");
        let me: Me = self
            .json(Call::get(
                "GET /wiki/rest/api/user/current",
                url,
                VIEW_USERS,
            ))
            .await?;
        Ok(me.operations.unwrap_or_default().iter().any(|o| {
            o.operation == "administer"
                && o.target_type.as_deref().is_none_or(|t| t == "application")
        }))
    }

    // ------------------------------------------------------------ v1 groups

    /// `GET /wiki/rest/api/group/{groupId}/membersByGroupId?expand=isExternalCollaborator`,
    /// start/limit paging by [`V1_MEMBERS_LIMIT`].
    pub fn group_members(&self, group_id: &str) -> Paged<UserV1> {
        let mut url = self.url(&["wiki", "rest", "api", "group", group_id, "membersByGroupId"]);
        url.query_pairs_mut()
            .append_pair("expand", "isExternalCollaborator")
            .append_pair("limit", &V1_MEMBERS_LIMIT.to_string())
            .append_pair("start", "0");
        self.paged(
            "GET /wiki/rest/api/group/{groupId}/membersByGroupId",
            url,
            VIEW_USERS,
            Cursor::StartLimit {
                limit: V1_MEMBERS_LIMIT as usize,
            },
        )
    }

    /// `POST /wiki/rest/api/group/userByGroupId?groupId=` `{accountId}`. A write.
    pub async fn add_group_member(&self, group_id: &str, account_id: &str) -> Result<()> {
        let mut url = self.url(&["wiki", "rest", "api", "group", "userByGroupId"]);
        url.query_pairs_mut().append_pair("groupId", group_id);
        let call = Call::with_json(
            Method::POST,
            "POST /wiki/rest/api/group/userByGroupId",
            url,
            &json!({ "accountId": account_id }),
            Idempotency::Write,
            SITE_ADMIN,
        )?;
        self.bytes(call).await.map(drop)
    }

    /// `DELETE /wiki/rest/api/group/userByGroupId?groupId=&accountId=`. Idempotent (204 even
    /// when the user was not a member).
    pub async fn remove_group_member(&self, group_id: &str, account_id: &str) -> Result<()> {
        let mut url = self.url(&["wiki", "rest", "api", "group", "userByGroupId"]);
        url.query_pairs_mut()
            .append_pair("groupId", group_id)
            .append_pair("accountId", account_id);
        let mut call = Call::get("DELETE /wiki/rest/api/group/userByGroupId", url, SITE_ADMIN);
        call.method = Method::DELETE;
        self.bytes(call).await.map(drop)
    }

    /// `POST /wiki/rest/api/group` `{name}`: creates a group. A write.
    pub async fn create_group(&self, name: &str) -> Result<Group> {
        let call = Call::with_json(
            Method::POST,
            "POST /wiki/rest/api/group",
            self.url(&["wiki", "rest", "api", "group"]),
            &json!({ "name": name }),
            Idempotency::Write,
            SITE_ADMIN,
        )?;
        self.json(call).await
    }

    /// `GET /wiki/rest/api/group/by-name?name=`: the group, or `None` when it does not exist.
    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>> {
        let mut url = self.url(&["wiki", "rest", "api", "group", "by-name"]);
        url.query_pairs_mut().append_pair("name", name);
        match self
            .json(Call::get(
                "GET /wiki/rest/api/group/by-name",
                url,
                VIEW_USERS,
            ))
            .await
        {
            Ok(g) => Ok(Some(g)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ------------------------------------------------------------ v1 space permissions

    /// `POST /wiki/rest/api/space/{key}/permission`. When the permission exists Confluence
    /// answers 400, mapped to [`Error::AlreadyExists`]. A write.
    pub async fn add_space_permission(
        &self,
        space_key: &str,
        subject: &PermissionSubject,
        operation: &SpaceOperation,
    ) -> Result<SpacePermission> {
        let call = Call::with_json(
            Method::POST,
            "POST /wiki/rest/api/space/{spaceKey}/permission",
            self.url(&["wiki", "rest", "api", "space", space_key, "permission"]),
            &json!({ "subject": subject, "operation": operation }),
            Idempotency::Write,
            SPACE_ADMIN,
        )?;
        self.json(call).await
    }

    /// `DELETE /wiki/rest/api/space/{key}/permission/{id}`. Retried like a read; a
    /// [`Error::NotFound`] after a retry means it is gone, which callers may treat as done.
    pub async fn remove_space_permission(
        &self,
        space_key: &str,
        permission_id: &str,
    ) -> Result<()> {
        let url = self.url(&[
            "wiki",
            "rest",
            "api",
            "space",
            space_key,
            "permission",
            permission_id,
        ]);
        let mut call = Call::get(
            "DELETE /wiki/rest/api/space/{spaceKey}/permission/{id}",
            url,
            SPACE_ADMIN,
        );
        call.method = Method::DELETE;
        self.bytes(call).await.map(drop)
    }

    // ------------------------------------------------------------ knowledge base switches

    async fn kb_switch(
        &self,
        endpoint: &'static str,
        segments: &[&str],
        body: Value,
    ) -> Result<KbPermissionState> {
        let mut path = vec!["wiki", "rest", "knowledge-base", "1.0", "permissions"];
        path.extend_from_slice(segments);
        // Setting a switch to a given state is idempotent, so it is retried like a read.
        let call = Call::with_json(
            Method::POST,
            endpoint,
            self.url(&path),
            &body,
            Idempotency::Idempotent,
            SITE_ADMIN,
        )?;
        let v: Option<KbPermissionState> = self.json(call).await?;
        Ok(v.unwrap_or_default())
    }

    /// `POST /wiki/rest/knowledge-base/1.0/permissions/space/unlicensedview`
    /// `{spaceKey, enablePermission}`: lets logged-in unlicensed users view a space (needs JSM).
    pub async fn set_unlicensed_view(
        &self,
        space_key: &str,
        enable: bool,
    ) -> Result<KbPermissionState> {
        self.kb_switch(
            "POST /wiki/rest/knowledge-base/1.0/permissions/space/unlicensedview",
            &["space", "unlicensedview"],
            json!({ "spaceKey": space_key, "enablePermission": enable }),
        )
        .await
    }

    /// `POST /wiki/rest/knowledge-base/1.0/permissions/space/anonymousview`
    /// `{spaceKey, enablePermission}`. kbgate's policy never enables this; it exists to switch
    /// it off.
    pub async fn set_anonymous_view(
        &self,
        space_key: &str,
        enable: bool,
    ) -> Result<KbPermissionState> {
        self.kb_switch(
            "POST /wiki/rest/knowledge-base/1.0/permissions/space/anonymousview",
            &["space", "anonymousview"],
            json!({ "spaceKey": space_key, "enablePermission": enable }),
        )
        .await
    }

    /// `POST /wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess`
    /// `{enablePermission}`: the site-wide unlicensed access switch.
    pub async fn set_global_unlicensed_access(&self, enable: bool) -> Result<KbPermissionState> {
        self.kb_switch(
            "POST /wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess",
            &["global", "unlicensedaccess"],
            json!({ "enablePermission": enable }),
        )
        .await
    }

    // ------------------------------------------------------------ Jira

    /// `POST /rest/api/3/user` `{emailAddress, products: []}`: puts a person on the site with
    /// no product access (the AX-274 workaround). A write.
    pub async fn create_site_user(&self, email: &str) -> Result<JiraUser> {
        let call = Call::with_json(
            Method::POST,
            "POST /rest/api/3/user",
            self.url(&["rest", "api", "3", "user"]),
            &json!({ "emailAddress": email, "products": [] }),
            Idempotency::Write,
            JIRA_ADMIN,
        )?;
        self.json(call).await
    }

    // ------------------------------------------------------------ undocumented

    /// Access to the undocumented `/cgraphql` operations. They are not part of Atlassian's
    /// published API and may change without notice; use them only when the operator opted in.
    pub fn undocumented(&self) -> Undocumented<'_> {
        Undocumented { client: self }
    }
}

/// The undocumented `/cgraphql` calls (see [`Client::undocumented`]).
#[derive(Debug, Clone, Copy)]
pub struct Undocumented<'a> {
    client: &'a Client,
}

const GUEST_DATA_QUERY: &str = "query GuestDataQuery($first: Int, $after: String, $spaceAssignmentType: SpaceAssignmentType) {
  externalCollaboratorsByCriteria(first: $first, after: $after, spaceAssignmentType: $spaceAssignmentType) {
    nodes { accountId email name spaces { id key name } }
    pageInfo { hasNextPage endCursor }
  }
}";

const RESET_EXCO_MUTATION: &str =
    "mutation ResetExCoSpacePermissionsMutation($accountId: ID!, $spaceKey: String!) {
  resetExCoSpacePermissions(accountId: $accountId, spaceKey: $spaceKey) {
    success
    errors { message extensions { statusCode errorType } }
  }
}";

#[derive(Deserialize)]
#[serde(bound = "T: serde::de::DeserializeOwned")]
struct GqlAnswer<T> {
    #[serde(default)]
    data: Option<T>,
    #[serde(default)]
    errors: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuestData {
    external_collaborators_by_criteria: Option<GuestConnection>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuestConnection {
    #[serde(default)]
    nodes: Vec<Guest>,
    #[serde(default)]
    page_info: Option<PageInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    #[serde(default)]
    has_next_page: bool,
    #[serde(default)]
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetData {
    reset_ex_co_space_permissions: Option<MutationOutcome>,
}

fn gql_errors(path: &str, errors: Option<Vec<Value>>) -> Result<()> {
    match errors {
        Some(e) if !e.is_empty() => Err(Error::BadRequest {
            status: 200,
            path: path.to_owned(),
            message: e
                .iter()
                .map(|e| {
                    e.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("GraphQL error")
                        .to_owned()
                })
                .collect::<Vec<_>>()
                .join("; "),
        }),
        _ => Ok(()),
    }
}

impl Undocumented<'_> {
    fn url(&self, op: &str) -> url::Url {
        let mut url = self.client.url(&["cgraphql"]);
        url.query_pairs_mut().append_pair("q", op);
        url
    }

    /// `POST /cgraphql?q=GuestDataQuery`: guests (external collaborators), only those without
    /// a space when `unassigned_only`. Follows `pageInfo.endCursor`. Read-only.
    pub fn guest_data_query(&self, unassigned_only: bool) -> Paged<Guest> {
        let client = self.client.clone();
        let url = self.url("GuestDataQuery");
        Box::pin(async_stream::try_stream! {
            let mut after: Option<String> = None;
            loop {
                let mut vars = json!({ "first": 100, "after": after });
                if unassigned_only {
                    vars["spaceAssignmentType"] = json!("UNASSIGNED");
                }
                let call = Call::with_json(
                    Method::POST,
                    "POST /cgraphql?q=GuestDataQuery",
                    url.clone(),
                    &json!({
                        "operationName": "GuestDataQuery",
                        "query": GUEST_DATA_QUERY,
                        "variables": vars,
                    }),
                    Idempotency::Idempotent,
                    SITE_ADMIN,
                )?;
                let a: GqlAnswer<GuestData> = client.json(call).await?;
                gql_errors(url.path(), a.errors)?;
                let conn = a
                    .data
                    .and_then(|d| d.external_collaborators_by_criteria)
                    .ok_or_else(|| Error::InvalidResponse {
                        path: url.path().to_owned(),
                        message: "no data.externalCollaboratorsByCriteria".into(),
                    })?;
                let next = match conn.page_info {
                    Some(PageInfo { has_next_page: true, end_cursor: Some(c) })
                        if after.as_deref() != Some(c.as_str()) => Some(c),
                    _ => None,
                };
                for g in conn.nodes {
                    yield g;
                }
                match next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
        })
    }

    /// `POST /cgraphql?q=ResetExCoSpacePermissionsMutation`: assigns a guest's single space.
    /// A write: retried only when refused before acting. GraphQL-level errors become
    /// [`Error::BadRequest`]; a `success:false` outcome is returned as is.
    pub async fn reset_ex_co_space_permissions(
        &self,
        account_id: &str,
        space_key: &str,
    ) -> Result<MutationOutcome> {
        let url = self.url("ResetExCoSpacePermissionsMutation");
        let call = Call::with_json(
            Method::POST,
            "POST /cgraphql?q=ResetExCoSpacePermissionsMutation",
            url.clone(),
            &json!({
                "operationName": "ResetExCoSpacePermissionsMutation",
                "query": RESET_EXCO_MUTATION,
                "variables": { "accountId": account_id, "spaceKey": space_key },
            }),
            Idempotency::Write,
            SITE_ADMIN,
        )?;
        let a: GqlAnswer<ResetData> = self.client.json(call).await?;
        gql_errors(url.path(), a.errors)?;
        a.data
            .and_then(|d| d.reset_ex_co_space_permissions)
            .ok_or_else(|| Error::InvalidResponse {
                path: url.path().to_owned(),
                message: "no data.resetExCoSpacePermissions".into(),
            })
    }
}
