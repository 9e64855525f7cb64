//! The SQLite adapter: one file, WAL mode, migrations from `migrations/sqlite`.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use june_domain::batch::Batcher;
use june_domain::ports::{
    EventCursor, EventStore, HistoryStore, IdempotencyState, IdempotencyStore, LeaseStore,
    Presence, PresenceStore, SessionFilter, SessionStore, StoreError, StoreHealth, Transition,
    TurnGeneration, TurnStart, TurnStore, TurnSummary, VoiceStateStore,
};
use june_domain::{HistoryEntry, RecordedEvent, Session, SessionStatus, TurnRecord};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::MutexGuard;
use uuid::Uuid;

use crate::StoreOptions;
use crate::checkpoint::{CheckpointPolicy, Checkpointer};
use crate::conns::Connections;
use crate::sql::{Conns, Dialect};
use crate::store_error;

/// The shared statements, on SQLite.
type Sql = crate::sql::Sql<Sqlite>;

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
    /// Checkpoints off the commit path (a file database only); stops with the store.
    _checkpointer: Option<Arc<Checkpointer>>,
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
            .statement_cache_capacity(options.statement_cache_capacity)
            // Negative: KiB rather than pages. Per connection, so memory stays bounded.
            .pragma("cache_size", format!("-{}", options.sqlite_cache_kib))
            .pragma(
                "journal_size_limit",
                options.sqlite_wal_limit_bytes.to_string(),
            );
        // With the checkpointer on, it checkpoints, off the commit path; otherwise SQLite's
        // own automatic checkpoint does (in the commit that crosses 1 000 WAL pages).
        let checkpoints = options.sqlite_checkpoint_every.filter(|d| !d.is_zero());
        let connect = if checkpoints.is_some() {
            connect.pragma("wal_autocheckpoint", "0")
        } else {
            connect
        };
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
        let checkpointer = if let Some(every) = checkpoints.filter(|_| !in_memory) {
            let policy = CheckpointPolicy {
                every,
                wal_limit_bytes: options.sqlite_wal_limit_bytes,
            };
            let started = Checkpointer::start(&connect, writer.clone(), policy).await;
            Some(Arc::new(started.map_err(store_error)?))
        } else {
            None
        };
        let store = SqliteStore {
            inserts: Arc::new(Batcher::new(INSERT_BATCH, 4 * INSERT_BATCH, 1)),
            readers,
            writer,
            _checkpointer: checkpointer,
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
}

/// One INSERT for the batch. A conflict answers for its own row; if the batch fails
/// otherwise, each session tries alone, so each gets its own answer.
async fn write_sessions(writer: &Connections, sessions: &[Session]) -> Vec<Result<(), StoreError>> {
    let batch = async { Sql::insert_sessions(&mut *writer.get().await?, sessions).await };
    match batch.await {
        Ok(answers) => answers,
        Err(e) if sessions.len() == 1 => vec![Err(e)],
        Err(_) => {
            let mut answers = Vec::with_capacity(sessions.len());
            for s in sessions {
                let alone = async { Sql::insert_session(&mut *writer.get().await?, s).await };
                answers.push(alone.await);
            }
            answers
        }
    }
}

/// Most sessions written by one INSERT.
const INSERT_BATCH: usize = 64;

impl Dialect for Sqlite {
    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn build<'q>(qb: &'q mut QueryBuilder<'_, Sqlite>) -> Query<'q, Sqlite, SqliteArguments<'q>> {
        qb.build()
    }
}

impl Conns for SqliteStore {
    type Db = Sqlite;
    type Conn<'a> = MutexGuard<'a, SqliteConnection>;

    async fn reader(&self) -> Result<MutexGuard<'_, SqliteConnection>, StoreError> {
        self.readers.get().await
    }

    async fn writer(&self) -> Result<MutexGuard<'_, SqliteConnection>, StoreError> {
        self.writer.get().await
    }
}

// The ports: each method is the shared statement (`sql.rs`) on this store's connections.

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        self.insert_session(session).await
    }

    async fn get(&self, id: Uuid) -> Result<Session, StoreError> {
        Sql::get(self, id).await
    }

    async fn find_live_by_room(&self, room_name: &str) -> Result<Option<Session>, StoreError> {
        Sql::find_live_by_room(self, room_name).await
    }

    async fn find_by_room_sids(&self, room_sids: &[String]) -> Result<Vec<Session>, StoreError> {
        Sql::find_by_room_sids(self, room_sids).await
    }

    async fn list(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        Sql::list_sessions(self, filter).await
    }

    async fn list_live(&self, limit: u32) -> Result<Vec<Session>, StoreError> {
        Sql::list_live(self, limit).await
    }

    async fn advance_status(
        &self,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Transition, StoreError> {
        Sql::advance_status(self, id, to, at).await
    }
}

#[async_trait]
impl PresenceStore for SqliteStore {
    async fn record_presence(&self, news: &[Presence]) -> Result<(), StoreError> {
        Sql::record_presence(self, news).await
    }

    async fn reconcile(
        &self,
        session_id: Uuid,
        listed: &[String],
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        Sql::reconcile(self, session_id, listed, at).await
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Sql::try_lease(self, name, holder, now, until).await
    }
}

#[async_trait]
impl VoiceStateStore for SqliteStore {
    async fn claim_dispatch(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        Sql::claim_dispatch(self, id, at).await
    }

    async fn release_dispatch(&self, id: Uuid) -> Result<(), StoreError> {
        Sql::release_dispatch(self, id).await
    }

    async fn next_turn(&self, id: Uuid) -> Result<u64, StoreError> {
        Sql::next_turn(self, id).await
    }

    async fn start_turn(&self, id: Uuid) -> Result<TurnStart, StoreError> {
        Sql::start_turn(self, id).await
    }

    async fn current_turn(&self, id: Uuid) -> Result<TurnGeneration, StoreError> {
        Sql::current_turn(self, id).await
    }

    async fn note_final(
        &self,
        id: Uuid,
        text: &str,
        at: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<bool, StoreError> {
        Sql::note_final(self, id, text, at, window).await
    }
}

#[async_trait]
impl TurnStore for SqliteStore {
    async fn record_turn(&self, record: &TurnRecord) -> Result<(), StoreError> {
        Sql::record_turn(self, record).await
    }

    async fn list_turns(
        &self,
        session_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        Sql::list_turns(self, session_id, before, limit).await
    }

    async fn turns_after(
        &self,
        session_id: Uuid,
        after: u64,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        Sql::turns_after(self, session_id, after, limit).await
    }

    async fn get_turn(
        &self,
        session_id: Uuid,
        turn: u64,
    ) -> Result<Option<TurnRecord>, StoreError> {
        Sql::get_turn(self, session_id, turn).await
    }

    async fn allocate_turn(&self, session_id: Uuid) -> Result<u64, StoreError> {
        Sql::allocate_turn(self, session_id).await
    }

    async fn summary(&self, session_id: Uuid) -> Result<TurnSummary, StoreError> {
        Sql::turn_summary(self, session_id).await
    }
}

#[async_trait]
impl StoreHealth for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Sql::ping(self).await
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        Some(self.readers.stats())
    }
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn append(&self, session_id: Uuid, entry: &HistoryEntry) -> Result<(), StoreError> {
        Sql::append(self, session_id, entry).await
    }

    async fn recent(&self, session_id: Uuid, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        Sql::recent(self, session_id, limit).await
    }

    async fn clear(&self, session_id: Uuid) -> Result<(), StoreError> {
        Sql::clear(self, session_id).await
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn seen(&self, event_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        Sql::seen(self, event_ids).await
    }

    async fn record(&self, events: &[RecordedEvent]) -> Result<Vec<bool>, StoreError> {
        Sql::record(self, events).await
    }

    async fn list(
        &self,
        session_id: Uuid,
        limit: u32,
        after: Option<EventCursor>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Sql::list_events(self, session_id, limit, after).await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> Result<IdempotencyState, StoreError> {
        Sql::begin(self, key, fingerprint, now, not_before).await
    }

    async fn complete(&self, key: &str, response: &serde_json::Value) -> Result<(), StoreError> {
        Sql::complete(self, key, response).await
    }

    async fn abandon(&self, key: &str) -> Result<(), StoreError> {
        Sql::abandon(self, key).await
    }
}
