//! The SQLite adapter: one file, WAL mode, migrations from `migrations/sqlite`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use june_domain::ports::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use tokio::sync::MutexGuard;

use june_domain::Session;

use crate::StoreOptions;
use crate::batch::Batcher;
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
    /// New sessions, written in batches on `writer` (group commit).
    inserts: Batcher<Session, Result<(), StoreError>>,
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
            .busy_timeout(options.statement_timeout)
            // Checkpoints run beside the writer (`checkpoints`), never inside one of its commits.
            .pragma("wal_autocheckpoint", "0");
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
            inserts: insert_batches(writer.clone()),
            readers,
            writer,
        };
        store.migrate().await?;
        if !in_memory {
            checkpoints(Arc::downgrade(&store.readers));
        }
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

    async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        self.inserts.submit(s.clone()).await.unwrap_or_else(|| {
            Err(StoreError::Unavailable(
                "the SQLite insert queue has stopped".into(),
            ))
        })
    }

    fn connection_stats(&self) -> (u32, u32) {
        self.readers.stats()
    }
}

/// The task that writes new sessions in batches. It holds the writer connection, not the
/// store, so it ends when the store is dropped.
fn insert_batches(writer: Arc<Connections>) -> Batcher<Session, Result<(), StoreError>> {
    Batcher::start(INSERT_BATCH, move |sessions: Vec<Session>| {
        let writer = writer.clone();
        async move {
            let batch =
                async { SqliteStore::insert_now(&mut *writer.get().await?, &sessions).await };
            match batch.await {
                Ok(answers) => answers,
                Err(e) if sessions.len() == 1 => vec![Err(e)],
                // The batch failed as a whole (not a conflict, which answers per row): each
                // session tries alone, so each gets its own answer.
                Err(_) => {
                    let mut answers = Vec::with_capacity(sessions.len());
                    for s in &sessions {
                        let alone = async {
                            SqliteStore::insert_now(
                                &mut *writer.get().await?,
                                std::slice::from_ref(s),
                            )
                            .await?
                            .pop()
                            .unwrap_or(Ok(()))
                        };
                        answers.push(alone.await);
                    }
                    answers
                }
            }
        }
    })
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Copies the WAL back into the database on a reader connection every
/// [`CHECKPOINT_EVERY`]. SQLite would otherwise checkpoint inside the commit that crosses
/// 1 000 WAL pages, stalling the one writer (and every write queued behind it) for the
/// checkpoint's fsync: that was the create p99. A PASSIVE checkpoint never waits for
/// readers or the writer. Ends once the store is dropped.
fn checkpoints(readers: std::sync::Weak<Connections>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(readers) = readers.upgrade() else {
                return;
            };
            let done = match readers.get().await {
                Ok(mut conn) => sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut *conn)
                    .await
                    .map(drop)
                    .map_err(store_error),
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "SQLite checkpoint failed; the WAL keeps growing until one succeeds");
            }
        }
    });
}

/// Most sessions written by one INSERT.
const INSERT_BATCH: usize = 64;

sql_store!(SqliteStore, sqlx::Sqlite, one_trip = true);
