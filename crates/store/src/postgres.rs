//! The PostgreSQL adapter, for several replicas sharing one database. Migrations from
//! `migrations/postgres` (same versions as SQLite's).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use june_domain::ports::{
    EventCursor, EventStore, HistoryStore, IdempotencyState, IdempotencyStore, LeaseStore,
    Presence, PresenceStore, SessionFilter, SessionStore, StoreError, StoreHealth, Transition,
    TurnGeneration, TurnStart, TurnStore, TurnSummary, VoiceStateStore,
};
use june_domain::{HistoryEntry, RecordedEvent, Session, SessionStatus, TurnRecord};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgQueryResult};
use sqlx::query::Query;
use sqlx::{Connection, PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::StoreOptions;
use crate::bounded::Abandonments;
use crate::sql::{CHUNK, Conns, Dialect, INSERT_PRESENCE, UPSERT_PRESENCE, collapse};
use crate::store_error;
use crate::time::to_micros;

/// The shared statements, on PostgreSQL.
type Sql = crate::sql::Sql<Postgres>;

/// [`PresenceStore::record_presence`] on PostgreSQL: the winning news per identity
/// ([`collapse`]), bound as four arrays and upserted in one statement, in key order.
static UPSERT_PRESENCE_UNNEST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{INSERT_PRESENCE} SELECT * FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::bigint[]) \
         {UPSERT_PRESENCE}"
    )
});

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Every store port in one PostgreSQL database (or schema).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// When a call on this pool was last given up on (see [`release_check`]).
    abandoned: Abandonments,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`; a `search_path` in `options` picks a schema) and
    /// applies the embedded migrations. The pool reconnects by itself after an outage.
    ///
    /// sqlx 0.8.6 has no TCP keepalive setting for PostgreSQL connections, so a silent
    /// (partitioned) connection is noticed only by our deadlines: the call timeout of
    /// `Bounded` and the release check below.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let statement_timeout = options.statement_timeout.as_millis().to_string();
        let abandoned = Abandonments::default();
        let connect = PgConnectOptions::from_str(url)
            .map_err(store_error)?
            .options([("statement_timeout", statement_timeout.as_str())])
            .statement_cache_capacity(options.statement_cache_capacity);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(1800)))
            // No ping before each use (a round trip per statement): a connection that died
            // fails its statement (503, like any outage) and sqlx's ping when it is released
            // drops it, so the pool heals as before (the outage e2e test covers this).
            .test_before_acquire(false)
            .after_release(release_check(abandoned.clone(), options.call_timeout))
            .connect_with(connect)
            .await
            .map_err(store_error)?;
        let store = PgStore { pool, abandoned };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations that have not run yet (safe on several replicas at
    /// once: sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATIONS
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))
    }

    /// Shared with the `Bounded` wrapper, which notes its timeouts there.
    pub(crate) fn abandonments(&self) -> Abandonments {
        self.abandoned.clone()
    }
}

/// What the release check answers: keep the connection (`Ok(true)`), or close it.
type Released<'c> = Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + 'c>>;

/// The pool's check of a connection coming back. sqlx pings it then without a deadline; a
/// connection whose call was given up on because the network went silent would hold its pool
/// slot in that ping until the kernel drops the connection (about 15 minutes). So while
/// calls are being given up on (within two call timeouts of the last one), ping first with a
/// deadline: no answer is an error, and sqlx then closes the connection and frees the slot.
/// Otherwise answer at once: no extra round trip on the hot path.
///
/// What this cannot bound: after the hook answers `Ok(true)`, sqlx 0.8.6 pings once more,
/// with no deadline, on every release. A partition that begins during that one round trip
/// holds the slot until the kernel drops the socket (sqlx issue #4349, open upstream); the
/// e2e outage test therefore partitions a pool at rest.
fn release_check(
    abandoned: Abandonments,
    wait: Duration,
) -> impl for<'c> Fn(&'c mut PgConnection, sqlx::pool::PoolConnectionMetadata) -> Released<'c>
+ Send
+ Sync
+ 'static {
    move |conn, _meta| {
        let check = abandoned.within(2 * wait);
        Box::pin(async move {
            if !check {
                return Ok(true);
            }
            match tokio::time::timeout(wait, conn.ping()).await {
                Ok(answer) => answer.map(|()| true),
                Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "a connection coming back after a timed-out call did not answer a ping",
                ))),
            }
        })
    }
}

impl Dialect for Postgres {
    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn build<'q>(qb: &'q mut QueryBuilder<'_, Postgres>) -> Query<'q, Postgres, PgArguments> {
        qb.build()
    }
}

impl Conns for PgStore {
    type Db = Postgres;
    type Conn<'a> = PoolConnection<Postgres>;

    async fn reader(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.pool.acquire().await.map_err(store_error)
    }

    /// The same pool: PostgreSQL runs writers side by side.
    async fn writer(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.reader().await
    }
}

// The ports: each method is the shared statement (`sql.rs`) on this store's connections.

#[async_trait]
impl SessionStore for PgStore {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        Sql::insert_session(&mut *self.writer().await?, session).await
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
impl PresenceStore for PgStore {
    /// One statement per batch (one round trip): the news bound as four arrays and
    /// unnested, so the statement's text, and its prepared plan, is the same for every batch.
    async fn record_presence(&self, news: &[Presence]) -> Result<(), StoreError> {
        for chunk in collapse(news).chunks(CHUNK) {
            let query = sqlx::query(UPSERT_PRESENCE_UNNEST.as_str())
                .bind(
                    chunk
                        .iter()
                        .map(|n| n.session_id.to_string())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    chunk
                        .iter()
                        .map(|n| n.identity.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(chunk.iter().map(|n| n.present).collect::<Vec<_>>())
                .bind(chunk.iter().map(|n| to_micros(n.at)).collect::<Vec<_>>());
            query
                .execute(&mut *self.writer().await?)
                .await
                .map_err(store_error)?;
        }
        Ok(())
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
impl LeaseStore for PgStore {
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
impl VoiceStateStore for PgStore {
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
impl TurnStore for PgStore {
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
impl StoreHealth for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Sql::ping(self).await
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        Some((
            self.pool.size(),
            u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        ))
    }
}

#[async_trait]
impl HistoryStore for PgStore {
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
impl EventStore for PgStore {
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
impl IdempotencyStore for PgStore {
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
