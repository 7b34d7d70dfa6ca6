//! What kbgate created in Confluence, as recorded in the store. Only these objects are ever
//! changed or revoked: a group, permission or membership kbgate did not create is never
//! touched.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kbgate_store::{OwnedResource, Store, StoreError};
use serde_json::{Value, json};

/// Record kinds in the store's ownership table.
pub(crate) mod kind {
    /// A group kbgate created. Target: group name. Detail: `{id, audience}`.
    pub const GROUP: &str = "group";
    /// A `read` space permission kbgate granted. Target: `SPACE|group|GROUPID` or
    /// `SPACE|user|ACCOUNTID`. Detail: `{audience, holder}`.
    pub const SPACE_READ: &str = "space-read";
    /// A membership kbgate added. Target: `GROUP|ACCOUNTID`. Detail: `{audience, email}`.
    pub const GROUP_MEMBER: &str = "group-member";
    /// Unlicensed view kbgate switched on. Target: space key. Detail: `{audience}`.
    pub const UNLICENSED_VIEW: &str = "unlicensed-view";
    /// The site-wide unlicensed access kbgate switched on. Target: `site`.
    pub const GLOBAL_UNLICENSED: &str = "global-unlicensed-access";
    /// An account id kbgate knows for an email (not an ownership claim: kbgate never deletes
    /// accounts). Target: email. Detail: `{account_id, created}`.
    pub const ACCOUNT: &str = "account";
}

/// Subject of a space permission as kbgate records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Subject {
    Group(String),
    User(String),
}

impl Subject {
    pub(crate) fn key(&self) -> String {
        match self {
            Subject::Group(id) => format!("group|{id}"),
            Subject::User(id) => format!("user|{id}"),
        }
    }

    fn parse(s: &str) -> Option<Subject> {
        let (t, id) = s.split_once('|')?;
        match t {
            "group" => Some(Subject::Group(id.to_owned())),
            "user" => Some(Subject::User(id.to_owned())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedRead {
    pub space: String,
    pub subject: Subject,
    pub audience: String,
    pub holder: String,
}

pub(crate) fn read_target(space: &str, subject: &Subject) -> String {
    format!("{space}|{}", subject.key())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedMember {
    pub group: String,
    pub account_id: String,
    pub email: String,
    pub audience: String,
}

pub(crate) fn member_target(group: &str, account_id: &str) -> String {
    format!("{group}|{account_id}")
}

/// Everything kbgate owns, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Owned {
    /// group name → (group id, audience).
    pub groups: BTreeMap<String, (String, String)>,
    pub reads: Vec<OwnedRead>,
    pub members: Vec<OwnedMember>,
    /// space → audience.
    pub unlicensed_view: BTreeMap<String, String>,
    pub global_unlicensed: bool,
    /// email → (account id, created by kbgate).
    pub accounts: BTreeMap<String, (String, bool)>,
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
}

impl Owned {
    pub(crate) async fn load(store: &dyn Store) -> Result<Owned, StoreError> {
        let mut o = Owned::default();
        for r in store.owned(None).await? {
            match r.kind.as_str() {
                kind::GROUP => {
                    o.groups
                        .insert(r.target, (s(&r.detail, "id"), s(&r.detail, "audience")));
                }
                kind::SPACE_READ => {
                    let Some((space, subj)) = r.target.split_once('|') else {
                        continue;
                    };
                    let Some(subject) = Subject::parse(subj) else {
                        continue;
                    };
                    o.reads.push(OwnedRead {
                        space: space.to_owned(),
                        subject,
                        audience: s(&r.detail, "audience"),
                        holder: s(&r.detail, "holder"),
                    });
                }
                kind::GROUP_MEMBER => {
                    let Some((group, id)) = r.target.split_once('|') else {
                        continue;
                    };
                    o.members.push(OwnedMember {
                        group: group.to_owned(),
                        account_id: id.to_owned(),
                        email: s(&r.detail, "email"),
                        audience: s(&r.detail, "audience"),
                    });
                }
                kind::UNLICENSED_VIEW => {
                    o.unlicensed_view.insert(r.target, s(&r.detail, "audience"));
                }
                kind::GLOBAL_UNLICENSED => o.global_unlicensed = true,
                kind::ACCOUNT => {
                    let created = r
                        .detail
                        .get("created")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    o.accounts
                        .insert(r.target, (s(&r.detail, "account_id"), created));
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

pub(crate) fn record(kind: &str, target: &str, detail: Value, now: DateTime<Utc>) -> OwnedResource {
    OwnedResource {
        kind: kind.to_owned(),
        target: target.to_owned(),
        detail,
        created_at: now,
    }
}

pub(crate) fn account_record(
    email: &str,
    account_id: &str,
    created: bool,
    now: DateTime<Utc>,
) -> OwnedResource {
    record(
        kind::ACCOUNT,
        email,
        json!({ "account_id": account_id, "created": created }),
        now,
    )
}
