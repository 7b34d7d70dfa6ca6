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
use std::sync::atomic::{AtomicU64, Ordering};

use kbgate_policy::{Label, LabelFilter, SpaceGrant, SpaceKey, Viewer};
use kbgate_store::{
    AttachmentRecord, BlobReader, Heading, MatchCount, PageRecord, PageSummary, ScopeEntry,
    SearchHit, SpaceIcon, SpaceRecord, Store, StoreError,
};

use crate::access::{self, may_read};
use crate::changes::{ChangeWatch, SpaceStamps};
use crate::error::Error;
use crate::html::{self, TreeNode};
use crate::lexicon::{Lexicon, TitleEntry};
use crate::spliced::Spliced;
use quick_cache::sync::GuardResult;

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
    latest: LatestViews,
    lexicons: LexiconCache,
    builds: Builds,
    content: access::ContentSettings,
}

/// How often each cached value was built (not found in the cache): what the single-flight and
/// per-space invalidation tests count.
#[derive(Default)]
struct Builds {
    summaries: AtomicU64,
    trees: AtomicU64,
    views: AtomicU64,
}

/// A value built once per key: concurrent cold requests wait for the one build (single
/// flight); a failed build leaves the cell empty for the next request to try.
type Cell<T> = Arc<tokio::sync::OnceCell<T>>;

/// Per space, the page summaries (hierarchy, labels, restriction flags — no bodies) as of the
/// space's *shape* stamp ([`kbgate_store::SpaceStamp`]), and the trees and indexes built from
/// them per label filter. Every page view needs the space's tree; reading and walking
/// thousands of summary rows per view is what made views slow. A sync commit that changed
/// the space's shape — from this process or another, e.g. `kbgate sync` from cron — moves the
/// stamp, so it is seen on the next request (see [`crate::changes`]); a commit that changed
/// nothing, only bodies or attachments, or another space, keeps the entry. A tree depends on
/// the viewer only through the space's label filter (restricted pages are hidden for
/// everyone), so viewers with the same filter share it.
///
/// Stale trees are never served (ARCHITECTURE.md, S1 and S2): once a request has seen a new
/// shape stamp, it waits for the tree of that stamp, built once (single flight).
type SummaryCache = std::sync::Mutex<HashMap<String, CachedSpace>>;

struct CachedSpace {
    /// The space's shape stamp the summaries were read under.
    at: i64,
    summaries: Cell<Arc<Vec<PageSummary>>>,
    /// By the viewer's label filter for the space.
    trees: HashMap<LabelFilter, Cell<Arc<Vec<TreeNode>>>>,
    /// The space index by label filter and the node it starts under (`None`: the top).
    indexes: HashMap<IndexKey, Cell<Option<Arc<SpaceIndex>>>>,
    /// The most recently updated readable pages, by label filter (the start page), with the
    /// content stamp they were read under (dates move with body edits, which keep the
    /// shape).
    recent: HashMap<LabelFilter, (i64, Arc<Vec<RecentPage>>)>,
}

/// A recently updated page of a viewer's tree (the start page's list).
#[derive(Debug, Clone)]
pub(crate) struct RecentPage {
    pub id: String,
    pub title: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub space_name: String,
}

/// A space index's label filter and the node it starts under (`None`: the top).
type IndexKey = (LabelFilter, Option<String>);

/// Most space indexes kept per space and stamp (one per label filter and starting node); more
/// are built per request.
const INDEXES_PER_SPACE: usize = 1024;

impl CachedSpace {
    fn new(at: i64) -> CachedSpace {
        CachedSpace {
            at,
            summaries: Cell::default(),
            trees: HashMap::new(),
            indexes: HashMap::new(),
            recent: HashMap::new(),
        }
    }
}

/// Resolved page views, by page, the viewer's whole reach (every grant: a view names other
/// pages, spaces and labels only as the reach allows, and depends on nothing else of the
/// viewer) and the content stamps of the reach's spaces (a view can name pages of any of
/// them: links, includes, excerpts). A commit to a space outside the reach keeps the view.
/// Bounded in bytes; entries of older stamps are never hit again and age out.
type ViewCache = quick_cache::sync::Cache<ViewKey, Arc<PageView>, ViewWeight>;

/// The last view built per page and reach, with the stamps it was built under: served while
/// another request builds the view of newer stamps, but only when the reach's *shape* stamps
/// are still the same — then the commits in between changed bodies and attachments only, so
/// the previous view names no page, title or label the new one would hide and shows no page
/// that became unreadable (ARCHITECTURE.md, S1 and S2; [`kbgate_store::SpaceStamp`]). A body
/// edit thus costs its readers nothing while one request rebuilds; a restriction makes every
/// request wait for the new view. It shares its views with [`ViewCache`] and is bounded to
/// half its bytes.
type LatestViews = quick_cache::sync::Cache<LatestKey, Arc<BuiltAt>, LatestWeight>;

/// A page and a reach (see [`ViewKey`]).
type LatestKey = (String, Arc<[SpaceGrant]>);

/// A view with the stamps of the reach's spaces it was built under.
struct BuiltAt {
    view: Arc<PageView>,
    content: Arc<[i64]>,
    shapes: Arc<[i64]>,
}

#[derive(Clone)]
struct LatestWeight;

impl quick_cache::Weighter<LatestKey, Arc<BuiltAt>> for LatestWeight {
    fn weight(&self, key: &LatestKey, built: &Arc<BuiltAt>) -> u64 {
        (key.0.len() + built.view.approx_bytes()) as u64
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct ViewKey {
    /// The content stamp of each space of `reach`, in its order.
    stamps: Arc<[i64]>,
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

/// The view cache's key of page `id` for `viewer` at `stamps`, and the shape stamps of the
/// viewer's reach (in the same order).
fn view_key(stamps: &SpaceStamps, viewer: &Viewer, id: &str) -> (ViewKey, Arc<[i64]>) {
    let reach = viewer.reach();
    let shapes = reach
        .iter()
        .map(|g| stamps.shape_of(g.space_key.as_str()))
        .collect();
    let key = ViewKey {
        stamps: reach
            .iter()
            .map(|g| stamps.of(g.space_key.as_str()))
            .collect(),
        page_id: id.to_owned(),
        reach,
    };
    (key, shapes)
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
    /// The space home this page is the home page of (same sharing as `rendered`: the
    /// reach fixes the space's label filter, so the index too); see `pages::space`.
    pub(crate) home_rendered: std::sync::OnceLock<Option<Spliced>>,
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

/// The space index of one viewer's label filter, from the top of the space or from a node.
#[derive(Debug)]
pub(crate) struct SpaceIndex {
    /// The node the index starts under (`None`: the top) with its readable ancestors, root
    /// first.
    pub under: Option<IndexStart>,
    /// The first levels as nested lists (empty: no readable page).
    pub html: String,
    /// The HTML page of this index, the same for every viewer of its label filter but for
    /// the header's person fields; rendered on first use (see `pages::space`).
    pub(crate) rendered: std::sync::OnceLock<Option<Spliced>>,
}

/// Where a space index starts: a readable page and its readable ancestors.
#[derive(Debug)]
pub(crate) struct IndexStart {
    pub id: String,
    pub title: String,
    /// `(id, title)`, root first.
    pub ancestors: Vec<(String, String)>,
}

impl SpaceIndex {
    /// The index of `tree` (a viewer's tree: readable pages only) from the top or from the
    /// node `under`; `None` when `under` is not in the tree.
    fn build(space_key: &str, tree: &[TreeNode], under: Option<&str>) -> Option<SpaceIndex> {
        let (nodes, start) = match under {
            None => (tree, None),
            Some(id) => {
                let mut path = Vec::new();
                let node = html::find_path(tree, id, &mut path)?;
                let start = IndexStart {
                    id: node.id.clone(),
                    title: node.title.clone(),
                    ancestors: path
                        .into_iter()
                        .map(|n| (n.id.clone(), n.title.clone()))
                        .collect(),
                };
                (node.children.as_slice(), Some(start))
            }
        };
        Some(SpaceIndex {
            under: start,
            html: html::index_html(nodes, space_key),
            rendered: std::sync::OnceLock::new(),
        })
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
            latest: LatestViews::with_weighter(
                (items / 2).max(16),
                (view_bytes / 2).max(1),
                LatestWeight,
            ),
            lexicons: LexiconCache::with_weighter(64, LEXICON_BYTES, LexiconWeight),
            builds: Builds::default(),
            content: access::ContentSettings::default(),
        }
    }

    /// Where Jira keys link and whether mentions show names (default: plain keys, no names).
    pub(crate) fn with_content(mut self, content: access::ContentSettings) -> Library {
        self.content = content;
        self
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedSpace>> {
        self.summaries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cache entry of a space at shape stamp `stamp`, made (or renewed from an older
    /// stamp) on first use; `f` picks what the request needs out of it. A request that read an
    /// older stamp than the entry's gets a fresh, unshared entry (its reads are newer anyway).
    fn with_entry<T>(
        &self,
        space: &SpaceRecord,
        stamp: i64,
        f: impl FnOnce(&mut CachedSpace) -> T,
    ) -> T {
        let mut cache = self.cache();
        let entry = cache
            .entry(space.id.clone())
            .or_insert_with(|| CachedSpace::new(stamp));
        if entry.at < stamp {
            *entry = CachedSpace::new(stamp);
        }
        if entry.at == stamp {
            f(entry)
        } else {
            f(&mut CachedSpace::new(stamp))
        }
    }

    pub(crate) fn clear_cache(&self) {
        self.cache().clear();
        self.views.clear();
        self.latest.clear();
        self.lexicons.clear();
    }

    /// How many summaries, trees and views were built (single-flight and invalidation tests).
    #[cfg(test)]
    fn builds(&self) -> (u64, u64, u64) {
        let b = &self.builds;
        (
            b.summaries.load(Ordering::Relaxed),
            b.trees.load(Ordering::Relaxed),
            b.views.load(Ordering::Relaxed),
        )
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

    /// A space's icon and its bytes, if the viewer may read the space (the same gate as the
    /// space's home: a space outside the viewer's reach has no icon, 404) and it has one.
    pub(crate) async fn space_icon(
        &self,
        viewer: &Viewer,
        key: &str,
    ) -> Result<Option<(SpaceIcon, BlobReader)>, Error> {
        let Some(icon) = self.space(viewer, key).await?.and_then(|s| s.icon) else {
            return Ok(None);
        };
        match self.store.blobs().open(&icon.blob).await {
            Ok(file) => Ok(Some((icon, file))),
            // Gone from the blob store: the next sync downloads it again (its path is the
            // same, but the sync checks the bytes are there). The card shows no image.
            Err(StoreError::BlobMissing(hash)) => {
                tracing::warn!(space = %key, blob = %hash, "space icon missing from the blob store");
                Ok(None)
            }
            Err(e) => Err(store_err(e)),
        }
    }

    /// The viewer's page tree of a space.
    pub(crate) async fn tree(
        &self,
        viewer: &Viewer,
        space: &SpaceRecord,
    ) -> Result<Arc<Vec<TreeNode>>, Error> {
        let stamps = self.watch.spaces().await?;
        self.tree_at(viewer, space, stamps.shape_of(&space.key))
            .await
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
        let (summaries, tree) = self.with_entry(space, stamp, |e| {
            (
                e.summaries.clone(),
                e.trees.entry(filter.clone()).or_default().clone(),
            )
        });
        crate::telemetry::cache_lookup("tree", tree.initialized());
        let tree = tree
            .get_or_try_init(|| async {
                // Read after the stamp: rows at least as new as the stamp they are filed
                // under (a commit in between only makes the next request miss and re-read).
                let all = summaries
                    .get_or_try_init(|| async {
                        self.builds.summaries.fetch_add(1, Ordering::Relaxed);
                        let all = self
                            .store
                            .page_summaries(&space.id)
                            .await
                            .map_err(store_err)?;
                        Ok::<_, Error>(Arc::new(all))
                    })
                    .await?;
                self.builds.trees.fetch_add(1, Ordering::Relaxed);
                Ok::<_, Error>(Arc::new(build_tree(viewer, &space.key, all)))
            })
            .await?;
        Ok(tree.clone())
    }

    /// The space index for the viewer: the first [`html::INDEX_LEVELS`] levels of its tree
    /// of the space, from the top or from the node `under` (a readable page of the tree;
    /// `None` when it is not one). Deeper levels are links to the index under their node, so
    /// a 10,000-page space is not sent whole; each is built once per stamp and label filter.
    pub(crate) async fn space_index(
        &self,
        viewer: &Viewer,
        space: &SpaceRecord,
        under: Option<&str>,
    ) -> Result<Option<Arc<SpaceIndex>>, Error> {
        if under.is_some_and(|id| !is_plausible_id(id)) {
            return Ok(None);
        }
        let Some(filter) = SpaceKey::parse(&space.key)
            .ok()
            .and_then(|k| viewer.grant_for(&k).cloned())
        else {
            return Ok(None);
        };
        let stamp = self.watch.spaces().await?.shape_of(&space.key);
        let key = (filter, under.map(str::to_owned));
        let cell = self.with_entry(space, stamp, |e| {
            if e.indexes.len() < INDEXES_PER_SPACE || e.indexes.contains_key(&key) {
                e.indexes.entry(key).or_default().clone()
            } else {
                Cell::default()
            }
        });
        let index = cell
            .get_or_try_init(|| async {
                let tree = self.tree_at(viewer, space, stamp).await?;
                Ok::<_, Error>(SpaceIndex::build(&space.key, &tree, under).map(Arc::new))
            })
            .await?;
        Ok(index.clone())
    }

    /// The `n` most recently updated pages of the given spaces that the viewer may read,
    /// newest first. Taken from the viewer's cached trees (readable pages only, S1 and S2)
    /// and kept per space, label filter and content stamp: the start page reads nothing
    /// from the store until a commit changes the space.
    pub(crate) async fn recent(
        &self,
        viewer: &Viewer,
        spaces: &[SpaceRecord],
        n: usize,
    ) -> Result<Vec<RecentPage>, Error> {
        let stamps = self.watch.spaces().await?;
        let mut all = Vec::new();
        for space in spaces {
            let Some(filter) = SpaceKey::parse(&space.key)
                .ok()
                .and_then(|k| viewer.grant_for(&k).cloned())
            else {
                continue;
            };
            let (shape, content) = (stamps.shape_of(&space.key), stamps.of(&space.key));
            let cached = self.with_entry(space, shape, |e| {
                e.recent
                    .get(&filter)
                    .filter(|(at, _)| *at == content)
                    .map(|(_, l)| l.clone())
            });
            let list = match cached {
                Some(l) => l,
                None => {
                    let tree = self.tree_at(viewer, space, shape).await?;
                    // Read after the stamps: dates at least as new as `content`. The tree's
                    // summaries are those of the shape stamp, whose dates a body edit moved.
                    let summaries = self
                        .store
                        .page_summaries(&space.id)
                        .await
                        .map_err(store_err)?;
                    let list = Arc::new(latest(space, &tree, &summaries, n));
                    self.with_entry(space, shape, |e| {
                        e.recent.insert(filter.clone(), (content, list.clone()))
                    });
                    list
                }
            };
            all.extend(list.iter().cloned());
        }
        all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
        all.truncate(n);
        Ok(all)
    }

    /// A page, if the viewer may read it (otherwise `None`: existence is not revealed).
    ///
    /// Resolved views are cached by page, the viewer's reach and its spaces' content stamps,
    /// so a repeated view reads nothing from the store; concurrent first views of one key are
    /// resolved once, and the others get the previous view meanwhile when the shape stamps
    /// allow it ([`LatestViews`]), or wait for the new one.
    pub(crate) async fn page(
        &self,
        viewer: &Viewer,
        id: &str,
    ) -> Result<Option<Arc<PageView>>, Error> {
        if !is_plausible_id(id) {
            return Ok(None);
        }
        let stamps = self.watch.spaces().await?;
        let (key, shapes) = view_key(&stamps, viewer, id);
        let guard = match self
            .views
            .get_value_or_guard(&key, Some(std::time::Duration::ZERO))
        {
            GuardResult::Value(view) => {
                crate::telemetry::cache_lookup("view", true);
                return Ok(Some(view));
            }
            GuardResult::Guard(guard) => guard,
            // Another request is building this view: the previous one if the shape allows,
            // otherwise wait for it.
            GuardResult::Timeout => {
                if let Some(view) = self.previous(&key, &shapes) {
                    crate::telemetry::cache_lookup("view", true);
                    return Ok(Some(view));
                }
                match self.views.get_value_or_guard_async(&key).await {
                    Ok(view) => {
                        crate::telemetry::cache_lookup("view", true);
                        return Ok(Some(view));
                    }
                    Err(guard) => guard,
                }
            }
        };
        crate::telemetry::cache_lookup("view", false);
        self.builds.views.fetch_add(1, Ordering::Relaxed);
        // A page the viewer may not read is not cached: dropping the guard lets the next
        // waiter look for itself.
        let Some(view) = self.load_page(viewer, id, &stamps).await? else {
            return Ok(None);
        };
        let view = Arc::new(view);
        self.remember(&key, shapes, view.clone());
        let _ = guard.insert(view.clone());
        Ok(Some(view))
    }

    /// The last view built of `key`'s page and reach, if built under the same shape stamps
    /// (see [`LatestViews`]) and not newer content than `key`'s.
    fn previous(&self, key: &ViewKey, shapes: &[i64]) -> Option<Arc<PageView>> {
        let built = self.latest.get(&(key.page_id.clone(), key.reach.clone()))?;
        let older = built
            .content
            .iter()
            .zip(key.stamps.iter())
            .all(|(was, now)| was <= now);
        (*built.shapes == *shapes && older).then(|| built.view.clone())
    }

    /// Files a freshly built view as the latest of its page and reach, unless a view of newer
    /// content is already there.
    fn remember(&self, key: &ViewKey, shapes: Arc<[i64]>, view: Arc<PageView>) {
        let latest_key = (key.page_id.clone(), key.reach.clone());
        if let Some(there) = self.latest.get(&latest_key) {
            let newer = there
                .content
                .iter()
                .zip(key.stamps.iter())
                .any(|(there, mine)| there > mine);
            if newer {
                return;
            }
        }
        self.latest.insert(
            latest_key,
            Arc::new(BuiltAt {
                view,
                content: key.stamps.clone(),
                shapes,
            }),
        );
    }

    /// [`Library::page`] from the store. The stamps were read before anything else, so what
    /// is read here is at least as new as the stamps it is filed under.
    async fn load_page(
        &self,
        viewer: &Viewer,
        id: &str,
        stamps: &SpaceStamps,
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
        let tree = self
            .tree_at(viewer, &space, stamps.shape_of(&space.key))
            .await?;
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
            home_rendered: std::sync::OnceLock::new(),
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
        Ok(access::render(page, snapshot, &self.content))
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

    /// The pages the viewer may read having any of `labels`, across the viewer's spaces, by
    /// title then id, at most `limit` (the help widget's suggestions). Each page is checked
    /// like any other read (ARCHITECTURE.md, S1, S2): space grant, label filter, restrictions.
    pub(crate) async fn pages_with_labels(
        &self,
        viewer: &Viewer,
        labels: &[Label],
        limit: usize,
    ) -> Result<Vec<Hit>, Error> {
        let mut found: Vec<(PageSummary, String)> = Vec::new();
        let mut seen = HashSet::new();
        for space in self.spaces(viewer).await? {
            for label in labels {
                let pages = self
                    .store
                    .pages_with_label(&space.id, label.as_str())
                    .await
                    .map_err(store_err)?;
                for p in pages {
                    if may_read(viewer, &space.key, &p.labels, p.effective_restricted)
                        && seen.insert(p.id.clone())
                    {
                        found.push((p, space.key.clone()));
                    }
                }
            }
        }
        found.sort_by(|a, b| a.0.title.cmp(&b.0.title).then_with(|| a.0.id.cmp(&b.0.id)));
        found.truncate(limit);
        Ok(found
            .into_iter()
            .map(|(p, space_key)| Hit {
                hit: SearchHit {
                    page_id: p.id,
                    space_id: p.space_id,
                    title: p.title,
                    excerpt: String::new(),
                    rank: 0.0,
                },
                space_key,
            })
            .collect())
    }

    /// The scope of a search: the viewer's grants as store scope entries, narrowed by
    /// `filter` (a space key, a label). Narrowing only: a filter naming a space the viewer may
    /// not read, or a label outside the grant's labels, leaves nothing.
    fn search_scope(
        viewer: &Viewer,
        spaces: &[SpaceRecord],
        filter: &SearchFilter,
    ) -> Vec<ScopeEntry> {
        let by_key: HashMap<&str, &SpaceRecord> =
            spaces.iter().map(|s| (s.key.as_str(), s)).collect();
        let mut scope = Vec::new();
        for g in viewer.grants() {
            if filter
                .space
                .as_deref()
                .is_some_and(|k| k != g.space_key.as_str())
            {
                continue;
            }
            let Some(space) = by_key.get(g.space_key.as_str()) else {
                continue;
            };
            let labels = match (&g.labels, &filter.label) {
                (LabelFilter::All, None) => None,
                (LabelFilter::All, Some(l)) => Some(vec![l.clone()]),
                (LabelFilter::AnyOf(set), None) => {
                    Some(set.iter().map(|l| l.as_str().to_owned()).collect())
                }
                (LabelFilter::AnyOf(set), Some(l)) => Some(
                    set.iter()
                        .map(|x| x.as_str())
                        .filter(|x| x == l)
                        .map(str::to_owned)
                        .collect(),
                ),
            };
            if labels.as_ref().is_some_and(Vec::is_empty) {
                continue;
            }
            scope.push(ScopeEntry {
                space_id: space.id.clone(),
                labels,
            });
        }
        scope
    }

    /// Full-text search over what the viewer may read, narrowed by `filter`.
    pub(crate) async fn search(
        &self,
        viewer: &Viewer,
        query: &str,
        filter: &SearchFilter,
        limit: u32,
        offset: u32,
    ) -> Result<Found, Error> {
        let spaces = self.store.list_spaces().await.map_err(store_err)?;
        let scope = Self::search_scope(viewer, &spaces, filter);
        if scope.is_empty() {
            return Ok(Found::default());
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
        Ok(Found {
            hits,
            has_more: results.has_more,
            total: results.total,
        })
    }

    /// A corrected spelling of `query` that finds something in the viewer's (filtered) reach,
    /// built from the viewer's readable titles ([`Lexicon`]); `None` when there is none.
    pub(crate) async fn did_you_mean(
        &self,
        viewer: &Viewer,
        query: &str,
        filter: &SearchFilter,
    ) -> Result<Option<String>, Error> {
        let lexicon = self.lexicon(viewer).await?;
        let Some(corrected) = lexicon.correct(query) else {
            return Ok(None);
        };
        // Offered only if it finds something: "did you mean" leading to nothing again
        // helps no one.
        let found = self.search(viewer, &corrected, filter, 1, 0).await?;
        Ok((!found.hits.is_empty()).then_some(corrected))
    }

    /// Up to `limit` titles the viewer may read for what has been typed so far (see
    /// [`Lexicon::suggest`]).
    pub(crate) async fn suggest(
        &self,
        viewer: &Viewer,
        typed: &str,
        limit: usize,
    ) -> Result<Vec<TitleEntry>, Error> {
        let lexicon = self.lexicon(viewer).await?;
        Ok(lexicon.suggest(typed, limit).into_iter().cloned().collect())
    }

    /// The viewer's readable titles and their words: built from the viewer's trees of every
    /// space of its reach (so exactly the titles its trees show), cached per reach and the
    /// spaces' content stamps, once per key under concurrent requests.
    pub(crate) async fn lexicon(&self, viewer: &Viewer) -> Result<Arc<Lexicon>, Error> {
        let stamps = self.watch.spaces().await?;
        let reach = viewer.reach();
        let key = LexiconKey {
            stamps: reach
                .iter()
                .map(|g| stamps.of(g.space_key.as_str()))
                .collect(),
            reach,
        };
        let guard = match self.lexicons.get_value_or_guard_async(&key).await {
            Ok(lex) => return Ok(lex),
            Err(guard) => guard,
        };
        let spaces = self.store.list_spaces().await.map_err(store_err)?;
        let mut pages = Vec::new();
        for space in spaces.iter().filter(|s| may_read_space(viewer, s)) {
            let tree = self.tree_at(viewer, space, stamps.of(&space.key)).await?;
            collect_titles(&tree, &space.key, &mut pages);
        }
        let lex = Arc::new(Lexicon::build(pages));
        let _ = guard.insert(lex.clone());
        Ok(lex)
    }
}

/// `(id, title, space key)` of every node of a tree.
fn collect_titles(nodes: &[TreeNode], space_key: &str, out: &mut Vec<(String, String, String)>) {
    for n in nodes {
        out.push((n.id.clone(), n.title.clone(), space_key.to_owned()));
        collect_titles(&n.children, space_key, out);
    }
}

/// What narrows a search within the viewer's reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SearchFilter {
    /// Only this space (by key).
    pub space: Option<String>,
    /// Only pages with this label.
    pub label: Option<String>,
}

/// A page of search results the viewer may see.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub hits: Vec<Hit>,
    /// More hits after this page.
    pub has_more: bool,
    /// How many readable pages match (see [`MatchCount`]).
    pub total: MatchCount,
}

/// Lexicons by reach and the content stamps of its spaces (see [`Lexicon`]).
type LexiconCache = quick_cache::sync::Cache<LexiconKey, Arc<Lexicon>, LexiconWeight>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct LexiconKey {
    stamps: Arc<[i64]>,
    reach: Arc<[SpaceGrant]>,
}

#[derive(Clone)]
struct LexiconWeight;

impl quick_cache::Weighter<LexiconKey, Arc<Lexicon>> for LexiconWeight {
    fn weight(&self, _key: &LexiconKey, lex: &Arc<Lexicon>) -> u64 {
        lex.approx_bytes() as u64
    }
}

/// Memory for lexicons (about 10 MB per 100,000 readable titles).
const LEXICON_BYTES: u64 = 64 * 1024 * 1024;

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

/// The `n` newest pages of `tree` (a viewer's tree: readable pages only), dated by their
/// summaries.
fn latest(
    space: &SpaceRecord,
    tree: &[TreeNode],
    summaries: &[PageSummary],
    n: usize,
) -> Vec<RecentPage> {
    fn ids<'a>(nodes: &'a [TreeNode], out: &mut HashSet<&'a str>) {
        for node in nodes {
            out.insert(node.id.as_str());
            ids(&node.children, out);
        }
    }
    let mut readable = HashSet::new();
    ids(tree, &mut readable);
    let mut pages: Vec<&PageSummary> = summaries
        .iter()
        .filter(|p| readable.contains(p.id.as_str()))
        .collect();
    pages.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
    pages
        .into_iter()
        .take(n)
        .map(|p| RecentPage {
            id: p.id.clone(),
            title: p.title.clone(),
            updated_at: p.updated_at,
            space_name: space.name.clone(),
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use kbgate_policy::{Audience, AudienceName, Delivery, Domain, Email, Policy};
    use kbgate_store::{PageRecord, SyncMode, SyncState};

    fn space(id: &str, key: &str) -> SpaceRecord {
        SpaceRecord {
            id: id.into(),
            key: key.into(),
            name: format!("Space {key}"),
            homepage_id: None,
            ..Default::default()
        }
    }

    fn page(id: &str, space_id: &str, parent: Option<&str>, title: &str) -> PageRecord {
        PageRecord {
            id: id.into(),
            space_id: space_id.into(),
            parent_id: parent.map(str::to_owned),
            position: 0,
            title: title.into(),
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            labels: Vec::new(),
            restricted: false,
            effective_restricted: false,
            body_storage: String::new(),
            body_html: format!("<p>{title}</p>"),
            body_text: title.into(),
            headings: Vec::new(),
        }
    }

    /// One sync commit of `sp` writing `pages` and setting `restrict` restricted.
    async fn commit(
        store: &dyn Store,
        sp: &SpaceRecord,
        pages: Vec<PageRecord>,
        restrict: &[&str],
    ) {
        let mut tx = store
            .begin_space_sync(sp, SyncMode::Incremental)
            .await
            .unwrap();
        if !pages.is_empty() {
            tx.upsert_pages(pages).await.unwrap();
        }
        for id in restrict {
            assert!(tx.set_restrictions(id, true, true).await.unwrap());
        }
        tx.commit(SyncState {
            space_key: sp.key.clone(),
            space_id: sp.id.clone(),
            watermark: None,
            last_full_sync: None,
            last_sync: Some(Utc::now()),
        })
        .await
        .unwrap();
    }

    fn viewer() -> Viewer {
        let policy = Policy::new(
            vec![Audience {
                name: AudienceName::parse("all").unwrap(),
                domains: vec![Domain::parse("acme.com").unwrap()],
                include_subdomains: false,
                spaces: ["AAA", "BBB"]
                    .iter()
                    .map(|k| SpaceKey::parse(k).unwrap())
                    .collect(),
                labels: Vec::new(),
                expires: None,
                delivery: Delivery::Portal,
            }],
            Vec::new(),
        )
        .unwrap();
        policy
            .viewer(&Email::parse("ann@acme.com").unwrap(), Utc::now())
            .unwrap()
    }

    /// Two spaces, A (pages 1 ← 2) and B (page 9 ← 8), served through a library whose
    /// change watch re-reads the store on every request.
    async fn setup() -> (
        kbgate_store::testing::TestStore,
        Library,
        SpaceRecord,
        SpaceRecord,
    ) {
        let t = kbgate_store::testing::sqlite().await;
        let (a, b) = (space("10", "AAA"), space("20", "BBB"));
        commit(
            &*t.store,
            &a,
            vec![
                page("1", "10", None, "A home"),
                page("2", "10", Some("1"), "A child"),
            ],
            &[],
        )
        .await;
        commit(
            &*t.store,
            &b,
            vec![
                page("9", "20", None, "B home"),
                page("8", "20", Some("9"), "B child"),
            ],
            &[],
        )
        .await;
        let watch = Arc::new(ChangeWatch::with_window(
            t.store.clone(),
            std::time::Duration::ZERO,
        ));
        let lib = Library::new(t.store.clone(), watch, 64 << 20);
        (t, lib, a, b)
    }

    async fn trees(
        lib: &Library,
        v: &Viewer,
        a: &SpaceRecord,
        b: &SpaceRecord,
    ) -> (Arc<Vec<TreeNode>>, Arc<Vec<TreeNode>>) {
        (lib.tree(v, a).await.unwrap(), lib.tree(v, b).await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_cold_requests_build_once() {
        let (_t, lib, a, _) = setup().await;
        let lib = Arc::new(lib);
        let v = viewer();
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (lib, v) = (lib.clone(), v.clone());
            tasks.push(tokio::spawn(async move {
                lib.page(&v, "2").await.unwrap().unwrap().page.title.clone()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), "A child");
        }
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (lib, v, a) = (lib.clone(), v.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                lib.space_index(&v, &a, None)
                    .await
                    .unwrap()
                    .unwrap()
                    .html
                    .clone()
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().contains("A child"));
        }
        assert_eq!(lib.builds(), (1, 1, 1), "(summaries, trees, views) built");
    }

    #[tokio::test]
    async fn a_commit_rebuilds_only_its_own_space_and_an_empty_one_nothing() {
        let (t, lib, a, b) = setup().await;
        let v = viewer();
        let warm = |lib| trees(lib, &v, &a, &b);
        let (ta, tb) = warm(&lib).await;
        assert_eq!(lib.builds(), (2, 2, 0));

        // A sync of A that finds nothing new commits, and invalidates nothing.
        commit(&*t.store, &a, Vec::new(), &[]).await;
        let (ta2, tb2) = warm(&lib).await;
        assert!(Arc::ptr_eq(&ta, &ta2) && Arc::ptr_eq(&tb, &tb2));
        assert_eq!(lib.builds(), (2, 2, 0), "an empty commit dropped a cache");

        // A restriction in A: A's tree is rebuilt at once without the page; B's is kept.
        commit(&*t.store, &a, Vec::new(), &["2"]).await;
        let (ta3, tb3) = warm(&lib).await;
        assert!(Arc::ptr_eq(&tb, &tb3), "A's commit dropped B's tree");
        assert_eq!(ta3.len(), 1);
        assert!(
            ta3[0].children.is_empty(),
            "the restricted page is still listed"
        );
        assert_eq!(lib.builds(), (3, 3, 0));
        assert!(lib.page(&v, "2").await.unwrap().is_none());

        // A body-only edit in B moves B's content stamp, not its shape: nothing of the
        // tree is read or built again.
        let mut edited = page("8", "20", Some("9"), "B child");
        edited.version = 2;
        edited.body_html = "<p>new</p>".into();
        commit(&*t.store, &b, vec![edited], &[]).await;
        let (_, tb4) = warm(&lib).await;
        assert!(
            Arc::ptr_eq(&tb, &tb4),
            "an unchanged shape rebuilt the tree"
        );
        // (The one view is the refused look-up of the restricted page above.)
        assert_eq!(lib.builds(), (3, 3, 1));
    }

    /// Takes the build guard of `id`'s view for `v` as of now, as a request building it
    /// would.
    async fn hold_build<'a>(
        lib: &'a Library,
        v: &Viewer,
        id: &str,
    ) -> quick_cache::sync::PlaceholderGuard<
        'a,
        ViewKey,
        Arc<PageView>,
        ViewWeight,
        quick_cache::DefaultHashBuilder,
        quick_cache::sync::DefaultLifecycle<ViewKey, Arc<PageView>>,
    > {
        let stamps = lib.watch.spaces().await.unwrap();
        let (key, _) = view_key(&stamps, v, id);
        match lib
            .views
            .get_value_or_guard(&key, Some(std::time::Duration::ZERO))
        {
            GuardResult::Guard(g) => g,
            _ => panic!("the view of {id} was already there or being built"),
        }
    }

    #[tokio::test]
    async fn the_previous_view_is_served_while_rebuilding_only_when_the_shape_is_unchanged() {
        let (t, lib, a, _) = setup().await;
        let v = viewer();
        let first = lib.page(&v, "2").await.unwrap().unwrap();
        assert_eq!(lib.builds().2, 1);

        // A body edit elsewhere in A: while another request builds the new view, this one
        // gets the previous view at once (not a wait, not a second build).
        let mut edited = page("1", "10", None, "A home");
        edited.version = 2;
        edited.body_html = "<p>edited</p>".into();
        commit(&*t.store, &a, vec![edited], &[]).await;
        let guard = hold_build(&lib, &v, "2").await;
        let served = tokio::time::timeout(std::time::Duration::from_secs(5), lib.page(&v, "2"))
            .await
            .expect("waited for the build instead of serving the previous view")
            .unwrap()
            .unwrap();
        assert!(
            Arc::ptr_eq(&first, &served),
            "the previous view was not served"
        );
        assert_eq!(lib.builds().2, 1);
        drop(guard);
        // Once nobody builds, a request builds the new view itself.
        let rebuilt = lib.page(&v, "2").await.unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first, &rebuilt));
        assert_eq!(lib.builds().2, 2);

        // A restriction changes the shape: the previous view is never served; the request
        // waits for the build in progress (here: until the guard is dropped), then finds
        // the page unreadable.
        commit(&*t.store, &a, Vec::new(), &["2"]).await;
        let guard = hold_build(&lib, &v, "2").await;
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(300), lib.page(&v, "2")).await;
        assert!(waited.is_err(), "a view of the old shape was served");
        drop(guard);
        assert!(
            lib.page(&v, "2").await.unwrap().is_none(),
            "the restricted page was served"
        );
    }

    #[tokio::test]
    async fn views_are_kept_across_commits_outside_the_viewers_reach_only() {
        let (t, lib, a, b) = setup().await;
        let v = viewer();
        let first = lib.page(&v, "2").await.unwrap().unwrap();
        // An empty commit of A, then a change in a space outside the reach: kept.
        commit(&*t.store, &a, Vec::new(), &[]).await;
        let other = space("30", "CCC");
        commit(&*t.store, &other, vec![page("31", "30", None, "C")], &[]).await;
        let again = lib.page(&v, "2").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(lib.builds().2, 1);
        // A change in B (in the reach: A's page could name B's pages) rebuilds the view.
        commit(&*t.store, &b, vec![page("7", "20", None, "B new")], &[]).await;
        let rebuilt = lib.page(&v, "2").await.unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first, &rebuilt));
        assert_eq!(lib.builds().2, 2);
    }
}
