//! v1 content JSON written straight to the answer, for `content/search`.
//!
//! A structure scan of a 10,000-page space (50 answers of 200 items, each with its version
//! author, ancestors and restrictions) cost the simulator most of its CPU building
//! `serde_json::Value` trees, cloning them and freeing them again. Here each item is serialised
//! from the model as it is written, without a tree. The bytes are those of the `Value` builders
//! of [`crate::v1`] (`serde_json` maps serialise their keys sorted, so every map below writes
//! its keys in byte order); the test `typed_items_match_the_value_builders` compares both for
//! every item of the demo site under many expansions. Items this module does not render (an
//! attachment, a page with its body) are written from the `Value` builders.

use std::fmt::Display;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::model::{AccountType, Content, Page, Restrictions, State};
use crate::v1::{Expands, Item, attachment_content_json, page_content_json, space_v1};
use crate::v2::{iso, slug};

/// The expansions of one answer, read once instead of per item.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wants {
    space: bool,
    container: bool,
    version: bool,
    ancestors: bool,
    metadata: bool,
    labels: bool,
    restrictions: bool,
    read: Op,
    update: Op,
    body: bool,
}

/// Expansions of one restriction operation.
#[derive(Debug, Clone, Copy, Default)]
struct Op {
    on: bool,
    user: bool,
    group: bool,
}

impl Wants {
    pub(crate) fn of(ex: &Expands) -> Self {
        let op = |name: &str| Op {
            on: ex.has(&format!("restrictions.{name}")),
            user: ex.has(&format!("restrictions.{name}.restrictions.user")),
            group: ex.has(&format!("restrictions.{name}.restrictions.group")),
        };
        Wants {
            space: ex.has("space"),
            container: ex.has("container"),
            version: ex.has("version"),
            ancestors: ex.has("ancestors"),
            metadata: ex.has("metadata"),
            labels: ex.has("metadata.labels"),
            restrictions: ex.has("restrictions"),
            read: op("read"),
            update: op("update"),
            body: ex.has("body"),
        }
    }
}

/// The whole answer of `content/search`.
pub(crate) struct SearchAnswer<'a> {
    pub(crate) s: &'a State,
    pub(crate) base: &'a str,
    pub(crate) ex: &'a Expands,
    pub(crate) wants: Wants,
    pub(crate) items: &'a [Item<'a>],
    /// The `next` link, when there is a next page.
    pub(crate) next: Option<&'a str>,
    /// The query string of this call (for `_links.self`).
    pub(crate) self_query: &'a str,
    pub(crate) limit: usize,
    pub(crate) start: usize,
}

impl Serialize for SearchAnswer<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (s, base, ex, wants) = (self.s, self.base, self.ex, self.wants);
        struct Links<'a>(&'a SearchAnswer<'a>);
        impl Serialize for Links<'_> {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let (base, q) = (self.0.base, self.0.self_query);
                let mut m = ser.serialize_map(None)?;
                m.serialize_entry("base", &format_args!("{base}/wiki"))?;
                m.serialize_entry("context", "/wiki")?;
                if let Some(next) = self.0.next {
                    m.serialize_entry("next", next)?;
                }
                m.serialize_entry(
                    "self",
                    &format_args!("{base}/wiki/rest/api/content/search?{q}"),
                )?;
                m.end()
            }
        }
        let results = self.items.iter().map(|&item| ItemJson {
            s,
            base,
            item,
            ex,
            wants,
        });
        let mut m = ser.serialize_map(Some(5))?;
        m.serialize_entry("_links", &Links(self))?;
        m.serialize_entry("limit", &self.limit)?;
        m.serialize_entry("results", &Seq(results))?;
        m.serialize_entry("size", &self.items.len())?;
        m.serialize_entry("start", &self.start)?;
        m.end()
    }
}

/// One result of `content/search`.
pub(crate) struct ItemJson<'a> {
    pub(crate) s: &'a State,
    pub(crate) base: &'a str,
    pub(crate) item: Item<'a>,
    pub(crate) ex: &'a Expands,
    pub(crate) wants: Wants,
}

impl Serialize for ItemJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (s, base, w) = (self.s, self.base, self.wants);
        match self.item {
            Item::Page(p) if !w.body => PageJson { s, base, p, w }.serialize(ser),
            Item::Page(p) => page_content_json(s, base, p, self.ex).serialize(ser),
            Item::Content(c) => ContentJson { s, base, c, w }.serialize(ser),
            Item::Attachment(a) => attachment_content_json(s, base, a, self.ex).serialize(ser),
        }
    }
}

/// A serialisable `{}`.
struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_map(Some(0))?.end()
    }
}

/// A map of string values, written in the order given (callers give byte order).
struct Strs<'a, const N: usize>([(&'a str, &'a dyn Display); N]);

impl<const N: usize> Serialize for Strs<'_, N> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(N))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, &format_args!("{v}"))?;
        }
        m.end()
    }
}

/// `{"position": n}`.
struct Extensions(i32);

impl Serialize for Extensions {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(1))?;
        m.serialize_entry("position", &self.0)?;
        m.end()
    }
}

/// The key of space `space_id` ("" for an unknown space).
pub(crate) fn space_key(s: &State, space_id: u64) -> &str {
    s.spaces
        .get(&space_id)
        .map(|sp| sp.key.as_str())
        .unwrap_or("")
}

/// [`crate::v1::page_content_json`] without a body.
struct PageJson<'a> {
    s: &'a State,
    base: &'a str,
    p: &'a Page,
    w: Wants,
}

impl Serialize for PageJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (s, base, p, w) = (self.s, self.base, self.p, self.w);
        let id = p.id;
        let key = space_key(s, p.space_id);
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry(
            "_expandable",
            &PageExpandable {
                id,
                key,
                w,
                children: true,
            },
        )?;
        m.serialize_entry(
            "_links",
            &Strs([
                (
                    "editui",
                    &format_args!("/pages/resumedraft.action?draftId={id}"),
                ),
                ("self", &format_args!("{base}/wiki/rest/api/content/{id}")),
                ("tinyui", &format_args!("/x/{id}")),
                (
                    "webui",
                    &format_args!("/spaces/{key}/pages/{id}/{}", slug(&p.title)),
                ),
            ]),
        )?;
        if w.ancestors {
            m.serialize_entry("ancestors", &Ancestors { s, base, id })?;
        }
        if w.container {
            m.serialize_entry("container", &space_v1(s, base, p.space_id))?;
        }
        m.serialize_entry("extensions", &Extensions(p.position))?;
        m.serialize_entry("id", &format_args!("{id}"))?;
        if w.metadata {
            m.serialize_entry("metadata", &PageMetadata { s, p, w })?;
        }
        if w.restrictions {
            m.serialize_entry(
                "restrictions",
                &RestrictionsJson {
                    s,
                    base,
                    id,
                    read: &p.read_restrictions,
                    w,
                },
            )?;
        }
        if w.space {
            m.serialize_entry("space", &space_v1(s, base, p.space_id))?;
        }
        m.serialize_entry("status", p.status.as_str())?;
        m.serialize_entry("title", &p.title)?;
        m.serialize_entry("type", "page")?;
        if w.version {
            let v = p.version();
            m.serialize_entry(
                "version",
                &VersionJson {
                    s,
                    base,
                    id,
                    number: v.number,
                    when: v.created_at,
                    message: &v.message,
                    minor_edit: v.minor_edit,
                    author: &v.author_id,
                },
            )?;
        }
        m.end()
    }
}

/// `_expandable` of a page (`children`: the page shape, with `children`, `descendants` and
/// `schedulePublishDate` links) or of other content.
struct PageExpandable<'a> {
    id: u64,
    key: &'a str,
    w: Wants,
    children: bool,
}

impl Serialize for PageExpandable<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (id, key, w) = (self.id, self.key, self.w);
        let page = self.children;
        let mut m = ser.serialize_map(None)?;
        if !w.ancestors {
            m.serialize_entry("ancestors", "")?;
        }
        m.serialize_entry("body", "")?;
        m.serialize_entry("childTypes", "")?;
        if page {
            m.serialize_entry("children", &format_args!("/rest/api/content/{id}/child"))?;
        } else {
            m.serialize_entry("children", "")?;
        }
        if !w.container {
            m.serialize_entry("container", &format_args!("/rest/api/space/{key}"))?;
        }
        if page {
            m.serialize_entry(
                "descendants",
                &format_args!("/rest/api/content/{id}/descendant"),
            )?;
            m.serialize_entry("history", &format_args!("/rest/api/content/{id}/history"))?;
        } else {
            m.serialize_entry("descendants", "")?;
            m.serialize_entry("history", "")?;
        }
        if !w.metadata {
            m.serialize_entry("metadata", "")?;
        }
        m.serialize_entry("operations", "")?;
        if !w.restrictions {
            m.serialize_entry(
                "restrictions",
                &format_args!("/rest/api/content/{id}/restriction/byOperation"),
            )?;
        }
        if page {
            m.serialize_entry("schedulePublishDate", "")?;
        }
        if !w.space {
            m.serialize_entry("space", &format_args!("/rest/api/space/{key}"))?;
        }
        if !w.version {
            m.serialize_entry("version", "")?;
        }
        m.end()
    }
}

/// [`crate::v1::content_json`]: a folder, whiteboard, database, embed or blog post.
struct ContentJson<'a> {
    s: &'a State,
    base: &'a str,
    c: &'a Content,
    w: Wants,
}

impl Serialize for ContentJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (s, base, c, w) = (self.s, self.base, self.c, self.w);
        let id = c.id;
        let key = space_key(s, c.space_id);
        let kind = c.kind.as_str();
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry(
            "_expandable",
            &PageExpandable {
                id,
                key,
                w,
                children: false,
            },
        )?;
        m.serialize_entry(
            "_links",
            &Strs([
                ("self", &format_args!("{base}/wiki/rest/api/content/{id}")),
                ("tinyui", &format_args!("/x/{id}")),
                ("webui", &format_args!("/spaces/{key}/{kind}/{id}")),
            ]),
        )?;
        if w.ancestors {
            m.serialize_entry("ancestors", &Ancestors { s, base, id })?;
        }
        if w.container {
            m.serialize_entry("container", &space_v1(s, base, c.space_id))?;
        }
        m.serialize_entry("extensions", &Extensions(c.position))?;
        m.serialize_entry("id", &format_args!("{id}"))?;
        if w.metadata {
            m.serialize_entry("metadata", &ContentMetadata { labels: w.labels })?;
        }
        if w.restrictions {
            m.serialize_entry(
                "restrictions",
                &RestrictionsJson {
                    s,
                    base,
                    id,
                    read: &c.read_restrictions,
                    w,
                },
            )?;
        }
        if w.space {
            m.serialize_entry("space", &space_v1(s, base, c.space_id))?;
        }
        m.serialize_entry("status", c.status.as_str())?;
        m.serialize_entry("title", &c.title)?;
        m.serialize_entry("type", kind)?;
        if w.version {
            m.serialize_entry(
                "version",
                &VersionJson {
                    s,
                    base,
                    id,
                    number: c.version,
                    when: c.last_modified,
                    message: "",
                    minor_edit: false,
                    author: &c.author_id,
                },
            )?;
        }
        m.end()
    }
}

/// `ancestors`: root first, each without expansions.
struct Ancestors<'a> {
    s: &'a State,
    base: &'a str,
    id: u64,
}

impl Serialize for Ancestors<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (s, base) = (self.s, self.base);
        let w = Wants::default();
        let mut seq = ser.serialize_seq(None)?;
        for a in s.ancestors(self.id) {
            if let Some(p) = s.pages.get(&a) {
                seq.serialize_element(&PageJson { s, base, p, w })?;
            } else if let Some(c) = s.contents.get(&a) {
                seq.serialize_element(&ContentJson { s, base, c, w })?;
            }
        }
        seq.end()
    }
}

/// The `version` of a page or other content.
struct VersionJson<'a> {
    s: &'a State,
    base: &'a str,
    id: u64,
    number: u32,
    when: chrono::DateTime<chrono::Utc>,
    message: &'a str,
    minor_edit: bool,
    author: &'a str,
}

impl Serialize for VersionJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (id, base, number) = (self.id, self.base, self.number);
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry(
            "_expandable",
            &Strs([
                ("collaborators", &""),
                ("content", &format_args!("/rest/api/content/{id}")),
            ]),
        )?;
        m.serialize_entry(
            "_links",
            &Strs([(
                "self",
                &format_args!("{base}/wiki/rest/api/content/{id}/version/{number}"),
            )]),
        )?;
        m.serialize_entry(
            "by",
            &UserJson {
                s: self.s,
                base,
                account_id: self.author,
            },
        )?;
        m.serialize_entry("contentTypeModified", &false)?;
        m.serialize_entry(
            "friendlyWhen",
            &format_args!("{}", self.when.format("%b %d, %Y")),
        )?;
        m.serialize_entry("message", self.message)?;
        m.serialize_entry("minorEdit", &self.minor_edit)?;
        m.serialize_entry("number", &number)?;
        m.serialize_entry("when", &iso(self.when))?;
        m.end()
    }
}

/// [`crate::v1::user_json`].
struct UserJson<'a> {
    s: &'a State,
    base: &'a str,
    account_id: &'a str,
}

impl Serialize for UserJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (base, account_id) = (self.base, self.account_id);
        let mut m = ser.serialize_map(None)?;
        let Some(u) = self.s.users.get(account_id) else {
            m.serialize_entry("_expandable", &Empty)?;
            m.serialize_entry("_links", &Empty)?;
            m.serialize_entry("accountId", account_id)?;
            m.serialize_entry("accountType", "")?;
            m.serialize_entry("displayName", "Unknown user")?;
            m.serialize_entry("isExternalCollaborator", &false)?;
            m.serialize_entry("publicName", "Unknown user")?;
            m.serialize_entry("type", "unknown")?;
            return m.end();
        };
        let account_id = u.account_id.as_str();
        m.serialize_entry(
            "_expandable",
            &Strs([("operations", &""), ("personalSpace", &"")]),
        )?;
        m.serialize_entry(
            "_links",
            &Strs([(
                "self",
                &format_args!("{base}/wiki/rest/api/user?accountId={account_id}"),
            )]),
        )?;
        m.serialize_entry("accountId", account_id)?;
        m.serialize_entry(
            "accountType",
            match u.account_type {
                AccountType::Atlassian => "atlassian",
                AccountType::App => "app",
                AccountType::Customer => "",
            },
        )?;
        m.serialize_entry("displayName", &u.display_name)?;
        m.serialize_entry("email", &u.email)?;
        m.serialize_entry("externalCollaborator", &u.is_external_collaborator())?;
        m.serialize_entry("isExternalCollaborator", &u.is_external_collaborator())?;
        m.serialize_entry("profilePicture", &Picture(account_id))?;
        m.serialize_entry("publicName", &u.display_name)?;
        m.serialize_entry("type", "known")?;
        m.end()
    }
}

/// A user's `profilePicture`.
struct Picture<'a>(&'a str);

impl Serialize for Picture<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(4))?;
        m.serialize_entry("height", &48)?;
        m.serialize_entry("isDefault", &true)?;
        m.serialize_entry("path", &format_args!("/wiki/aa-avatar/{}", self.0))?;
        m.serialize_entry("width", &48)?;
        m.end()
    }
}

/// `metadata` of a page: its labels, or the link to them.
struct PageMetadata<'a> {
    s: &'a State,
    p: &'a Page,
    w: Wants,
}

impl Serialize for PageMetadata<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (s, p, id) = (self.s, self.p, self.p.id);
        let labels = self.w.labels;
        let mut m = ser.serialize_map(None)?;
        {
            struct Exp(u64, bool);
            impl Serialize for Exp {
                fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                    let mut m = ser.serialize_map(None)?;
                    m.serialize_entry("comments", "")?;
                    m.serialize_entry("currentuser", "")?;
                    m.serialize_entry("frontend", "")?;
                    if !self.1 {
                        m.serialize_entry(
                            "labels",
                            &format_args!("/rest/api/content/{}/label", self.0),
                        )?;
                    }
                    m.serialize_entry("likes", "")?;
                    m.serialize_entry("properties", "")?;
                    m.serialize_entry("simple", "")?;
                    m.serialize_entry("sourceTemplateEntityId", "")?;
                    m.end()
                }
            }
            m.serialize_entry("_expandable", &Exp(id, labels))?;
        }
        if labels {
            m.serialize_entry("labels", &Labels { s, p: Some(p) })?;
        }
        m.end()
    }
}

/// `metadata` of other content: no labels.
struct ContentMetadata {
    labels: bool,
}

impl Serialize for ContentMetadata {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry(
            "_expandable",
            &Strs([("currentuser", &""), ("frontend", &""), ("properties", &"")]),
        )?;
        if self.labels {
            // No `State` needed for an empty list.
            struct NoLabels;
            impl Serialize for NoLabels {
                fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                    array(ser, std::iter::empty::<LabelJson<'_>>())
                }
            }
            m.serialize_entry("labels", &NoLabels)?;
        }
        m.end()
    }
}

/// [`crate::v1::labels_json`] of a page.
struct Labels<'a> {
    s: &'a State,
    p: Option<&'a Page>,
}

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.s;
        let labels = self
            .p
            .into_iter()
            .flat_map(|p| p.labels.iter())
            .filter_map(|l| s.labels.get(l))
            .map(LabelJson);
        array(ser, labels)
    }
}

struct LabelJson<'a>(&'a crate::model::Label);

impl Serialize for LabelJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let l = self.0;
        let mut m = ser.serialize_map(Some(4))?;
        m.serialize_entry("id", &format_args!("{}", l.id))?;
        m.serialize_entry("label", &l.name)?;
        m.serialize_entry("name", &l.name)?;
        m.serialize_entry("prefix", &l.prefix)?;
        m.end()
    }
}

/// `{"_links": {}, "limit": 200, "results": […], "size": n, "start": 0}` (v1 array of labels).
fn array<S: Serializer, T: Serialize>(
    ser: S,
    items: impl Iterator<Item = T> + Clone,
) -> Result<S::Ok, S::Error> {
    let mut m = ser.serialize_map(Some(5))?;
    m.serialize_entry("_links", &Empty)?;
    m.serialize_entry("limit", &200)?;
    m.serialize_entry("results", &Seq(items.clone()))?;
    m.serialize_entry("size", &items.count())?;
    m.serialize_entry("start", &0)?;
    m.end()
}

/// A sequence from a cloneable iterator.
struct Seq<I>(I);

impl<I, T> Serialize for Seq<I>
where
    I: Iterator<Item = T> + Clone,
    T: Serialize,
{
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.0.clone())
    }
}

/// `restrictions` of a page or other content (its own read restrictions; none for update).
struct RestrictionsJson<'a> {
    s: &'a State,
    base: &'a str,
    id: u64,
    read: &'a Restrictions,
    w: Wants,
}

impl Serialize for RestrictionsJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (s, base, id, w) = (self.s, self.base, self.id, self.w);
        let mut m = ser.serialize_map(None)?;
        struct Exp(u64, Wants);
        impl Serialize for Exp {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let id = self.0;
                let mut m = ser.serialize_map(None)?;
                for (op, on) in [("read", self.1.read.on), ("update", self.1.update.on)] {
                    if !on {
                        m.serialize_entry(
                            op,
                            &format_args!("/rest/api/content/{id}/restriction/byOperation/{op}"),
                        )?;
                    }
                }
                m.end()
            }
        }
        m.serialize_entry("_expandable", &Exp(id, w))?;
        m.serialize_entry(
            "_links",
            &Strs([(
                "self",
                &format_args!("{base}/wiki/rest/api/content/{id}/restriction/byOperation"),
            )]),
        )?;
        for (op, o) in [("read", w.read), ("update", w.update)] {
            if o.on {
                m.serialize_entry(
                    op,
                    &RestrictionJson {
                        s,
                        base,
                        id,
                        op,
                        r: self.read,
                        o,
                    },
                )?;
            }
        }
        m.end()
    }
}

/// [`crate::v1::restriction_json_for`] with `start` 0 and `limit` 200.
struct RestrictionJson<'a> {
    s: &'a State,
    base: &'a str,
    id: u64,
    op: &'a str,
    r: &'a Restrictions,
    o: Op,
}

impl Serialize for RestrictionJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (base, id, op) = (self.base, self.id, self.op);
        let mut m = ser.serialize_map(Some(4))?;
        m.serialize_entry(
            "_expandable",
            &Strs([("content", &format_args!("/rest/api/content/{id}"))]),
        )?;
        m.serialize_entry(
            "_links",
            &Strs([(
                "self",
                &format_args!("{base}/wiki/rest/api/content/{id}/restriction/byOperation/{op}"),
            )]),
        )?;
        m.serialize_entry("operation", op)?;
        struct Inner<'a>(&'a RestrictionJson<'a>);
        impl Serialize for Inner<'_> {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let RestrictionJson {
                    s,
                    base,
                    id,
                    op,
                    r,
                    o,
                } = *self.0;
                let mut m = ser.serialize_map(None)?;
                if !o.user || !o.group {
                    struct Exp<'a>(u64, &'a str, Op);
                    impl Serialize for Exp<'_> {
                        fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                            let (id, op) = (self.0, self.1);
                            let mut m = ser.serialize_map(None)?;
                            if !self.2.group {
                                m.serialize_entry(
                                    "group",
                                    &format_args!(
                                        "/rest/api/content/{id}/restriction/byOperation/{op}/group"
                                    ),
                                )?;
                            }
                            if !self.2.user {
                                m.serialize_entry(
                                    "user",
                                    &format_args!(
                                        "/rest/api/content/{id}/restriction/byOperation/{op}/user"
                                    ),
                                )?;
                            }
                            m.end()
                        }
                    }
                    m.serialize_entry("_expandable", &Exp(id, op, o))?;
                }
                // Only `read` lists anyone; the other operations answer empty lists.
                let read = op == "read";
                if o.group {
                    let groups = r.groups.iter().filter(|_| read).take(200);
                    let results = groups.clone().map(|g| GroupJson { s, base, id: g });
                    m.serialize_entry(
                        "group",
                        &GroupList {
                            results: Seq(results),
                            size: groups.count(),
                        },
                    )?;
                }
                if o.user {
                    let users = r.users.iter().filter(|_| read);
                    let total = users.clone().count();
                    let page = users.take(200);
                    let results = page.clone().map(|u| UserJson {
                        s,
                        base,
                        account_id: u,
                    });
                    m.serialize_entry(
                        "user",
                        &UserList {
                            results: Seq(results),
                            size: page.count(),
                            total,
                        },
                    )?;
                }
                m.end()
            }
        }
        m.serialize_entry("restrictions", &Inner(self))?;
        m.end()
    }
}

/// `{"limit": 200, "results": […], "size": n, "start": 0}` (the group list has no `_links`).
struct GroupList<R> {
    results: R,
    size: usize,
}

impl<R: Serialize> Serialize for GroupList<R> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(4))?;
        m.serialize_entry("limit", &200)?;
        m.serialize_entry("results", &self.results)?;
        m.serialize_entry("size", &self.size)?;
        m.serialize_entry("start", &0)?;
        m.end()
    }
}

/// `{"_links": {}, "limit": 200, "results": […], "size": n, "start": 0, "totalSize": t}`.
struct UserList<R> {
    results: R,
    size: usize,
    total: usize,
}

impl<R: Serialize> Serialize for UserList<R> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(6))?;
        m.serialize_entry("_links", &Empty)?;
        m.serialize_entry("limit", &200)?;
        m.serialize_entry("results", &self.results)?;
        m.serialize_entry("size", &self.size)?;
        m.serialize_entry("start", &0)?;
        m.serialize_entry("totalSize", &self.total)?;
        m.end()
    }
}

/// [`crate::v1::group_json`].
struct GroupJson<'a> {
    s: &'a State,
    base: &'a str,
    id: &'a str,
}

impl Serialize for GroupJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (base, id) = (self.base, self.id);
        let name = self.s.groups.get(id).map(|g| g.name.as_str()).unwrap_or("");
        let mut m = ser.serialize_map(Some(4))?;
        m.serialize_entry(
            "_links",
            &Strs([(
                "self",
                &format_args!("{base}/wiki/rest/api/group/by-id?id={id}"),
            )]),
        )?;
        m.serialize_entry("id", id)?;
        m.serialize_entry("name", name)?;
        m.serialize_entry("type", "group")?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{Memo, item_json};

    /// Every page and folder of the demo site (restricted ones, folders in ancestors, labels,
    /// guests' restrictions) serialises to the same bytes as the `Value` builders, under the
    /// structure scan's expansions and others.
    #[test]
    fn typed_items_match_the_value_builders() {
        let sim = crate::SimConfig::demo().build();
        let expands: &[&[&str]] = &[
            &[],
            &[
                "version",
                "ancestors",
                "metadata.labels",
                "restrictions.read.restrictions.user",
                "restrictions.read.restrictions.group",
            ],
            &["version", "space", "container", "metadata"],
            &["restrictions", "ancestors"],
            &["restrictions.read", "restrictions.update.restrictions.user"],
            &[
                "restrictions.update.restrictions.group",
                "restrictions.read.restrictions.group",
            ],
            &["body.storage", "version"],
            &["ancestors", "metadata.labels", "container"],
        ];
        let base = "https://example.atlassian.net";
        let checked = sim.read(|s| {
            let mut checked = 0;
            for list in expands {
                let p = crate::paging::Params(
                    list.iter()
                        .map(|e| ("expand".to_string(), e.to_string()))
                        .collect(),
                );
                let ex = Expands::parse(&p);
                let wants = Wants::of(&ex);
                let items = s
                    .pages
                    .values()
                    .map(Item::Page)
                    .chain(s.contents.values().map(Item::Content))
                    .chain(s.attachments.values().take(20).map(Item::Attachment));
                for item in items {
                    let typed = serde_json::to_string(&ItemJson {
                        s,
                        base,
                        item,
                        ex: &ex,
                        wants,
                    })
                    .expect("typed JSON");
                    let value =
                        serde_json::to_string(&item_json(s, base, item, &ex, &Memo::default()))
                            .expect("value JSON");
                    assert_eq!(typed, value, "expand {list:?}");
                    checked += 1;
                }
            }
            checked
        });
        assert!(checked > 1000, "{checked}");
    }
}
