#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis error")]
    Redis(#[from] redis::RedisError),
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The action does not fit the current state (a lifecycle rule, a used-up draft).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this, whatever the input.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Refused input, with the reason for the caller.
    #[error("{0}")]
    Invalid(String),
    /// A listener's lease on a channel passed to another listener: its cursor write was
    /// refused, and it must stop reading the channel.
    #[error("the channel's lease passed to another listener")]
    LeaseLost,
}

impl StoreError {
    /// True when the failure is the database or Redis being unreachable, which callers
    /// answer with 503 (or a retry) rather than treat as a bug.
    /// Text the database cannot store: a NUL character (PostgreSQL's text has none) or
    /// bytes that are not UTF-8. The caller's input, so a 400, not a server error.
    pub fn is_unstorable_text(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e))
            if matches!(e.code().as_deref(), Some("22021" | "22P05")))
    }

    pub fn is_unavailable(&self) -> bool {
        match self {
            // A statement or an idle transaction cut off by its timeout, or a deadlock the
            // database broke, is a moment's trouble: the client should retry, not give up.
            StoreError::Db(sqlx::Error::Database(e)) => {
                matches!(
                    e.code().as_deref(),
                    Some("57014" | "25P03" | "40P01" | "40001")
                )
            }
            StoreError::Db(e) => matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            ),
            StoreError::Redis(e) => e.is_io_error() || e.is_connection_dropped() || e.is_timeout(),
            _ => false,
        }
    }
}
