//! In-process test harness: a fresh store with a small mirror, a policy, and the portal served
//! on 127.0.0.1:0. Tests talk to it over real HTTP.
#![allow(dead_code)]

pub mod browser;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use confluence_client::ClientConfig;
use confluence_sim::{SimConfig, SimHandle};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kbgate_config::PortalConfig;
use kbgate_mirror::sync::{Progress, SyncOptions, confluence::ConfluenceSource, sync_spaces};
use kbgate_policy::{Audience, AudienceName, Delivery, Domain, Label, Policy, SpaceKey};
use kbgate_server::{AppState, EmbedVerifier, Extras, Mailer, PolicyHandle};
use kbgate_store::testing::TestStore;
use kbgate_store::{
    AttachmentRecord, Heading, PageRecord, SpaceRecord, Store, SyncMode, SyncState,
};
use serde_json::json;

pub const SECRET: &str = "test-embed-secret-0123456789abcdef-xyz";
pub const API_KEY: &str = "test-api-key-abcdefghijklmnopqrstuvwxyz";
pub const ISSUER: &str = "https://app.example.com";
pub const AUDIENCE: &str = "kbgate";
/// The one `[admin]` email of the test apps (a reader of the acme audience too).
pub const ADMIN: &str = "boss@acme.com";
/// An `[admin]` email no audience grants anything (the vendor's own staff).
pub const STAFF_ADMIN: &str = "ops@vendor.example";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub policy: PolicyHandle,
    /// The served state (e.g. [`AppState::clear_caches`] after back-dating a session).
    pub state: AppState,
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

/// [`policy`] plus native-delivery audiences (for access requests), over the same mirror:
/// - `guest.com` → KB as Confluence guests; `unlicensed.com` → KB by unlicensed view;
/// - `group.com` and `gmail.com` (which stays denied) → KB through a group;
/// - `gone.com` → a group audience that expired.
///
/// `acme.com` and the other portal domains keep their portal audiences only.
pub fn native_policy() -> Policy {
    let native = |name: &str, domains: &[&str], delivery: Delivery, expires| Audience {
        delivery,
        ..audience(name, domains, &["KB"], &[], expires)
    };
    let mut auds = policy().audiences().to_vec();
    auds.extend([
        native("guests", &["guest.com"], Delivery::Guest, None),
        native(
            "unlicensed",
            &["unlicensed.com"],
            Delivery::Unlicensed,
            None,
        ),
        native(
            "grouped",
            &["group.com", "gmail.com"],
            Delivery::Group,
            None,
        ),
        native(
            "gone",
            &["gone.com"],
            Delivery::Group,
            Some(NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()),
        ),
    ]);
    Policy::new(auds, policy().deny().to_vec()).unwrap()
}

/// Starts the portal under [`native_policy`] on a fresh store of `backend` (with the
/// fixture mirror); `None` when PostgreSQL is unavailable (and not required by `CI=true`).
pub async fn spawn_native_app_on(backend: Backend) -> Option<TestApp> {
    let test_store = open_store(backend).await?;
    write_mirror(&test_store.store).await;
    Some(serve(test_store, native_policy()).await)
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

/// A real 1×1 PNG (a space icon in tests).
pub const PNG_BYTES: &[u8] = confluence_sim::generator::PNG;

/// Gives a mirrored space a description and (with `icon` bytes) a PNG icon, as a sync that
/// found them would: one commit of the space record, its pages left as they are.
pub async fn set_space_details(
    store: &Arc<dyn Store>,
    key: &str,
    description: &str,
    icon: Option<&[u8]>,
) {
    let mut space = store.space_by_key(key).await.unwrap().expect("space");
    space.description = description.to_owned();
    space.icon_path = icon.map(|_| format!("/wiki/download/attachments/1/{key}.png?version=1"));
    space.icon = match icon {
        Some(bytes) => Some(kbgate_store::SpaceIcon {
            media_type: "image/png".into(),
            blob: store.blobs().write_bytes(bytes).await.unwrap(),
        }),
        None => None,
    };
    let tx = store
        .begin_space_sync(&space, SyncMode::Incremental)
        .await
        .unwrap();
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

/// Writes the fixture mirror: KB (with restricted and labelled pages), HR, OLD.
pub async fn write_mirror(store: &Arc<dyn Store>) {
    use ids::*;
    let kb = SpaceRecord {
        id: "100".into(),
        key: "KB".into(),
        name: "Knowledge Base".into(),
        homepage_id: Some(WELCOME.into()),
        ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
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

/// The portal over the fixture mirror on SQLite.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Sqlite).await.unwrap()
}

/// Starts the portal on a fresh store of `backend`; `None` when PostgreSQL is unavailable
/// (and not required by `CI=true`).
pub async fn spawn_app_on(backend: Backend) -> Option<TestApp> {
    let test_store = open_store(backend).await?;
    write_mirror(&test_store.store).await;
    Some(serve(test_store, policy()).await)
}

/// A fresh, empty store of `backend`; `None` when PostgreSQL is unavailable (and not
/// required by `CI=true`).
pub async fn open_store(backend: Backend) -> Option<TestStore> {
    match backend {
        Backend::Sqlite => Some(kbgate_store::testing::sqlite().await),
        Backend::Postgres => kbgate_store::testing::postgres().await,
    }
}

/// Serves the portal over `test_store` (as it is) under `policy`, on 127.0.0.1:0.
pub async fn serve(test_store: TestStore, policy: Policy) -> TestApp {
    serve_with(test_store, policy, |_| {}, hs256_verifier()).await
}

/// The embed verifier of [`serve`]: HS256 with [`SECRET`], [`ISSUER`] and [`AUDIENCE`].
pub fn hs256_verifier() -> EmbedVerifier {
    EmbedVerifier::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE).unwrap()
}

/// The portal over the fixture mirror on SQLite, with `[portal]` adjusted and its own embed
/// verifier (see [`serve_with`]).
pub async fn spawn_app_with(
    portal: impl FnOnce(&mut PortalConfig),
    embed: EmbedVerifier,
) -> TestApp {
    let test_store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&test_store.store).await;
    serve_with(test_store, policy(), portal, embed).await
}

/// Like [`serve`], but `portal` adjusts `[portal]` (every key at the configuration's default,
/// the public URL the bound address) and `embed` verifies hand-over tokens instead of
/// [`hs256_verifier`].
pub async fn serve_with(
    test_store: TestStore,
    policy: Policy,
    portal: impl FnOnce(&mut PortalConfig),
    embed: EmbedVerifier,
) -> TestApp {
    serve_with_extras(test_store, policy, portal, embed, |_| {}).await
}

/// Like [`serve_with`], and `extras_fn` adjusts the optional parts (e.g. `login_url`).
pub async fn serve_with_extras(
    test_store: TestStore,
    policy: Policy,
    portal: impl FnOnce(&mut PortalConfig),
    embed: EmbedVerifier,
    extras_fn: impl FnOnce(&mut Extras),
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut extras = Extras {
        embed: Some(embed),
        api_key: Some(API_KEY.into()),
        admin: kbgate_config::AdminConfig {
            admins: kbgate_policy::AdminPolicy::new(
                [
                    kbgate_policy::Email::parse(ADMIN).unwrap(),
                    kbgate_policy::Email::parse(STAFF_ADMIN).unwrap(),
                ],
                [],
            ),
            ..Default::default()
        },
        ..Extras::default()
    };
    extras_fn(&mut extras);
    serve_on(listener, test_store, policy, portal, extras).await
}

/// Like [`serve_with`], on a listener the caller bound (its address is the public URL, known
/// before the portal starts: e.g. a redirect URI to register elsewhere first) and with the
/// caller's [`Extras`].
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    test_store: TestStore,
    policy: Policy,
    portal: impl FnOnce(&mut PortalConfig),
    extras: Extras,
) -> TestApp {
    let store = test_store.store.clone();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mut config = PortalConfig::new(url::Url::parse(&base).unwrap());
    config.listen = addr;
    portal(&mut config);
    let policy = PolicyHandle::new(policy);
    let outbox = tempfile::tempdir().unwrap();
    let mailer = Mailer::outbox(outbox.path(), "kb@example.com").unwrap();
    let state = AppState::new(&config, store.clone(), policy.clone(), Some(mailer), extras);
    let served = state.clone();
    let server = tokio::spawn(async move {
        kbgate_server::serve(listener, served, std::future::pending())
            .await
            .unwrap();
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base,
        client,
        store,
        policy,
        state,
        outbox,
        _store: test_store,
        _server: server,
    }
}

// ----- real synced content: the simulator, synced by the mirror, served ------------------

/// The portal over a mirror synced from the in-process Confluence simulator.
pub struct SyncedApp {
    pub app: TestApp,
    pub sim: SimHandle,
    /// Keys of every space of the simulated site (all synced).
    pub space_keys: Vec<String>,
}

/// Viewers of [`synced_policy`]: (email, spaces it reads, label filter).
pub const SYNCED_VIEWERS: &[(&str, &[&str], Option<&str>)] = &[
    ("alice@acme.com", &["KB"], None),
    ("gina@globex.co.uk", &["ONBOARD"], Some("public")),
    ("ian@initech.io", &["API"], None),
    ("hank@hooli.com", &["KB", "ONBOARD", "API"], None),
];

/// Policy over the simulator's default site (spaces KB, ONBOARD, API):
/// - `acme.com` → all of KB; `initech.io` → all of API;
/// - `globex.co.uk` → ONBOARD pages labelled `public`;
/// - `hooli.com` → all three spaces;
/// - `gmail.com` denied.
pub fn synced_policy() -> Policy {
    Policy::new(
        vec![
            audience("acme", &["acme.com"], &["KB"], &[], None),
            audience("globex", &["globex.co.uk"], &["ONBOARD"], &["public"], None),
            audience("initech", &["initech.io"], &["API"], &[], None),
            audience(
                "hooli",
                &["hooli.com"],
                &["KB", "ONBOARD", "API"],
                &[],
                None,
            ),
        ],
        vec![Domain::parse("gmail.com").unwrap()],
    )
    .unwrap()
}

/// The simulator's service account as a mirror source (no client-side rate limit).
pub fn sim_source(sim: &SimHandle) -> ConfluenceSource {
    let creds = sim.service_account();
    let mut cfg = ClientConfig::new(
        sim.base_url().parse().expect("sim url"),
        creds.email,
        creds.api_token,
    );
    cfg.requests_per_second = 0;
    ConfluenceSource::new(confluence_client::Client::new(cfg).expect("client"))
}

/// Spawns the simulator with `config`, syncs every space into a fresh store of `backend`
/// with the real sync engine and renderer, and serves the portal under [`synced_policy`].
/// `None` when PostgreSQL is unavailable (and not required by `CI=true`).
pub async fn spawn_synced_on(backend: Backend, config: SimConfig) -> Option<SyncedApp> {
    let test_store = open_store(backend).await?;
    let sim = confluence_sim::spawn(config).await.expect("simulator");
    let mut space_keys: Vec<String> = sim
        .state()
        .read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect());
    space_keys.sort();
    sync_spaces(
        &sim_source(&sim),
        &*test_store.store,
        &space_keys,
        &SyncOptions::default(),
        &Progress::quiet(),
    )
    .await
    .expect("sync");
    let app = serve(test_store, synced_policy()).await;
    Some(SyncedApp {
        app,
        sim,
        space_keys,
    })
}

/// Like [`spawn_synced_on`], but the sync runs through a second handle on the same store
/// opened with a data directory of its own, as a second `kbgate` instance on another host
/// would; the portal serves through the first. Returns the second handle and its directory.
pub async fn spawn_synced_by_another_instance(
    backend: Backend,
    config: SimConfig,
) -> Option<(SyncedApp, Arc<dyn Store>, tempfile::TempDir)> {
    let test_store = open_store(backend).await?;
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = kbgate_store::open(&test_store.url, other_dir.path())
        .await
        .expect("second handle");
    let sim = confluence_sim::spawn(config).await.expect("simulator");
    let mut space_keys: Vec<String> = sim
        .state()
        .read(|s| s.spaces.values().map(|sp| sp.key.clone()).collect());
    space_keys.sort();
    sync_spaces(
        &sim_source(&sim),
        &*other,
        &space_keys,
        &SyncOptions::default(),
        &Progress::quiet(),
    )
    .await
    .expect("sync");
    let app = serve(test_store, synced_policy()).await;
    Some((
        SyncedApp {
            app,
            sim,
            space_keys,
        },
        other,
        other_dir,
    ))
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
    /// A second handle on the served store: writes through it are another process's.
    pub async fn other_process_store(&self) -> Arc<dyn Store> {
        self._store.reopen().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A form POST without a session (sign-in and request-access forms).
    pub async fn post_form<T: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        form: &T,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
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

/// What the magic-link confirmation page gives the browser that opens it: the `Cookie`
/// header value binding the form to this browser, and the form token.
pub struct ConfirmForm {
    pub cookie: String,
    pub csrf: String,
}

impl TestApp {
    /// Opens the magic-link confirmation page for `code` as a browser would.
    pub async fn confirm_form(&self, code: &str) -> ConfirmForm {
        let r = self
            .client
            .get(self.url("/auth/email/confirm"))
            .query(&[("code", code)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.contains("kbgate_confirm="))
            .and_then(|v| v.split(';').next())
            .expect("a confirmation cookie")
            .to_owned();
        let body = r.text().await.unwrap();
        let csrf = body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a form token")
            .to_owned();
        ConfirmForm { cookie, csrf }
    }

    /// Confirms a magic link the way its page does: opens the page, posts its form.
    pub async fn confirm_magic_link(&self, code: &str) -> reqwest::Response {
        let form = self.confirm_form(code).await;
        self.client
            .post(self.url("/auth/email/confirm"))
            .header("cookie", &form.cookie)
            .form(&[("code", code), ("csrf", form.csrf.as_str())])
            .send()
            .await
            .unwrap()
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

impl TestApp {
    /// `GET` on the JSON API as the host app acting for `email`: status and body.
    pub async fn api_get(&self, path: &str, email: &str) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(API_KEY)
            .header("x-kbgate-email", email)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// `GET` with a session cookie: status and body text.
    pub async fn get_text(&self, path: &str, cookie: &str) -> (u16, String) {
        let resp = self.get(path, Some(cookie)).await;
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
}

/// A start tag: lower-cased name and `(lower-cased name, raw value)` attributes.
pub type Tag = (String, Vec<(String, String)>);

/// Every start tag of `html`, attributes parsed with quoting, so a handler attribute
/// cannot hide behind odd spacing or quoting. Text never contains a raw `<` followed by a
/// letter in the portal's output (the renderer escapes it), so this sees all markup.
pub fn start_tags(html: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let b = html.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' || !b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()) {
            i += 1;
            continue;
        }
        i += 1;
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
            i += 1;
        }
        let name = html[start..i].to_ascii_lowercase();
        let mut attrs = Vec::new();
        while i < b.len() && b[i] != b'>' {
            if b[i].is_ascii_whitespace() || b[i] == b'/' {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len()
                && !b[i].is_ascii_whitespace()
                && b[i] != b'='
                && b[i] != b'>'
                && b[i] != b'/'
            {
                i += 1;
            }
            let attr = html[start..i].to_ascii_lowercase();
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i];
                    i += 1;
                    let vs = i;
                    while i < b.len() && b[i] != q {
                        i += 1;
                    }
                    value = html[vs..i.min(b.len())].to_owned();
                    i += 1;
                } else {
                    let vs = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = html[vs..i].to_owned();
                }
            }
            attrs.push((attr, value));
        }
        tags.push((name, attrs));
    }
    tags
}

/// An attribute value as a browser would read its scheme: a few entity forms decoded,
/// whitespace and control characters dropped, lower-cased.
fn url_scheme_form(v: &str) -> String {
    v.replace("&colon;", ":")
        .replace("&#58;", ":")
        .replace("&#x3a;", ":")
        .replace("&#x3A;", ":")
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The one script element a portal page has: `base.html`'s, in the head.
pub const FIRST_PARTY_SCRIPT: &str = "<script src=\"/assets/suggest.js\" defer></script>";

/// Asserts that `html` can run nothing but the portal's own script ([`FIRST_PARTY_SCRIPT`]): no script, frame, object or embed element, no
/// event handler attribute, no `javascript:`/`vbscript:`/`data:` URL in any attribute, and
/// no unresolved view-time token.
pub fn assert_inert(html: &str, what: &str) {
    // The portal's own script (`base.html`: search suggestions, CSP `script-src 'self'`) is
    // allowed once, in the head, exactly as the template writes it; nothing else anywhere.
    let stripped = match html.split_once("</head>") {
        Some((head, body)) => format!("{}</head>{body}", head.replacen(FIRST_PARTY_SCRIPT, "", 1)),
        None => html.to_owned(),
    };
    let html = stripped.as_str();
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{what}: contains <script");
    for (name, attrs) in start_tags(html) {
        assert!(
            ![
                "script", "iframe", "frame", "object", "embed", "base", "form"
            ]
            .contains(&name.as_str())
                || (name == "form"
                    && attrs
                        .iter()
                        .any(|(a, v)| a == "action" && v.starts_with('/'))),
            "{what}: a <{name}> element"
        );
        for (a, v) in &attrs {
            assert!(
                !a.starts_with("on"),
                "{what}: handler attribute {a} on <{name}>"
            );
            let v = url_scheme_form(v);
            for scheme in ["javascript:", "vbscript:", "data:text/html"] {
                assert!(!v.contains(scheme), "{what}: {a}={v:?} on <{name}>");
            }
        }
    }
    assert!(
        !html.contains(['\u{E000}', '\u{E001}', '\u{E002}']),
        "{what}: an unresolved reference token"
    );
}

#[test]
fn start_tags_sees_through_quoting() {
    let tags = start_tags(
        "<p class=\"a onclick=x\">t &lt;script</p><img src=x onerror = 'y'><a\nhref=\"/\"\tONMOUSEOVER=z>",
    );
    let names: Vec<&str> = tags
        .iter()
        .flat_map(|(_, a)| a.iter().map(|(n, _)| n.as_str()))
        .collect();
    assert_eq!(names, ["class", "src", "onerror", "href", "onmouseover"]);
    assert_eq!(tags[0].1[0].1, "a onclick=x");
    assert_eq!(url_scheme_form("java\tscript&colon;x"), "javascript:x");
}

/// Page ids linked from `html` (`href="/pages/{id}"`, optionally with a fragment) and the
/// page ids of attachment URLs (`/attachments/{page_id}/…` in `href` or `src`).
pub fn linked_ids(html: &str) -> (Vec<String>, Vec<String>) {
    let mut pages = Vec::new();
    let mut attachment_pages = Vec::new();
    for (_, attrs) in start_tags(html) {
        for (a, v) in attrs {
            if a != "href" && a != "src" {
                continue;
            }
            if let Some(rest) = v.strip_prefix("/pages/") {
                pages.push(rest.split(['#', '?']).next().unwrap_or("").to_owned());
            } else if let Some(rest) = v.strip_prefix("/attachments/")
                && !rest.starts_with("id/")
            {
                attachment_pages.push(rest.split('/').next().unwrap_or("").to_owned());
            }
        }
    }
    (pages, attachment_pages)
}

/// The store's key for a session cookie (`name=value`): the SHA-256 hex of the value.
pub fn session_hash(cookie: &str) -> String {
    use sha2::{Digest, Sha256};
    let value = cookie.split_once('=').map_or(cookie, |(_, v)| v);
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Writes a session for `email` straight into the store with the given times, as if it had
/// been opened earlier; returns the `Cookie` header value (plain cookie name, as used when the
/// public URL is local http).
pub async fn plant_session(
    app: &TestApp,
    email: &str,
    created_at: chrono::DateTime<Utc>,
    last_seen_at: chrono::DateTime<Utc>,
    expires_at: chrono::DateTime<Utc>,
) -> String {
    // 43 URL-safe characters, the shape of a real session id.
    let value = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        &uuid::Uuid::new_v4().simple().to_string()[..11]
    );
    let cookie = format!("kbgate_session={value}");
    app.store
        .create_session(&kbgate_store::SessionRecord {
            id_hash: session_hash(&cookie),
            email: email.into(),
            created_at,
            last_seen_at,
            expires_at,
            revoked: false,
        })
        .await
        .unwrap();
    cookie
}
