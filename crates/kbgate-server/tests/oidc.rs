//! Sign-in with OpenID Connect, end to end.
//!
//! The main flow runs against a **real OpenID Provider**: the certified `oidc-provider` from
//! npm (pinned in `tests/oidc_op/package.json` and its lock file), installed once into
//! `target/thirdparty/oidc-op-<hash>` (or `$THIRDPARTY_CACHE`) and started by each test with
//! `node`. Without node and npm the tests say so and pass, except under `CI=true`, where they
//! fail. The OP's accounts (`tests/oidc_op/op.mjs`) are chosen by `login_hint`.
//!
//! What a certified OP will not do (sign a token for another audience, with a wrong nonce,
//! with `alg: none`, …) is played by a small provider in this file, with test keys, served
//! over HTTP like any other: kbgate fetches its discovery document and key set as it would
//! a real one's.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use common::ids::*;
use common::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kbgate_config::{OidcProviderConfig, SecretSource, SecretString};
use kbgate_policy::Domain;
use kbgate_server::{Extras, OidcProvider};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

const CLIENT_ID: &str = "kbgate-test";
const CLIENT_SECRET: &str = "test-client-secret-0123456789";
const CALLBACK: &str = "/auth/oidc/callback";

// ----- the real OP ---------------------------------------------------------------------------

/// Installs the pinned `oidc-provider` once per cache directory; `None` (with a message) when
/// node or npm is missing and `CI` is not `true`.
fn op_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let have = |cmd: &str| {
            std::process::Command::new(cmd)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have("node") || !have("npm") {
            let msg = "the OpenID Provider tests need node (20+) and npm";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("SKIPPED: {msg}");
            return None;
        }
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc_op");
        let files = ["package.json", "package-lock.json", "op.mjs"];
        let mut all = Vec::new();
        for f in files {
            all.extend(std::fs::read(fixture.join(f)).unwrap());
        }
        let hash = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(&all)[..8])
        };
        let cache = std::env::var_os("THIRDPARTY_CACHE").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/thirdparty"),
            PathBuf::from,
        );
        let dir = cache.join(format!("oidc-op-{hash}"));
        if !dir.join(".complete").exists() {
            std::fs::create_dir_all(&dir).unwrap();
            for f in files {
                std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
            }
            let out = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(&dir)
                .output()
                .expect("npm runs");
            assert!(
                out.status.success(),
                "npm ci of oidc-provider failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(dir.join(".complete"), b"").unwrap();
        }
        Some(dir)
    })
    .clone()
}

/// A running `oidc-provider`; killed on drop.
struct RealOp {
    issuer: String,
    _child: tokio::process::Child,
}

async fn start_real_op(redirect_uri: &str) -> Option<RealOp> {
    let dir = op_dir()?;
    let mut child = tokio::process::Command::new("node")
        .arg("op.mjs")
        .current_dir(&dir)
        .env("OP_REDIRECT_URI", redirect_uri)
        .env("OP_CLIENT_ID", CLIENT_ID)
        .env("OP_CLIENT_SECRET", CLIENT_SECRET)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the OP starts within 30 s")
        .unwrap()
        .expect("the OP prints its issuer");
    let issuer = line
        .strip_prefix("listening ")
        .expect("listening <issuer>")
        .to_owned();
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(RealOp {
        issuer,
        _child: child,
    })
}

fn provider(name: &str, issuer: &str, domains: &[&str]) -> OidcProvider {
    let config = OidcProviderConfig {
        name: name.into(),
        display_name: None,
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret: SecretSource::Env("UNUSED".into()),
        scopes: vec!["openid".into(), "email".into()],
        domains: domains.iter().map(|d| Domain::parse(d).unwrap()).collect(),
    };
    OidcProvider::new(&config, SecretString::from(CLIENT_SECRET)).unwrap()
}

/// The portal with `providers`, on a listener bound before (so the redirect URI is known).
async fn portal(listener: tokio::net::TcpListener, providers: Vec<OidcProvider>) -> TestApp {
    let test_store = open_store(Backend::Sqlite).await.unwrap();
    write_mirror(&test_store.store).await;
    let extras = Extras {
        embed: Some(hs256_verifier()),
        api_key: Some(API_KEY.into()),
        oidc: providers,
        ..Extras::default()
    };
    serve_on(listener, test_store, policy(), |_| {}, extras).await
}

/// The real OP bound to `acme.com`, and the portal using it; `None` when skipped.
async fn with_real_op() -> Option<(TestApp, RealOp)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let op = start_real_op(&format!("{base}{CALLBACK}")).await?;
    let app = portal(
        listener,
        vec![provider("acme-op", &op.issuer, &["acme.com"])],
    )
    .await;
    Some((app, op))
}

// ----- a browser -----------------------------------------------------------------------------

/// A browser: its own cookies per host, redirects followed by hand.
struct Browser {
    client: reqwest::Client,
    jar: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(HashMap::new()),
        }
    }

    fn host(url: &str) -> String {
        let u = url::Url::parse(url).unwrap();
        format!(
            "{}:{}",
            u.host_str().unwrap(),
            u.port_or_known_default().unwrap()
        )
    }

    fn cookie_header(&self, url: &str) -> String {
        let jar = self.jar.lock().unwrap();
        jar.get(&Self::host(url))
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        jar.get(&Self::host(url)).and_then(|c| c.get(name).cloned())
    }

    fn remember(&self, url: &str, resp: &reqwest::Response) {
        let mut jar = self.jar.lock().unwrap();
        let cookies = jar.entry(Self::host(url)).or_default();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            if attrs.to_ascii_lowercase().contains("max-age=0") || val.is_empty() {
                cookies.remove(k.trim());
            } else {
                cookies.insert(k.trim().to_owned(), val.trim().to_owned());
            }
        }
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        let resp = self
            .client
            .get(url)
            .header("cookie", self.cookie_header(url))
            .send()
            .await
            .unwrap();
        self.remember(url, &resp);
        resp
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let resp = self
            .client
            .post(url)
            .header("cookie", self.cookie_header(url))
            .form(form)
            .send()
            .await
            .unwrap();
        self.remember(url, &resp);
        resp
    }
}

fn location(resp: &reqwest::Response, base: &str) -> String {
    let loc = resp
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("a redirect, got {}", resp.status()))
        .to_str()
        .unwrap();
    url::Url::parse(base)
        .unwrap()
        .join(loc)
        .unwrap()
        .to_string()
}

/// Types `email` into the sign-in form and follows the provider's redirects until it sends
/// the browser back to kbgate: returns the callback URL (not yet opened).
async fn to_callback(app: &TestApp, browser: &Browser, email: &str) -> String {
    let resp = browser
        .post_form(
            &app.url("/auth/email"),
            &[("email", email), ("return_to", "/spaces/KB")],
        )
        .await;
    assert_eq!(
        resp.status(),
        303,
        "the sign-in form sends {email} to its provider"
    );
    let mut url = location(&resp, &app.base);
    for _ in 0..10 {
        if url.starts_with(&app.url(CALLBACK)) {
            return url;
        }
        let resp = browser.get(&url).await;
        assert!(
            resp.status().is_redirection(),
            "the provider at {url} answered {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        url = location(&resp, &url);
    }
    panic!("the provider never sent the browser back");
}

/// The full sign-in; returns kbgate's answer to the callback.
async fn sign_in_with(app: &TestApp, browser: &Browser, email: &str) -> reqwest::Response {
    let callback = to_callback(app, browser, email).await;
    browser.get(&callback).await
}

fn session_of(browser: &Browser, app: &TestApp) -> Option<String> {
    browser.cookie(&app.base, "kbgate_session")
}

/// The audit log's most recent `signin.refused` reason for method oidc.
async fn last_refusal(app: &TestApp) -> Option<String> {
    app.store
        .recent_audit(50)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "signin.refused" && e.detail["method"] == "oidc")
        .and_then(|e| e.detail["reason"].as_str().map(str::to_owned))
}

// ----- the real OP: the flow works, and what it refuses ------------------------------------

#[tokio::test]
async fn signs_in_through_the_real_provider_and_reads_a_page() {
    let Some((app, _op)) = with_real_op().await else {
        return;
    };
    let browser = Browser::new();
    let resp = sign_in_with(&app, &browser, "alice@acme.com").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp, &app.base), app.url("/spaces/KB"));
    let session = session_of(&browser, &app).expect("a session cookie");
    let page = app
        .get(
            &format!("/pages/{WELCOME}"),
            Some(&format!("kbgate_session={session}")),
        )
        .await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("welcome alpha"));
    // The ordinary policy still decides: acme.com does not read HR.
    let hr = app
        .get(
            &format!("/pages/{HR}"),
            Some(&format!("kbgate_session={session}")),
        )
        .await;
    assert_eq!(hr.status(), 404);
    let events = app.store.recent_audit(20).await.unwrap();
    let oidc = events
        .iter()
        .find(|e| e.action == "oidc.identity_verified")
        .expect("audited");
    assert_eq!(oidc.actor, "alice@acme.com");
    assert_eq!(oidc.detail["provider"], "acme-op");
    assert!(
        events
            .iter()
            .any(|e| e.action == "session.create" && e.detail["method"] == "oidc")
    );
    // No secret, code or token went into the audit log.
    let all = serde_json::to_string(&events.iter().map(|e| &e.detail).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains(CLIENT_SECRET) && !all.contains("eyJ"));
}

#[tokio::test]
async fn the_authorization_request_uses_pkce_state_nonce_and_a_lax_binding_cookie() {
    let Some((app, op)) = with_real_op().await else {
        return;
    };
    // The form says some companies continue at their own provider.
    let form = app.get("/auth/email", None).await.text().await.unwrap();
    assert!(form.contains("Continue") && form.contains("its own account"));
    let browser = Browser::new();
    let resp = browser
        .post_form(&app.url("/auth/email"), &[("email", "alice@acme.com")])
        .await;
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("kbgate_oidc="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let url = url::Url::parse(&location(&resp, &app.base)).unwrap();
    assert!(url.as_str().starts_with(&op.issuer));
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], app.url(CALLBACK));
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert_eq!(q["login_hint"], "alice@acme.com");
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    // The CSP lets the sign-in form's post go on to the provider, and nowhere else.
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("form-action 'self' {}", op.issuer)),
        "{csp}"
    );
    // Another address of the same domain starts another state; other domains get the magic
    // link as before.
    let resp = browser
        .post_form(&app.url("/auth/email"), &[("email", "someone@partner.com")])
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_replayed_callback_or_code_is_refused() {
    let Some((app, _op)) = with_real_op().await else {
        return;
    };
    let browser = Browser::new();
    let callback = to_callback(&app, &browser, "alice@acme.com").await;
    assert_eq!(browser.get(&callback).await.status(), 303);
    // The same callback again: the state is spent.
    assert_eq!(browser.get(&callback).await.status(), 401);
    assert_eq!(last_refusal(&app).await.as_deref(), Some("state"));
    // The old code with a fresh state of this browser: the provider refuses the spent code.
    let old_code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let fresh = to_callback(&app, &browser, "alice@acme.com").await;
    let mut replay = url::Url::parse(&fresh).unwrap();
    let pairs: Vec<(String, String)> = replay
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "code" {
                (k, old_code.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    replay.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(browser.get(replay.as_str()).await.status(), 401);
    assert_eq!(last_refusal(&app).await.as_deref(), Some("code_exchange"));
}

#[tokio::test]
async fn a_callback_from_another_browser_or_a_wrong_state_is_refused() {
    let Some((app, _op)) = with_real_op().await else {
        return;
    };
    let victim = Browser::new();
    let attacker = Browser::new();
    let callback = to_callback(&app, &attacker, "alice@acme.com").await;
    // Login CSRF: the attacker's callback URL opened in a browser that started nothing.
    assert_eq!(victim.get(&callback).await.status(), 401);
    assert_eq!(
        last_refusal(&app).await.as_deref(),
        Some("not_this_browser")
    );
    // A tampered state.
    let mut wrong = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = wrong
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                (k, "A".repeat(43))
            } else {
                (k, v)
            }
        })
        .collect();
    wrong.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(attacker.get(wrong.as_str()).await.status(), 401);
    assert_eq!(last_refusal(&app).await.as_deref(), Some("state"));
    // A browser with a sign-in of its own: its binding does not fit the attacker's state
    // (PKCE verifier and nonce differ), so the provider refuses the code.
    to_callback(&app, &victim, "alice@acme.com").await;
    assert_eq!(victim.get(&callback).await.status(), 401);
    assert!(session_of(&victim, &app).is_none());
    assert_eq!(last_refusal(&app).await.as_deref(), Some("code_exchange"));
}

#[tokio::test]
async fn an_unverified_email_is_refused() {
    let Some((app, _op)) = with_real_op().await else {
        return;
    };
    let browser = Browser::new();
    assert_eq!(
        sign_in_with(&app, &browser, "bob@acme.com").await.status(),
        401
    );
    assert!(session_of(&browser, &app).is_none());
    assert_eq!(
        last_refusal(&app).await.as_deref(),
        Some("email_unverified")
    );
}

#[tokio::test]
async fn an_email_outside_the_bound_domains_is_refused() {
    let Some((app, _op)) = with_real_op().await else {
        return;
    };
    let browser = Browser::new();
    // The OP vouches (verified) for mallory@partner.com: partner.com is a domain the policy
    // grants, but this provider is bound to acme.com only.
    assert_eq!(
        sign_in_with(&app, &browser, "mallory@acme.com")
            .await
            .status(),
        401
    );
    assert!(session_of(&browser, &app).is_none());
    assert_eq!(
        last_refusal(&app).await.as_deref(),
        Some("email_domain_not_bound")
    );
}

// ----- a misbehaving provider ----------------------------------------------------------------

/// What the misbehaving provider puts in (or does to) its next ID token.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Twist {
    None,
    OtherAudience,
    SeveralAudiencesNoAzp,
    WrongNonce,
    NoNonce,
    Expired,
    OtherIssuer,
    AlgNone,
    /// HS256 keyed with the bytes of the RSA public key (algorithm confusion).
    HsWithPublicKey,
    /// Signed by a key the provider does not publish (under a published kid).
    ForeignKey,
    /// Signed by `rsa2` under kid `rsa-2`, which the key set holds only after a rotation.
    RotatedKey,
    UnknownKid,
    Unverified,
    /// Entra ID style: no `email_verified`, but `xms_edov: true`.
    EntraEdov,
    /// Signed with the provider's P-256 key (ES256).
    Es256,
    /// ES256 header, but the RSA key's kid.
    Es256WithRsaKid,
}

struct Fake {
    issuer: String,
    twist: Twist,
    /// The nonce of the last authorization request.
    nonce: Option<String>,
    email: String,
    rotated: bool,
    jwks_fetches: usize,
}

type FakeState = Arc<Mutex<Fake>>;

fn key(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn jwk(pem: &str, kid: &str) -> Value {
    let k = EncodingKey::from_rsa_pem(&key(pem)).unwrap();
    let mut j =
        serde_json::to_value(Jwk::from_encoding_key(&k, Algorithm::RS256).unwrap()).unwrap();
    j["kid"] = json!(kid);
    j["use"] = json!("sig");
    j
}

async fn fake_discovery(State(s): State<FakeState>) -> Json<Value> {
    let iss = s.lock().unwrap().issuer.clone();
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn fake_jwks(State(s): State<FakeState>) -> Json<Value> {
    let mut f = s.lock().unwrap();
    f.jwks_fetches += 1;
    let ec = EncodingKey::from_ec_pem(&key("ec.pk8.pem")).unwrap();
    let mut ec =
        serde_json::to_value(Jwk::from_encoding_key(&ec, Algorithm::ES256).unwrap()).unwrap();
    ec["kid"] = json!("ec-1");
    let mut keys = vec![jwk("rsa.key", "rsa-1"), ec];
    if f.rotated {
        keys.push(jwk("rsa2.key", "rsa-2"));
    }
    Json(json!({ "keys": keys }))
}

async fn fake_authorize(
    State(s): State<FakeState>,
    Query(q): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    s.lock().unwrap().nonce = q.get("nonce").cloned();
    let back = format!(
        "{}?code=fake-code&state={}",
        q["redirect_uri"],
        q.get("state").cloned().unwrap_or_default()
    );
    Redirect::to(&back)
}

async fn fake_token(
    State(s): State<FakeState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    use base64::Engine;
    let expect = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expect.as_str())
        || form.get("code_verifier").is_none_or(|v| v.len() < 43)
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let f = s.lock().unwrap();
    let now = now();
    let mut claims = json!({
        "iss": f.issuer, "sub": "user-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
        "nonce": f.nonce, "email": f.email, "email_verified": true,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let mut signing = key("rsa.key");
    match f.twist {
        Twist::None => {}
        Twist::OtherAudience => claims["aud"] = json!("another-client"),
        Twist::SeveralAudiencesNoAzp => claims["aud"] = json!([CLIENT_ID, "another-client"]),
        Twist::WrongNonce => claims["nonce"] = json!("not-the-nonce-kbgate-sent-0123456789abcdef"),
        Twist::NoNonce => {
            claims.as_object_mut().unwrap().remove("nonce");
        }
        Twist::Expired => {
            claims["iat"] = json!(now - 900);
            claims["exp"] = json!(now - 600);
        }
        Twist::OtherIssuer => claims["iss"] = json!("https://evil.example.com"),
        Twist::Unverified => claims["email_verified"] = json!(false),
        Twist::EntraEdov => {
            claims.as_object_mut().unwrap().remove("email_verified");
            claims["xms_edov"] = json!(true);
        }
        Twist::ForeignKey => signing = key("rsa2.key"),
        Twist::RotatedKey => {
            signing = key("rsa2.key");
            header.kid = Some("rsa-2".into());
        }
        Twist::UnknownKid => header.kid = Some("nobody".into()),
        Twist::Es256 => {
            header = Header::new(Algorithm::ES256);
            header.kid = Some("ec-1".into());
        }
        Twist::Es256WithRsaKid => header = Header::new(Algorithm::ES256),
        Twist::AlgNone | Twist::HsWithPublicKey => {}
    }
    let id_token = match f.twist {
        Twist::AlgNone => {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )
        }
        Twist::Es256 | Twist::Es256WithRsaKid => {
            if f.twist == Twist::Es256WithRsaKid {
                header.kid = Some("rsa-1".into());
            }
            jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_ec_pem(&key("ec.pk8.pem")).unwrap(),
            )
            .unwrap()
        }
        Twist::HsWithPublicKey => jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&key("rsa.pub.pem")),
        )
        .unwrap(),
        _ => jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(&signing).unwrap(),
        )
        .unwrap(),
    };
    Json(json!({ "access_token": "at", "token_type": "Bearer", "id_token": id_token }))
        .into_response()
}

/// The misbehaving provider, bound to `other.com` (the policy grants it HR) and `old.com`
/// (whose audience has expired).
async fn with_fake_op(key_refetch: Option<Duration>) -> (TestApp, FakeState) {
    let op_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", op_listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(Fake {
        issuer: issuer.clone(),
        twist: Twist::None,
        nonce: None,
        email: "olga@other.com".into(),
        rotated: false,
        jwks_fetches: 0,
    }));
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(fake_discovery))
        .route("/jwks", get(fake_jwks))
        .route("/authorize", get(fake_authorize))
        .route("/token", post(fake_token))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(op_listener, router).await.unwrap() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut p = provider("fake", &issuer, &["other.com", "old.com"]);
    if let Some(d) = key_refetch {
        p = p.key_refetch_after(d);
    }
    let app = portal(listener, vec![p]).await;
    (app, state)
}

async fn attempt(app: &TestApp, fake: &FakeState, twist: Twist) -> (u16, Option<String>) {
    fake.lock().unwrap().twist = twist;
    let browser = Browser::new();
    let resp = sign_in_with(app, &browser, "olga@other.com").await;
    let status = resp.status().as_u16();
    assert_eq!(
        status == 303,
        session_of(&browser, app).is_some(),
        "a session exactly when signed in ({twist:?})"
    );
    (status, last_refusal(app).await)
}

#[tokio::test]
async fn tokens_a_certified_provider_would_not_issue_are_refused() {
    let (app, fake) = with_fake_op(None).await;
    // The control: a good token from this provider signs in.
    assert_eq!(attempt(&app, &fake, Twist::None).await.0, 303);
    for (twist, reason) in [
        (Twist::OtherAudience, "id_token_claims"),
        (Twist::SeveralAudiencesNoAzp, "id_token_claims"),
        (Twist::OtherIssuer, "id_token_claims"),
        (Twist::Expired, "id_token_claims"),
        (Twist::WrongNonce, "nonce"),
        (Twist::NoNonce, "nonce"),
        (Twist::AlgNone, "id_token_signature"),
        (Twist::HsWithPublicKey, "id_token_signature"),
        (Twist::ForeignKey, "id_token_signature"),
        (Twist::Unverified, "email_unverified"),
        (Twist::Es256WithRsaKid, "id_token_signature"),
    ] {
        let (status, refusal) = attempt(&app, &fake, twist).await;
        assert_eq!(status, 401, "{twist:?} must be refused");
        assert_eq!(refusal.as_deref(), Some(reason), "{twist:?}");
    }
    // Entra ID's verified-domain claim stands in for email_verified.
    assert_eq!(attempt(&app, &fake, Twist::EntraEdov).await.0, 303);
    // ES256 with the provider's P-256 key.
    assert_eq!(attempt(&app, &fake, Twist::Es256).await.0, 303);
}

#[tokio::test]
async fn unknown_key_ids_are_refused_without_a_fetch_each() {
    let (app, fake) = with_fake_op(None).await;
    assert_eq!(attempt(&app, &fake, Twist::None).await.0, 303);
    assert_eq!(attempt(&app, &fake, Twist::None).await.0, 303);
    assert_eq!(
        fake.lock().unwrap().jwks_fetches,
        1,
        "the key set is cached"
    );
    // Made-up key ids are refused, and within the refetch interval cost no fetch.
    for _ in 0..3 {
        assert_eq!(attempt(&app, &fake, Twist::UnknownKid).await.0, 401);
    }
    assert_eq!(
        fake.lock().unwrap().jwks_fetches,
        1,
        "unknown kids are rate limited"
    );
    assert_eq!(
        last_refusal(&app).await.as_deref(),
        Some("id_token_signature")
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    // Refetch interval zero here: the default (30 s) is what the test above checks.
    let (app, fake) = with_fake_op(Some(Duration::ZERO)).await;
    assert_eq!(attempt(&app, &fake, Twist::None).await.0, 303);
    assert_eq!(fake.lock().unwrap().jwks_fetches, 1);
    // The provider rotates: its next token is signed by a key kbgate has not seen yet.
    fake.lock().unwrap().rotated = true;
    assert_eq!(attempt(&app, &fake, Twist::RotatedKey).await.0, 303);
    assert_eq!(fake.lock().unwrap().jwks_fetches, 2);
    // Both keys are now cached.
    assert_eq!(attempt(&app, &fake, Twist::None).await.0, 303);
    assert_eq!(attempt(&app, &fake, Twist::RotatedKey).await.0, 303);
    assert_eq!(fake.lock().unwrap().jwks_fetches, 2);
}

#[tokio::test]
async fn the_policy_still_decides_after_a_good_token() {
    let (app, fake) = with_fake_op(None).await;
    // A verified address of a bound domain whose audience has expired: the provider vouches
    // for it, the policy refuses it.
    fake.lock().unwrap().email = "oscar@old.com".into();
    // The honest refusal (403: no access, whom to ask), and no session.
    let (status, _) = attempt(&app, &fake, Twist::None).await;
    assert_eq!(status, 403);
    let events = app.store.recent_audit(10).await.unwrap();
    let refused = events
        .iter()
        .find(|e| e.action == "signin.refused")
        .expect("audited");
    assert_eq!(refused.actor, "oscar@old.com");
    assert_eq!(refused.detail["method"], "oidc");
    // The sign-in reached the policy: the identity was verified first.
    assert!(
        events
            .iter()
            .any(|e| e.action == "oidc.identity_verified" && e.actor == "oscar@old.com")
    );
}
