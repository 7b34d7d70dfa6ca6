//! A stateful simulator of the Confluence Cloud endpoints kbgate uses.
