//! The audit log as the portal writes it: sign-ins, sign-outs, sessions the policy ends.

use std::sync::Arc;

use chrono::Utc;
use kbgate_store::{AuditEvent, Store};

/// Appends to the store's audit log. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Audit {
    store: Arc<dyn Store>,
}

impl Audit {
    pub(crate) fn new(store: Arc<dyn Store>) -> Audit {
        Audit { store }
    }

    /// Appends an audit event; failures are logged, not fatal (the sign-in already happened).
    pub(crate) async fn record(&self, actor: &str, action: &str, detail: serde_json::Value) {
        let ev = AuditEvent {
            ts: Utc::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail,
        };
        if let Err(e) = self.store.append_audit(&ev).await {
            tracing::warn!(error = %e, action, "audit write failed");
        }
    }
}
