//! In-process test harness: a fresh store with a small mirror, a policy, and the portal served
//! on 127.0.0.1:0. Tests talk to it over real HTTP.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kbgate_policy::{Audience, AudienceName, Delivery, Domain, Label, Policy, SpaceKey};
use kbgate_server::{AppState, EmbedVerifier, Extras, Mailer, PolicyHandle, Settings};
use kbgate_store::testing::TestStore;
use kbgate_store::{
    AttachmentRecord, Heading, PageRecord, SpaceRecord, Store, SyncMode, SyncState,
};
use serde_json::json;

pub const SECRET: &str = "test-embed-secret-0123456789abcdef-xyz";
pub const API_KEY: &str = "test-api-key-abcdefghijklmnopqrstuvwxyz";
pub const ISSUER: &str = "https://app.example.com";
pub const AUDIENCE: &str = "kbgate";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub policy: PolicyHandle,
    pub outbox: tempfile::TempDir,
    _store: TestStore,
    _server: tokio::task::JoinHandle<()>,
}

/// Which store backend a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn audience(
    name: &str,
    domains: &[&str],
    spaces: &[&str],
    labels: &[&str],
    expires: Option<NaiveDate>,
) -> Audience {
    Audience {
        name: AudienceName::parse(name).unwrap(),
        domains: domains.iter().map(|d| Domain::parse(d).unwrap()).collect(),
        include_subdomains: false,
        spaces: spaces.iter().map(|s| SpaceKey::parse(s).unwrap()).collect(),
        labels: labels.iter().map(|l| Label::parse(l).unwrap()).collect(),
        expires,
        delivery: Delivery::Portal,
    }
}

/// The test policy:
/// - `acme.com` (and `gmail.com`, which is also denied) → all of KB;
/// - `partner.com` → KB pages labelled `public`;
/// - `other.com` → HR;
/// - `old.com` → OLD, expired.
pub fn policy() -> Policy {
    Policy::new(
        vec![
            audience("acme", &["acme.com", "gmail.com"], &["KB"], &[], None),
            audience("partner", &["partner.com"], &["KB"], &["public"], None),
            audience("other", &["other.com"], &["HR"], &[], None),
            audience(
                "old",
                &["old.com"],
                &["OLD"],
                &[],
                Some(NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()),
            ),
        ],
        vec![Domain::parse("gmail.com").unwrap()],
    )
    .unwrap()
}

/// A policy without the acme audience (to test that a change applies to live sessions).
pub fn policy_without_acme() -> Policy {
    let mut auds = policy().audiences().to_vec();
    auds.retain(|a| a.name.as_str() != "acme");
    Policy::new(auds, vec![]).unwrap()
}

#[allow(clippy::too_many_arguments)] // a fixture table reads best as positional rows
fn page(
    id: &str,
    space_id: &str,
    parent: Option<&str>,
    title: &str,
    labels: &[&str],
    restricted: bool,
    effective: bool,
    body: &str,
) -> PageRecord {
    let t = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    PageRecord {
        id: id.into(),
        space_id: space_id.into(),
        parent_id: parent.map(str::to_owned),
        position: id.parse().unwrap_or(0),
        title: title.into(),
        version: 1,
        created_at: t,
        updated_at: t,
        labels: labels.iter().map(|s| s.to_string()).collect(),
        restricted,
        effective_restricted: effective,
        body_storage: format!("<p>{body}</p>"),
        body_html: format!("<h2 id=\"intro\">Intro</h2><p>{body}</p>"),
        body_text: format!("Intro {body}"),
        headings: vec![Heading {
            level: 2,
            text: "Intro".into(),
            anchor: "intro".into(),
        }],
    }
}

/// Page ids of the fixture mirror.
pub mod ids {
    pub const WELCOME: &str = "1001";
    pub const CHILD: &str = "1002";
    pub const RESTRICTED: &str = "1003";
    pub const UNDER_RESTRICTED: &str = "1004";
    pub const PUBLIC_FAQ: &str = "1005";
    pub const INTERNAL: &str = "1006";
    pub const PUBLIC_UNDER_INTERNAL: &str = "1007";
    pub const HR: &str = "2001";
    pub const OLD: &str = "3001";
}

async fn write_space(
    store: &Arc<dyn Store>,
    space: SpaceRecord,
    pages: Vec<PageRecord>,
    attachments: Vec<(AttachmentRecord, &[u8])>,
) {
    let mut tx = store
        .begin_space_sync(&space, SyncMode::Full)
        .await
        .unwrap();
    tx.upsert_pages(pages).await.unwrap();
    for (mut a, bytes) in attachments {
        a.blob = Some(store.blobs().write_bytes(bytes).await.unwrap());
        tx.upsert_attachment(a).await.unwrap();
    }
    tx.commit(SyncState {
        space_key: space.key.clone(),
        space_id: space.id.clone(),
        watermark: None,
        last_full_sync: Some(Utc::now()),
        last_sync: Some(Utc::now()),
    })
    .await
    .unwrap();
}

fn attachment(
    id: &str,
    page_id: &str,
    name: &str,
    media_type: &str,
    len: usize,
) -> AttachmentRecord {
    AttachmentRecord {
        id: id.into(),
        page_id: page_id.into(),
        title: name.into(),
        media_type: media_type.into(),
        file_size: len as i64,
        version: 1,
        updated_at: Utc::now(),
        blob: None,
    }
}

pub const PDF_BYTES: &[u8] = b"%PDF-1.4 fake pdf for tests";
pub const HTML_BYTES: &[u8] = b"<html><script>alert(1)</script></html>";
pub const SVG_BYTES: &[u8] = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";
pub const SECRET_BYTES: &[u8] = b"restricted attachment bytes";

/// Writes the fixture mirror: KB (with restricted and labelled pages), HR, OLD.
pub async fn write_mirror(store: &Arc<dyn Store>) {
    use ids::*;
    let kb = SpaceRecord {
        id: "100".into(),
        key: "KB".into(),
        name: "Knowledge Base".into(),
        homepage_id: Some(WELCOME.into()),
    };
    write_space(
        store,
        kb,
        vec![
            page(
                WELCOME,
                "100",
                None,
                "Welcome",
                &[],
                false,
                false,
                "welcome alpha",
            ),
            page(
                CHILD,
                "100",
                Some(WELCOME),
                "Child page",
                &[],
                false,
                false,
                "child bravo",
            ),
            page(
                RESTRICTED,
                "100",
                Some(WELCOME),
                "Secret plans",
                &[],
                true,
                true,
                "secretword charlie",
            ),
            page(
                UNDER_RESTRICTED,
                "100",
                Some(RESTRICTED),
                "Hidden child",
                &["public"],
                false,
                true,
                "hiddenword delta",
            ),
            page(
                PUBLIC_FAQ,
                "100",
                None,
                "Public FAQ",
                &["public"],
                false,
                false,
                "faqword echo",
            ),
            page(
                INTERNAL,
                "100",
                None,
                "Internal notes",
                &["internal"],
                false,
                false,
                "internalword foxtrot",
            ),
            page(
                PUBLIC_UNDER_INTERNAL,
                "100",
                Some(INTERNAL),
                "Public under internal",
                &["public"],
                false,
                false,
                "nested golf",
            ),
        ],
        vec![
            (
                attachment(
                    "9001",
                    WELCOME,
                    "guide.pdf",
                    "application/pdf",
                    PDF_BYTES.len(),
                ),
                PDF_BYTES,
            ),
            (
                attachment("9002", WELCOME, "evil.html", "text/html", HTML_BYTES.len()),
                HTML_BYTES,
            ),
            (
                attachment(
                    "9003",
                    WELCOME,
                    "logo.svg",
                    "image/svg+xml",
                    SVG_BYTES.len(),
                ),
                SVG_BYTES,
            ),
            (
                attachment(
                    "9004",
                    RESTRICTED,
                    "secret.txt",
                    "text/plain",
                    SECRET_BYTES.len(),
                ),
                SECRET_BYTES,
            ),
            (
                attachment(
                    "9005",
                    INTERNAL,
                    "internal.txt",
                    "text/plain",
                    SECRET_BYTES.len(),
                ),
                SECRET_BYTES,
            ),
        ],
    )
    .await;
    write_space(
        store,
        SpaceRecord {
            id: "200".into(),
            key: "HR".into(),
            name: "Human Resources".into(),
            homepage_id: Some(HR.into()),
        },
        vec![page(
            HR,
            "200",
            None,
            "Salaries",
            &[],
            false,
            false,
            "hrword hotel",
        )],
        vec![],
    )
    .await;
    write_space(
        store,
        SpaceRecord {
            id: "300".into(),
            key: "OLD".into(),
            name: "Old space".into(),
            homepage_id: Some(OLD.into()),
        },
        vec![page(
            OLD,
            "300",
            None,
            "Old stuff",
            &[],
            false,
            false,
            "oldword india",
        )],
        vec![],
    )
    .await;
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Sqlite).await.unwrap()
}

/// Starts the portal on a fresh store of `backend`; `None` when PostgreSQL is unavailable
/// (and not required by `CI=true`).
pub async fn spawn_app_on(backend: Backend) -> Option<TestApp> {
    let test_store = match backend {
        Backend::Sqlite => kbgate_store::testing::sqlite().await,
        Backend::Postgres => kbgate_store::testing::postgres().await?,
    };
    let store = test_store.store.clone();
    write_mirror(&store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let settings = Settings::new(url::Url::parse(&base).unwrap()).with_site_name("Test KB");
    let policy = PolicyHandle::new(policy());
    let outbox = tempfile::tempdir().unwrap();
    let mailer = Mailer::outbox(outbox.path(), "kb@example.com").unwrap();
    let extras = Extras {
        embed: Some(EmbedVerifier::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE).unwrap()),
        api_key: Some(API_KEY.into()),
    };
    let state = AppState::new(
        settings,
        store.clone(),
        policy.clone(),
        Some(mailer),
        extras,
    );
    let server = tokio::spawn(async move {
        kbgate_server::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Some(TestApp {
        base,
        client,
        store,
        policy,
        outbox,
        _store: test_store,
        _server: server,
    })
}

pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// Good claims for `email`, with a fresh `jti`.
pub fn claims(email: &str) -> serde_json::Value {
    let n = now();
    json!({
        "email": email, "iat": n, "exp": n + 120, "iss": ISSUER, "aud": AUDIENCE,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

pub fn mint_hs256(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut rb = self.client.get(self.url(path));
        if let Some(c) = cookie {
            rb = rb.header("cookie", c);
        }
        rb.send().await.unwrap()
    }

    /// Signs in through the embed hand-over; returns the `Cookie` header value.
    pub async fn sign_in(&self, email: &str) -> String {
        let token = mint_hs256(&claims(email));
        let resp = self
            .client
            .get(self.url("/auth/embed"))
            .query(&[("token", token.as_str()), ("return_to", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "sign-in of {email} failed");
        session_cookie(&resp).expect("a session cookie")
    }
}

/// The `name=value` of the session cookie set by a response, if any (ignores removals).
pub fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.contains("Max-Age=0"))
        .find(|v| v.contains("kbgate_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}
