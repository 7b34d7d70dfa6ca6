//! Shared helpers of the conformance tests: OpenAPI validation, hand-written schemas of the
//! undocumented endpoints, and an HTTP client for the in-process simulator.

pub mod client;
pub mod openapi;
pub mod schemas;
