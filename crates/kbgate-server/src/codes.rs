//! Single-use codes (hand-over codes, magic links, access-request links) and used embed
//! token ids: each can be spent once, and only before it expires.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kbgate_policy::Email;
use kbgate_store::{CodeRecord, Store};

use crate::error::Error;
use crate::secret::Opaque;

/// Single-use code purposes.
pub(crate) const PURPOSE_HANDOVER: &str = "handover";
pub(crate) const PURPOSE_MAGIC: &str = "magic-link";
/// Verification link of an access request (`/request-access/confirm`).
pub(crate) const PURPOSE_ACCESS_REQUEST: &str = "access-request";

/// The store's single-use codes and used token ids, as the sign-in flows spend them.
pub(crate) struct Codes {
    store: Arc<dyn Store>,
}

impl Codes {
    pub(crate) fn new(store: Arc<dyn Store>) -> Codes {
        Codes { store }
    }

    /// Records an embed token id as used; `false` when it already was (a replay).
    pub(crate) async fn consume_jti(&self, jti: &str, exp: i64) -> Result<bool, Error> {
        // Keep the record past the token's expiry plus the largest leeway, so a replay inside the
        // leeway window is still caught.
        let until = DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or_else(Utc::now)
            + chrono::Duration::seconds(360);
        let key = format!("embed:{jti}");
        self.store
            .consume_jti(&key, until)
            .await
            .map_err(Error::internal)
    }

    pub(crate) async fn create_code(
        &self,
        purpose: &str,
        email: &Email,
        return_to: &str,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<Opaque, Error> {
        let code = Opaque::generate();
        let ttl = chrono::Duration::from_std(ttl).map_err(|_| Error::BadRequest("bad ttl"))?;
        let rec = CodeRecord {
            code_hash: code.hash(),
            purpose: purpose.to_owned(),
            email: email.as_str().to_owned(),
            return_to: Some(return_to.to_owned()),
            created_at: now,
            expires_at: now + ttl,
        };
        self.store
            .create_code(&rec)
            .await
            .map_err(Error::internal)?;
        Ok(code)
    }

    pub(crate) async fn consume_code(
        &self,
        code: &Opaque,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<CodeRecord>, Error> {
        self.store
            .consume_code(&code.hash(), purpose, now)
            .await
            .map_err(Error::internal)
    }
}
