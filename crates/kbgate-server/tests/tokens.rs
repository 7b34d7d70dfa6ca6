//! Embed token attacks: each is refused with 401 and opens no session. A valid token for an
//! address the policy refuses opens no session either, and says so honestly (403).

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

async fn assert_refused(app: &TestApp, token: &str, what: &str) {
    for post in [false, true] {
        let rb = if post {
            app.client
                .post(app.url("/auth/embed"))
                .form(&[("token", token), ("return_to", "/")])
        } else {
            app.client
                .get(app.url("/auth/embed"))
                .query(&[("token", token), ("return_to", "/")])
        };
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{what} (post={post})");
        assert!(session_cookie(&resp).is_none(), "{what}: session set");
        let body = resp.text().await.unwrap();
        assert!(
            token.len() < 8 || !body.contains(token),
            "{what}: token echoed"
        );
    }
}

/// A valid token for an address the policy refuses (denied, unknown or expired domain): no
/// session, and a page that says there is no access and whom to ask — never "sign in".
async fn assert_refused_honestly(
    app: &TestApp,
    mint: impl Fn() -> String,
    email: &str,
    what: &str,
) {
    for post in [false, true] {
        // A fresh token each time: the first one's `jti` is spent, even when refused.
        let token = mint();
        let token = token.as_str();
        let rb = if post {
            app.client
                .post(app.url("/auth/embed"))
                .form(&[("token", token), ("return_to", "/")])
        } else {
            app.client
                .get(app.url("/auth/embed"))
                .query(&[("token", token), ("return_to", "/")])
        };
        let resp = rb.header("accept", "text/html").send().await.unwrap();
        assert_eq!(resp.status(), 403, "{what} (post={post})");
        assert!(session_cookie(&resp).is_none(), "{what}: session set");
        let body = resp.text().await.unwrap();
        assert!(!body.contains(token), "{what}: token echoed");
        assert!(body.contains(email), "{what}: names the address refused");
        assert!(body.contains("does not give access"), "{what}: {body}");
        assert!(body.contains("Sign out"), "{what}: offers to sign out");
        assert!(
            !body.contains("/auth/email") && !body.contains(">Sign in<"),
            "{what}: never sends a refused person to sign in: {body}"
        );
    }
}

fn with(patch: serde_json::Value) -> serde_json::Value {
    let mut c = claims("alice@acme.com");
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[tokio::test]
async fn a_good_token_opens_a_session_once() {
    let app = spawn_app().await;
    let token = mint_hs256(&claims("alice@acme.com"));
    let resp = app
        .client
        .get(app.url("/auth/embed"))
        .query(&[("token", token.as_str()), ("return_to", "/spaces/KB")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/spaces/KB");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"));
    let cookie = session_cookie(&resp).unwrap();
    assert_eq!(app.get("/", Some(&cookie)).await.status(), 200);
    // Replay of the same jti.
    assert_refused(&app, &token, "replayed jti").await;
}

#[tokio::test]
async fn forged_and_invalid_tokens_are_refused() {
    let app = spawn_app().await;
    let n = now();
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("expired", json!({"iat": n - 900, "exp": n - 700})),
        ("iat in the future", json!({"iat": n + 600, "exp": n + 700})),
        ("nbf in the future", json!({"nbf": n + 600})),
        ("lifetime over 5 minutes", json!({"exp": n + 3600})),
        ("wrong aud", json!({"aud": "someone-else"})),
        ("wrong iss", json!({"iss": "https://evil.example"})),
        ("missing jti", json!({"jti": null})),
        ("missing email", json!({"email": null})),
        (
            "malformed email",
            json!({"email": "alice@acme.com@evil.net"}),
        ),
        (
            "quoted email",
            json!({"email": "\"alice@acme.com\"@evil.net"}),
        ),
    ];
    for (what, patch) in cases {
        assert_refused(&app, &mint_hs256(&with(patch)), what).await;
    }
    for (what, email) in [
        ("denied domain", "bob@gmail.com"),
        ("unknown domain", "bob@nobody.org"),
        ("expired audience", "carol@old.com"),
        ("look-alike domain", "alice@acme.com.evil.net"),
    ] {
        let mint = || mint_hs256(&with(json!({ "email": email })));
        assert_refused_honestly(&app, mint, email, what).await;
    }
}

#[tokio::test]
async fn signature_and_algorithm_attacks_are_refused() {
    let app = spawn_app().await;
    let good = claims("alice@acme.com");

    // alg: none, no signature.
    let none = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(good.to_string())
    );
    assert_refused(&app, &none, "alg none").await;

    // HS256 signed with the RSA public key as the HMAC secret (key confusion).
    let pubkey = std::fs::read(fixture("rsa.pub.pem")).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(&pubkey),
    )
    .unwrap();
    assert_refused(&app, &confused, "HS256 with the RSA public key").await;

    // RS256 token where HS256 is configured.
    let rsa = std::fs::read(fixture("rsa.key")).unwrap();
    let rs = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &good,
        &EncodingKey::from_rsa_pem(&rsa).unwrap(),
    )
    .unwrap();
    assert_refused(&app, &rs, "RS256 against an HS256 config").await;

    // Wrong secret.
    let wrong = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"another-secret-0123456789abcdefghijkl"),
    )
    .unwrap();
    assert_refused(&app, &wrong, "wrong secret").await;

    // Tampered payload, original signature.
    let t = mint_hs256(&good);
    let parts: Vec<&str> = t.split('.').collect();
    let mut evil = good.clone();
    evil["email"] = json!("ceo@acme.com");
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(evil.to_string()), parts[2]);
    assert_refused(&app, &tampered, "tampered payload").await;

    // Oversized token.
    let mut big = with(json!({}));
    big["pad"] = json!("x".repeat(10_000));
    assert_refused(&app, &mint_hs256(&big), "oversized token").await;

    // Garbage.
    for junk in ["", "abc", "a.b.c", "....", "%00"] {
        assert_refused(&app, junk, "garbage").await;
    }
    // Missing token parameter.
    let resp = app.get("/auth/embed", None).await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn public_key_algorithms_verify() {
    use kbgate_server::{EmbedAlgorithm, EmbedVerifier};
    let n = now();
    let c = claims("alice@acme.com");
    let cases = [
        (
            EmbedAlgorithm::Rs256,
            Algorithm::RS256,
            "rsa.pub.pem",
            "rsa.key",
        ),
        (
            EmbedAlgorithm::EdDsa,
            Algorithm::EdDSA,
            "ed.pub.pem",
            "ed.key",
        ),
        (
            EmbedAlgorithm::Es256,
            Algorithm::ES256,
            "ec.pub.pem",
            "ec.pk8.pem",
        ),
    ];
    for (alg, jwt_alg, public, private) in cases {
        let pem = std::fs::read(fixture(public)).unwrap();
        let v = EmbedVerifier::public_pem(alg, &pem, ISSUER, AUDIENCE).unwrap();
        let key = std::fs::read(fixture(private)).unwrap();
        let enc = match alg {
            EmbedAlgorithm::Rs256 => EncodingKey::from_rsa_pem(&key),
            EmbedAlgorithm::EdDsa => EncodingKey::from_ed_pem(&key),
            _ => EncodingKey::from_ec_pem(&key),
        }
        .unwrap();
        let token = jsonwebtoken::encode(&Header::new(jwt_alg), &c, &enc).unwrap();
        assert_eq!(
            v.verify(&token, n).await.unwrap().email.as_str(),
            "alice@acme.com",
            "{alg:?}"
        );
        // The same verifier refuses HS256 signed with its own public key.
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(&pem),
        )
        .unwrap();
        assert!(v.verify(&confused, n).await.is_err(), "{alg:?} confusion");
    }
}

/// Signs `claims` with the private key fixture `key` (PEM) under `alg`, naming `kid`.
fn mint_with(alg: Algorithm, key: &str, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let pem = std::fs::read(fixture(key)).unwrap();
    let enc = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => Ok(EncodingKey::from_secret(&pem)),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &enc).unwrap()
}

/// HS256 over `claims` with `secret` as the HMAC key, naming `kid`.
fn mint_hmac(secret: &[u8], kid: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// A token is accepted over HTTP: 303 with a session cookie that opens the home page.
async fn assert_accepted(app: &TestApp, token: &str, what: &str) {
    let resp = app
        .client
        .get(app.url("/auth/embed"))
        .query(&[("token", token), ("return_to", "/spaces/KB")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{what}");
    assert_eq!(resp.headers()["location"], "/spaces/KB", "{what}");
    let cookie = session_cookie(&resp).unwrap_or_else(|| panic!("{what}: no session cookie"));
    assert_eq!(
        app.get("/spaces/KB", Some(&cookie)).await.status(),
        200,
        "{what}"
    );
}

#[tokio::test]
async fn an_rs256_portal_refuses_hs256_signed_with_its_public_key() {
    use kbgate_server::{EmbedAlgorithm, EmbedVerifier};
    let pem = std::fs::read(fixture("rsa.pub.pem")).unwrap();
    let verifier =
        EmbedVerifier::public_pem(EmbedAlgorithm::Rs256, &pem, ISSUER, AUDIENCE).unwrap();
    let app = spawn_app_with(|_| {}, verifier).await;

    // Key confusion: HMAC keyed with the very bytes the portal holds as its RSA key (as a
    // naive verifier would use them), and with the usual variants of those bytes.
    let text = String::from_utf8(pem.clone()).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    for (what, key) in [
        ("the public key PEM", pem.clone()),
        (
            "the PEM without its final newline",
            text.trim_end().as_bytes().to_vec(),
        ),
        ("the PEM's base64 body", body.into_bytes()),
    ] {
        let confused = mint_hmac(&key, None, &claims("alice@acme.com"));
        assert_refused(&app, &confused, &format!("HS256 keyed with {what}")).await;
    }
    // The shared secret of the HS256 harness means nothing here either.
    assert_refused(&app, &mint_hs256(&claims("alice@acme.com")), "HS256 secret").await;
    // RS256 signed by another key.
    let other = mint_with(
        Algorithm::RS256,
        "rsa2.key",
        None,
        &claims("alice@acme.com"),
    );
    assert_refused(&app, &other, "RS256 by another key").await;
    // The other checks still apply to RS256 tokens.
    let mut expired = claims("alice@acme.com");
    expired["iat"] = json!(now() - 900);
    expired["exp"] = json!(now() - 700);
    let expired = mint_with(Algorithm::RS256, "rsa.key", None, &expired);
    assert_refused(&app, &expired, "expired RS256").await;
    let denied = || mint_with(Algorithm::RS256, "rsa.key", None, &claims("bob@gmail.com"));
    assert_refused_honestly(&app, denied, "bob@gmail.com", "RS256 for a denied domain").await;

    // A correct RS256 token opens a session, once.
    let good = mint_with(Algorithm::RS256, "rsa.key", None, &claims("alice@acme.com"));
    assert_accepted(&app, &good, "RS256 with the right key").await;
    assert_refused(&app, &good, "replayed RS256").await;
}

#[tokio::test]
async fn jwks_keys_are_chosen_by_kid() {
    use kbgate_server::{EmbedAlgorithm, EmbedVerifier};
    let jwks = std::fs::read_to_string(fixture("jwks.json")).unwrap();
    let verifier = EmbedVerifier::jwks(EmbedAlgorithm::Rs256, &jwks, ISSUER, AUDIENCE).unwrap();
    let app = spawn_app_with(|_| {}, verifier).await;
    let c = || claims("alice@acme.com");

    // Both RSA keys of the set verify their own tokens (key rotation).
    let t = mint_with(Algorithm::RS256, "rsa.key", Some("rsa-1"), &c());
    assert_accepted(&app, &t, "rsa-1").await;
    let t = mint_with(Algorithm::RS256, "rsa2.key", Some("rsa-2"), &c());
    assert_accepted(&app, &t, "rsa-2").await;

    // A kid naming the other key, an unknown kid, or none among several keys: refused.
    let t = mint_with(Algorithm::RS256, "rsa.key", Some("rsa-2"), &c());
    assert_refused(&app, &t, "rsa-1's signature under kid rsa-2").await;
    let t = mint_with(Algorithm::RS256, "rsa2.key", Some("rsa-1"), &c());
    assert_refused(&app, &t, "rsa-2's signature under kid rsa-1").await;
    let t = mint_with(Algorithm::RS256, "rsa.key", Some("rsa-3"), &c());
    assert_refused(&app, &t, "unknown kid").await;
    let t = mint_with(Algorithm::RS256, "rsa.key", None, &c());
    assert_refused(&app, &t, "no kid with several keys").await;
    // Keys of the set that do not fit RS256 are not usable under their kid.
    let t = mint_with(Algorithm::RS256, "rsa.key", Some("ed-1"), &c());
    assert_refused(&app, &t, "kid of the Ed25519 key").await;
    let t = mint_with(Algorithm::EdDSA, "ed.key", Some("ed-1"), &c());
    assert_refused(&app, &t, "EdDSA token on an RS256 portal").await;
    // The symmetric key in the set is never a way in: not as HS256, not by kid.
    let oct = mint_hmac(SECRET.as_bytes(), Some("oct-1"), &c());
    assert_refused(&app, &oct, "HS256 under the oct key's kid").await;
    let pem = std::fs::read(fixture("rsa.pub.pem")).unwrap();
    let confused = mint_hmac(&pem, Some("rsa-1"), &c());
    assert_refused(&app, &confused, "HS256 keyed with rsa-1's PEM").await;

    // The same document under EdDSA uses only the Ed25519 key.
    let n = now();
    let ed = EmbedVerifier::jwks(EmbedAlgorithm::EdDsa, &jwks, ISSUER, AUDIENCE).unwrap();
    let t = mint_with(Algorithm::EdDSA, "ed.key", Some("ed-1"), &c());
    assert_eq!(
        ed.verify(&t, n).await.unwrap().email.as_str(),
        "alice@acme.com"
    );
    let t = mint_with(Algorithm::EdDSA, "ed.key", None, &c());
    assert!(
        ed.verify(&t, n).await.is_ok(),
        "one key: a missing kid is fine"
    );
    let t = mint_with(Algorithm::EdDSA, "ed.key", Some("rsa-1"), &c());
    assert!(ed.verify(&t, n).await.is_err(), "a kid of an RSA key");
    // A set with no key for the algorithm is refused when configured.
    assert!(EmbedVerifier::jwks(EmbedAlgorithm::Es256, &jwks, ISSUER, AUDIENCE).is_err());
}

/// `[embed] jwks_url`: the keys come from the host app's JWKS endpoint (here a local one
/// serving the fixture set's `rsa-1`), fetched on the first hand-over and cached.
#[tokio::test]
async fn keys_from_a_jwks_url_open_sessions_and_refuse_what_they_do_not_sign() {
    use kbgate_server::{EmbedAlgorithm, EmbedVerifier};
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("jwks.json")).unwrap()).unwrap();
    let rsa1: Vec<_> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kid"] == "rsa-1")
        .cloned()
        .collect();
    let body = serde_json::json!({ "keys": rsa1 }).to_string();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let jwks = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = body.clone();
            async move { ([("cache-control", "public, max-age=600")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, jwks).await });

    let verifier = EmbedVerifier::jwks_url(
        EmbedAlgorithm::Rs256,
        url.parse().unwrap(),
        reqwest::Client::new(),
        ISSUER,
        AUDIENCE,
    )
    .unwrap();
    let app = spawn_app_with(|_| {}, verifier).await;
    let c = || claims("alice@acme.com");
    let t = mint_with(Algorithm::RS256, "rsa.key", Some("rsa-1"), &c());
    assert_accepted(&app, &t, "rsa-1 from the JWKS URL").await;
    let t = mint_with(Algorithm::RS256, "rsa.key", None, &c());
    assert_accepted(&app, &t, "the one key, no kid").await;
    // Not in the served set, or signed by another key under its kid: refused.
    let t = mint_with(Algorithm::RS256, "rsa2.key", Some("rsa-2"), &c());
    assert_refused(&app, &t, "a kid the host app does not publish").await;
    let t = mint_with(Algorithm::RS256, "rsa2.key", Some("rsa-1"), &c());
    assert_refused(&app, &t, "rsa-2's signature under kid rsa-1").await;
    let pem = std::fs::read(fixture("rsa.pub.pem")).unwrap();
    let confused = mint_hmac(&pem, Some("rsa-1"), &c());
    assert_refused(&app, &confused, "HS256 keyed with the published key").await;
    // Fetched once for all of these (cached by max-age; the unknown kid came right after
    // the fetch, so it was not fetched again).
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}
