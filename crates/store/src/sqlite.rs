//! The SQLite adapter: one file, WAL mode, migrations from `migrations/sqlite`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use june_domain::ports::StoreError;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreOptions;
use crate::sql::sql_store;
use crate::store_error;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Every store port in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pool: SqlitePool,
    /// The one connection that writes (the same pool as `pool` for an in-memory database).
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://file.db` or `sqlite::memory:`), creating the file and its folder,
    /// and applies the embedded migrations.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(store_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.statement_timeout);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory
            && let Some(dir) = Path::new(connect.get_filename()).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        }
        // An in-memory database exists per connection: keep exactly one.
        let pool_of = |max_connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(max_connections)
                .min_connections(if in_memory { 1 } else { 0 })
                .acquire_timeout(options.connect_timeout)
                .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
                .max_lifetime((!in_memory).then_some(Duration::from_secs(3600)))
                // A local file does not drop connections: the ping before each use is a wasted
                // round trip to the connection's thread.
                .test_before_acquire(false)
                .connect_lazy_with(connect.clone())
        };
        let (pool, writer) = if in_memory {
            let one = pool_of(1);
            (one.clone(), one)
        } else {
            (pool_of(options.max_connections), pool_of(1))
        };
        let store = SqliteStore { pool, writer };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATIONS
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))
    }
}

sql_store!(SqliteStore, sqlx::Sqlite, one_trip = true);
