//! Native mode: keep Confluence's own access in line with the domain policy, like a
//! terraform for customer access.
//!
//! For audiences whose delivery is `guest`, `unlicensed` or `group`, the [`Reconciler`]
//! computes the desired state from the policy and the known people ([`desired_state`]),
//! reads the actual state from Confluence in bulk, and produces a [`Plan`] of actions, each
//! with a reason. [`Reconciler::apply`] runs it with a journal in the store: each action is
//! recorded as `pending` before its call and `done`/`failed`/`unknown` after it, so a killed
//! run is resumed by the next one without doing anything twice. An invitation whose outcome
//! is unknown (killed mid-call) is re-checked against the site by every plan and sent again
//! only to people who still have no access once it had time to complete
//! ([`ReconcileOptions::invite_retry_after`]); until then the plan lists them as
//! [`Plan::awaiting`] and is not [`Plan::converged`].
//!
//! Deliveries:
//! - **group**: a `kbgate-<audience>` group with `read` on each space; people invited by
//!   email in batches of 100 (an invitation grants the licence a member needs) and added by
//!   account id once their invitation completes — in the same `apply`, which waits a bounded
//!   time for its own invitations ([`ReconcileOptions::invite_wait`]).
//! - **guest**: people put on the site without product access (Jira `POST /rest/api/3/user`,
//!   `products: []`), added to the `guests-kbgate-<audience>` guest group and given `read` on
//!   the audience's one space (documented permission API, or the undocumented
//!   `ResetExCoSpacePermissionsMutation` when `allow_undocumented_apis`). Of the two ways the
//!   issue allows ("invited by `invite-by-email`, or added to a guest group"), kbgate uses the
//!   guest group, deliberately: an `invite-by-email` invitation gives the invitee the site's
//!   default product access — a paid Confluence seat — and the API has no way to withhold it
//!   (Atlassian AX-274). A guest invited that way would be a licensed user, not a guest: it
//!   would cost a seat, and would not count as a guest (one space, free). Jira user creation
//!   with no products costs nothing, and the guest group turns the person into a guest. It is
//!   one call per person instead of one per 100, the price of not buying a seat per guest.
//!   The plan's reason for each such person says so.
//! - **unlicensed**: unlicensed view on the spaces and the site-wide switch; people put on the
//!   site without product access and verified with `check-access-by-email`. A switch is
//!   switched on only when it is off, recorded as kbgate's only when kbgate switched it on,
//!   switched off on revocation only when it is kbgate's, and switched back on when it was
//!   turned off by hand — all of which needs the switches' actual state, read by a
//!   [`SwitchReader`]. Confluence's switch endpoints only set (they answer the state after the
//!   call); the default reader, [`SiteSwitches`], reads unlicensed view per space from the
//!   documented v1 space read (`expand=permissions`, a `read space` permission with
//!   `unlicensedAccess`), batched. Confluence documents no read of the site-wide switch, so for
//!   that one kbgate switches it on when it has no record of doing so, and never switches it
//!   off (it cannot tell whether it was on before kbgate); the plan warns. It grants nothing
//!   by itself: each space's unlicensed view does, and that is read and revoked.
//!
//! Site limits (issue 16): the plan knows the guest allowance (5 guests per paid user; paid
//! users from `[confluence] licensed_users` or the members of the default product-access
//! group, guests from `GuestDataQuery` when allowed, else the members of kbgate's guest groups
//! as a lower bound). Of the new guests only those that fit are planned, in a stable order;
//! the others are reported in [`Plan::limits`] with the way out (more paid users, or portal
//! delivery). Apply reports a 403 naming a limit (`confluence_client::Error::LimitReached`)
//! as [`Outcome::Waiting`] — not a failure, and never "give the service account admin
//! rights" — and [`ApplySummary::limits_reached`] tells the binary to exit 3.
//!
//! Safety rules: kbgate only ever grants `read` on `space`; it changes or revokes only what
//! it recorded as created (ownership in the store), never a group, permission or membership
//! it did not create; it never deletes Atlassian accounts.

mod actual;
mod apply;
mod desired;
mod diff;
mod error;
mod latest;
mod owned;
mod people;
mod plan;
mod reconciler;

pub use actual::{
    ACCESS_CHECK_DISABLED, SiteSwitches, SwitchReader, SwitchState, UnreadableSwitches,
};
pub use apply::{ApplyProgress, ApplySummary, NoProgress, Outcome, state as journal_state};
pub use desired::{DesiredAudience, DesiredState, desired_state, group_name, guest_group_name};
pub use diff::GUESTS_PER_PAID_USER;
pub use error::ProvisionError;
pub use latest::{LatestPlan, latest_plan};
pub use people::{BadRow, ImportReport, import_people_csv, list_people};
pub use plan::{Action, AwaitState, Awaiting, LimitHold, Note, Op, Plan};
pub use reconciler::{
    DEFAULT_ACCESS_GROUP, DEFAULT_INVITE_RETRY_AFTER, DEFAULT_INVITE_WAIT, ReconcileOptions,
    Reconciler,
};
