//! The one error type of the store.

/// Errors from the store. Messages name what failed but never carry secrets: the store is
/// only ever given hashes of session ids and codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is not one of `sqlite://PATH`, `sqlite::memory:`, `postgres://…`.
    #[error("unsupported or malformed store URL: {0}")]
    BadUrl(String),
    /// A database error (connection, constraint, SQL).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Running the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Reading or writing blobs or the data directory failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A JSON column could not be encoded or decoded.
    #[error("JSON column error: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored value does not have the shape the store wrote (corruption or a foreign writer).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The stream given to the blob store failed.
    #[error("blob source failed: {0}")]
    BlobSource(String),
    /// The bytes of a blob the mirror refers to are not in the blob store (deleted by
    /// someone, or never copied after a change of blob store). The next sync downloads them
    /// again; the portal answers 503 meanwhile. Carries the hash.
    #[error("blob {0} is not in the blob store")]
    BlobMissing(String),
    /// A blob was larger than the cap the caller set.
    #[error("blob exceeds the size cap of {cap} bytes")]
    BlobTooLarge {
        /// The cap that was exceeded.
        cap: u64,
    },
    /// A space sync's commit was refused because another sync of the space committed after
    /// this one read the mirror (compare-and-set on the space's generation). Nothing of it
    /// was written; the newer commit stands.
    #[error(
        "space {space_key}: a newer sync committed meanwhile (generation {found}, this sync read {expected}); nothing written"
    )]
    Stale {
        /// The space.
        space_key: String,
        /// The generation the sync read before it started.
        expected: i64,
        /// The generation committed now.
        found: i64,
    },
    /// The caller asked for something the store's invariants forbid.
    #[error("invalid input: {0}")]
    Invalid(String),
}
