//! The people an access request adds: who native mode provisions besides the configured
//! ones.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kbgate_policy::{Email, Policy};
use kbgate_store::{AuditEvent, PersonRecord, Store};

use crate::error::Error;

/// The store's people list, as verified access requests add to it.
pub(crate) struct People {
    store: Arc<dyn Store>,
}

impl People {
    pub(crate) fn new(store: Arc<dyn Store>) -> People {
        People { store }
    }

    /// Records a verified access request: the person is added to the people native mode
    /// provisions when the policy's access-request rule
    /// ([`Policy::may_request_access`], the one `kbgate people` and `kbgate plan` use)
    /// qualifies the address. The outcome goes to the audit log with the domain, never the
    /// address; the caller answers the same either way.
    pub(crate) async fn record_access_request(
        &self,
        policy: &Policy,
        email: &Email,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let domain = email.domain().as_str();
        let outcome = if !policy.may_request_access(email, now) {
            "domain-not-granted"
        } else {
            let added = self
                .store
                .add_person(&PersonRecord {
                    email: email.as_str().to_owned(),
                    domain: domain.to_owned(),
                    source: "access-request".into(),
                    created_at: now,
                })
                .await
                .map_err(Error::internal)?;
            if added { "recorded" } else { "already-known" }
        };
        self.store
            .append_audit(&AuditEvent {
                ts: now,
                actor: "system".into(),
                action: "provision.access-request".into(),
                // Only the domain: the address itself is personal data the log does not need.
                detail: serde_json::json!({ "outcome": outcome, "domain": domain, "source": source }),
            })
            .await
            .map_err(Error::internal)?;
        Ok(())
    }
}
