//! Typed async client for the Confluence Cloud endpoints kbgate uses.
