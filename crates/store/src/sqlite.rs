//! The SQLite adapter: one file, WAL mode, migrations from `migrations/sqlite`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use june_domain::ports::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use tokio::sync::MutexGuard;

use crate::StoreOptions;
use crate::conns::Connections;
use crate::sql::sql_store;
use crate::store_error;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Every store port in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    readers: Arc<Connections>,
    /// The one connection that writes (the same one as `readers` for an in-memory database).
    writer: Arc<Connections>,
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
        // An in-memory database exists per connection: keep exactly one, for everything.
        let wait = options.connect_timeout;
        let writer = Arc::new(Connections::open(&connect, 1, wait).await?);
        let readers = if in_memory {
            writer.clone()
        } else {
            Arc::new(Connections::open(&connect, options.max_connections, wait).await?)
        };
        let store = SqliteStore { readers, writer };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATIONS
            .run(&mut *self.writer().await?)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))
    }

    async fn reader(&self) -> Result<MutexGuard<'_, SqliteConnection>, StoreError> {
        self.readers.get().await
    }

    async fn writer(&self) -> Result<MutexGuard<'_, SqliteConnection>, StoreError> {
        self.writer.get().await
    }

    fn connection_stats(&self) -> (u32, u32) {
        self.readers.stats()
    }
}

sql_store!(SqliteStore, sqlx::Sqlite, one_trip = true);
