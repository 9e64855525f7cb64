//! The SQLite adapter: one file, WAL mode, migrations from `migrations/sqlite`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use june_domain::ports::{
    EventCursor, EventStore, HistoryStore, SessionFilter, SessionStore, StoreError,
};
use june_domain::{HistoryEntry, RecordedEvent, Role, Session, SessionStatus};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};
use uuid::Uuid;

use crate::store_error;
use crate::time::{from_micros, to_micros};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Sessions and history in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://file.db` or `sqlite::memory:`), creating the file and its folder,
    /// and applies the embedded migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(store_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory
            && let Some(dir) = Path::new(options.get_filename()).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        }
        // An in-memory database exists per connection: keep exactly one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(options)
            .await
            .map_err(store_error)?;
        MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(SqliteStore { pool })
    }
}

#[derive(FromRow)]
struct SessionRow {
    id: String,
    user_id: String,
    room_name: String,
    livekit_room_sid: String,
    status: String,
    language: String,
    metadata: String,
    voice: bool,
    created_at: i64,
    expires_at: i64,
    updated_at: i64,
    ended_at: Option<i64>,
    participant_count: i64,
    last_activity_at: Option<i64>,
}

/// The foreign keys name the session: a missing parent row is "no such session".
fn foreign_key_is_not_found(e: sqlx::Error) -> StoreError {
    match store_error(e) {
        StoreError::Unavailable(src) if src.to_string().contains("FOREIGN KEY") => {
            StoreError::NotFound
        }
        other => other,
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Unavailable(format!("stored {what} {value:?} is not valid").into())
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id: Uuid::parse_str(&r.id).map_err(|_| corrupt("session id", &r.id))?,
            status: SessionStatus::parse(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            metadata: serde_json::from_str(&r.metadata)
                .map_err(|_| corrupt("metadata", &r.metadata))?,
            user_id: r.user_id,
            room_name: r.room_name,
            livekit_room_sid: r.livekit_room_sid,
            language: r.language,
            voice: r.voice,
            created_at: from_micros(r.created_at)?,
            expires_at: from_micros(r.expires_at)?,
            updated_at: from_micros(r.updated_at)?,
            ended_at: r.ended_at.map(from_micros).transpose()?,
            participant_count: u32::try_from(r.participant_count).unwrap_or_default(),
            last_activity_at: r.last_activity_at.map(from_micros).transpose()?,
        })
    }
}

const SESSION_COLUMNS: &str = "id, user_id, room_name, livekit_room_sid, status, language, \
     metadata, voice, created_at, expires_at, updated_at, ended_at, participant_count, \
     last_activity_at";

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, room_name, livekit_room_sid, status, language, \
             metadata, voice, created_at, expires_at, updated_at, ended_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id.to_string())
        .bind(&s.user_id)
        .bind(&s.room_name)
        .bind(&s.livekit_room_sid)
        .bind(s.status.as_str())
        .bind(&s.language)
        .bind(serde_json::Value::Object(s.metadata.clone()).to_string())
        .bind(s.voice)
        .bind(to_micros(s.created_at))
        .bind(to_micros(s.expires_at))
        .bind(to_micros(s.updated_at))
        .bind(s.ended_at.map(to_micros))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Session, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?");
        let row: SessionRow = sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        row.try_into()
    }

    async fn find_live_by_room(&self, room_name: &str) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE room_name = ? AND status IN ('created', 'active')"
        );
        let row: Option<SessionRow> = sqlx::query_as(&sql)
            .bind(room_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(Session::try_from).transpose()
    }

    async fn find_by_room_sid(&self, room_sid: &str) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE livekit_room_sid = ? \
             ORDER BY created_at DESC LIMIT 1"
        );
        let row: Option<SessionRow> = sqlx::query_as(&sql)
            .bind(room_sid)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(Session::try_from).transpose()
    }

    async fn list_live(&self, limit: u32) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE status IN ('created', 'active') \
             ORDER BY created_at ASC, id ASC LIMIT ?"
        );
        let rows: Vec<SessionRow> = sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.into_iter().map(Session::try_from).collect()
    }

    async fn record_presence(
        &self,
        session_id: Uuid,
        identity: &str,
        present: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = session_id.to_string();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // Newer-or-equal news wins; older news about the same identity is ignored.
        sqlx::query(
            "INSERT INTO session_participants (session_id, identity, present, last_event_at) \
             VALUES (?, ?, ?, ?) \
             ON CONFLICT (session_id, identity) DO UPDATE \
             SET present = excluded.present, last_event_at = excluded.last_event_at \
             WHERE excluded.last_event_at >= session_participants.last_event_at",
        )
        .bind(&id)
        .bind(identity)
        .bind(present)
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await
        .map_err(foreign_key_is_not_found)?;
        sqlx::query(
            "UPDATE sessions SET \
               participant_count = (SELECT COUNT(*) FROM session_participants \
                                    WHERE session_id = ?1 AND present = 1), \
               last_activity_at = (SELECT MAX(last_event_at) FROM session_participants \
                                   WHERE session_id = ?1) \
             WHERE id = ?1",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }

    async fn list(&self, f: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE 1 = 1"
        ));
        if let Some(user) = &f.user_id {
            qb.push(" AND user_id = ").push_bind(user.clone());
        }
        if let Some(status) = f.status {
            qb.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(c) = f.after {
            let at = to_micros(c.created_at);
            qb.push(" AND (created_at < ")
                .push_bind(at)
                .push(" OR (created_at = ")
                .push_bind(at)
                .push(" AND id < ")
                .push_bind(c.id.to_string())
                .push("))");
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(f.limit));
        let rows: Vec<SessionRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.into_iter().map(Session::try_from).collect()
    }

    async fn advance_status(
        &self,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        // One UPDATE guarded by the allowed predecessors: concurrent writers (webhooks,
        // replicas, the reaper) can only ever move the row forward.
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new("UPDATE sessions SET status = ");
        qb.push_bind(to.as_str())
            .push(", updated_at = ")
            .push_bind(to_micros(at));
        if !to.is_live() {
            qb.push(", ended_at = ").push_bind(to_micros(at));
        }
        qb.push(" WHERE id = ").push_bind(id.to_string());
        qb.push(" AND status IN (");
        let mut sep = qb.separated(", ");
        for from in SessionStatus::ALL.into_iter().filter(|s| s.can_become(to)) {
            sep.push_bind(from.as_str());
        }
        qb.push(")");
        if SessionStatus::ALL.iter().any(|s| s.can_become(to)) {
            qb.build().execute(&self.pool).await.map_err(store_error)?;
        }
        self.get(id).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[derive(FromRow)]
struct HistoryRow {
    role: String,
    content: String,
    created_at: i64,
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn append(&self, session_id: Uuid, e: &HistoryEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO history (session_id, role, content, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(session_id.to_string())
        .bind(e.role.as_str())
        .bind(&e.content)
        .bind(to_micros(e.timestamp))
        .execute(&self.pool)
        .await
        .map_err(foreign_key_is_not_found)?;
        Ok(())
    }

    async fn recent(&self, session_id: Uuid, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows: Vec<HistoryRow> = sqlx::query_as(
            "SELECT role, content, created_at FROM \
               (SELECT seq, role, content, created_at FROM history WHERE session_id = ? \
                ORDER BY seq DESC LIMIT ?) \
             ORDER BY seq ASC",
        )
        .bind(session_id.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|r| {
                Ok(HistoryEntry {
                    role: Role::parse(&r.role).ok_or_else(|| corrupt("role", &r.role))?,
                    content: r.content,
                    timestamp: from_micros(r.created_at)?,
                })
            })
            .collect()
    }

    async fn clear(&self, session_id: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM history WHERE session_id = ?")
            .bind(session_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[derive(FromRow)]
struct EventRow {
    id: String,
    event: String,
    session_id: Option<String>,
    room_name: Option<String>,
    participant: Option<String>,
    track_sid: Option<String>,
    created_at: i64,
    received_at: i64,
    payload: String,
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(RecordedEvent {
            session_id: r
                .session_id
                .map(|s| Uuid::parse_str(&s).map_err(|_| corrupt("session id", &s)))
                .transpose()?,
            payload: serde_json::from_str(&r.payload).map_err(|_| corrupt("payload", &r.id))?,
            id: r.id,
            event: r.event,
            room_name: r.room_name,
            participant: r.participant,
            track_sid: r.track_sid,
            created_at: from_micros(r.created_at)?,
            received_at: from_micros(r.received_at)?,
        })
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn seen(&self, event_id: &str) -> Result<bool, StoreError> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM webhook_events WHERE id = ?")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(found.is_some())
    }

    async fn record(&self, e: &RecordedEvent) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO webhook_events (id, event, session_id, room_name, participant, \
             track_sid, created_at, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&e.id)
        .bind(&e.event)
        .bind(e.session_id.map(|id| id.to_string()))
        .bind(&e.room_name)
        .bind(&e.participant)
        .bind(&e.track_sid)
        .bind(to_micros(e.created_at))
        .bind(to_micros(e.received_at))
        .bind(e.payload.to_string())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(
        &self,
        session_id: Uuid,
        limit: u32,
        after: Option<EventCursor>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT id, event, session_id, room_name, participant, track_sid, created_at, \
             received_at, payload FROM webhook_events WHERE session_id = ",
        );
        qb.push_bind(session_id.to_string());
        if let Some(c) = after {
            let at = to_micros(c.created_at);
            qb.push(" AND (created_at < ")
                .push_bind(at)
                .push(" OR (created_at = ")
                .push_bind(at)
                .push(" AND id < ")
                .push_bind(c.id)
                .push("))");
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<EventRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.into_iter().map(RecordedEvent::try_from).collect()
    }
}
