//! The library: the only way handlers read the mirror. Every method takes a `&Viewer`, which
//! only `kbgate_policy::Policy` can make, and filters by it; the store handle is private to
//! this module, so a handler that skips the gate has nothing to read with.
//!
//! Rules applied here (ARCHITECTURE.md, S1 and S2):
//! - a space is visible when the viewer has a grant for its key;
//! - a page when its space is granted, its labels pass the grant's filter, and it has no read
//!   restriction on itself or an ancestor (`effective_restricted`);
//! - breadcrumbs and trees only ever name readable pages (an unreadable ancestor is skipped
//!   and its readable descendants are attached to the nearest readable ancestor);
//! - attachments and search hits are served only for readable pages.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kbgate_policy::{LabelFilter, SpaceGrant, SpaceKey, Viewer};
use kbgate_store::{
    AttachmentRecord, BlobReader, Heading, PageRecord, PageSummary, ScopeEntry, SearchHit,
    SpaceRecord, Store, StoreError,
};

use crate::access::{self, may_read};
use crate::changes::ChangeWatch;
use crate::error::Error;
use crate::html::{self, TreeNode};
use crate::spliced::Spliced;

/// Read access to the mirror, for one viewer at a time.
///
/// There is no way around the gate: every read needs a `Viewer`, and the store inside is
/// private, so neither of these compiles:
///
/// ```compile_fail
/// async fn no_viewer(lib: &kbgate_server::Library) {
///     let _ = lib.page("1001").await; // a Viewer is required
/// }
/// ```
///
/// ```compile_fail
/// fn raw_store(state: &kbgate_server::AppState) {
///     let _ = &state.library().store; // private: handlers cannot reach the store
/// }
/// ```
pub(crate) struct Library {
    store: Arc<dyn Store>,
    watch: Arc<ChangeWatch>,
    summaries: SummaryCache,
    views: ViewCache,
}

/// Per space, the page summaries (hierarchy, labels, restriction flags — no bodies) as of the
/// mirror's change stamp, and the trees built from them per label filter. Every page view
/// needs the space's tree; reading and walking thousands of summary rows per view is what made
/// views slow. A sync that commits — from this process or another, e.g. `kbgate sync` from
/// cron — moves the stamp, so it is seen on the next request (see [`crate::changes`]). A tree
/// depends on the viewer only through the space's label filter (restricted pages are hidden
/// for everyone), so viewers with the same filter share it.
type SummaryCache = std::sync::Mutex<HashMap<String, CachedSpace>>;

struct CachedSpace {
    /// The mirror change stamp the summaries were read under.
    at: i64,
    summaries: Arc<Vec<PageSummary>>,
    /// By the viewer's label filter for the space.
    trees: HashMap<LabelFilter, Arc<Vec<TreeNode>>>,
}

/// Resolved page views, by mirror change stamp, page and the viewer's whole reach (every
/// grant: a view names other pages, spaces and labels only as the reach allows, and depends on
/// nothing else of the viewer). Bounded in bytes; entries of an older stamp are never hit
/// again and age out.
type ViewCache = quick_cache::sync::Cache<ViewKey, Arc<PageView>, ViewWeight>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct ViewKey {
    mirror: i64,
    page_id: String,
    reach: Arc<[SpaceGrant]>,
}

#[derive(Clone)]
struct ViewWeight;

impl quick_cache::Weighter<ViewKey, Arc<PageView>> for ViewWeight {
    fn weight(&self, key: &ViewKey, view: &Arc<PageView>) -> u64 {
        (key.page_id.len() + view.approx_bytes()) as u64
    }
}

/// A page the viewer may read, with what its view needs.
#[derive(Debug, Clone)]
pub(crate) struct PageView {
    pub page: PageRecord,
    pub space: SpaceRecord,
    /// Readable ancestors, root first.
    pub crumbs: Vec<PageSummary>,
    /// The body, resolved for this viewer (links, includes and children lists only name
    /// readable pages).
    pub html: String,
    pub headings: Vec<Heading>,
    pub attachments: Vec<AttachmentRecord>,
    /// The sidebar: the page's neighbourhood of the viewer's tree, as HTML.
    pub sidebar_html: String,
    /// The sidebar left entries out (it links to the space's whole tree then).
    pub sidebar_cut: bool,
    /// The HTML page of this view, the same for every viewer of its reach but for the
    /// header's person fields; rendered on first use (see `pages::page`).
    pub(crate) rendered: std::sync::OnceLock<Option<Spliced>>,
}

impl PageView {
    /// The attachments a viewer can download (those whose file was mirrored).
    pub(crate) fn downloads(&self) -> impl Iterator<Item = &AttachmentRecord> {
        self.attachments.iter().filter(|a| a.blob.is_some())
    }

    /// Roughly the heap bytes it holds (the cache's weight). The raw bodies are dropped
    /// before a view is cached; the rendered page is filled in later and counted up front
    /// (about the body and the sidebar again, plus the page frame).
    fn approx_bytes(&self) -> usize {
        let p = &self.page;
        let rendered = 4096 + self.html.len() + self.sidebar_html.len();
        512 + rendered
            + self.html.len()
            + self.sidebar_html.len()
            + p.title.len()
            + p.labels.iter().map(|l| l.len() + 24).sum::<usize>()
            + self
                .crumbs
                .iter()
                .map(|c| c.title.len() + 128)
                .sum::<usize>()
            + self
                .headings
                .iter()
                .map(|h| h.text.len() + h.anchor.len() + 64)
                .sum::<usize>()
            + self
                .attachments
                .iter()
                .map(|a| a.title.len() + 256)
                .sum::<usize>()
    }
}

/// A search hit the viewer may see.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub hit: SearchHit,
    pub space_key: String,
}

/// An attachment the viewer may download, with its bytes opened.
pub(crate) struct Download {
    pub attachment: AttachmentRecord,
    pub file: BlobReader,
}

fn store_err(e: StoreError) -> Error {
    Error::internal(e)
}

fn may_read_space(viewer: &Viewer, space: &SpaceRecord) -> bool {
    SpaceKey::parse(&space.key).is_ok_and(|k| viewer.may_read_space(&k))
}

impl Library {
    pub(crate) fn new(store: Arc<dyn Store>, watch: Arc<ChangeWatch>, view_bytes: u64) -> Library {
        // Typical views weigh 10–30 KB; the estimate only sizes the table.
        let items = usize::try_from(view_bytes / 16_384)
            .unwrap_or(usize::MAX)
            .max(16);
        Library {
            store,
            watch,
            summaries: SummaryCache::default(),
            views: ViewCache::with_weighter(items, view_bytes.max(1), ViewWeight),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedSpace>> {
        self.summaries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mirror's change stamp as of this request.
    async fn stamp(&self) -> Result<i64, Error> {
        Ok(self.watch.current().await?.mirror)
    }

    /// The space's page summaries, from the cache while no sync has committed since.
    async fn space_summaries(
        &self,
        space: &SpaceRecord,
        stamp: i64,
    ) -> Result<Arc<Vec<PageSummary>>, Error> {
        if let Some(c) = self.cache().get(&space.id).filter(|c| c.at == stamp) {
            return Ok(c.summaries.clone());
        }
        // Read after the stamp: rows at least as new as the stamp they are filed under (a
        // commit in between only makes the next request miss and re-read).
        let all = Arc::new(
            self.store
                .page_summaries(&space.id)
                .await
                .map_err(store_err)?,
        );
        self.cache().insert(
            space.id.clone(),
            CachedSpace {
                at: stamp,
                summaries: all.clone(),
                trees: HashMap::new(),
            },
        );
        Ok(all)
    }

    pub(crate) fn clear_cache(&self) {
        self.cache().clear();
        self.views.clear();
    }

    /// Whether the store answers (for `/readyz`); reveals no content.
    pub(crate) async fn ready(&self) -> bool {
        self.store.list_spaces().await.is_ok()
    }

    /// The mirrored spaces the viewer may read, by key.
    pub(crate) async fn spaces(&self, viewer: &Viewer) -> Result<Vec<SpaceRecord>, Error> {
        let all = self.store.list_spaces().await.map_err(store_err)?;
        Ok(all
            .into_iter()
            .filter(|s| may_read_space(viewer, s))
            .collect())
    }

    /// A space by key, if the viewer may read it.
    pub(crate) async fn space(
        &self,
        viewer: &Viewer,
        key: &str,
    ) -> Result<Option<SpaceRecord>, Error> {
        let Ok(k) = SpaceKey::parse(key) else {
            return Ok(None);
        };
        if !viewer.may_read_space(&k) {
            return Ok(None);
        }
        self.store.space_by_key(key).await.map_err(store_err)
    }

    /// The viewer's page tree of a space.
    pub(crate) async fn tree(
        &self,
        viewer: &Viewer,
        space: &SpaceRecord,
    ) -> Result<Arc<Vec<TreeNode>>, Error> {
        let stamp = self.stamp().await?;
        self.tree_at(viewer, space, stamp).await
    }

    async fn tree_at(
        &self,
        viewer: &Viewer,
        space: &SpaceRecord,
        stamp: i64,
    ) -> Result<Arc<Vec<TreeNode>>, Error> {
        let filter = match SpaceKey::parse(&space.key) {
            Ok(k) => viewer.grant_for(&k).cloned(),
            Err(_) => None,
        };
        let Some(filter) = filter else {
            return Ok(Arc::new(Vec::new()));
        };
        if let Some(t) = self
            .cache()
            .get(&space.id)
            .filter(|c| c.at == stamp)
            .and_then(|c| c.trees.get(&filter))
        {
            return Ok(t.clone());
        }
        let all = self.space_summaries(space, stamp).await?;
        let tree = Arc::new(build_tree(viewer, &space.key, &all));
        if let Some(c) = self
            .cache()
            .get_mut(&space.id)
            .filter(|c| c.at == stamp && Arc::ptr_eq(&c.summaries, &all))
        {
            c.trees.insert(filter, tree.clone());
        }
        Ok(tree)
    }

    /// A page, if the viewer may read it (otherwise `None`: existence is not revealed).
    ///
    /// Resolved views are cached by mirror change stamp, page and the viewer's reach, so a
    /// repeated view reads nothing from the store; any sync commit moves the stamp.
    pub(crate) async fn page(
        &self,
        viewer: &Viewer,
        id: &str,
    ) -> Result<Option<Arc<PageView>>, Error> {
        if !is_plausible_id(id) {
            return Ok(None);
        }
        let key = ViewKey {
            mirror: self.stamp().await?,
            page_id: id.to_owned(),
            reach: viewer.reach(),
        };
        if let Some(view) = self.views.get(&key) {
            return Ok(Some(view));
        }
        let Some(view) = self.load_page(viewer, id, key.mirror).await? else {
            return Ok(None);
        };
        let view = Arc::new(view);
        self.views.insert(key, view.clone());
        Ok(Some(view))
    }

    /// [`Library::page`] from the store. The stamp was read before anything else, so what is
    /// read here is at least as new as the stamp it is filed under.
    async fn load_page(
        &self,
        viewer: &Viewer,
        id: &str,
        stamp: i64,
    ) -> Result<Option<PageView>, Error> {
        let Some(page) = self.store.page(id).await.map_err(store_err)? else {
            return Ok(None);
        };
        let Some(space) = self.store.space(&page.space_id).await.map_err(store_err)? else {
            return Ok(None);
        };
        if !may_read(viewer, &space.key, &page.labels, page.effective_restricted) {
            return Ok(None);
        }
        let ancestors = self.store.ancestors(id).await.map_err(store_err)?;
        // An ancestor with a restriction makes the page restricted too; the store computes
        // that, but re-check here so a stale flag can never expose a page.
        if ancestors.iter().any(|a| a.effective_restricted) {
            return Ok(None);
        }
        let crumbs = ancestors
            .into_iter()
            .filter(|a| may_read(viewer, &space.key, &a.labels, a.effective_restricted))
            .collect();
        let attachments = self.store.attachments(id).await.map_err(store_err)?;
        let html = self.render_for(viewer, &page, &space).await?;
        let tree = self.tree_at(viewer, &space, stamp).await?;
        let (local, sidebar_cut) = html::local_tree(&tree, &page.id);
        let sidebar_html = html::tree_html(&local, Some(&page.id));
        let mut page = page;
        let headings = std::mem::take(&mut page.headings);
        // The bodies are in `html`, resolved for this viewer; the raw ones are not kept.
        page.body_storage = String::new();
        page.body_html = String::new();
        page.body_text = String::new();
        Ok(Some(PageView {
            page,
            space,
            crumbs,
            html,
            headings,
            attachments,
            sidebar_html,
            sidebar_cut,
            rendered: std::sync::OnceLock::new(),
        }))
    }

    /// Resolves the page's stored template for this viewer: links, includes, excerpts,
    /// children lists and other pages' attachments only name what the viewer may read
    /// (see [`crate::access`]). `page` must already be known readable by `viewer`.
    async fn render_for(
        &self,
        viewer: &Viewer,
        page: &PageRecord,
        space: &SpaceRecord,
    ) -> Result<String, Error> {
        let snapshot = access::gather(&*self.store, viewer, page, space)
            .await
            .map_err(store_err)?;
        Ok(access::render(page, &snapshot))
    }

    /// Whether the viewer may read the page with this id (cheap check, no bodies).
    async fn readable_summary(
        &self,
        viewer: &Viewer,
        page_id: &str,
    ) -> Result<Option<PageSummary>, Error> {
        if !is_plausible_id(page_id) {
            return Ok(None);
        }
        let Some(p) = self.store.page_summary(page_id).await.map_err(store_err)? else {
            return Ok(None);
        };
        let Some(space) = self.store.space(&p.space_id).await.map_err(store_err)? else {
            return Ok(None);
        };
        Ok(may_read(viewer, &space.key, &p.labels, p.effective_restricted).then_some(p))
    }

    /// An attachment of a readable page, by file name, with its bytes opened.
    pub(crate) async fn attachment_by_name(
        &self,
        viewer: &Viewer,
        page_id: &str,
        file_name: &str,
    ) -> Result<Option<Download>, Error> {
        if self.readable_summary(viewer, page_id).await?.is_none() {
            return Ok(None);
        }
        let Some(att) = self
            .store
            .attachment_by_name(page_id, file_name)
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        self.open(att).await
    }

    /// An attachment by id, if its page is readable, with its bytes opened.
    pub(crate) async fn attachment_by_id(
        &self,
        viewer: &Viewer,
        id: &str,
    ) -> Result<Option<Download>, Error> {
        if !is_plausible_id(id) {
            return Ok(None);
        }
        let Some(att) = self.store.attachment(id).await.map_err(store_err)? else {
            return Ok(None);
        };
        if self.readable_summary(viewer, &att.page_id).await?.is_none() {
            return Ok(None);
        }
        self.open(att).await
    }

    async fn open(&self, att: AttachmentRecord) -> Result<Option<Download>, Error> {
        let Some(blob) = &att.blob else {
            return Ok(None);
        };
        let file = match self.store.blobs().open(blob).await {
            Ok(file) => file,
            // The mirror lists the file but its bytes are gone from the blob store (someone
            // deleted them): 503, not 404 — the file exists and this viewer may read it, the
            // next sync downloads it again, and a 404 would tell browsers, caches and link
            // checkers that it is gone for good. Not a 500 either: nothing here is a bug,
            // and the log line says what to do.
            Err(StoreError::BlobMissing(hash)) => {
                tracing::warn!(
                    attachment = %att.id,
                    blob = %hash,
                    "attachment bytes missing from the blob store; the next sync downloads them again"
                );
                return Err(Error::Unavailable);
            }
            Err(e) => return Err(store_err(e)),
        };
        Ok(Some(Download {
            attachment: att,
            file,
        }))
    }

    /// Full-text search over what the viewer may read.
    pub(crate) async fn search(
        &self,
        viewer: &Viewer,
        query: &str,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Hit>, bool), Error> {
        let spaces = self.store.list_spaces().await.map_err(store_err)?;
        let by_key: HashMap<&str, &SpaceRecord> =
            spaces.iter().map(|s| (s.key.as_str(), s)).collect();
        let mut scope = Vec::new();
        for g in viewer.grants() {
            let Some(space) = by_key.get(g.space_key.as_str()) else {
                continue;
            };
            let labels = match &g.labels {
                LabelFilter::All => None,
                LabelFilter::AnyOf(set) => {
                    Some(set.iter().map(|l| l.as_str().to_owned()).collect())
                }
            };
            scope.push(ScopeEntry {
                space_id: space.id.clone(),
                labels,
            });
        }
        if scope.is_empty() {
            return Ok((Vec::new(), false));
        }
        let results = self
            .store
            .search(query, &scope, limit, offset)
            .await
            .map_err(store_err)?;
        // Defence in depth: re-check every hit against the viewer with one extra query.
        let ids: Vec<String> = results.hits.iter().map(|h| h.page_id.clone()).collect();
        let summaries = self
            .store
            .page_summaries_by_ids(&ids)
            .await
            .map_err(store_err)?;
        let key_of: HashMap<&str, &str> = spaces
            .iter()
            .map(|s| (s.id.as_str(), s.key.as_str()))
            .collect();
        let readable: HashSet<&str> = summaries
            .iter()
            .filter(|p| {
                key_of
                    .get(p.space_id.as_str())
                    .is_some_and(|k| may_read(viewer, k, &p.labels, p.effective_restricted))
            })
            .map(|p| p.id.as_str())
            .collect();
        let hits = results
            .hits
            .into_iter()
            .filter(|h| readable.contains(h.page_id.as_str()))
            .filter_map(|h| {
                let space_key = key_of.get(h.space_id.as_str())?.to_string();
                Some(Hit { hit: h, space_key })
            })
            .collect();
        Ok((hits, results.has_more))
    }
}

/// Confluence ids are numeric; anything else cannot exist, so skip the store round trip.
fn is_plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Builds the viewer's tree from a space's summaries.
fn build_tree(viewer: &Viewer, space_key: &str, all: &[PageSummary]) -> Vec<TreeNode> {
    let parent_of: HashMap<&str, &str> = all
        .iter()
        .filter_map(|p| Some((p.id.as_str(), p.parent_id.as_deref()?)))
        .collect();
    let readable: HashSet<&str> = all
        .iter()
        .filter(|p| may_read(viewer, space_key, &p.labels, p.effective_restricted))
        .map(|p| p.id.as_str())
        .collect();
    // Restricted pages hide their whole subtree (restrictions inherit), even if a stale
    // descendant flag says otherwise.
    let restricted: HashSet<&str> = all
        .iter()
        .filter(|p| p.effective_restricted)
        .map(|p| p.id.as_str())
        .collect();
    let mut children: HashMap<Option<&str>, Vec<&PageSummary>> = HashMap::new();
    for p in all {
        if !readable.contains(p.id.as_str()) {
            continue;
        }
        match walk_up(&parent_of, &readable, &restricted, &p.id) {
            Walk::Restricted => {}
            Walk::Parent(parent) => children.entry(parent).or_default().push(p),
        }
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| (a.position, &a.title, &a.id).cmp(&(b.position, &b.title, &b.id)));
    }
    build_level(None, &children, 0)
}

enum Walk<'a> {
    /// Under a restricted ancestor (or a cycle): hidden.
    Restricted,
    /// The nearest readable ancestor, or `None` for the top level.
    Parent(Option<&'a str>),
}

fn walk_up<'a>(
    parent_of: &HashMap<&'a str, &'a str>,
    readable: &HashSet<&'a str>,
    restricted: &HashSet<&'a str>,
    id: &'a str,
) -> Walk<'a> {
    let mut nearest: Option<&'a str> = None;
    let mut cur = id;
    for _ in 0..10_000 {
        let Some(&parent) = parent_of.get(cur) else {
            return Walk::Parent(nearest);
        };
        if restricted.contains(parent) {
            return Walk::Restricted;
        }
        if nearest.is_none() && readable.contains(parent) {
            nearest = Some(parent);
        }
        cur = parent;
    }
    Walk::Restricted // a cycle: fail closed
}

fn build_level(
    parent: Option<&str>,
    children: &HashMap<Option<&str>, Vec<&PageSummary>>,
    depth: usize,
) -> Vec<TreeNode> {
    if depth > 200 {
        return Vec::new();
    }
    children
        .get(&parent)
        .map(|list| {
            list.iter()
                .map(|p| TreeNode {
                    id: p.id.clone(),
                    title: p.title.clone(),
                    children: build_level(Some(p.id.as_str()), children, depth + 1),
                })
                .collect()
        })
        .unwrap_or_default()
}
