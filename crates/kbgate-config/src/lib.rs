//! `kbgate.toml`: loading, environment overrides, secrets and validation.
