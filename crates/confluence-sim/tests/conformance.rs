//! Conformance: every endpoint the simulator serves answers JSON that validates against
//! Atlassian's published schema (v2, v1 or Jira), for success and documented error statuses;
//! undocumented endpoints (knowledge base, `/cgraphql`) are checked against hand-written
//! schemas (`support/schemas.rs`). A route added to the simulator without a check here fails
//! `every_served_route_is_checked`.

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::client::{Answer, Site, Who};
use support::openapi::{Spec, check_against, check_conforms, check_error_conforms};
use support::schemas;

/// How a response body is judged.
#[derive(Clone)]
enum Check {
    /// Against the spec's schema for (method, template, status).
    Spec(Spec),
    /// Against a hand-written schema (undocumented endpoint).
    Hand(&'static str, fn() -> Value),
}

/// The spec a path belongs to; `None` for undocumented endpoints.
fn spec_of(template: &str) -> Option<Spec> {
    if template.starts_with("/wiki/api/v2/") {
        Some(Spec::V2)
    } else if template.starts_with("/rest/api/3/") {
        Some(Spec::Jira)
    } else if template.starts_with("/wiki/rest/api/") {
        Some(Spec::V1)
    } else {
        None
    }
}

/// Routes the simulator serves, read from its sources (`.route("…", get(..).post(..))` in every
/// module except the `/_sim` control surface).
// TODO(sim-core): replace with an introspection function once the crate exposes one.
fn served_routes() -> BTreeSet<(String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("src readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                // Not Confluence site routes: the control surface, the media origin and the
                // gateway/edge/OAuth routes (checked in `cloud_today.rs`).
                && p
                    .file_name()
                    .is_some_and(|n| n != "control.rs" && n != "media.rs" && n != "gateway.rs")
            {
                files.push(p);
            }
        }
    }
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source readable");
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let Some(q1) = rest.find('"') else { break };
            let Some(q2) = rest[q1 + 1..].find('"') else {
                break;
            };
            let path = rest[q1 + 1..q1 + 1 + q2].to_string();
            // The method router runs to the `)` closing `.route(`.
            let mut depth = 1;
            let mut end = 0;
            for (j, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let body = &rest[q1 + 1 + q2 + 1..end];
            for m in ["get", "post", "put", "delete", "patch"] {
                let hit = body.match_indices(&format!("{m}(")).any(|(k, _)| {
                    k == 0
                        || !body.as_bytes()[k - 1].is_ascii_alphanumeric()
                            && body.as_bytes()[k - 1] != b'_'
                });
                if hit {
                    out.insert((m.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    out
}

/// Calls endpoints and collects every non-conformance instead of stopping at the first.
struct Checker<'a> {
    site: &'a Site,
    failures: Vec<String>,
    covered: BTreeSet<(String, String)>,
    succeeded: BTreeSet<(String, String)>,
}

impl Checker<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn check(
        &mut self,
        who: Who,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
        check: Check,
    ) -> Answer {
        let a = self.site.call(who, method, path, body).await;
        self.covered
            .insert((method.to_string(), template.to_string()));
        if status < 400 && a.status == status {
            self.succeeded
                .insert((method.to_string(), template.to_string()));
        }
        if a.status != status {
            self.failures.push(format!(
                "{method} {path}: expected {status}, got {} {}",
                a.status, a.body
            ));
            return a;
        }
        let verdict = match check {
            Check::Spec(spec) if status >= 400 => {
                check_error_conforms(spec, method, template, status, &a.body)
            }
            Check::Spec(spec) => check_conforms(spec, method, template, status, &a.body),
            Check::Hand(name, schema) => check_against(name, &schema(), &a.body),
        };
        if let Err(e) = verdict {
            self.failures.push(e);
        }
        a
    }
}

const V2: Check = Check::Spec(Spec::V2);
const V1: Check = Check::Spec(Spec::V1);
const JIRA: Check = Check::Spec(Spec::Jira);

fn v1_error() -> Value {
    support::openapi::error_schema(Spec::V1)
}

#[tokio::test]
async fn every_endpoint_conforms_to_its_schema() {
    let site = Site::default_site().await;
    let state = site.sim.state();
    let admin_email = site.sim.service_account().email;
    // Fixtures read from the generated site.
    let (admin_id, space_id, space_key, page_id, att, label_id, group_id, user_ids) =
        state.read(|s| {
            let admin_id = s
                .user_by_email(&admin_email)
                .expect("admin")
                .account_id
                .clone();
            let space = s.spaces.values().next().expect("a space").clone();
            let readable: Vec<u64> = s
                .pages
                .values()
                .filter(|p| {
                    p.space_id == space.id
                        && p.status == confluence_sim::model::PageStatus::Current
                        && s.can_read_page(&admin_id, p.id)
                })
                .map(|p| p.id)
                .collect();
            let page_id = *readable
                .iter()
                .find(|id| !s.child_ids(**id).is_empty())
                .unwrap_or(&readable[0]);
            let att = s
                .attachments
                .values()
                .find(|a| readable.contains(&a.page_id))
                .expect("an attachment")
                .clone();
            let label_id = s
                .pages
                .values()
                .filter(|p| readable.contains(&p.id))
                .find_map(|p| p.labels.iter().next().copied())
                .expect("a label");
            let group_id = s
                .groups
                .values()
                .find(|g| g.name == "confluence-users")
                .expect("group")
                .id
                .clone();
            let user_ids: Vec<String> = s.users.keys().take(5).cloned().collect();
            (
                admin_id,
                space.id,
                space.key.clone(),
                page_id,
                att,
                label_id,
                group_id,
                user_ids,
            )
        });
    let _ = admin_id;
    let mut c = Checker {
        site: &site,
        failures: Vec::new(),
        covered: BTreeSet::new(),
        succeeded: BTreeSet::new(),
    };
    use Who::*;

    // ---- v2 content ----
    let t = "/wiki/api/v2/spaces";
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/spaces?limit=2",
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/spaces?keys={space_key}"),
        None,
        200,
        V2,
    )
    .await;
    // Descriptions and icons (the start page's cards): `SpaceDescription`, `SpaceIcon`.
    for format in ["plain", "view"] {
        c.check(
            Admin,
            "GET",
            t,
            &format!("/wiki/api/v2/spaces?description-format={format}&include-icon=true"),
            None,
            200,
            V2,
        )
        .await;
    }
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/spaces?description-format=storage",
        None,
        400,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/spaces?limit=0",
        None,
        400,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/spaces/{id}";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/spaces/{space_id}?description-format=plain&include-icon=true"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/spaces/{space_id}"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/spaces/999999999",
        None,
        404,
        V2,
    )
    .await;
    c.check(Admin, "GET", t, "/wiki/api/v2/spaces/abc", None, 400, V2)
        .await;
    let t = "/wiki/api/v2/spaces/{id}/pages";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/spaces/{space_id}/pages?body-format=storage&limit=5"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/spaces/{space_id}/pages?sort=-modified-date&limit=3"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/spaces/999999999/pages",
        None,
        404,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/pages/{id}";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/pages/{page_id}?body-format=storage&include-labels=true"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/pages/{page_id}"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/pages/999999999",
        None,
        404,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/pages/{id}/attachments";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/pages/{}/attachments", att.page_id),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/pages/999999999/attachments",
        None,
        404,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/pages/{id}/labels";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/pages/{page_id}/labels"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/pages/999999999/labels",
        None,
        404,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/pages/{id}/children";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/pages/{page_id}/children"),
        None,
        200,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/labels/{id}/pages";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/labels/{label_id}/pages?body-format=storage"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/labels/999999999/pages",
        None,
        404,
        V2,
    )
    .await;

    // ---- folders (v2) ----
    let t = "/wiki/api/v2/folders/{id}";
    let folder = state.read(|s| {
        s.contents
            .values()
            .find(|c| {
                c.kind == confluence_sim::model::ContentKind::Folder
                    && c.parent_id.is_some()
                    && c.read_restrictions.is_empty()
            })
            .map(|c| c.id)
            .expect("a generated folder under a page")
    });
    let f = c
        .check(
            Admin,
            "GET",
            t,
            &format!("/wiki/api/v2/folders/{folder}"),
            None,
            200,
            V2,
        )
        .await;
    if f.body["type"] != "folder" || f.body["parentType"] != "page" {
        c.failures.push(format!("folder JSON: {}", f.body));
    }
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/folders/999999999",
        None,
        404,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/folders/{id}/direct-children";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/folders/{folder}/direct-children"),
        None,
        200,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/pages/{id}/direct-children";
    let home = state.read(|s| s.spaces.values().next().and_then(|sp| sp.homepage_id));
    let kids = c
        .check(
            Admin,
            "GET",
            t,
            &format!(
                "/wiki/api/v2/pages/{}/direct-children?limit=250",
                home.expect("a home page")
            ),
            None,
            200,
            V2,
        )
        .await;
    let kinds: BTreeSet<String> = kids.body["results"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !kinds.contains("folder") || !kinds.contains("page") {
        c.failures
            .push(format!("home page direct children: types {kinds:?}"));
    }

    // ---- v1 content ----
    let t = "/wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/content/{page_id}/restriction/byOperation/read"),
        None,
        200,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/content/{id}/restriction/byOperation";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/content/{page_id}/restriction/byOperation?expand=restrictions.user,restrictions.group"),
        None,
        200,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/content/{id}/child/{type}";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/content/{page_id}/child/page?limit=2&expand=version"),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/content/{}/child/attachment", att.page_id),
        None,
        200,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/content/{id}/label";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/content/{page_id}/label"),
        None,
        200,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/user/current";
    c.check(Admin, "GET", t, t, None, 200, V1).await;
    let t = "/wiki/api/v2/pages";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/pages?space-id={space_id}&body-format=storage&limit=3"),
        None,
        200,
        V2,
    )
    .await;
    let t = "/wiki/rest/api/search";
    let cql = |q: &str| url_encode(q);
    c.check(
        Admin,
        "GET",
        t,
        &format!(
            "/wiki/rest/api/search?cql={}&limit=5",
            cql(&format!("space = \"{space_key}\" and type = page"))
        ),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!(
            "/wiki/rest/api/search?cql={}",
            cql("lastmodified > \"2020/01/01 10:00\" and space = \"X\"")
        ),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/search?cql={}", cql("title ~ \"x\" OR foo")),
        None,
        400,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/content/search";
    let expand = "ancestors,version,metadata.labels,restrictions.read.restrictions.user,restrictions.read.restrictions.group,body.storage";
    c.check(
        Admin,
        "GET",
        t,
        &format!(
            "/wiki/rest/api/content/search?cql={}&limit=5&expand={expand}",
            cql(&format!("space = \"{space_key}\" and type = page"))
        ),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!(
            "/wiki/rest/api/content/search?cql={}&limit=5&expand=container,version",
            cql(&format!("space = \"{space_key}\" and type = attachment"))
        ),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/content/search?cql={}", cql("nonsense ((")),
        None,
        400,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download";
    let dl = c
        .check(
            Admin,
            "GET",
            t,
            &format!(
                "/wiki/rest/api/content/{}/child/attachment/att{}/download",
                att.page_id, att.id
            ),
            None,
            302,
            V1,
        )
        .await;
    let location = dl
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let file_template = "/wiki/download/attachments/{pageId}/{filename}";
    if !location.starts_with(&site.sim.media_url()) {
        c.failures.push(format!(
            "attachment download: 302 to {location:?}, not to the media origin"
        ));
    }
    // The legacy servlet path (`_links.download`) refuses API tokens since CHANGE-2735: 401
    // is its only answer to them.
    let legacy = format!("/wiki/download/attachments/{}/{}", att.page_id, att.title);
    c.check(
        Admin,
        "GET",
        file_template,
        &legacy,
        None,
        401,
        Check::Hand("v1 error", v1_error),
    )
    .await;
    // Its one answer to API tokens is that 401 (with `WWW-Authenticate: OAuth realm=…`): it
    // counts as this route's checked outcome.
    if c.failures
        .iter()
        .all(|f| !f.contains("/wiki/download/attachments/"))
    {
        c.succeeded
            .insert(("GET".to_string(), file_template.to_string()));
    }
    c.check(
        Admin,
        "GET",
        t,
        &format!(
            "/wiki/rest/api/content/{}/child/attachment/att999999999/download",
            att.page_id
        ),
        None,
        404,
        V1,
    )
    .await;

    // ---- users and invitations (v2) ----
    let t = "/wiki/api/v2/users-bulk";
    let mut ids = user_ids.clone();
    ids.push("no-such-account".into());
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "accountIds": ids })),
        200,
        V2,
    )
    .await;
    let many: Vec<String> = (0..251).map(|i| format!("id{i}")).collect();
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "accountIds": many })),
        400,
        V2,
    )
    .await;
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "accountIds": [] })),
        400,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/user/access/check-access-by-email";
    c.check(
        NonAdmin,
        "POST",
        t,
        t,
        Some(json!({ "emails": [admin_email, "nobody@nowhere.example", "not-an-email"] })),
        200,
        V2,
    )
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("p{i}@acme.example")).collect();
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "emails": many })),
        400,
        V2,
    )
    .await;
    let t = "/wiki/api/v2/user/access/invite-by-email";
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "emails": ["invitee@acme.example", "bad"] })),
        200,
        V2,
    )
    .await;
    c.check(Admin, "POST", t, t, Some(json!({ "emails": [] })), 400, V2)
        .await;
    let t = "/wiki/api/v2/spaces/{id}/permissions";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/api/v2/spaces/{space_id}/permissions?limit=2"),
        None,
        200,
        V2,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/api/v2/spaces/999999999/permissions",
        None,
        404,
        V2,
    )
    .await;

    // ---- groups (v1) ----
    let t = "/wiki/rest/api/group";
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/rest/api/group?limit=2",
        None,
        200,
        V1,
    )
    .await;
    let created = c
        .check(
            Admin,
            "POST",
            t,
            t,
            Some(json!({ "name": "kbgate-acme" })),
            201,
            V1,
        )
        .await;
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "name": "kbgate-acme" })),
        400,
        V1,
    )
    .await;
    c.check(
        NonAdmin,
        "POST",
        t,
        t,
        Some(json!({ "name": "kbgate-other" })),
        403,
        V1,
    )
    .await;
    let new_group = created.body["id"].as_str().unwrap_or("missing").to_string();
    let t = "/wiki/rest/api/group/by-name";
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/rest/api/group/by-name?name=kbgate-acme",
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/rest/api/group/by-name?name=no-such-group",
        None,
        404,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/group/by-id";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/group/by-id?id={group_id}"),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/rest/api/group/by-id?id=nope",
        None,
        404,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/group/picker";
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/rest/api/group/picker?query=confluence",
        None,
        200,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/group/{groupId}/membersByGroupId";
    c.check(
        Admin,
        "GET",
        t,
        &format!(
            "/wiki/rest/api/group/{group_id}/membersByGroupId?expand=isExternalCollaborator&limit=3"
        ),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/group/{group_id}/membersByGroupId"),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/group/{group_id}/membersByGroupId?limit=201"),
        None,
        400,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/group/userByGroupId";
    let member = user_ids[0].clone();
    c.check(
        Admin,
        "POST",
        t,
        &format!("{t}?groupId={new_group}"),
        Some(json!({ "accountId": member })),
        201,
        V1,
    )
    .await;
    c.check(
        NonAdmin,
        "POST",
        t,
        &format!("{t}?groupId={new_group}"),
        Some(json!({ "accountId": member })),
        403,
        V1,
    )
    .await;
    c.check(
        Admin,
        "POST",
        t,
        &format!("{t}?groupId=nope"),
        Some(json!({ "accountId": member })),
        404,
        V1,
    )
    .await;
    c.check(
        Admin,
        "POST",
        t,
        &format!("{t}?groupId={new_group}"),
        Some(json!({})),
        400,
        V1,
    )
    .await;
    c.check(
        Admin,
        "DELETE",
        t,
        &format!("{t}?groupId={new_group}&accountId={member}"),
        None,
        204,
        V1,
    )
    .await;
    c.check(
        NonAdmin,
        "DELETE",
        t,
        &format!("{t}?groupId={new_group}&accountId={member}"),
        None,
        403,
        V1,
    )
    .await;

    // ---- space permissions (v1) ----
    let t = "/wiki/rest/api/space/{spaceKey}/permission";
    let grant = json!({ "subject": { "type": "group", "identifier": new_group }, "operation": { "key": "read", "target": "space" } });
    let perm = c
        .check(
            Admin,
            "POST",
            t,
            &format!("/wiki/rest/api/space/{space_key}/permission"),
            Some(grant.clone()),
            200,
            V1,
        )
        .await;
    c.check(
        Admin,
        "POST",
        t,
        &format!("/wiki/rest/api/space/{space_key}/permission"),
        Some(grant.clone()),
        400,
        V1,
    )
    .await;
    c.check(
        NonAdmin,
        "POST",
        t,
        &format!("/wiki/rest/api/space/{space_key}/permission"),
        Some(grant.clone()),
        403,
        V1,
    )
    .await;
    c.check(
        Admin,
        "POST",
        t,
        "/wiki/rest/api/space/NOPE/permission",
        Some(grant),
        404,
        V1,
    )
    .await;
    let perm_id = perm.body["id"].as_u64().unwrap_or(0);
    let t = "/wiki/rest/api/space/{spaceKey}/permission/{id}";
    c.check(
        NonAdmin,
        "DELETE",
        t,
        &format!("/wiki/rest/api/space/{space_key}/permission/{perm_id}"),
        None,
        403,
        V1,
    )
    .await;
    c.check(
        Admin,
        "DELETE",
        t,
        &format!("/wiki/rest/api/space/{space_key}/permission/{perm_id}"),
        None,
        204,
        V1,
    )
    .await;
    c.check(
        Admin,
        "DELETE",
        t,
        &format!("/wiki/rest/api/space/{space_key}/permission/{perm_id}"),
        None,
        404,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/group/by-id";
    c.check(
        Admin,
        "DELETE",
        t,
        &format!("/wiki/rest/api/group/by-id?id={new_group}"),
        None,
        204,
        V1,
    )
    .await;
    c.check(
        NonAdmin,
        "DELETE",
        t,
        &format!("/wiki/rest/api/group/by-id?id={group_id}"),
        None,
        403,
        V1,
    )
    .await;

    // ---- knowledge base (undocumented) ----
    let kb = Check::Hand("kb space switch", schemas::kb_space_permission);
    let kb_err = Check::Hand("v1 error", v1_error);
    for (t, on) in [
        (
            "/wiki/rest/knowledge-base/1.0/permissions/space/unlicensedview",
            true,
        ),
        (
            "/wiki/rest/knowledge-base/1.0/permissions/space/anonymousview",
            false,
        ),
    ] {
        c.check(
            Admin,
            "POST",
            t,
            t,
            Some(json!({ "spaceKey": space_key, "enablePermission": on })),
            200,
            kb.clone(),
        )
        .await;
        c.check(
            NonAdmin,
            "POST",
            t,
            t,
            Some(json!({ "spaceKey": space_key, "enablePermission": on })),
            403,
            kb_err.clone(),
        )
        .await;
        c.check(
            Admin,
            "POST",
            t,
            t,
            Some(json!({ "spaceKey": "NOPE", "enablePermission": on })),
            404,
            kb_err.clone(),
        )
        .await;
    }
    // ---- v1 space reads: permissions with the knowledge-base switches ----
    // Unlicensed view of `space_key` is on (above); anonymous view of another space too.
    let other_key = state.read(|s| {
        s.spaces
            .values()
            .map(|sp| sp.key.clone())
            .find(|k| *k != space_key)
            .expect("a second space")
    });
    state.write(|s| s.anonymous_view.insert(other_key.clone()));
    let t = "/wiki/rest/api/space";
    let a = c
        .check(
            Admin,
            "GET",
            t,
            &format!(
                "/wiki/rest/api/space?spaceKey={space_key}&spaceKey={other_key}&expand=permissions"
            ),
            None,
            200,
            V1,
        )
        .await;
    let switch = |key: &str, field: &str| {
        a.body["results"].as_array().and_then(|r| {
            r.iter().find(|sp| sp["key"] == json!(key)).map(|sp| {
                sp["permissions"].as_array().is_some_and(|ps| {
                    ps.iter().any(|p| {
                        p["operation"] == json!({ "operation": "read", "targetType": "space" })
                            && p[field] == json!(true)
                    })
                })
            })
        })
    };
    if switch(&space_key, "unlicensedAccess") != Some(true)
        || switch(&other_key, "anonymousAccess") != Some(true)
        || switch(&other_key, "unlicensedAccess") != Some(false)
    {
        c.failures.push(format!(
            "GET {t}?expand=permissions does not show the switches: {}",
            a.body
        ));
    }
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/rest/api/space?limit=1",
        None,
        200,
        V1,
    )
    .await;
    c.check(NonAdmin, "GET", t, "/wiki/rest/api/space", None, 200, V1)
        .await;
    c.check(
        Admin,
        "GET",
        t,
        "/wiki/rest/api/space?status=gone",
        None,
        400,
        V1,
    )
    .await;
    let t = "/wiki/rest/api/space/{spaceKey}";
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/space/{other_key}?expand=permissions"),
        None,
        200,
        V1,
    )
    .await;
    c.check(
        Admin,
        "GET",
        t,
        &format!("/wiki/rest/api/space/{space_key}"),
        None,
        200,
        V1,
    )
    .await;
    c.check(Admin, "GET", t, "/wiki/rest/api/space/NOPE", None, 404, V1)
        .await;
    state.write(|s| s.anonymous_view.remove(&other_key));

    let t = "/wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess";
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "enablePermission": true })),
        200,
        Check::Hand("kb global switch", schemas::kb_global_permission),
    )
    .await;
    c.check(
        NonAdmin,
        "POST",
        t,
        t,
        Some(json!({ "enablePermission": true })),
        403,
        kb_err.clone(),
    )
    .await;

    // ---- cgraphql (undocumented) ----
    let t = "/cgraphql";
    let gd = Check::Hand("GuestDataQuery", schemas::guest_data_query);
    c.check(Admin, "POST", t, "/cgraphql?q=GuestDataQuery", Some(json!({ "operationName": "GuestDataQuery", "query": "query GuestDataQuery { … }", "variables": { "first": 3 } })), 200, gd.clone()).await;
    let unassigned = c
        .check(
            Admin,
            "POST",
            t,
            "/cgraphql?q=GuestDataQuery",
            Some(json!({ "variables": { "spaceAssignmentType": "UNASSIGNED" } })),
            200,
            gd,
        )
        .await;
    let guest = unassigned.body["data"]["externalCollaboratorsByCriteria"]["nodes"][0]["accountId"]
        .as_str()
        .unwrap_or("no-guest")
        .to_string();
    let reset = Check::Hand(
        "ResetExCoSpacePermissionsMutation",
        schemas::reset_exco_mutation,
    );
    let r = c
        .check(
            Admin,
            "POST",
            t,
            "/cgraphql?q=ResetExCoSpacePermissionsMutation",
            Some(json!({ "variables": { "accountId": guest, "spaceKey": space_key } })),
            200,
            reset.clone(),
        )
        .await;
    if r.body["data"]["resetExCoSpacePermissions"]["success"] != json!(true) {
        c.failures.push(format!(
            "reset of an unassigned guest should succeed: {}",
            r.body
        ));
    }
    c.check(
        Admin,
        "POST",
        t,
        "/cgraphql?q=ResetExCoSpacePermissionsMutation",
        Some(json!({ "variables": { "accountId": "nobody", "spaceKey": space_key } })),
        200,
        reset,
    )
    .await;
    let gql_err = Check::Hand("graphql errors", schemas::graphql_errors);
    c.check(
        Admin,
        "POST",
        t,
        "/cgraphql?q=NoSuchQuery",
        Some(json!({})),
        400,
        gql_err.clone(),
    )
    .await;
    c.check(
        NonAdmin,
        "POST",
        t,
        "/cgraphql?q=GuestDataQuery",
        Some(json!({})),
        403,
        gql_err,
    )
    .await;

    // ---- Jira ----
    let t = "/rest/api/3/user";
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "emailAddress": "jira.new@acme.example", "products": [] })),
        201,
        JIRA,
    )
    .await;
    c.check(
        Admin,
        "POST",
        t,
        t,
        Some(json!({ "emailAddress": "jira.new@acme.example", "products": [] })),
        400,
        JIRA,
    )
    .await;
    c.check(
        NonAdmin,
        "POST",
        t,
        t,
        Some(json!({ "emailAddress": "other@acme.example", "products": [] })),
        403,
        JIRA,
    )
    .await;

    // ---- 503 when the access API is disabled ----
    state.write(|s| s.check_access_enabled = false);
    for t in [
        "/wiki/api/v2/user/access/check-access-by-email",
        "/wiki/api/v2/user/access/invite-by-email",
    ] {
        c.check(
            Admin,
            "POST",
            t,
            t,
            Some(json!({ "emails": ["a@acme.example"] })),
            503,
            V2,
        )
        .await;
    }
    state.write(|s| s.check_access_enabled = true);

    // ---- 401 on every served route ----
    for (method, template) in served_routes() {
        let path = template
            .replace("{id}", "1")
            .replace("{spaceKey}", &space_key)
            .replace("{groupId}", &group_id)
            .replace("{operationKey}", "read")
            .replace("{attachmentId}", "att1")
            .replace("{pageId}", "1")
            .replace("{filename}", "x.png");
        let check = match spec_of(&template) {
            Some(spec) => Check::Spec(spec),
            None => kb_err.clone(),
        };
        let body = (method == "POST").then(|| json!({}));
        c.check(BadToken, &method, &template, &path, body, 401, check)
            .await;
    }

    // Each template we named really is a route (the stats count calls per matched template).
    let stats = site.sim.stats();
    for (method, template) in &c.covered {
        let key = format!("{method} {template}");
        if !stats_key_seen(&stats, &key) {
            c.failures.push(format!(
                "{key}: checked here but the simulator matched no such route (stats: {:?})",
                stats.by_endpoint.keys().collect::<Vec<_>>()
            ));
        }
    }
    // `/cgraphql` is counted per operation, under the client's keys; unknown operations are
    // not (the key set stays bounded).
    for op in confluence_sim::access::GRAPHQL_OPERATIONS {
        let key = format!("POST /cgraphql?q={op}");
        if !stats.by_endpoint.contains_key(&key) {
            c.failures.push(format!("{key}: not in the stats"));
        }
    }
    if let Some(k) = stats.by_endpoint.keys().find(|k| k.contains("NoSuchQuery")) {
        c.failures
            .push(format!("{k}: an unknown operation got its own stats key"));
    }
    for (m, t) in CHECKED {
        if !c.succeeded.contains(&(m.to_string(), t.to_string())) {
            c.failures
                .push(format!("{m} {t}: no successful call was checked"));
        }
    }
    assert!(
        c.failures.is_empty(),
        "{} non-conformances:\n- {}",
        c.failures.len(),
        c.failures.join("\n- ")
    );
}

/// Whether the stats counted calls under `key` (`METHOD /template`, the spec's parameter
/// names, as the router has them). `/cgraphql` is counted per operation:
/// `POST /cgraphql?q=GuestDataQuery`.
fn stats_key_seen(stats: &confluence_sim::Stats, key: &str) -> bool {
    stats.by_endpoint.contains_key(key)
        || stats.by_endpoint.keys().any(|k| {
            k.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with("?q="))
        })
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A newly added route without a success check here fails this test.
#[test]
fn every_served_route_is_checked() {
    let served = served_routes();
    assert!(
        served.len() >= 20,
        "route scan found too few routes: {served:?}"
    );
    let checked: BTreeSet<(String, String)> = CHECKED
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&checked).collect();
    assert!(
        missing.is_empty(),
        "served but without a conformance check: {missing:?}"
    );
    let stale: Vec<_> = checked.difference(&served).collect();
    assert!(stale.is_empty(), "checked but no longer served: {stale:?}");
}

/// The routes `every_endpoint_conforms_to_its_schema` checks with a success status (router
/// templates, which use the spec's parameter names).
const CHECKED: &[(&str, &str)] = &[
    ("GET", "/wiki/api/v2/spaces"),
    ("GET", "/wiki/api/v2/spaces/{id}"),
    ("GET", "/wiki/api/v2/spaces/{id}/pages"),
    ("GET", "/wiki/api/v2/pages/{id}"),
    ("GET", "/wiki/api/v2/pages/{id}/attachments"),
    ("GET", "/wiki/api/v2/pages/{id}/labels"),
    ("GET", "/wiki/api/v2/pages/{id}/children"),
    ("GET", "/wiki/api/v2/labels/{id}/pages"),
    ("GET", "/wiki/api/v2/folders/{id}"),
    ("GET", "/wiki/api/v2/folders/{id}/direct-children"),
    ("GET", "/wiki/api/v2/pages/{id}/direct-children"),
    (
        "GET",
        "/wiki/rest/api/content/{id}/restriction/byOperation/{operationKey}",
    ),
    ("GET", "/wiki/rest/api/content/{id}/restriction/byOperation"),
    ("GET", "/wiki/rest/api/user/current"),
    ("GET", "/wiki/rest/api/content/{id}/child/{type}"),
    ("GET", "/wiki/rest/api/content/{id}/label"),
    ("GET", "/wiki/api/v2/pages"),
    ("GET", "/wiki/rest/api/search"),
    ("GET", "/wiki/rest/api/content/search"),
    (
        "GET",
        "/wiki/rest/api/content/{id}/child/attachment/{attachmentId}/download",
    ),
    ("GET", "/wiki/download/attachments/{pageId}/{filename}"),
    ("POST", "/wiki/api/v2/users-bulk"),
    ("POST", "/wiki/api/v2/user/access/check-access-by-email"),
    ("POST", "/wiki/api/v2/user/access/invite-by-email"),
    ("GET", "/wiki/api/v2/spaces/{id}/permissions"),
    ("GET", "/wiki/rest/api/space"),
    ("GET", "/wiki/rest/api/space/{spaceKey}"),
    ("GET", "/wiki/rest/api/group"),
    ("POST", "/wiki/rest/api/group"),
    ("GET", "/wiki/rest/api/group/by-name"),
    ("GET", "/wiki/rest/api/group/by-id"),
    ("DELETE", "/wiki/rest/api/group/by-id"),
    ("GET", "/wiki/rest/api/group/picker"),
    ("GET", "/wiki/rest/api/group/{groupId}/membersByGroupId"),
    ("POST", "/wiki/rest/api/group/userByGroupId"),
    ("DELETE", "/wiki/rest/api/group/userByGroupId"),
    ("POST", "/wiki/rest/api/space/{spaceKey}/permission"),
    ("DELETE", "/wiki/rest/api/space/{spaceKey}/permission/{id}"),
    (
        "POST",
        "/wiki/rest/knowledge-base/1.0/permissions/space/unlicensedview",
    ),
    (
        "POST",
        "/wiki/rest/knowledge-base/1.0/permissions/space/anonymousview",
    ),
    (
        "POST",
        "/wiki/rest/knowledge-base/1.0/permissions/global/unlicensedaccess",
    ),
    ("POST", "/cgraphql"),
    ("POST", "/rest/api/3/user"),
];
