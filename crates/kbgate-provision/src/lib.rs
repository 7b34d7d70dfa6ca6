//! Native mode: reconcile Confluence's own permissions with the policy.
