//! Per-viewer resolution of a stored page (ARCHITECTURE.md, S1).
//!
//! Pages are stored as templates with view-time reference tokens (links to other pages,
//! include, excerpt-include, children, attachments of other pages). The renderer's
//! [`resolve`] is synchronous and asks a [`PageAccess`] about each target; the store is
//! async. So a page view runs in two steps:
//!
//! 1. [`gather`] reads the page's references (and, for includes, those of the included
//!    pages, down to [`MAX_INCLUDE_DEPTH`]) and looks up *only those* targets in the store,
//!    checking every one against the [`Viewer`]. Targets in spaces the viewer may not read
//!    are never even queried.
//! 2. [`Snapshot`] answers [`PageAccess`] from what step 1 found: anything not in it —
//!    unreadable, missing, or beyond the lookup budget — is `None`, so a target can only
//!    appear if it was checked.
//!
//! Cost per view: one query per distinct readable-space `(space, title)` referenced, plus
//! for each readable include one page read and one ancestors read, one `children` read per
//! children macro and one attachment read per attachment of another page; capped at
//! [`MAX_LOOKUPS`] in total.

use std::collections::{HashMap, HashSet};

use kbgate_policy::{Label, SpaceKey, Viewer};
use kbgate_render::{
    MAX_INCLUDE_DEPTH, PageAccess, PageTarget, Ref, decode, resolve as resolve_template,
};
use kbgate_store::{PageRecord, PageSummary, SpaceRecord, Store, StoreError};

use crate::urls;

/// Most store reads one page view may spend on references. Past it, further targets
/// resolve as unreadable (their link text only): a page with thousands of links degrades
/// instead of turning one view into thousands of queries.
pub(crate) const MAX_LOOKUPS: usize = 400;

/// A readable page known to the snapshot.
#[derive(Debug, Clone)]
struct Known {
    target: PageTarget,
    space_id: String,
    space_key: String,
}

/// What one viewer may see of the pages one stored page refers to. Built by [`gather`];
/// answers only from what was checked.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// `(space key, title)` → the page, only when readable.
    by_title: HashMap<(String, String), Known>,
    /// Page id → readable page (the viewed page, titled targets).
    by_id: HashMap<String, Known>,
    /// `(space key, title)` → stored body, for readable pages that are included.
    stored: HashMap<(String, String), String>,
    /// Page id → its readable children, in display order.
    children: HashMap<String, Vec<PageTarget>>,
    /// `(space key, title, file name)` → download URL, for existing attachments of readable
    /// pages.
    attachments: HashMap<(String, String, String), String>,
    /// How Jira keys and mentions show (the portal's settings, the same for every viewer).
    content: ContentSettings,
    /// The path prefix stored content's root-relative links get (see [`render`]).
    prefix: String,
}

/// Settings for view-time content that is not about access: where Jira keys link, whether
/// mentions show names.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContentSettings {
    /// `[confluence] jira_url` without a trailing slash; `None`: keys are plain text.
    pub(crate) jira_site: Option<String>,
    /// `[portal] show_staff_names`.
    pub(crate) show_staff_names: bool,
}

fn key(space_key: &str, title: &str) -> (String, String) {
    (space_key.to_owned(), title.to_owned())
}

impl PageAccess for Snapshot {
    fn page_link(&self, space_key: &str, title: &str) -> Option<PageTarget> {
        self.by_title
            .get(&key(space_key, title))
            .map(|k| k.target.clone())
    }

    fn page_stored_html(&self, space_key: &str, title: &str) -> Option<String> {
        self.stored.get(&key(space_key, title)).cloned()
    }

    fn children(&self, page_id: &str) -> Vec<PageTarget> {
        self.children.get(page_id).cloned().unwrap_or_default()
    }

    fn attachment_url(&self, space_key: &str, page_title: &str, file_name: &str) -> Option<String> {
        self.attachments
            .get(&(
                space_key.to_owned(),
                page_title.to_owned(),
                file_name.to_owned(),
            ))
            .cloned()
    }

    fn jira_site(&self) -> Option<&str> {
        self.content.jira_site.as_deref()
    }

    fn show_staff_names(&self) -> bool {
        self.content.show_staff_names
    }

    fn link_prefix(&self) -> &str {
        &self.prefix
    }
}

/// Whether `viewer` may read a page of `space_key` with these labels and restrictions: the
/// one permission check every read of the library makes.
pub(crate) fn may_read(
    viewer: &Viewer,
    space_key: &str,
    page_labels: &[String],
    restricted: bool,
) -> bool {
    SpaceKey::parse(space_key)
        .is_ok_and(|k| viewer.may_read_page(&k, &labels(page_labels), restricted))
}

/// Labels as the policy sees them; a stored label that does not parse simply does not count
/// (it can only narrow access, never widen it).
fn labels(raw: &[String]) -> Vec<Label> {
    raw.iter().filter_map(|l| Label::parse(l).ok()).collect()
}

fn target_of(s: &PageSummary) -> PageTarget {
    PageTarget {
        url: urls::page(&s.id),
        title: s.title.clone(),
        id: s.id.clone(),
    }
}

/// The indices of the refs whose tokens occur in `template` (tokens are
/// `U+E000 <decimal> U+E001`), so an excerpt-include only looks up what the excerpt shows.
fn used_refs(template: &str) -> HashSet<usize> {
    let mut used = HashSet::new();
    for (i, _) in template.match_indices('\u{E000}') {
        let rest = &template[i + '\u{E000}'.len_utf8()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0
            && digits <= 9
            && rest[digits..].starts_with('\u{E001}')
            && let Ok(k) = rest[..digits].parse::<usize>()
        {
            used.insert(k);
        }
    }
    used
}

/// The refs one template uses, in order.
fn refs_in(template: &str, refs: &[Ref]) -> Vec<Ref> {
    let used = used_refs(template);
    refs.iter()
        .enumerate()
        .filter(|(i, _)| used.contains(i))
        .map(|(_, r)| r.clone())
        .collect()
}

struct Gatherer<'a> {
    store: &'a dyn Store,
    viewer: &'a Viewer,
    snap: Snapshot,
    /// `(space, title)` pairs already looked up (readable or not).
    looked_up: HashSet<(String, String)>,
    children_done: HashSet<String>,
    attachments_done: HashSet<(String, String, String)>,
    lookups: usize,
}

impl Gatherer<'_> {
    /// Takes `n` reads from the per-view budget; `false` (and nothing taken) when spent.
    fn budget(&mut self, n: usize) -> bool {
        if self.lookups + n > MAX_LOOKUPS {
            return false;
        }
        self.lookups += n;
        true
    }

    /// The page titled `title` in `space_key`, if the viewer may read it.
    async fn target(&mut self, space_key: &str, title: &str) -> Result<Option<Known>, StoreError> {
        let k = key(space_key, title);
        if self.looked_up.contains(&k) {
            return Ok(self.snap.by_title.get(&k).cloned());
        }
        // Spaces the viewer may not read are decided without touching the store.
        let space_ok = SpaceKey::parse(space_key).is_ok_and(|s| self.viewer.may_read_space(&s));
        if !space_ok || !self.budget(1) {
            self.looked_up.insert(k);
            return Ok(None);
        }
        self.looked_up.insert(k.clone());
        let Some(s) = self.store.page_by_title(space_key, title).await? else {
            return Ok(None);
        };
        if !may_read(self.viewer, space_key, &s.labels, s.effective_restricted) {
            return Ok(None);
        }
        let known = Known {
            target: target_of(&s),
            space_id: s.space_id.clone(),
            space_key: space_key.to_owned(),
        };
        self.snap.by_title.insert(k, known.clone());
        self.snap.by_id.insert(s.id.clone(), known.clone());
        Ok(Some(known))
    }

    /// Loads the readable children of a page the snapshot knows as readable.
    async fn children_of(&mut self, page_id: &str) -> Result<(), StoreError> {
        if !self.children_done.insert(page_id.to_owned()) {
            return Ok(());
        }
        let Some(parent) = self.snap.by_id.get(page_id).cloned() else {
            return Ok(()); // not known readable: no children shown
        };
        if !self.budget(1) {
            return Ok(());
        }
        let list = self.store.children(page_id).await?;
        let readable = list
            .iter()
            // A child lives in its parent's space; anything else is dropped (fail closed).
            .filter(|c| c.space_id == parent.space_id)
            .filter(|c| {
                may_read(
                    self.viewer,
                    &parent.space_key,
                    &c.labels,
                    c.effective_restricted,
                )
            })
            .map(target_of)
            .collect();
        self.snap.children.insert(page_id.to_owned(), readable);
        Ok(())
    }

    /// Loads an included page's stored body if the viewer may read it; returns its refs
    /// that the include shows (`excerpt_only` for excerpt-include).
    async fn include(
        &mut self,
        space_key: &str,
        title: &str,
        excerpt_only: bool,
    ) -> Result<Vec<Ref>, StoreError> {
        let Some(t) = self.target(space_key, title).await? else {
            return Ok(Vec::new());
        };
        let k = key(space_key, title);
        if !self.snap.stored.contains_key(&k) {
            if !self.budget(2) {
                return Ok(Vec::new());
            }
            let Some(page) = self.store.page(&t.target.id).await? else {
                return Ok(Vec::new());
            };
            // Same defence as the page view itself: a stale flag on the page or an
            // ancestor can never expose content.
            if page.effective_restricted
                || self
                    .store
                    .ancestors(&page.id)
                    .await?
                    .iter()
                    .any(|a| a.effective_restricted)
            {
                self.snap.by_title.remove(&k);
                self.snap.by_id.remove(&page.id);
                return Ok(Vec::new());
            }
            self.snap.stored.insert(k.clone(), page.body_html);
        }
        let stored = self.snap.stored.get(&k).map(String::as_str).unwrap_or("");
        let d = decode(stored);
        Ok(if excerpt_only {
            d.excerpt
                .as_deref()
                .map(|e| refs_in(e, &d.refs))
                .unwrap_or_default()
        } else {
            refs_in(d.template, &d.refs)
        })
    }

    async fn attachment(
        &mut self,
        space_key: &str,
        title: &str,
        file_name: &str,
    ) -> Result<(), StoreError> {
        let k = (space_key.to_owned(), title.to_owned(), file_name.to_owned());
        if !self.attachments_done.insert(k.clone()) {
            return Ok(());
        }
        let Some(t) = self.target(space_key, title).await? else {
            return Ok(());
        };
        if !self.budget(1) {
            return Ok(());
        }
        if let Some(a) = self
            .store
            .attachment_by_name(&t.target.id, file_name)
            .await?
            && a.blob.is_some()
        {
            self.snap
                .attachments
                .insert(k, urls::attachment(&a.page_id, &a.title));
        }
        Ok(())
    }

    /// Walks the refs breadth-first, following readable includes down to the renderer's
    /// include depth.
    async fn walk(&mut self, refs: Vec<Ref>) -> Result<(), StoreError> {
        let mut level = refs;
        for depth in 0..=MAX_INCLUDE_DEPTH {
            let mut next = Vec::new();
            for r in level {
                match r {
                    Ref::PageLink {
                        space_key, title, ..
                    } => {
                        self.target(&space_key, &title).await?;
                    }
                    Ref::Include { space_key, title } if depth < MAX_INCLUDE_DEPTH => {
                        next.extend(self.include(&space_key, &title, false).await?);
                    }
                    Ref::ExcerptInclude { space_key, title } if depth < MAX_INCLUDE_DEPTH => {
                        next.extend(self.include(&space_key, &title, true).await?);
                    }
                    Ref::Include { .. } | Ref::ExcerptInclude { .. } => {}
                    Ref::Children { page_id } => self.children_of(&page_id).await?,
                    Ref::ChildrenOfPage { space_key, title } => {
                        if let Some(t) = self.target(&space_key, &title).await? {
                            self.children_of(&t.target.id).await?;
                        }
                    }
                    Ref::AttachmentOfPage {
                        space_key,
                        title,
                        file_name,
                        ..
                    } => self.attachment(&space_key, &title, &file_name).await?,
                    // Settings, not other pages: nothing to look up.
                    Ref::Jira { .. } | Ref::Mention { .. } => {}
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Ok(())
    }
}

/// Looks up what `page` (readable by `viewer`, in `space`) refers to, checking every
/// target against the viewer.
pub(crate) async fn gather(
    store: &dyn Store,
    viewer: &Viewer,
    page: &PageRecord,
    space: &SpaceRecord,
) -> Result<Snapshot, StoreError> {
    let d = decode(&page.body_html);
    let refs = refs_in(d.template, &d.refs);
    let mut g = Gatherer {
        store,
        viewer,
        snap: Snapshot::default(),
        looked_up: HashSet::new(),
        children_done: HashSet::new(),
        attachments_done: HashSet::new(),
        lookups: 0,
    };
    // The viewed page itself (already checked by the caller) is known readable, so its
    // own children macro can list its readable children; a link to itself resolves too.
    let own = Known {
        target: PageTarget {
            url: urls::page(&page.id),
            title: page.title.clone(),
            id: page.id.clone(),
        },
        space_id: space.id.clone(),
        space_key: space.key.clone(),
    };
    g.snap.by_id.insert(page.id.clone(), own);
    g.walk(refs).await?;
    // Included pages' own `children` macros name their own ids, which are known readable
    // by now (`walk` looked them up before descending into them).
    Ok(g.snap)
}

/// Resolves a stored page for the viewer the snapshot was gathered for, with the portal's
/// content settings.
pub(crate) fn render(
    page: &PageRecord,
    mut snapshot: Snapshot,
    content: &ContentSettings,
) -> String {
    snapshot.content = content.clone();
    // Stored bodies link the page's own attachments at the root (written at sync time):
    // the prefix goes on at view time, so mirrored content is right whatever the prefix.
    // A view is rendered once per reach and then spliced, so page views do not pay for it.
    snapshot.prefix = urls::prefix();
    resolve_template(&page.body_html, &snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_refs_reads_only_well_formed_tokens() {
        let t = "a\u{E000}0\u{E001}b\u{E000}12\u{E001}\u{E000}x\u{E001}\u{E000}3";
        let used = used_refs(t);
        assert_eq!(used, HashSet::from([0, 12]));
    }

    #[test]
    fn an_empty_snapshot_answers_nothing() {
        let s = Snapshot::default();
        assert!(s.page_link("KB", "Welcome").is_none());
        assert!(s.page_stored_html("KB", "Welcome").is_none());
        assert!(s.children("1").is_empty());
        assert!(s.attachment_url("KB", "Welcome", "a.pdf").is_none());
    }
}
