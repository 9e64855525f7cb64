//! The store ports in the SQL that SQLite and PostgreSQL both speak: every statement written
//! once, in plain functions generic over the sqlx database ([`Sql`]).
//!
//! A backend hands out its connections ([`Conns`]: `reader()` and `writer()`, each a
//! connection for one statement) and says the little in which the dialects differ
//! ([`Dialect`]); its port impls (`sqlite.rs`, `postgres.rs`) delegate here. SQLite allows one
//! writer at a time, so its writes queue on one writer connection instead of spinning in
//! SQLite's busy handler (`conns.rs`); on PostgreSQL both come from the pool.
//! Placeholders are `$1…` (SQLite reads them as named parameters numbered by first
//! appearance, so each query introduces them in order); dynamic queries use `QueryBuilder`,
//! which writes each backend's own placeholders.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::marker::PhantomData;
use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use june_domain::ports::{
    EventCursor, IdempotencyState, Presence, SessionFilter, StoreError, Transition, TurnGeneration,
    TurnStart, TurnSummary,
};
use june_domain::{HistoryEntry, InterruptedBy, RecordedEvent, Session, SessionStatus, TurnRecord};
use sqlx::query::Query;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, QueryBuilder, Type};
use uuid::Uuid;

use crate::rows::{
    EVENT_COLUMNS, EventRow, HistoryRow, IdempotencyRow, SESSION_COLUMNS, SessionRow, corrupt,
};
use crate::store_error;
use crate::time::to_micros;

/// Rows per multi-row statement: far below SQLite's 32 766 bound parameters.
pub(crate) const CHUNK: usize = 500;

/// What differs between SQLite and PostgreSQL inside the shared statements.
pub(crate) trait Dialect: Database {
    /// How many rows a statement changed (sqlx has no trait for it).
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// `QueryBuilder::build`, with the arguments' lifetime shortened to the statement's, as
    /// generic code needs it (`Database::Arguments<'q>` is invariant in `'q` there).
    fn build<'q>(qb: &'q mut QueryBuilder<'_, Self>) -> Query<'q, Self, Self::Arguments<'q>>;
}

/// A backend's connections: `reader()` for reads, `writer()` for writes, each held for one
/// statement (or one transaction).
pub(crate) trait Conns: Sync {
    /// The database they connect to.
    type Db: Dialect;
    /// A connection, given back when dropped.
    type Conn<'a>: DerefMut<Target = <Self::Db as Database>::Connection> + Send
    where
        Self: 'a;

    fn reader(&self) -> impl Future<Output = Result<Self::Conn<'_>, StoreError>> + Send;

    fn writer(&self) -> impl Future<Output = Result<Self::Conn<'_>, StoreError>> + Send;
}

/// The shared statements for the database `DB` (`Sql::<Sqlite>`, `Sql::<Postgres>`). The
/// bounds say what sqlx must provide for `DB`; both backends meet them.
pub(crate) struct Sql<DB>(PhantomData<DB>);

impl<DB> Sql<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'r> SessionRow: FromRow<'r, DB::Row>,
    for<'r> EventRow: FromRow<'r, DB::Row>,
    for<'r> HistoryRow: FromRow<'r, DB::Row>,
    for<'r> IdempotencyRow: FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (String, bool): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
    for<'r> (i64, String): FromRow<'r, DB::Row>,
    for<'r> (i64, i64, Option<i64>, Option<i64>): FromRow<'r, DB::Row>,
{
    // ---- statement shapes -------------------------------------------------------------

    /// Runs one statement; how many rows it changed.
    async fn execute<'q>(
        conn: &mut DB::Connection,
        query: Query<'q, DB, DB::Arguments<'q>>,
    ) -> Result<u64, StoreError> {
        let done = query.execute(conn).await.map_err(store_error)?;
        Ok(DB::rows_affected(&done))
    }

    /// Every row of one statement, each read as `R`.
    async fn fetch_all<'q, R>(
        conn: &mut DB::Connection,
        query: Query<'q, DB, DB::Arguments<'q>>,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> FromRow<'r, DB::Row>,
    {
        let rows = query.fetch_all(conn).await.map_err(store_error)?;
        rows.iter()
            .map(|row| R::from_row(row).map_err(store_error))
            .collect()
    }

    /// The first row of one statement, if any, read as `R`.
    async fn fetch_optional<'q, R>(
        conn: &mut DB::Connection,
        query: Query<'q, DB, DB::Arguments<'q>>,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'r> FromRow<'r, DB::Row>,
    {
        let row = query.fetch_optional(conn).await.map_err(store_error)?;
        row.as_ref()
            .map(|row| R::from_row(row).map_err(store_error))
            .transpose()
    }

    /// `SELECT <the session columns> FROM sessions WHERE <condition>`: the start of every
    /// session read, finished by the caller and run by [`Self::fetch_sessions`].
    fn select_sessions<'a>(condition: &str) -> QueryBuilder<'a, DB> {
        QueryBuilder::new(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE {condition}"
        ))
    }

    /// Every session read: the rows of a [`Self::select_sessions`] query, as sessions.
    async fn fetch_sessions(
        conn: &mut DB::Connection,
        mut query: QueryBuilder<'_, DB>,
    ) -> Result<Vec<Session>, StoreError> {
        let rows: Vec<SessionRow> = Self::fetch_all(conn, DB::build(&mut query)).await?;
        rows.into_iter().map(Session::try_from).collect()
    }

    /// Stores sessions with one INSERT, answering for each: a session that breaks a
    /// uniqueness rule (its id, or a live session's room name) is skipped and answered with a
    /// conflict; RETURNING names the ones stored. The values are bound in
    /// [`SESSION_COLUMNS`] order (`rows.rs`).
    pub(crate) async fn insert_sessions(
        conn: &mut DB::Connection,
        sessions: &[Session],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut qb = QueryBuilder::<DB>::new(format!("INSERT INTO sessions ({SESSION_COLUMNS}) "));
        qb.push_values(sessions, |mut row, s| {
            row.push_bind(s.id.to_string())
                .push_bind(s.user_id.clone())
                .push_bind(s.room_name.clone())
                .push_bind(s.livekit_room_sid.clone())
                .push_bind(s.status.as_str())
                .push_bind(s.language.clone())
                .push_bind(serde_json::Value::Object(s.metadata.clone()).to_string())
                .push_bind(s.voice)
                .push_bind(to_micros(s.created_at))
                .push_bind(to_micros(s.expires_at))
                .push_bind(to_micros(s.updated_at))
                .push_bind(s.ended_at.map(to_micros))
                .push_bind(i64::from(s.participant_count))
                .push_bind(s.last_activity_at.map(to_micros))
                .push_bind(s.kind.as_str());
        });
        qb.push(" ON CONFLICT DO NOTHING RETURNING id");
        let rows: Vec<(String,)> = Self::fetch_all(conn, DB::build(&mut qb)).await?;
        let stored: HashSet<String> = rows.into_iter().map(|(id,)| id).collect();
        Ok(sessions
            .iter()
            .map(|s| {
                if stored.contains(&s.id.to_string()) {
                    Ok(())
                } else {
                    Err(StoreError::Conflict(format!(
                        "session {} or a live session of room {} exists",
                        s.id, s.room_name
                    )))
                }
            })
            .collect())
    }

    /// [`Self::insert_sessions`] for one session.
    pub(crate) async fn insert_session(
        conn: &mut DB::Connection,
        session: &Session,
    ) -> Result<(), StoreError> {
        Self::insert_sessions(conn, std::slice::from_ref(session))
            .await?
            .pop()
            .unwrap_or(Ok(()))
    }

    /// `(?, ?, …)` binding each of `items`.
    fn push_list(qb: &mut QueryBuilder<'_, DB>, items: &[String]) {
        qb.push("(");
        let mut list = qb.separated(", ");
        for item in items {
            list.push_bind(item.clone());
        }
        qb.push(")");
    }

    /// ` AND (created_at < $at OR (created_at = $at AND id < $id))`: keyset pagination,
    /// newest first, for sessions and events alike.
    fn push_before(qb: &mut QueryBuilder<'_, DB>, created_at: DateTime<Utc>, id: String) {
        let at = to_micros(created_at);
        qb.push(" AND (created_at < ")
            .push_bind(at)
            .push(" OR (created_at = ")
            .push_bind(at)
            .push(" AND id < ")
            .push_bind(id)
            .push("))");
    }

    /// Presence news, one row per identity (see [`collapse`]), as one multi-row upsert:
    /// newer-or-equal news wins, older is ignored. The triggers of migration 0007 move the
    /// session's count by each row's change.
    fn push_upserts(qb: &mut QueryBuilder<'_, DB>, news: &[&Presence]) {
        qb.push(INSERT_PRESENCE);
        qb.push_values(news, |mut row, n| {
            row.push_bind(n.session_id.to_string())
                .push_bind(n.identity.clone())
                .push_bind(n.present)
                .push_bind(to_micros(n.at));
        });
        qb.push(UPSERT_PRESENCE);
    }

    // ---- SessionStore (`insert` is the backend's: SQLite commits in groups) -------------

    pub(crate) async fn get(store: &impl Conns<Db = DB>, id: Uuid) -> Result<Session, StoreError> {
        let mut qb = Self::select_sessions("id = ");
        qb.push_bind(id.to_string());
        Self::fetch_sessions(&mut *store.reader().await?, qb)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    pub(crate) async fn find_live_by_room(
        store: &impl Conns<Db = DB>,
        room_name: &str,
    ) -> Result<Option<Session>, StoreError> {
        let mut qb = Self::select_sessions("room_name = ");
        qb.push_bind(room_name)
            .push(" AND status IN ('created', 'active')");
        Ok(Self::fetch_sessions(&mut *store.reader().await?, qb)
            .await?
            .pop())
    }

    pub(crate) async fn list_live(
        store: &impl Conns<Db = DB>,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError> {
        let mut qb = Self::select_sessions(
            "status IN ('created', 'active') ORDER BY created_at ASC, id ASC LIMIT ",
        );
        qb.push_bind(i64::from(limit));
        Self::fetch_sessions(&mut *store.reader().await?, qb).await
    }

    pub(crate) async fn find_by_room_sids(
        store: &impl Conns<Db = DB>,
        room_sids: &[String],
    ) -> Result<Vec<Session>, StoreError> {
        let mut found = Vec::new();
        for sids in room_sids.chunks(CHUNK) {
            let mut qb = Self::select_sessions("livekit_room_sid IN ");
            Self::push_list(&mut qb, sids);
            // Oldest first, so a caller keying by sid keeps the newest.
            qb.push(" ORDER BY created_at");
            found.extend(Self::fetch_sessions(&mut *store.reader().await?, qb).await?);
        }
        Ok(found)
    }

    pub(crate) async fn list_sessions(
        store: &impl Conns<Db = DB>,
        f: &SessionFilter,
    ) -> Result<Vec<Session>, StoreError> {
        let mut qb = Self::select_sessions("1 = 1");
        if let Some(user) = &f.user_id {
            qb.push(" AND user_id = ").push_bind(user.clone());
        }
        if let Some(status) = f.status {
            qb.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(c) = f.after {
            Self::push_before(&mut qb, c.created_at, c.id.to_string());
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(f.limit));
        Self::fetch_sessions(&mut *store.reader().await?, qb).await
    }

    pub(crate) async fn advance_status(
        store: &impl Conns<Db = DB>,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Transition, StoreError> {
        // One UPDATE guarded by the allowed predecessors: of concurrent writers (webhooks,
        // replicas, the reaper) exactly one moves the row, and never back.
        let from: Vec<&str> = SessionStatus::ALL
            .into_iter()
            .filter(|s| s.can_become(to))
            .map(|s| s.as_str())
            .collect();
        let mut changed = false;
        if !from.is_empty() {
            let mut qb = QueryBuilder::<DB>::new("UPDATE sessions SET status = ");
            qb.push_bind(to.as_str())
                .push(", updated_at = ")
                .push_bind(to_micros(at));
            if !to.is_live() {
                qb.push(", ended_at = ").push_bind(to_micros(at));
            }
            qb.push(" WHERE id = ").push_bind(id.to_string());
            qb.push(" AND status IN (");
            let mut list = qb.separated(", ");
            for status in from {
                list.push_bind(status);
            }
            qb.push(")");
            changed = Self::execute(&mut *store.writer().await?, DB::build(&mut qb)).await? == 1;
        }
        Ok(Transition {
            session: Self::get(store, id).await?,
            changed,
        })
    }

    // ---- PresenceStore -------------------------------------------------------------------

    pub(crate) async fn record_presence(
        store: &impl Conns<Db = DB>,
        news: &[Presence],
    ) -> Result<(), StoreError> {
        // One statement per chunk of identities: atomic by itself, and no recount: the
        // triggers adjust each session by the rows that changed.
        for chunk in collapse(news).chunks(CHUNK) {
            let mut qb = QueryBuilder::<DB>::new("");
            Self::push_upserts(&mut qb, chunk);
            Self::execute(&mut *store.writer().await?, DB::build(&mut qb)).await?;
        }
        Ok(())
    }

    pub(crate) async fn reconcile(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
        listed: &[String],
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let id = session_id.to_string();
        let mut writer = store.writer().await?;
        let mut tx = sqlx::Connection::begin(&mut *writer)
            .await
            .map_err(store_error)?;
        let rows: Vec<(String, bool)> = Self::fetch_all(
            &mut tx,
            sqlx::query("SELECT identity, present FROM session_participants WHERE session_id = $1")
                .bind(id.clone()),
        )
        .await?;
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let repairs: Vec<Presence> = rows
            .into_iter()
            .filter(|(who, here)| *here != listed.contains(who.as_str()))
            .map(|(identity, here)| Presence {
                session_id,
                identity,
                present: !here,
                at,
            })
            .collect();
        for chunk in collapse(&repairs).chunks(CHUNK) {
            let mut qb = QueryBuilder::<DB>::new("");
            Self::push_upserts(&mut qb, chunk);
            Self::execute(&mut tx, DB::build(&mut qb)).await?;
        }
        // Lock the session row before counting: on PostgreSQL the count then reads a fresh
        // snapshot, and a concurrent writer's trigger waits for us and adds its change after
        // (SQLite has one writer anyway). Rows are locked before the session, as webhooks do.
        let lock =
            sqlx::query("UPDATE sessions SET participant_count = participant_count WHERE id = $1")
                .bind(id.clone());
        if Self::execute(&mut tx, lock).await? == 0 {
            return Err(StoreError::NotFound);
        }
        let recount = sqlx::query(
            "UPDATE sessions SET \
               participant_count = (SELECT COUNT(*) FROM session_participants \
                                    WHERE session_id = $1 AND present), \
               last_activity_at = (SELECT MAX(last_event_at) FROM session_participants \
                                   WHERE session_id = $1) \
             WHERE id = $1 RETURNING participant_count",
        )
        .bind(id);
        let (count,): (i64,) = Self::fetch_optional(&mut tx, recount)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(store_error)?;
        Ok(u32::try_from(count).unwrap_or_default())
    }

    // ---- LeaseStore ----------------------------------------------------------------------

    pub(crate) async fn try_lease(
        store: &impl Conns<Db = DB>,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(to_micros(until))
        .bind(to_micros(now));
        Ok(Self::execute(&mut *store.writer().await?, query).await? == 1)
    }

    // ---- VoiceStateStore -----------------------------------------------------------------

    pub(crate) async fn claim_dispatch(
        store: &impl Conns<Db = DB>,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE sessions SET dispatched_at = $1 WHERE id = $2 AND dispatched_at IS NULL",
        )
        .bind(to_micros(at))
        .bind(id.to_string());
        Ok(Self::execute(&mut *store.writer().await?, query).await? == 1)
    }

    pub(crate) async fn release_dispatch(
        store: &impl Conns<Db = DB>,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE sessions SET dispatched_at = NULL WHERE id = $1")
            .bind(id.to_string());
        Self::execute(&mut *store.writer().await?, query).await?;
        Ok(())
    }

    pub(crate) async fn next_turn(
        store: &impl Conns<Db = DB>,
        id: Uuid,
    ) -> Result<u64, StoreError> {
        let query = sqlx::query(
            "UPDATE sessions SET turn_generation = turn_generation + 1, \
             turn_bumped_by = 'voice_onset' WHERE id = $1 RETURNING turn_generation",
        )
        .bind(id.to_string());
        let (n,): (i64,) = Self::fetch_optional(&mut *store.writer().await?, query)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// The generation and the turn number in one UPDATE: no extra round trip on the voice
    /// path.
    pub(crate) async fn start_turn(
        store: &impl Conns<Db = DB>,
        id: Uuid,
    ) -> Result<TurnStart, StoreError> {
        let query = sqlx::query(
            "UPDATE sessions SET turn_generation = turn_generation + 1, \
             turn_count = turn_count + 1, turn_bumped_by = 'final' WHERE id = $1 \
             RETURNING turn_generation, turn_count",
        )
        .bind(id.to_string());
        let (generation, turn): (i64, i64) =
            Self::fetch_optional(&mut *store.writer().await?, query)
                .await?
                .ok_or(StoreError::NotFound)?;
        Ok(TurnStart {
            generation: u64::try_from(generation).unwrap_or_default(),
            turn: u64::try_from(turn).unwrap_or_default(),
        })
    }

    pub(crate) async fn current_turn(
        store: &impl Conns<Db = DB>,
        id: Uuid,
    ) -> Result<TurnGeneration, StoreError> {
        let query =
            sqlx::query("SELECT turn_generation, turn_bumped_by FROM sessions WHERE id = $1")
                .bind(id.to_string());
        let (n, by): (i64, String) = Self::fetch_optional(&mut *store.reader().await?, query)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(TurnGeneration {
            generation: u64::try_from(n).unwrap_or_default(),
            bumped_by: if by == "voice_onset" {
                InterruptedBy::VoiceOnset
            } else {
                InterruptedBy::NewerFinal
            },
        })
    }

    // ---- TurnStore -----------------------------------------------------------------------

    /// Upserts the record if its session exists (none changed: `NotFound`).
    pub(crate) async fn record_turn(
        store: &impl Conns<Db = DB>,
        record: &TurnRecord,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(record)
            .map_err(|e| StoreError::Invalid(format!("unwritable turn record: {e}")))?;
        let query = sqlx::query(
            "INSERT INTO turns (session_id, turn, first_tts_request, total_tokens, record) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $1) \
             ON CONFLICT (session_id, turn) DO UPDATE SET \
               first_tts_request = excluded.first_tts_request, \
               total_tokens = excluded.total_tokens, record = excluded.record",
        )
        .bind(record.session_id.to_string())
        .bind(to_i64(record.turn))
        .bind(record.timings_ms.first_tts_request.map(to_i64))
        .bind(to_i64(record.usage.total_tokens))
        .bind(json);
        match Self::execute(&mut *store.writer().await?, query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Turn records of one session by `sql`, which binds the session (`$1`), a turn number
    /// (`$2`) and a limit (`$3`).
    async fn fetch_turns(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
        sql: &'static str,
        bound: u64,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        let query = sqlx::query(sql)
            .bind(session_id.to_string())
            .bind(to_i64(bound))
            .bind(i64::from(limit));
        let rows: Vec<(String,)> = Self::fetch_all(&mut *store.reader().await?, query).await?;
        rows.into_iter()
            .map(|(json,)| {
                let mut record: TurnRecord = serde_json::from_str(&json)
                    .map_err(|_| corrupt("turn record", &session_id.to_string()))?;
                record.session_id = session_id;
                Ok(record)
            })
            .collect()
    }

    pub(crate) async fn list_turns(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        let before = before.unwrap_or(i64::MAX as u64);
        let sql = "SELECT record FROM turns WHERE session_id = $1 AND turn < $2 \
                   ORDER BY turn DESC LIMIT $3";
        Self::fetch_turns(store, session_id, sql, before, limit).await
    }

    pub(crate) async fn turns_after(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
        after: u64,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        let sql = "SELECT record FROM turns WHERE session_id = $1 AND turn > $2 \
                   ORDER BY turn ASC LIMIT $3";
        Self::fetch_turns(store, session_id, sql, after, limit).await
    }

    pub(crate) async fn get_turn(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
        turn: u64,
    ) -> Result<Option<TurnRecord>, StoreError> {
        let sql = "SELECT record FROM turns WHERE session_id = $1 AND turn = $2 LIMIT $3";
        Ok(Self::fetch_turns(store, session_id, sql, turn, 1)
            .await?
            .pop())
    }

    pub(crate) async fn allocate_turn(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
    ) -> Result<u64, StoreError> {
        let query = sqlx::query(
            "UPDATE sessions SET turn_count = turn_count + 1 WHERE id = $1 RETURNING turn_count",
        )
        .bind(session_id.to_string());
        let (n,): (i64,) = Self::fetch_optional(&mut *store.writer().await?, query)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// One statement: the count, the tokens, and the nearest-rank p50/p95 of the first-TTS
    /// latency (rank = ceil(p·n/100), as `june_domain::memory::nearest_rank`).
    pub(crate) async fn turn_summary(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
    ) -> Result<TurnSummary, StoreError> {
        let query = sqlx::query(
            "WITH t AS (SELECT first_tts_request AS f, total_tokens FROM turns \
                        WHERE session_id = $1), \
                  r AS (SELECT f, ROW_NUMBER() OVER (ORDER BY f) AS rn, COUNT(*) OVER () AS n \
                        FROM t WHERE f IS NOT NULL) \
             SELECT (SELECT COUNT(*) FROM t), \
                    (SELECT CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) FROM t), \
                    (SELECT f FROM r WHERE rn = (50 * n + 99) / 100), \
                    (SELECT f FROM r WHERE rn = (95 * n + 99) / 100)",
        )
        .bind(session_id.to_string());
        let (turns, tokens, p50, p95): (i64, i64, Option<i64>, Option<i64>) =
            Self::fetch_optional(&mut *store.reader().await?, query)
                .await?
                .unwrap_or_default();
        let ms = |v: i64| u64::try_from(v).unwrap_or_default();
        Ok(TurnSummary {
            turns: ms(turns),
            first_tts_p50_ms: p50.map(ms),
            first_tts_p95_ms: p95.map(ms),
            total_tokens: ms(tokens),
        })
    }

    pub(crate) async fn note_final(
        store: &impl Conns<Db = DB>,
        id: Uuid,
        text: &str,
        at: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE sessions SET last_final_text = $1, last_final_at = $2 WHERE id = $3 \
             AND NOT (last_final_text IS NOT NULL AND last_final_text = $1 \
                      AND last_final_at >= $4)",
        )
        .bind(text)
        .bind(to_micros(at))
        .bind(id.to_string())
        .bind(to_micros(at - window));
        Ok(Self::execute(&mut *store.writer().await?, query).await? == 1)
    }

    // ---- StoreHealth (`pool_stats` is the backend's) --------------------------------------

    pub(crate) async fn ping(store: &impl Conns<Db = DB>) -> Result<(), StoreError> {
        Self::execute(&mut *store.reader().await?, sqlx::query("SELECT 1")).await?;
        Ok(())
    }

    // ---- HistoryStore --------------------------------------------------------------------

    pub(crate) async fn append(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
        e: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO history (session_id, role, content, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(session_id.to_string())
        .bind(e.role.as_str())
        .bind(e.content.as_str())
        .bind(to_micros(e.timestamp));
        Self::execute(&mut *store.writer().await?, query).await?;
        Ok(())
    }

    pub(crate) async fn recent(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let query = sqlx::query(
            "SELECT role, content, created_at FROM \
               (SELECT seq, role, content, created_at FROM history WHERE session_id = $1 \
                ORDER BY seq DESC LIMIT $2) AS newest \
             ORDER BY seq ASC",
        )
        .bind(session_id.to_string())
        .bind(i64::from(limit));
        let rows: Vec<HistoryRow> = Self::fetch_all(&mut *store.reader().await?, query).await?;
        rows.into_iter().map(HistoryEntry::try_from).collect()
    }

    pub(crate) async fn clear(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
    ) -> Result<(), StoreError> {
        let query =
            sqlx::query("DELETE FROM history WHERE session_id = $1").bind(session_id.to_string());
        Self::execute(&mut *store.writer().await?, query).await?;
        Ok(())
    }

    // ---- EventStore ----------------------------------------------------------------------

    pub(crate) async fn seen(
        store: &impl Conns<Db = DB>,
        event_ids: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let mut seen = HashSet::new();
        for ids in event_ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::<DB>::new("SELECT id FROM webhook_events WHERE id IN ");
            Self::push_list(&mut qb, ids);
            let rows: Vec<(String,)> =
                Self::fetch_all(&mut *store.reader().await?, DB::build(&mut qb)).await?;
            seen.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(seen)
    }

    pub(crate) async fn record(
        store: &impl Conns<Db = DB>,
        events: &[RecordedEvent],
    ) -> Result<Vec<bool>, StoreError> {
        // One multi-row INSERT; RETURNING names the rows that were new.
        let mut new = HashSet::new();
        for chunk in events.chunks(CHUNK / 10) {
            let mut qb =
                QueryBuilder::<DB>::new(format!("INSERT INTO webhook_events ({EVENT_COLUMNS}) "));
            qb.push_values(chunk, |mut row, e| {
                row.push_bind(e.id.clone())
                    .push_bind(e.event.clone())
                    .push_bind(e.session_id.map(|id| id.to_string()))
                    .push_bind(e.room_name.clone())
                    .push_bind(e.participant.clone())
                    .push_bind(e.track_sid.clone())
                    .push_bind(to_micros(e.created_at))
                    .push_bind(to_micros(e.received_at))
                    .push_bind(e.payload.to_string());
            });
            qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            let rows: Vec<(String,)> =
                Self::fetch_all(&mut *store.writer().await?, DB::build(&mut qb)).await?;
            new.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(events.iter().map(|e| new.contains(&e.id)).collect())
    }

    pub(crate) async fn list_events(
        store: &impl Conns<Db = DB>,
        session_id: Uuid,
        limit: u32,
        after: Option<EventCursor>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut qb = QueryBuilder::<DB>::new(format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE session_id = "
        ));
        qb.push_bind(session_id.to_string());
        if let Some(c) = after {
            Self::push_before(&mut qb, c.created_at, c.id);
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<EventRow> =
            Self::fetch_all(&mut *store.reader().await?, DB::build(&mut qb)).await?;
        rows.into_iter().map(RecordedEvent::try_from).collect()
    }

    // ---- IdempotencyStore ----------------------------------------------------------------

    pub(crate) async fn begin(
        store: &impl Conns<Db = DB>,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> Result<IdempotencyState, StoreError> {
        let expired =
            sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND created_at < $2")
                .bind(key)
                .bind(to_micros(not_before));
        Self::execute(&mut *store.writer().await?, expired).await?;
        // The primary key settles races: exactly one request claims the key.
        let claim = sqlx::query(
            "INSERT INTO idempotency_keys (key, fingerprint, response, created_at) \
             VALUES ($1, $2, NULL, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(fingerprint)
        .bind(to_micros(now));
        if Self::execute(&mut *store.writer().await?, claim).await? == 1 {
            return Ok(IdempotencyState::Started);
        }
        let held = sqlx::query("SELECT fingerprint, response FROM idempotency_keys WHERE key = $1")
            .bind(key);
        let row: Option<IdempotencyRow> =
            Self::fetch_optional(&mut *store.writer().await?, held).await?;
        Ok(match row {
            // Released between our insert and select: the caller asks again.
            None => IdempotencyState::InProgress,
            Some(r) if r.fingerprint != fingerprint => IdempotencyState::Mismatch,
            Some(r) => match r.response {
                None => IdempotencyState::InProgress,
                Some(text) => IdempotencyState::Completed(
                    serde_json::from_str(&text).map_err(|_| corrupt("idempotent response", key))?,
                ),
            },
        })
    }

    pub(crate) async fn complete(
        store: &impl Conns<Db = DB>,
        key: &str,
        response: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let query = sqlx::query("UPDATE idempotency_keys SET response = $1 WHERE key = $2")
            .bind(response.to_string())
            .bind(key);
        Self::execute(&mut *store.writer().await?, query).await?;
        Ok(())
    }

    pub(crate) async fn abandon(store: &impl Conns<Db = DB>, key: &str) -> Result<(), StoreError> {
        let query = sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND response IS NULL")
            .bind(key);
        Self::execute(&mut *store.writer().await?, query).await?;
        Ok(())
    }
}

/// A count or number as the database's BIGINT (saturating: none comes near).
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The head of every presence upsert (its rows follow).
pub(crate) const INSERT_PRESENCE: &str =
    "INSERT INTO session_participants (session_id, identity, present, last_event_at) ";

/// The tail of every presence upsert: newer-or-equal news wins, older changes nothing.
pub(crate) const UPSERT_PRESENCE: &str = " ON CONFLICT (session_id, identity) DO UPDATE \
     SET present = excluded.present, last_event_at = excluded.last_event_at \
     WHERE excluded.last_event_at >= session_participants.last_event_at";

/// The news that wins per (session, identity): the latest `at`, of equal ones the later in
/// the slice (what applying them in order would leave). An upsert cannot touch one row twice
/// in a statement, so a batch writes only these; sorted by key, so two replicas' batches lock
/// rows in the same order and cannot deadlock.
pub(crate) fn collapse(news: &[Presence]) -> Vec<&Presence> {
    let mut winners: BTreeMap<(Uuid, &str), &Presence> = BTreeMap::new();
    for n in news {
        winners
            .entry((n.session_id, n.identity.as_str()))
            .and_modify(|w| {
                if n.at >= w.at {
                    *w = n;
                }
            })
            .or_insert(n);
    }
    winners.into_values().collect()
}
