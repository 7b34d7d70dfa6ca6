//! Domain policy: who may read what. Pure: no I/O.
//!
//! - [`Email`] and [`Domain`] parse and normalise addresses (RFC 5321 dot-atom, UTS #46
//!   A-labels); see the [`email`] module docs for every accepted and refused form.
//! - [`Policy`] holds the [`Audience`]s and the deny list; [`Policy::decide`] explains a decision
//!   and [`Policy::viewer`] issues the [`Viewer`] capability, the only way to read the mirror.
//! - Semantics of matching, deny and expiry are in the [`policy`] module docs.

mod admin;
pub mod email;
pub mod explain;
pub mod names;
pub mod policy;
mod viewer;

pub use admin::{Admin, AdminPolicy};
pub use email::{Domain, DomainError, Email, EmailError};
pub use explain::{
    AncestorFacts, AudienceCheck, AudienceReach, Explanation, Outcome, PageFacts, Readership, Step,
};
pub use names::{AudienceName, Label, NameError, SpaceKey};
pub use policy::{
    Audience, AudienceMatch, Decision, Delivery, MatchStatus, Policy, PolicyError, Refusal,
    UnknownDelivery,
};
pub use viewer::{LabelFilter, SpaceGrant, Viewer};
