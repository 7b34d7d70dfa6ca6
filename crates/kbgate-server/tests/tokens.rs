//! Embed token attacks: each is refused with 401 and opens no session.

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
        (
            "look-alike domain",
            json!({"email": "alice@acme.com.evil.net"}),
        ),
        ("denied domain", json!({"email": "bob@gmail.com"})),
        ("unknown domain", json!({"email": "bob@nobody.org"})),
        ("expired audience", json!({"email": "carol@old.com"})),
    ];
    for (what, patch) in cases {
        assert_refused(&app, &mint_hs256(&with(patch)), what).await;
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
            v.verify(&token, n).unwrap().email.as_str(),
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
        assert!(v.verify(&confused, n).is_err(), "{alg:?} confusion");
    }
}
