//! Mirror sync from Confluence: the engine, its sources, progress and forgetting. Page bodies
//! are prepared for per-viewer resolution by `kbgate-render`.

pub mod sync;
