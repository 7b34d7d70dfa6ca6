//! Mirror sync from Confluence and storage-format rendering.

pub mod render;
pub mod sync;
