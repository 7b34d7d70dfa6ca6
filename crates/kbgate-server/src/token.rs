//! Verification of embed hand-over tokens (JWT) signed by the host app.
//!
//! One algorithm is configured and pinned: a token whose header names any other algorithm
//! (`none`, HS256 against an RSA public key, …) is refused before any key is touched. Claims
//! required: `email`, `iat`, `exp` (at most `[embed] max_token_lifetime`, default 5 minutes,
//! after `iat`), `iss` (one string, never an array), `aud`, `jti`; `nbf` is checked when
//! present. The `jti` is returned so the caller can consume it once in the store.

use std::fmt;

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::jwks::{Keys, RemoteJwks, usable_keys};
use kbgate_policy::Email;
use serde::Deserialize;

/// Longest token accepted; anything larger is refused before parsing.
pub(crate) const MAX_TOKEN_BYTES: usize = 4096;
/// Shortest HS256 secret accepted.
pub(crate) const MIN_HS256_SECRET_BYTES: usize = 32;

/// The algorithms an embed key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// Ed25519.
    EdDsa,
    /// ECDSA P-256 SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
}

impl EmbedAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            EmbedAlgorithm::Hs256 => Algorithm::HS256,
            EmbedAlgorithm::EdDsa => Algorithm::EdDSA,
            EmbedAlgorithm::Es256 => Algorithm::ES256,
            EmbedAlgorithm::Rs256 => Algorithm::RS256,
        }
    }
}

/// Why a verifier could not be built from the configured key material.
#[derive(Debug, thiserror::Error)]
pub enum EmbedKeyError {
    #[error("the HS256 secret is shorter than {MIN_HS256_SECRET_BYTES} bytes")]
    SecretTooShort,
    #[error("HS256 needs a shared secret, not a public key")]
    SecretRequired,
    #[error("{0:?} needs a public key (PEM) or a JWKS file, not a shared secret")]
    PublicKeyRequired(EmbedAlgorithm),
    #[error("the public key is not a valid PEM key for {0:?}")]
    BadPem(EmbedAlgorithm),
    #[error("the JWKS document is invalid or holds no usable key for {0:?}")]
    BadJwks(EmbedAlgorithm),
    #[error("issuer and audience must not be empty")]
    EmptyIssuerOrAudience,
}

/// Why a token was refused. The messages name the check, never the token or its claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("token malformed")]
    Malformed,
    #[error("token algorithm not accepted")]
    Algorithm,
    #[error("token signature invalid")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token lifetime too long")]
    LifetimeTooLong,
    #[error("token issuer or audience wrong")]
    IssuerOrAudience,
    #[error("token claims missing or invalid")]
    Claims,
    #[error("token email invalid")]
    Email,
    #[error("the host app's signing keys are unavailable")]
    KeysUnavailable,
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct EmbedClaims {
    /// The verified email.
    pub email: Email,
    /// The token id, to be consumed once.
    pub jti: String,
    /// Expiry (Unix seconds); the `jti` record must be kept at least until then.
    pub exp: i64,
}

#[derive(Deserialize)]
struct RawClaims {
    email: Option<serde_json::Value>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    jti: Option<serde_json::Value>,
    /// Checked again here: the JWT library also accepts an array of issuers, RFC 7519 allows
    /// only one (a `StringOrURI`).
    iss: Option<serde_json::Value>,
}

/// Verifies embed tokens against the configured key, issuer and audience.
pub struct EmbedVerifier {
    alg: EmbedAlgorithm,
    /// Keys with their `kid` (JWKS) or none (single PEM key / secret), or where to fetch
    /// them.
    keys: KeySource,
    validation: Validation,
    issuer: String,
    leeway: i64,
    max_lifetime: i64,
}

/// Where the verification keys come from: configured once, or the host app's JWKS URL.
enum KeySource {
    Fixed(Keys),
    Remote(Arc<RemoteJwks>),
}

impl fmt::Debug for EmbedVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.keys {
            KeySource::Fixed(k) => format!("{} fixed", k.len()),
            KeySource::Remote(r) => format!("{r:?}"),
        };
        f.debug_struct("EmbedVerifier")
            .field("alg", &self.alg)
            .field("keys", &keys)
            .finish_non_exhaustive()
    }
}

impl EmbedVerifier {
    /// HS256 with a shared secret (at least 32 bytes).
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, EmbedKeyError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(EmbedKeyError::SecretTooShort);
        }
        Self::build(
            EmbedAlgorithm::Hs256,
            vec![(None, DecodingKey::from_secret(secret))],
            issuer,
            audience,
        )
    }

    /// EdDSA / ES256 / RS256 with one public key in PEM.
    pub fn public_pem(
        alg: EmbedAlgorithm,
        pem: &[u8],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, EmbedKeyError> {
        let key = match alg {
            EmbedAlgorithm::Hs256 => return Err(EmbedKeyError::SecretRequired),
            EmbedAlgorithm::EdDsa => DecodingKey::from_ed_pem(pem),
            EmbedAlgorithm::Es256 => DecodingKey::from_ec_pem(pem),
            EmbedAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
        }
        .map_err(|_| EmbedKeyError::BadPem(alg))?;
        Self::build(alg, vec![(None, key)], issuer, audience)
    }

    /// EdDSA / ES256 / RS256 with a JWKS document; keys are chosen by `kid`. Keys whose type
    /// or declared `alg` does not fit the configured algorithm are ignored.
    pub fn jwks(
        alg: EmbedAlgorithm,
        jwks_json: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, EmbedKeyError> {
        if alg == EmbedAlgorithm::Hs256 {
            return Err(EmbedKeyError::SecretRequired);
        }
        let set: JwkSet =
            serde_json::from_str(jwks_json).map_err(|_| EmbedKeyError::BadJwks(alg))?;
        let keys = usable_keys(alg.jwt(), &set);
        if keys.is_empty() {
            return Err(EmbedKeyError::BadJwks(alg));
        }
        Self::build(alg, keys, issuer, audience)
    }

    /// Keys from the host app's JWKS URL, fetched on first use and then as
    /// [`crate::jwks`] says (cache lifetime, re-fetch on an unknown `kid`, rate limit).
    pub fn jwks_url(
        alg: EmbedAlgorithm,
        url: url::Url,
        client: reqwest::Client,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, EmbedKeyError> {
        if alg == EmbedAlgorithm::Hs256 {
            return Err(EmbedKeyError::SecretRequired);
        }
        let mut v = Self::build(alg, Vec::new(), issuer, audience)?;
        v.keys = KeySource::Remote(Arc::new(RemoteJwks::new(
            url,
            client,
            "embed",
            &[alg.jwt()],
        )));
        Ok(v)
    }

    fn build(
        alg: EmbedAlgorithm,
        keys: Vec<(Option<String>, DecodingKey)>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, EmbedKeyError> {
        if issuer.is_empty() || audience.is_empty() {
            return Err(EmbedKeyError::EmptyIssuerOrAudience);
        }
        // The configuration's defaults until `with_limits` says otherwise.
        let leeway = secs(kbgate_config::DEFAULT_EMBED_LEEWAY);
        let max_lifetime = secs(kbgate_config::DEFAULT_MAX_TOKEN_LIFETIME);
        let mut validation = Validation::new(alg.jwt());
        validation.leeway = leeway as u64;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(EmbedVerifier {
            alg,
            keys: KeySource::Fixed(Arc::new(keys)),
            validation,
            issuer: issuer.to_owned(),
            leeway,
            max_lifetime,
        })
    }

    /// Sets the clock-skew leeway and the longest accepted `exp - iat`: `[embed] leeway` and
    /// `max_token_lifetime`, whose ranges kbgate-config enforces when it loads them.
    pub fn with_limits(
        mut self,
        leeway: std::time::Duration,
        max_lifetime: std::time::Duration,
    ) -> Self {
        self.leeway = secs(leeway);
        self.max_lifetime = secs(max_lifetime);
        self.validation.leeway = self.leeway as u64;
        self
    }

    /// Checks a token: size and shape, the pinned algorithm, the signature with the key its
    /// `kid` names (fetching the host app's keys when they come from a URL), then the claims.
    pub async fn verify(&self, token: &str, now: i64) -> Result<EmbedClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        if token.bytes().filter(|&b| b == b'.').count() != 2
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Algorithm)?;
        if header.alg != self.alg.jwt() {
            return Err(TokenError::Algorithm);
        }
        let keys = match &self.keys {
            KeySource::Fixed(keys) => keys.clone(),
            KeySource::Remote(remote) => remote
                .keys_for(self.alg.jwt(), header.kid.as_deref())
                .await
                .map_err(|_| TokenError::KeysUnavailable)?,
        };
        let key = key_for(&keys, header.kid.as_deref())?;
        let data = jsonwebtoken::decode::<RawClaims>(token, key, &self.validation)
            .map_err(map_jwt_error)?;
        if !matches!(&data.claims.iss, Some(serde_json::Value::String(s)) if *s == self.issuer) {
            return Err(TokenError::IssuerOrAudience);
        }
        check_claims(data.claims, now, self.leeway, self.max_lifetime)
    }
}

/// The key of `keys` a token with `kid` is checked with: the one key when there is one and
/// neither names a different `kid`, otherwise the key with that `kid`.
fn key_for<'a>(
    keys: &'a [(Option<String>, DecodingKey)],
    kid: Option<&str>,
) -> Result<&'a DecodingKey, TokenError> {
    if let [(only_kid, only)] = keys
        && (kid.is_none() || only_kid.is_none() || only_kid.as_deref() == kid)
    {
        return Ok(only);
    }
    let kid = kid.ok_or(TokenError::Signature)?;
    keys.iter()
        .find(|(k, _)| k.as_deref() == Some(kid))
        .map(|(_, key)| key)
        .ok_or(TokenError::Signature)
}

/// Whole seconds, as the claims count them.
fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::Signature,
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        K::InvalidIssuer | K::InvalidAudience => TokenError::IssuerOrAudience,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::Algorithm,
        K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) | K::Json(_) => TokenError::Claims,
        _ => TokenError::Malformed,
    }
}

fn check_claims(
    c: RawClaims,
    now: i64,
    leeway: i64,
    max_lifetime: i64,
) -> Result<EmbedClaims, TokenError> {
    let (Some(iat), Some(exp)) = (c.iat, c.exp) else {
        return Err(TokenError::Claims);
    };
    if iat > now + leeway {
        return Err(TokenError::NotYetValid);
    }
    if let Some(nbf) = c.nbf
        && nbf > now + leeway
    {
        return Err(TokenError::NotYetValid);
    }
    if exp <= iat || exp - iat > max_lifetime {
        return Err(TokenError::LifetimeTooLong);
    }
    if exp < now - leeway {
        return Err(TokenError::Expired);
    }
    let jti = match c.jti {
        Some(serde_json::Value::String(s))
            if !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) =>
        {
            s
        }
        _ => return Err(TokenError::Claims),
    };
    let email = match c.email {
        Some(serde_json::Value::String(s)) => Email::parse(&s).map_err(|_| TokenError::Email)?,
        _ => return Err(TokenError::Email),
    };
    Ok(EmbedClaims { email, jti, exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn verifier() -> EmbedVerifier {
        EmbedVerifier::hs256(SECRET, "https://app.example.com", "kbgate").unwrap()
    }

    fn mint(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn good(now: i64) -> serde_json::Value {
        json!({"email": "a@ACME.com", "iat": now, "exp": now + 120,
               "iss": "https://app.example.com", "aud": "kbgate", "jti": "j-1"})
    }

    #[tokio::test]
    async fn accepts_a_good_token() {
        let n = now();
        let c = verifier().verify(&mint(good(n)), n).await.unwrap();
        assert_eq!(c.email.as_str(), "a@acme.com");
        assert_eq!(c.jti, "j-1");
    }

    #[tokio::test]
    async fn refuses_bad_claims() {
        let n = now();
        let v = verifier();
        let cases: Vec<(&str, serde_json::Value, TokenError)> = vec![
            (
                "expired",
                json!({"iat": n - 600, "exp": n - 400}),
                TokenError::Expired,
            ),
            (
                "iat future",
                json!({"iat": n + 600, "exp": n + 700}),
                TokenError::NotYetValid,
            ),
            (
                "nbf future",
                json!({"nbf": n + 600}),
                TokenError::NotYetValid,
            ),
            (
                "too long",
                json!({"exp": n + 3600}),
                TokenError::LifetimeTooLong,
            ),
            ("aud", json!({"aud": "other"}), TokenError::IssuerOrAudience),
            (
                "iss",
                json!({"iss": "https://evil.com"}),
                TokenError::IssuerOrAudience,
            ),
            (
                "iss array",
                json!({"iss": ["https://app.example.com"]}),
                TokenError::IssuerOrAudience,
            ),
            (
                "iss array with another",
                json!({"iss": ["https://evil.com", "https://app.example.com"]}),
                TokenError::IssuerOrAudience,
            ),
            ("no jti", json!({"jti": null}), TokenError::Claims),
            ("jti num", json!({"jti": 5}), TokenError::Claims),
            ("no email", json!({"email": null}), TokenError::Email),
            (
                "bad email",
                json!({"email": "a@acme.com@evil.net"}),
                TokenError::Email,
            ),
        ];
        for (name, patch, want) in cases {
            let mut c = good(n);
            for (k, val) in patch.as_object().unwrap() {
                if val.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = val.clone();
                }
            }
            assert_eq!(v.verify(&mint(c), n).await.unwrap_err(), want, "{name}");
        }
    }

    #[tokio::test]
    async fn refuses_alg_none_tampering_and_size() {
        use base64::Engine;
        let n = now();
        let v = verifier();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(good(n).to_string())
        );
        assert!(v.verify(&none, n).await.is_err());
        let t = mint(good(n));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut claims = good(n);
        claims["email"] = json!("boss@acme.com");
        parts[1] = b64.encode(claims.to_string());
        assert_eq!(
            v.verify(&parts.join("."), n).await.unwrap_err(),
            TokenError::Signature
        );
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(v.verify(&big, n).await.unwrap_err(), TokenError::TooLarge);
        assert_eq!(v.verify("a.b", n).await.unwrap_err(), TokenError::Malformed);
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &good(n),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            v.verify(&hs512, n).await.unwrap_err(),
            TokenError::Algorithm
        );
    }

    #[test]
    fn key_errors() {
        assert!(matches!(
            EmbedVerifier::hs256(b"short", "i", "a"),
            Err(EmbedKeyError::SecretTooShort)
        ));
        assert!(EmbedVerifier::public_pem(EmbedAlgorithm::Rs256, b"nope", "i", "a").is_err());
        assert!(EmbedVerifier::jwks(EmbedAlgorithm::Rs256, "{\"keys\":[]}", "i", "a").is_err());
        assert!(format!("{:?}", verifier()).contains("EmbedVerifier"));
    }
}
