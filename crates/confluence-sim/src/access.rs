//! Access-management routes (users-bulk, check/invite by email, space permissions, groups,
//! knowledge-base switches, cgraphql, Jira user creation). Owned by the access engineer.

/// Routes merged into the simulator's router.
pub fn routes() -> axum::Router<crate::Sim> {
    axum::Router::new()
}
