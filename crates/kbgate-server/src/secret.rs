//! Opaque random secrets handed to browsers (session ids, one-time codes), stored only hashed.
//!
//! The value is held as the workspace's one secret type, [`SecretString`] (wiped on drop,
//! redacted in Debug); [`Opaque`] adds what these tokens need beyond it: generation, the shape
//! check of a presented value, and the hash the store keeps.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kbgate_config::{ExposeSecret, SecretString};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh 256-bit random value, URL-safe base64 (43 characters). It is what the browser holds
/// (cookie, link); the store only ever sees its [`Opaque::hash`].
#[derive(Clone)]
pub(crate) struct Opaque(SecretString);

/// Length of the encoded form.
const ENCODED_LEN: usize = 43;

impl Opaque {
    /// 32 bytes from a CSPRNG (rand's thread-local ChaCha, seeded and reseeded from the OS).
    pub(crate) fn generate() -> Opaque {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Opaque(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts a value presented by a client when it has the right shape; it is not known to
    /// exist until its hash is found in the store.
    pub(crate) fn parse(s: &str) -> Option<Opaque> {
        (s.len() == ENCODED_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Opaque(SecretString::from(s)))
    }

    /// The value to hand to the client.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// SHA-256 hex: the form kept in the store (a leaked database does not yield live ids).
    pub(crate) fn hash(&self) -> String {
        hex::encode(self.digest())
    }

    /// The SHA-256 of the secret as bytes ([`Opaque::hash`] without the hex): a map key
    /// that does not hold the secret.
    pub(crate) fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.expose().as_bytes()).into()
    }

    /// A token derived from this secret for another purpose (e.g. the sign-out form's CSRF
    /// token): unguessable without the secret, and it does not reveal the secret.
    pub(crate) fn derive(&self, purpose: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"kbgate:");
        h.update(purpose.as_bytes());
        h.update(b":");
        h.update(self.expose().as_bytes());
        hex::encode(&h.finalize()[..16])
    }
}

/// Constant-time, like every comparison of secrets here.
impl PartialEq for Opaque {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.expose(), other.expose())
    }
}

impl Eq for Opaque {}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Opaque(<redacted>)")
    }
}

/// Constant-time equality of two strings (API keys, CSRF tokens).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    // Compare digests so that the length of the secret is not revealed by timing either.
    let da = Sha256::digest(a.as_bytes());
    let db = Sha256::digest(b.as_bytes());
    da.ct_eq(&db).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_round_trip_and_redaction() {
        let a = Opaque::generate();
        let b = Opaque::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), ENCODED_LEN);
        assert_eq!(Opaque::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), a.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_ne!(a.derive("csrf"), b.derive("csrf"));
        assert_ne!(a.derive("csrf"), a.derive("other"));
    }

    #[test]
    fn opaque_parse_refuses_odd_input() {
        assert!(Opaque::parse("").is_none());
        assert!(Opaque::parse(&"a".repeat(42)).is_none());
        assert!(Opaque::parse(&format!("{}=", "a".repeat(42))).is_none());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
