//! # june-store
//!
//! Persistence for June Orchestrator behind the domain's store ports
//! ([`SessionStore`], [`HistoryStore`]). SQLite is the embedded default for a single
//! instance; the adapter is chosen by the `DATABASE_URL` scheme in [`connect`], the one
//! entry point the binary calls. Migrations live in `migrations/<dialect>/` and are embedded
//! in the binary, so a fresh database needs no manual step.
//!
//! May depend on the domain and sqlx; never on the web framework or other adapters.

use std::sync::Arc;

use june_domain::ports::{EventStore, HistoryStore, SessionStore, StoreError};

mod sqlite;
mod time;

pub use sqlite::SqliteStore;

/// The store ports, backed by one database.
#[derive(Clone)]
pub struct Stores {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Conversation history.
    pub history: Arc<dyn HistoryStore>,
    /// LiveKit's events (and webhook dedupe).
    pub events: Arc<dyn EventStore>,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names no database we support.
    #[error("unsupported DATABASE_URL scheme {0:?} (expected sqlite://…)")]
    UnsupportedScheme(String),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens (creating if needed) and migrates the database named by `url`.
///
/// `sqlite://path/to/file.db` (relative paths are relative to the working directory;
/// the folder is created), `sqlite::memory:` for a throw-away database.
pub async fn connect(url: &str) -> Result<Stores, ConnectError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => {
            let store = Arc::new(SqliteStore::connect(url).await?);
            Ok(Stores {
                sessions: store.clone(),
                history: store.clone(),
                events: store,
            })
        }
        other => Err(ConnectError::UnsupportedScheme(other.to_owned())),
    }
}

/// Maps a driver error onto the port's error: uniqueness to `Conflict`, no row to
/// `NotFound`, the rest to `Unavailable` with the cause kept.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        other => StoreError::Unavailable(Box::new(other)),
    }
}
