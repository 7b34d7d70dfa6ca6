//! Sign-in with OpenID Connect, routed by email domain (`[[oidc]]`).
//!
//! The sign-in page asks for the email first; an address of a domain bound to a provider is
//! sent there ([`start`]: authorization code flow with PKCE S256, `state`, `nonce` and the
//! address as `login_hint`), and the provider sends the browser back to [`callback`], which
//! exchanges the code, validates the ID token and opens an ordinary session through
//! `auth::sign_in` (the policy decides then, and on every request after).
//!
//! **Pending state.** Nothing secret is stored server-side: `state` is a single-use code in the
//! store (ten minutes; it records the address typed and where to go back to), and the browser
//! holds a random binding value in an HttpOnly `SameSite=Lax` cookie. The PKCE verifier and
//! the nonce are derived from both, so the callback works only in the browser that started the
//! sign-in (no login CSRF: an attacker's own callback URL is useless in a victim's browser),
//! and only once (the code is spent).
//!
//! **Which email is trusted.** The ID token's `email`, only when `email_verified` is true
//! (OpenID Connect Core 1.0 §5.1) or, for Entra ID, when its optional claim `xms_edov` ("email
//! domain owner verified") is true — and in both cases only when the email's domain is
//! **exactly** one of the provider's bound domains. A tenant asserting an address of a domain
//! it is not bound to is refused (the nOAuth class of account takeover: in Entra ID the `mail`
//! attribute behind `email` is editable by a tenant's admins for any domain). Evidence for the
//! Entra side: Entra ID sends no `email_verified` for work accounts and `xms_edov` has to be
//! added as an optional ID-token claim in the app registration (eneo-ai/eneo release v2.2.4,
//! fix #1320; trellumhq/trellum release v0.9.3); Microsoft's optional-claims reference says the
//! email of a managed user is verified when the home tenant owns its domain as a verified
//! custom domain (MicrosoftDocs/azure-docs, optional claims, `replace_unverified_email_with_upn`).
//! Both claims are read as true from JSON `true` or the string `"true"`; `xms_edov` also from
//! `1` / `"1"` (implementations in the wild see it both ways).
//!
//! **Crates.** `jsonwebtoken` (already used for embed tokens, on aws-lc-rs) verifies the ID
//! token against keys from the provider's JWKS, and `reqwest` (already in the tree for the
//! Confluence client) fetches discovery, JWKS and tokens. `openidconnect` 4.1 (`cargo info`,
//! MIT) was the alternative; it brings `oauth2` 5 (on reqwest 0.12, the tree has 0.13),
//! `rand` 0.8 (0.9), `thiserror` 1 (2) and a second crypto stack (`rsa` 0.9, which carries
//! RUSTSEC-2023-0071, `p256`, `p384`, `ed25519-dalek`): duplicate versions `deny.toml` refuses,
//! for protocol steps that are few and each checked below and in `tests/oidc.rs` against the
//! certified `oidc-provider`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kbgate_config::{ExposeSecret, SecretString};
use kbgate_policy::{Domain, Email};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::auth::sign_in;
use crate::cookies::read_cookie;
use crate::error::Error;
use crate::jwks::RemoteJwks;
use crate::ratelimit::{RateLimiter, client_key};
use crate::redirect::LocalPath;
use crate::secret::{Opaque, ct_eq};
use crate::settings::Settings;
use crate::state::AppState;
use crate::urls::routes;

/// Google's issuer. Its ID tokens may carry the legacy `iss` without scheme, and only its
/// `hd` claim says that an account is managed by the Workspace that owns the email's domain:
/// a consumer Google account can hold a verified `alice@acme.com` (made while Alice had that
/// mailbox) and keeps working after she leaves. Google's guidance: check `iss` is either
/// form, and check `hd` (developers.google.com/identity/openid-connect/reference and
/// openid-connect#validatinganidtoken, as quoted in oauth2-proxy/oauth2-proxy#2363, after
/// Truffle Security's "Google OAuth is broken (sort of)").
const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// Purpose of the single-use code that is the `state` parameter.
pub(crate) const PURPOSE_OIDC: &str = "oidc-state";
/// How long a started sign-in may take at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Clock skew allowed on `exp` and `iat`.
const LEEWAY_SECS: u64 = 60;
/// Oldest `iat` accepted: the token comes straight from the token endpoint.
const MAX_TOKEN_AGE_SECS: i64 = 600;
/// How long discovery documents are reused (key sets follow their `Cache-Control`,
/// [`crate::jwks`]).
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// The algorithms of the ID tokens accepted: asymmetric only.
const ID_TOKEN_ALGS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// Largest discovery, JWKS or token response read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Timeout of each call to a provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest ID token accepted.
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// One OpenID Provider, as `[[oidc]]` configures it (secret resolved).
pub struct OidcProvider {
    name: String,
    display_name: String,
    issuer: String,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    domains: Vec<Domain>,
    discovery: Mutex<Option<(Arc<Discovery>, Instant)>>,
    /// The key set at the discovery document's `jwks_uri`, cached and refreshed by the same
    /// rules as the embed keys ([`crate::jwks`]); made on first use, remade when the
    /// document names another `jwks_uri`.
    jwks: Mutex<Option<Arc<RemoteJwks>>>,
    key_refetch_min: Duration,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

/// Why a provider could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OidcSetupError {
    #[error("oidc {0}: the issuer is not a URL")]
    Issuer(String),
}

impl OidcProvider {
    /// A provider from its `[[oidc]]` entry and the resolved client secret.
    pub fn new(
        config: &kbgate_config::OidcProviderConfig,
        client_secret: SecretString,
    ) -> Result<OidcProvider, OidcSetupError> {
        Url::parse(&config.issuer).map_err(|_| OidcSetupError::Issuer(config.name.clone()))?;
        Ok(OidcProvider {
            name: config.name.clone(),
            display_name: config
                .display_name
                .clone()
                .unwrap_or_else(|| config.name.clone()),
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret,
            scope: config.scopes.join(" "),
            domains: config.domains.clone(),
            discovery: Mutex::new(None),
            jwks: Mutex::new(None),
            key_refetch_min: crate::jwks::REFETCH_INTERVAL,
        })
    }

    /// Changes the shortest time between two key-set fetches caused by an unknown `kid`
    /// (default 30 s). For tests of key rotation, which cannot wait that long.
    #[doc(hidden)]
    pub fn key_refetch_after(mut self, d: Duration) -> OidcProvider {
        self.key_refetch_min = d;
        self
    }

    /// The origin browsers are sent to (for the CSP's `form-action`: the sign-in form's post
    /// is answered with a redirect there).
    fn origin(&self) -> Option<String> {
        Url::parse(&self.issuer)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }
}

/// The configured providers and what they share. Cheap to share behind an `Arc`.
pub(crate) struct Oidc {
    providers: Vec<Arc<OidcProvider>>,
    by_domain: HashMap<Domain, usize>,
    http: reqwest::Client,
    limit_start: RateLimiter,
}

impl Oidc {
    /// The configuration loader refuses a domain bound to two providers; one that reaches
    /// here anyway (a programmatic configuration) stays with the first, with a warning.
    pub(crate) fn new(providers: Vec<OidcProvider>) -> Oidc {
        let mut by_domain: HashMap<Domain, usize> = HashMap::new();
        for (i, p) in providers.iter().enumerate() {
            for d in &p.domains {
                if let Some(&j) = by_domain.get(d) {
                    tracing::warn!(domain = %d, provider = %p.name, kept = %providers[j].name, "oidc: domain bound twice; the first provider keeps it");
                    continue;
                }
                by_domain.insert(d.clone(), i);
            }
        }
        // No redirects: discovery, keys and tokens come from the URLs the provider names, and
        // a POST carrying the client secret is never re-sent elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .user_agent(concat!("kbgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Oidc {
            providers: providers.into_iter().map(Arc::new).collect(),
            by_domain,
            http,
            limit_start: RateLimiter::new(30, Duration::from_secs(60)),
        }
    }

    /// The provider an email's domain is bound to (exact match).
    pub(crate) fn provider_for(&self, email: &Email) -> Option<&Arc<OidcProvider>> {
        self.by_domain
            .get(email.domain())
            .map(|&i| &self.providers[i])
    }

    /// Whether any provider is configured (the sign-in page then mentions them).
    pub(crate) fn has_providers(&self) -> bool {
        !self.providers.is_empty()
    }

    /// Origins of the providers, for the CSP's `form-action`.
    pub(crate) fn origins(&self) -> Vec<String> {
        let mut o: Vec<String> = self.providers.iter().filter_map(|p| p.origin()).collect();
        o.sort();
        o.dedup();
        o
    }
}

/// Why a sign-in through a provider was refused or could not proceed. The reason goes to the
/// log and the audit log; never a token, code or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No binding cookie: the callback was opened in another browser, or the cookie expired.
    NotThisBrowser,
    /// `state` unknown, expired or already used.
    State,
    /// The provider answered with an error (the person cancelled, or it refused).
    ProviderError,
    /// The code exchange failed (code replayed or expired, PKCE mismatch, bad client secret).
    CodeExchange,
    /// Discovery or JWKS could not be fetched or were invalid.
    ProviderUnavailable,
    /// Malformed ID token, unsupported or unexpected algorithm, unknown key, bad signature.
    Signature,
    /// `iss`, `aud`, `azp`, `exp`, `iat` or `sub` wrong.
    Claims,
    Nonce,
    NoEmail,
    EmailUnverified,
    /// The email's domain is not one of the provider's bound domains.
    EmailDomain,
    /// Google: the account is not managed by the Workspace of the email's domain (`hd`).
    HostedDomain,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::NotThisBrowser => "not_this_browser",
            Refusal::State => "state",
            Refusal::ProviderError => "provider_error",
            Refusal::CodeExchange => "code_exchange",
            Refusal::ProviderUnavailable => "provider_unavailable",
            Refusal::Signature => "id_token_signature",
            Refusal::Claims => "id_token_claims",
            Refusal::Nonce => "nonce",
            Refusal::NoEmail => "no_email",
            Refusal::EmailUnverified => "email_unverified",
            Refusal::EmailDomain => "email_domain_not_bound",
            Refusal::HostedDomain => "google_hd_mismatch",
        }
    }
}

// ----- discovery and keys ------------------------------------------------------------------

/// The parts of the discovery document used (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// A provider URL must be https, or plain http on a loopback host when the issuer itself is
/// (tests against a local provider).
fn acceptable_endpoint(url: &Url, issuer: &str) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => {
            let local = |u: &Url| match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            local(url) && Url::parse(issuer).is_ok_and(|i| i.scheme() == "http" && local(&i))
        }
        _ => false,
    }
}

/// Reads a JSON body of at most [`MAX_RESPONSE_BYTES`].
async fn read_json<T: serde::de::DeserializeOwned>(
    mut resp: reqwest::Response,
) -> Result<T, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err("response too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("invalid JSON: {e}"))
}

impl Oidc {
    /// The provider's discovery document, cached for [`CACHE_TTL`].
    async fn discovery(&self, p: &OidcProvider) -> Result<Arc<Discovery>, String> {
        if let Ok(guard) = p.discovery.lock()
            && let Some((d, at)) = guard.as_ref()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            p.issuer.trim_end_matches('/')
        );
        let resp = self
            .http
            .get(&url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("discovery: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("discovery: HTTP {}", resp.status().as_u16()));
        }
        let d: Discovery = read_json(resp)
            .await
            .map_err(|e| format!("discovery: {e}"))?;
        // Discovery 1.0 §4.3: the issuer in the document must be identical to the one the
        // document was retrieved for.
        if d.issuer != p.issuer {
            return Err(format!(
                "discovery: the document names issuer {:?}, not {:?}",
                d.issuer, p.issuer
            ));
        }
        for u in [&d.authorization_endpoint, &d.token_endpoint, &d.jwks_uri] {
            if !acceptable_endpoint(u, &p.issuer) {
                return Err(format!("discovery: endpoint {u} is not https"));
            }
        }
        let d = Arc::new(d);
        if let Ok(mut guard) = p.discovery.lock() {
            *guard = Some((d.clone(), Instant::now()));
        }
        Ok(d)
    }

    /// The verification key for a token header, from the provider's key set: fetched again
    /// when the `kid` is unknown (key rotation), at most once per refetch interval
    /// ([`crate::jwks`]). With a `kid`, the key of that `kid`; without, the only key of the
    /// token's algorithm.
    async fn key_for(
        &self,
        p: &OidcProvider,
        d: &Discovery,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<DecodingKey, Refusal> {
        let remote = {
            let mut slot = p.jwks.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some(r) if r.url() == &d.jwks_uri => r.clone(),
                _ => {
                    let r = Arc::new(
                        RemoteJwks::new(
                            d.jwks_uri.clone(),
                            self.http.clone(),
                            format!("oidc {}", p.name),
                            &ID_TOKEN_ALGS,
                        )
                        .with_refetch_interval(p.key_refetch_min),
                    );
                    *slot = Some(r.clone());
                    r
                }
            }
        };
        let keys = remote.keys_for(alg, kid).await.map_err(|e| {
            tracing::warn!(provider = %p.name, error = %e, "oidc: key set not fetched");
            Refusal::ProviderUnavailable
        })?;
        let found = match kid {
            Some(kid) => keys.iter().find(|(k, _)| k.as_deref() == Some(kid)),
            None => match keys.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        };
        found.map(|(_, key)| key.clone()).ok_or(Refusal::Signature)
    }
}

// ----- the ID token ------------------------------------------------------------------------

/// The claims read from an ID token (OpenID Connect Core 1.0 §2, §5.1).
#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    /// A string or an array (checked to contain the client id by `jsonwebtoken`).
    aud: serde_json::Value,
    iat: i64,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    /// Entra ID's "email domain owner verified" optional claim.
    #[serde(default)]
    xms_edov: Option<serde_json::Value>,
    /// Google's hosted domain (Workspace accounts only).
    #[serde(default)]
    hd: Option<String>,
}

/// Validates an ID token (OpenID Connect Core 1.0 §3.1.3.7) and returns the email it vouches
/// for, or why it is refused.
async fn validate_id_token(
    oidc: &Oidc,
    p: &OidcProvider,
    d: &Discovery,
    token: &str,
    expected_nonce: &str,
    now: i64,
) -> Result<Email, Refusal> {
    if token.len() > MAX_ID_TOKEN_BYTES {
        return Err(Refusal::Signature);
    }
    // The header names the algorithm; only asymmetric ones are accepted, so `none` and HS256
    // (keyed with a public key, or with the client secret the provider might choose) never
    // verify. `none` does not even parse.
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Signature)?;
    let alg = match header.alg {
        Algorithm::RS256 => Algorithm::RS256,
        Algorithm::ES256 => Algorithm::ES256,
        _ => return Err(Refusal::Signature),
    };
    let key = oidc.key_for(p, d, alg, header.kid.as_deref()).await?;
    let mut v = Validation::new(alg);
    if p.issuer == GOOGLE_ISSUER {
        v.set_issuer(&[GOOGLE_ISSUER, "accounts.google.com"]);
    } else {
        v.set_issuer(&[&p.issuer]);
    }
    v.set_audience(&[&p.client_id]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    let data = jsonwebtoken::decode::<IdClaims>(token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::InvalidAlgorithm | K::InvalidToken | K::Base64(_) => {
                Refusal::Signature
            }
            _ => Refusal::Claims,
        }
    })?;
    let c = data.claims;
    // Several audiences: the token must say it was issued to us (§3.1.3.7 items 4 and 5).
    if c.aud.as_array().is_some_and(|a| a.len() > 1)
        && c.azp.as_deref() != Some(p.client_id.as_str())
    {
        return Err(Refusal::Claims);
    }
    if c.azp.as_deref().is_some_and(|azp| azp != p.client_id) {
        return Err(Refusal::Claims);
    }
    let leeway = LEEWAY_SECS as i64;
    if c.iat > now + leeway || c.iat < now - MAX_TOKEN_AGE_SECS - leeway || c.sub.is_empty() {
        return Err(Refusal::Claims);
    }
    if !c.nonce.as_deref().is_some_and(|n| ct_eq(n, expected_nonce)) {
        return Err(Refusal::Nonce);
    }
    let raw = c.email.as_deref().ok_or(Refusal::NoEmail)?;
    let email = Email::parse(raw.trim()).map_err(|_| Refusal::NoEmail)?;
    let verified =
        claim_is_true(c.email_verified.as_ref(), false) || claim_is_true(c.xms_edov.as_ref(), true);
    if !verified {
        return Err(Refusal::EmailUnverified);
    }
    if !p.domains.contains(email.domain()) {
        return Err(Refusal::EmailDomain);
    }
    if !google_hosted_domain_ok(&p.issuer, c.hd.as_deref(), &email) {
        return Err(Refusal::HostedDomain);
    }
    Ok(email)
}

/// For Google only: the account must belong to the Workspace of the email's domain.
fn google_hosted_domain_ok(issuer: &str, hd: Option<&str>, email: &Email) -> bool {
    issuer != GOOGLE_ISSUER || hd.is_some_and(|hd| hd.eq_ignore_ascii_case(email.domain().as_str()))
}

/// Whether a boolean claim says true: JSON `true` or `"true"`; with `one`, also `1` or `"1"`.
fn claim_is_true(v: Option<&serde_json::Value>, one: bool) -> bool {
    match v {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true" || (one && s == "1"),
        Some(serde_json::Value::Number(n)) => one && n.as_u64() == Some(1),
        _ => false,
    }
}

// ----- the flow ----------------------------------------------------------------------------

/// Name of the cookie binding a pending sign-in to the browser (`__Host-` when Secure).
fn binding_cookie_name(settings: &Settings) -> &'static str {
    match settings.cookie_prefix() {
        crate::settings::CookiePrefix::Host => "__Host-kbgate_oidc",
        crate::settings::CookiePrefix::Secure => "__Secure-kbgate_oidc",
        crate::settings::CookiePrefix::None => "kbgate_oidc",
    }
}

/// A value derived from the browser binding and the state: 64 hex characters, a valid PKCE
/// verifier (RFC 7636 §4.1: 43–128 unreserved characters) and an unguessable nonce.
fn derive(binding: &Opaque, purpose: &str, state: &Opaque) -> String {
    let mut h = Sha256::new();
    h.update(b"kbgate:oidc:");
    h.update(purpose.as_bytes());
    h.update(b":");
    h.update(state.expose().as_bytes());
    h.update(b":");
    h.update(binding.expose().as_bytes());
    hex::encode(h.finalize())
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn callback_url(settings: &Settings) -> String {
    settings.absolute(&format!(
        "{}{}",
        settings.path_prefix(),
        routes::AUTH_OIDC_CALLBACK
    ))
}

/// Sends the browser to `provider` for `email` (the sign-in form's answer for a bound domain).
pub(crate) async fn start(
    state: &AppState,
    headers: &HeaderMap,
    addr: Option<IpAddr>,
    provider: &OidcProvider,
    email: &Email,
    return_to: &LocalPath,
) -> Result<Response, Error> {
    let oidc = state.oidc();
    if !oidc.limit_start.check(&client_key(addr)) {
        return Err(Error::TooManyRequests);
    }
    let discovery = oidc.discovery(provider).await.map_err(|e| {
        tracing::warn!(provider = %provider.name, error = %e, "oidc: provider unavailable");
        Error::Unavailable
    })?;
    let settings = &state.settings();
    let name = binding_cookie_name(settings);
    // Reuse the browser's binding: sign-ins started in two tabs both stay usable.
    let binding = read_cookie(headers, name).unwrap_or_else(Opaque::generate);
    let code = state
        .codes()
        .create_code(
            PURPOSE_OIDC,
            email,
            return_to.as_str(),
            PENDING_TTL,
            Utc::now(),
        )
        .await?;
    let verifier = derive(&binding, "pkce", &code);
    let nonce = derive(&binding, "nonce", &code);
    let mut url = discovery.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", &callback_url(settings))
        .append_pair("scope", &provider.scope)
        .append_pair("state", code.expose())
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", email.as_str());
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(url.as_str()).map_err(Error::internal)?;
    resp.headers_mut().insert(header::LOCATION, location);
    // Always refreshed, so the binding outlives every pending state it signs.
    let secure = if settings.cookie_secure {
        "Secure; "
    } else {
        ""
    };
    let cookie = format!(
        "{name}={}; Path={}; HttpOnly; SameSite=Lax; {secure}Max-Age={}",
        binding.expose(),
        settings.cookie_path(),
        PENDING_TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    tracing::info!(provider = %provider.name, display = %provider.display_name, "oidc: sign-in started");
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The token endpoint's answer (only the ID token is used).
#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// Exchanges the authorization code (RFC 6749 §4.1.3 with the PKCE verifier, RFC 7636 §4.5),
/// authenticating with `client_secret_basic` unless the provider supports only
/// `client_secret_post`.
async fn exchange(
    oidc: &Oidc,
    p: &OidcProvider,
    d: &Discovery,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<String, Refusal> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let post_only = d
        .token_endpoint_auth_methods_supported
        .as_ref()
        .is_some_and(|m| {
            !m.iter().any(|m| m == "client_secret_basic")
                && m.iter().any(|m| m == "client_secret_post")
        });
    let req = oidc
        .http
        .post(d.token_endpoint.clone())
        .header(header::ACCEPT, "application/json");
    let req = if post_only {
        let mut body: Vec<(&str, &str)> = form.to_vec();
        body.push(("client_id", &p.client_id));
        body.push(("client_secret", p.client_secret.expose_secret()));
        req.form(&body)
    } else {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        let enc = |s: &str| form_urlencode(s);
        req.basic_auth(
            enc(&p.client_id),
            Some(enc(p.client_secret.expose_secret())),
        )
        .form(&form)
    };
    let resp = req.send().await.map_err(|e| {
        tracing::warn!(provider = %p.name, error = %e, "oidc: token endpoint unreachable");
        Refusal::ProviderUnavailable
    })?;
    let status = resp.status();
    if !status.is_success() {
        // The OAuth error code only (e.g. invalid_grant); never the request.
        let err = read_json::<serde_json::Value>(resp)
            .await
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_default();
        tracing::info!(provider = %p.name, status = status.as_u16(), error = %err.chars().take(64).collect::<String>(), "oidc: code exchange refused");
        return Err(Refusal::CodeExchange);
    }
    let t: TokenResponse = read_json(resp).await.map_err(|e| {
        tracing::warn!(provider = %p.name, error = %e, "oidc: token response invalid");
        Refusal::CodeExchange
    })?;
    t.id_token.ok_or(Refusal::CodeExchange)
}

fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /auth/oidc/callback?code=&state=`: the provider sends the browser back here.
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Result<Response, Error> {
    let settings = &state.settings();
    let refuse = |actor: String, provider: Option<String>, r: Refusal| {
        let state = state.clone();
        async move {
            tracing::info!(
                provider = provider.as_deref().unwrap_or("-"),
                reason = r.as_str(),
                "oidc: sign-in refused"
            );
            state
                .audit()
                .record(
                    &actor,
                    "signin.refused",
                    serde_json::json!({ "method": "oidc", "provider": provider, "reason": r.as_str() }),
                )
                .await;
            if r == Refusal::ProviderUnavailable {
                Error::Unavailable
            } else {
                Error::Unauthorized
            }
        }
    };
    let Some(binding) = read_cookie(&headers, binding_cookie_name(settings)) else {
        return Err(refuse("oidc".into(), None, Refusal::NotThisBrowser).await);
    };
    let Some(code_state) = q.state.as_deref().and_then(Opaque::parse) else {
        return Err(refuse("oidc".into(), None, Refusal::State).await);
    };
    let Some(rec) = state
        .codes()
        .consume_code(&code_state, PURPOSE_OIDC, Utc::now())
        .await?
    else {
        return Err(refuse("oidc".into(), None, Refusal::State).await);
    };
    let hint = Email::parse(&rec.email).ok();
    let oidc = state.oidc();
    let Some(provider) = hint.as_ref().and_then(|e| oidc.provider_for(e)).cloned() else {
        // The provider was removed while the person was away.
        return Err(refuse(rec.email.clone(), None, Refusal::State).await);
    };
    let pname = Some(provider.name.clone());
    if q.error.is_some() {
        return Err(refuse(rec.email.clone(), pname, Refusal::ProviderError).await);
    }
    let Some(code) = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return Err(refuse(rec.email.clone(), pname, Refusal::ProviderError).await);
    };
    let discovery = match oidc.discovery(&provider).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(provider = %provider.name, error = %e, "oidc: provider unavailable");
            return Err(refuse(rec.email.clone(), pname, Refusal::ProviderUnavailable).await);
        }
    };
    let verifier = derive(&binding, "pkce", &code_state);
    let nonce = derive(&binding, "nonce", &code_state);
    let result = match exchange(
        oidc,
        &provider,
        &discovery,
        code,
        &verifier,
        &callback_url(settings),
    )
    .await
    {
        Ok(id_token) => {
            validate_id_token(
                oidc,
                &provider,
                &discovery,
                &id_token,
                &nonce,
                Utc::now().timestamp(),
            )
            .await
        }
        Err(r) => Err(r),
    };
    let email = match result {
        Ok(e) => e,
        Err(r) => return Err(refuse(rec.email.clone(), pname, r).await),
    };
    let return_to = LocalPath::parse_or_root(rec.return_to.as_deref());
    state
        .audit()
        .record(
            email.as_str(),
            "oidc.identity_verified",
            serde_json::json!({ "provider": provider.name }),
        )
        .await;
    tracing::info!(provider = %provider.name, "oidc: identity verified");
    sign_in(&state, &headers, &email, &return_to, "oidc").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn derived_values_depend_on_browser_state_and_purpose() {
        let (b1, b2, s1, s2) = (
            Opaque::generate(),
            Opaque::generate(),
            Opaque::generate(),
            Opaque::generate(),
        );
        let v = derive(&b1, "pkce", &s1);
        assert_eq!(v.len(), 64);
        assert_eq!(v, derive(&b1, "pkce", &s1));
        assert_ne!(v, derive(&b2, "pkce", &s1));
        assert_ne!(v, derive(&b1, "pkce", &s2));
        assert_ne!(v, derive(&b1, "nonce", &s1));
    }

    #[test]
    fn google_accounts_need_the_workspace_of_their_domain() {
        let e = Email::parse("alice@acme.com").unwrap();
        assert!(google_hosted_domain_ok(GOOGLE_ISSUER, Some("acme.com"), &e));
        assert!(!google_hosted_domain_ok(GOOGLE_ISSUER, None, &e));
        assert!(!google_hosted_domain_ok(
            GOOGLE_ISSUER,
            Some("evil.com"),
            &e
        ));
        // Other providers have no such claim.
        assert!(google_hosted_domain_ok("https://acme.okta.com", None, &e));
    }

    #[test]
    fn boolean_claims() {
        use serde_json::json;
        let t = |v: serde_json::Value, one| claim_is_true(Some(&v), one);
        assert!(t(json!(true), false) && t(json!("true"), false));
        assert!(!t(json!(false), true) && !t(json!("false"), true) && !t(json!("yes"), true));
        assert!(!t(json!(1), false) && !t(json!("1"), false));
        assert!(t(json!(1), true) && t(json!("1"), true));
        assert!(!t(json!(0), true) && !t(json!(null), true));
        assert!(!claim_is_true(None, true));
    }

    #[test]
    fn endpoints_must_be_https_unless_everything_is_local() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(acceptable_endpoint(
            &u("https://idp.example.com/t"),
            "https://idp.example.com"
        ));
        assert!(!acceptable_endpoint(
            &u("http://idp.example.com/t"),
            "https://idp.example.com"
        ));
        assert!(!acceptable_endpoint(
            &u("http://127.0.0.1:9/t"),
            "https://idp.example.com"
        ));
        assert!(acceptable_endpoint(
            &u("http://127.0.0.1:9/t"),
            "http://127.0.0.1:9"
        ));
        assert!(!acceptable_endpoint(
            &u("http://10.0.0.1/t"),
            "http://127.0.0.1:9"
        ));
        assert!(!acceptable_endpoint(
            &u("ftp://127.0.0.1/t"),
            "http://127.0.0.1:9"
        ));
    }
}
