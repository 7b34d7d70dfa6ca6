//! Mirror sync: Confluence → store, one atomic transaction per space.

pub mod confluence;
mod engine;
mod forget;
mod icon;
mod progress;
pub mod source;

pub use engine::{
    SpaceReport, SyncError, SyncOptions, SyncReport, change_query_start, sync_spaces,
};
pub use forget::{BLOB_GRACE, ForgetReport, forget};
pub use icon::{MAX_ICON_BYTES, is_stock, sniff_image};
pub use progress::{Bar, Progress};
pub use source::Source;
