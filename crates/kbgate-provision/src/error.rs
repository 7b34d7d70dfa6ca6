//! Errors of native mode. Each names the fix, so an operator reading `kbgate plan` output
//! knows what to change without reading code.

use kbgate_store::StoreError;

/// Errors that stop a plan or an apply. Per-action failures during apply are not errors:
/// they are counted in [`crate::ApplySummary`] with their message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// 401: the site refused the service account's credentials.
    #[error(
        "Confluence refused the service account's credentials (401 on {path}). Fix: check \
         [confluence] email and the API token (the api_token source in kbgate.toml); an \
         Atlassian API token belongs to exactly one account email and may have been revoked \
         or expired"
    )]
    Unauthorized {
        /// Request path.
        path: String,
    },
    /// 403: authenticated, but the service account lacks an admin permission.
    #[error(
        "the service account is not allowed to {what} (403 on {path}). Fix: give it {needs}. \
         Confluence said: {message}"
    )]
    Forbidden {
        /// What kbgate was doing.
        what: String,
        /// Request path.
        path: String,
        /// The permission the call needs.
        needs: String,
        /// Atlassian's message.
        message: String,
    },
    /// 403 naming a site limit (the guest allowance, the plan's user limit): room, not
    /// permission — admin rights would not help.
    #[error("could not {what}: Confluence's {limit} is reached (403 on {path}). Fix: {}. Confluence said: {message}", limit.advice())]
    LimitReached {
        /// What kbgate was doing.
        what: String,
        /// Request path.
        path: String,
        /// Which limit.
        limit: confluence_client::Limit,
        /// Atlassian's message.
        message: String,
    },
    /// Any other failure of a call that the run cannot do without.
    #[error("{what}: {source}")]
    Confluence {
        /// What kbgate was doing.
        what: String,
        /// The client error.
        #[source]
        source: confluence_client::Error,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A people CSV file cannot be used at all (no header, no `email` column, unreadable).
    #[error("people CSV: {0}")]
    Csv(String),
    /// The latest plan kept in the store cannot be read (another version of kbgate kept it).
    #[error(
        "the latest plan kept in the store cannot be read ({0}). Fix: run `kbgate plan` to \
         compute and keep a new one"
    )]
    UnreadablePlan(String),
}

impl ProvisionError {
    /// Wraps a client error, turning 401 and 403 into errors that name the fix.
    pub fn from_client(what: impl Into<String>, e: confluence_client::Error) -> Self {
        let what = what.into();
        match e {
            confluence_client::Error::Unauthorized { path, .. } => {
                ProvisionError::Unauthorized { path }
            }
            confluence_client::Error::Forbidden {
                path,
                message,
                hint,
            } => ProvisionError::Forbidden {
                what,
                path,
                needs: hint.to_owned(),
                message,
            },
            confluence_client::Error::LimitReached {
                path,
                message,
                limit,
            } => ProvisionError::LimitReached {
                what,
                path,
                limit,
                message,
            },
            source => ProvisionError::Confluence { what, source },
        }
    }
}

/// A one-line description of a per-action failure that names the fix where one is known.
/// The advice follows what Confluence said: a 403 naming a limit gets the limit's way out,
/// never "give the service account admin rights"; only a 403 about permissions does.
pub(crate) fn describe_failure(what: &str, e: &confluence_client::Error) -> String {
    match e {
        confluence_client::Error::LimitReached { limit, message, .. } => {
            format!(
                "{what}: {limit} reached (403); {} ({message})",
                limit.advice()
            )
        }
        confluence_client::Error::Forbidden { hint, message, .. } => {
            format!("{what}: forbidden (403); fix: give the service account {hint} ({message})")
        }
        confluence_client::Error::Unauthorized { .. } => {
            format!("{what}: unauthorized (401); fix: check [confluence] email and the API token")
        }
        // Confluence reports rate limits as 429 with Retry-After (developer.atlassian.com/
        // cloud/confluence/rate-limiting/), not as a 403; the client already waited and
        // retried. Nothing about permissions or seats: run apply again later.
        confluence_client::Error::RateLimited { attempts, .. } => format!(
            "{what}: rate limited (429) by Confluence, still after {attempts} attempt(s) \
             honouring Retry-After; not done: run apply again later (the journal resumes), or \
             lower [confluence] requests_per_second"
        ),
        other => format!("{what}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_permission() {
        let e = ProvisionError::from_client(
            "add a member to group kbgate-acme",
            confluence_client::Error::Forbidden {
                path: "/wiki/rest/api/group/userByGroupId".into(),
                message: "nope".into(),
                hint: "Confluence administrator (site admin) rights",
            },
        );
        let s = e.to_string();
        assert!(s.contains("403"), "{s}");
        assert!(s.contains("site admin"), "{s}");
        assert!(s.contains("add a member to group kbgate-acme"), "{s}");
    }

    #[test]
    fn a_limit_is_not_a_permission() {
        let limit = confluence_client::Error::LimitReached {
            path: "/wiki/rest/api/group/userByGroupId".into(),
            message: "You've reached your guest limit: your site can have up to 225 guests (5 per paid user)".into(),
            limit: confluence_client::Limit::Guests,
        };
        let d = describe_failure("add a@x.com to group guests-kbgate-g", &limit);
        assert!(d.contains("guest limit reached"), "{d}");
        assert!(d.contains("paid users") && d.contains("portal"), "{d}");
        assert!(!d.contains("give the service account"), "{d}");
        assert!(d.contains("225 guests"), "Atlassian's words are kept: {d}");
        let e = ProvisionError::from_client("add a member", limit).to_string();
        assert!(
            e.contains("guest limit") && !e.contains("site admin"),
            "{e}"
        );

        let perm = confluence_client::Error::Forbidden {
            path: "/wiki/rest/api/group/userByGroupId".into(),
            message: "You do not have permission".into(),
            hint: "Confluence administrator (site admin) rights",
        };
        let d = describe_failure("add a@x.com to group kbgate-acme", &perm);
        assert!(
            d.contains("give the service account Confluence administrator"),
            "{d}"
        );
    }

    #[test]
    fn a_rate_limit_is_neither_a_permission_nor_a_seat() {
        let d = describe_failure(
            "add a@x.com to group kbgate-acme",
            &confluence_client::Error::RateLimited {
                path: "/wiki/rest/api/group/userByGroupId".into(),
                attempts: 5,
            },
        );
        assert!(d.contains("429") && d.contains("again later"), "{d}");
        assert!(!d.contains("admin") && !d.contains("paid users"), "{d}");
    }

    #[test]
    fn unauthorized_names_the_token() {
        let e = ProvisionError::from_client(
            "x",
            confluence_client::Error::Unauthorized {
                path: "/wiki/api/v2/users-bulk".into(),
                message: "bad".into(),
            },
        );
        let s = e.to_string();
        assert!(s.contains("401") && s.contains("API token"), "{s}");
    }
}
