//! The SQLite adapter: one file, WAL mode, migrations from `migrations/sqlite`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use june_domain::ports::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use tokio::sync::MutexGuard;

use june_domain::Session;
use june_domain::batch::Batcher;

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
    /// New sessions in flight, written in batches on `writer` (group commit).
    inserts: Arc<Batcher<Session, Result<(), StoreError>>>,
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
        let store = SqliteStore {
            inserts: Arc::new(Batcher::new(INSERT_BATCH, 4 * INSERT_BATCH, 1)),
            readers,
            writer,
        };
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

    /// Group commit: sessions inserted while a batch is being written wait, and are
    /// written together as the next batch (one statement, one commit). Under light load a
    /// batch is one session and nothing waits.
    async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        let writer = &self.writer;
        self.inserts
            .submit(s.clone(), move |sessions| async move {
                write_sessions(writer, &sessions).await
            })
            .await
            .unwrap_or_else(|e| Err(StoreError::Unavailable(Box::new(e))))
    }

    fn connection_stats(&self) -> (u32, u32) {
        self.readers.stats()
    }
}

/// One INSERT for the batch. A conflict answers for its own row; if the batch fails
/// otherwise, each session tries alone, so each gets its own answer.
async fn write_sessions(writer: &Connections, sessions: &[Session]) -> Vec<Result<(), StoreError>> {
    let batch = async { SqliteStore::insert_now(&mut *writer.get().await?, sessions).await };
    match batch.await {
        Ok(answers) => answers,
        Err(e) if sessions.len() == 1 => vec![Err(e)],
        Err(_) => {
            let mut answers = Vec::with_capacity(sessions.len());
            for s in sessions {
                let alone = async { SqliteStore::insert_one(&mut *writer.get().await?, s).await };
                answers.push(alone.await);
            }
            answers
        }
    }
}

/// Most sessions written by one INSERT.
const INSERT_BATCH: usize = 64;

sql_store!(SqliteStore, sqlx::Sqlite, one_trip = true);
