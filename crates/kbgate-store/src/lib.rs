//! Persistence behind traits: SQLite (embedded default) and PostgreSQL.
