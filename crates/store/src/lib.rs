//! # june-store
//!
//! Persistence for June Orchestrator behind the domain's store ports ([`SessionStore`],
//! [`PresenceStore`], [`VoiceStateStore`], [`LeaseStore`], [`StoreHealth`],
//! [`HistoryStore`], [`EventStore`], [`IdempotencyStore`]). SQLite is the embedded default for
//! a single instance; PostgreSQL serves several replicas sharing one database. The statements
//! are written once, as functions generic over the sqlx database (`sql.rs`), and serve both;
//! the backend is chosen by the URL scheme in [`connect`], the one entry point the binary
//! calls. Migrations live in `migrations/<dialect>/` with the same versions, and are embedded
//! in the binary.
//!
//! May depend on the domain and sqlx; never on the web framework or other adapters.

use std::sync::Arc;
use std::time::Duration;

use june_domain::ports::{
    EventStore, HistoryStore, IdempotencyStore, LeaseStore, PresenceStore, SessionStore,
    StoreError, StoreHealth, TurnStore, VoiceStateStore,
};

use crate::bounded::{Abandonments, Bounded};

mod bounded;
mod checkpoint;
mod conns;
mod feed;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod time;

pub use feed::{FeedOptions, PgFeed};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The store ports, backed by one database: one field per port.
#[derive(Clone)]
pub struct Stores {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Who is in each session's room.
    pub presence: Arc<dyn PresenceStore>,
    /// The voice loop's shared state (dispatch claims, turns, transcript dedupe).
    pub voice: Arc<dyn VoiceStateStore>,
    /// Leases (the reaper's).
    pub leases: Arc<dyn LeaseStore>,
    /// Readiness ping and pool gauges.
    pub health: Arc<dyn StoreHealth>,
    /// Conversation history.
    pub history: Arc<dyn HistoryStore>,
    /// LiveKit's events (and webhook dedupe).
    pub events: Arc<dyn EventStore>,
    /// `Idempotency-Key` records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Turn records.
    pub turns: Arc<dyn TurnStore>,
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a connection before answering "unavailable".
    pub connect_timeout: Duration,
    /// Longest a statement may run (PostgreSQL `statement_timeout`; SQLite busy timeout).
    pub statement_timeout: Duration,
    /// Longest any store call may take, kept by us: a partitioned database cannot enforce
    /// its own `statement_timeout`. Past it the call answers "unavailable". Keep it at least
    /// `connect_timeout + statement_timeout`, so the database's own timeouts answer first.
    pub call_timeout: Duration,
    /// Prepared statements kept per connection (sqlx's LRU cache; both backends).
    pub statement_cache_capacity: usize,
    /// SQLite page cache per connection, in KiB.
    pub sqlite_cache_kib: u32,
    /// SQLite WAL size past which a checkpoint waits for the writer and readers; the WAL
    /// file is truncated back to it when it restarts.
    pub sqlite_wal_limit_bytes: u64,
    /// How often the SQLite checkpointer looks at the WAL; `None` (the default) leaves
    /// checkpoints to SQLite's automatic one, which measured the better tail (docs/benchmarks.md).
    pub sqlite_checkpoint_every: Option<Duration>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(8),
            statement_cache_capacity: 100,
            sqlite_cache_kib: 2048,
            sqlite_wal_limit_bytes: 16 * 1024 * 1024,
            sqlite_checkpoint_every: None,
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names no database we support.
    #[error("unsupported DATABASE_URL scheme {0:?} (expected sqlite:// or postgres://)")]
    UnsupportedScheme(String),
    /// The database could not be opened or migrated.
    #[error("{0}: {cause}", cause = source_text(.0))]
    Store(#[from] StoreError),
}

fn source_text(e: &StoreError) -> String {
    std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default()
}

impl Stores {
    /// Every port served by one adapter (e.g. `june_domain::memory::InMemoryStore`).
    pub fn of<S>(store: S) -> Stores
    where
        S: SessionStore
            + PresenceStore
            + VoiceStateStore
            + LeaseStore
            + StoreHealth
            + HistoryStore
            + EventStore
            + IdempotencyStore
            + TurnStore
            + 'static,
    {
        stores(store)
    }
}

fn stores<S>(store: S) -> Stores
where
    S: SessionStore
        + PresenceStore
        + VoiceStateStore
        + LeaseStore
        + StoreHealth
        + HistoryStore
        + EventStore
        + IdempotencyStore
        + TurnStore
        + 'static,
{
    let store = Arc::new(store);
    Stores {
        sessions: store.clone(),
        presence: store.clone(),
        voice: store.clone(),
        leases: store.clone(),
        health: store.clone(),
        history: store.clone(),
        events: store.clone(),
        turns: store.clone(),
        idempotency: store,
    }
}

/// Opens (creating if needed) and migrates the database named by `url`.
///
/// `sqlite://path/to/file.db` (relative to the working directory; the folder is created),
/// `sqlite::memory:` for a throw-away database, or `postgres://user@host:port/db`.
/// Every call of the stores is bounded by `options.call_timeout`.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Stores, ConnectError> {
    let scheme = url.split(':').next().unwrap_or_default();
    let timeout = options.call_timeout;
    match scheme {
        "sqlite" => {
            let store = SqliteStore::connect(url, options).await?;
            Ok(stores(Bounded::new(
                store,
                timeout,
                Abandonments::default(),
            )))
        }
        "postgres" | "postgresql" => {
            let store = PgStore::connect(url, options).await?;
            let abandoned = store.abandonments();
            Ok(stores(Bounded::new(store, timeout, abandoned)))
        }
        other => Err(ConnectError::UnsupportedScheme(other.to_owned())),
    }
}

/// Maps a driver error onto the port's error: uniqueness to `Conflict`, a missing parent row
/// (foreign key) or no row to `NotFound`, a value the database refuses to `Invalid`, the rest
/// to `Unavailable` with the cause kept.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                StoreError::Conflict(db.message().to_owned())
            }
            sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ if refuses_the_value(&*db) => {
                StoreError::Invalid(format!("the database refused a value: {}", db.message()))
            }
            _ => StoreError::Unavailable(Box::new(sqlx::Error::Database(db))),
        },
        other => StoreError::Unavailable(Box::new(other)),
    }
}

/// Whether the database refused a value rather than failed: PostgreSQL's SQLSTATE class 22
/// ("data exception": a NUL in a text is 22021, in JSON 22P05), SQLite's `SQLITE_TOOBIG`
/// (18) and `SQLITE_MISMATCH` (20). These fail the same way on every retry, so they must not
/// read as an outage (a 503 makes LiveKit redeliver a webhook forever). Their messages name
/// the value's fault, never the statement.
fn refuses_the_value(db: &dyn sqlx::error::DatabaseError) -> bool {
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        db.code().is_some_and(|code| code.starts_with("22"))
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        db.code().is_some_and(|code| code == "18" || code == "20")
    } else {
        false
    }
}
