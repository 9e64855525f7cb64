//! The store ports in SQL that SQLite and PostgreSQL both speak, written once.
//!
//! `sql_store!(Store, Db, one_trip = bool)` implements every port for a type with
//! `reader()` and `writer()` (each a connection for one statement) and `connection_stats()`.
//! SQLite allows one writer at a time, so its writes queue on one writer connection instead
//! of spinning in SQLite's busy handler (`conns.rs`); on PostgreSQL both come from the pool.
//! Placeholders are `$1…` (SQLite reads them as named parameters numbered by first
//! appearance, so each query introduces them in order); dynamic queries use `QueryBuilder`,
//! which writes each backend's own placeholders. Only connecting and migrating differ.

/// Rows per multi-row statement: far below SQLite's 32 766 bound parameters.
pub(crate) const CHUNK: usize = 500;

macro_rules! sql_store {
    ($store:ty, $db:ty, one_trip = $one_trip:expr) => {
        impl $store {
            /// Presence news about one identity: newer-or-equal news wins, older is ignored.
            fn push_upsert(qb: &mut sqlx::QueryBuilder<'_, $db>, n: &june_domain::ports::Presence) {
                qb.push(
                    "INSERT INTO session_participants (session_id, identity, present, last_event_at) VALUES (",
                )
                .push_bind(n.session_id.to_string())
                .push(", ")
                .push_bind(n.identity.clone())
                .push(", ")
                .push_bind(n.present)
                .push(", ")
                .push_bind($crate::time::to_micros(n.at))
                .push(
                    ") ON CONFLICT (session_id, identity) DO UPDATE \
                     SET present = excluded.present, last_event_at = excluded.last_event_at \
                     WHERE excluded.last_event_at >= session_participants.last_event_at",
                );
            }

            /// Stores sessions with one INSERT, answering for each: a session that breaks a
            /// uniqueness rule (its id, or a live session's room name) is skipped and answered
            /// with a conflict; RETURNING names the ones stored.
            async fn insert_now(
                conn: &mut <$db as sqlx::Database>::Connection,
                sessions: &[june_domain::Session],
            ) -> Result<Vec<Result<(), june_domain::ports::StoreError>>, june_domain::ports::StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO sessions ({}) ",
                    $crate::rows::SESSION_COLUMNS
                ));
                qb.push_values(sessions, |mut row, s| {
                    row.push_bind(s.id.to_string())
                        .push_bind(s.user_id.clone())
                        .push_bind(s.room_name.clone())
                        .push_bind(s.livekit_room_sid.clone())
                        .push_bind(s.status.as_str())
                        .push_bind(s.language.clone())
                        .push_bind(serde_json::Value::Object(s.metadata.clone()).to_string())
                        .push_bind(s.voice)
                        .push_bind($crate::time::to_micros(s.created_at))
                        .push_bind($crate::time::to_micros(s.expires_at))
                        .push_bind($crate::time::to_micros(s.updated_at))
                        .push_bind(s.ended_at.map($crate::time::to_micros))
                        .push_bind(i64::from(s.participant_count))
                        .push_bind(s.last_activity_at.map($crate::time::to_micros))
                        .push_bind(s.kind.as_str());
                });
                qb.push(" ON CONFLICT DO NOTHING RETURNING id");
                let rows: Vec<(String,)> = qb
                    .build_query_as()
                    .fetch_all(&mut *conn)
                    .await
                    .map_err($crate::store_error)?;
                let stored: std::collections::HashSet<String> =
                    rows.into_iter().map(|(id,)| id).collect();
                Ok(sessions
                    .iter()
                    .map(|s| {
                        if stored.contains(&s.id.to_string()) {
                            Ok(())
                        } else {
                            Err(june_domain::ports::StoreError::Conflict(format!(
                                "session {} or a live session of room {} exists",
                                s.id, s.room_name
                            )))
                        }
                    })
                    .collect())
            }

            /// `(?, ?, …)` binding each of `items`.
            fn push_list(qb: &mut sqlx::QueryBuilder<'_, $db>, items: &[String]) {
                qb.push("(");
                let mut list = qb.separated(", ");
                for item in items {
                    list.push_bind(item.clone());
                }
                qb.push(")");
            }

            /// [`Self::insert_now`] for one session.
            async fn insert_one(
                conn: &mut <$db as sqlx::Database>::Connection,
                session: &june_domain::Session,
            ) -> Result<(), june_domain::ports::StoreError> {
                Self::insert_now(conn, std::slice::from_ref(session))
                    .await?
                    .pop()
                    .unwrap_or(Ok(()))
            }

            /// The session's head count and last activity, recomputed from its participants.
            fn push_recount(qb: &mut sqlx::QueryBuilder<'_, $db>, id: uuid::Uuid) {
                let id = id.to_string();
                qb.push(
                    "UPDATE sessions SET participant_count = (SELECT COUNT(*) \
                     FROM session_participants WHERE present AND session_id = ",
                )
                .push_bind(id.clone())
                .push(
                    "), last_activity_at = (SELECT MAX(last_event_at) \
                     FROM session_participants WHERE session_id = ",
                )
                .push_bind(id.clone())
                .push(") WHERE id = ")
                .push_bind(id);
            }
        }

        #[async_trait::async_trait]
        impl june_domain::ports::SessionStore for $store {
            async fn insert(&self, s: &june_domain::Session) -> Result<(), june_domain::ports::StoreError> {
                self.insert_session(s).await
            }

            async fn get(&self, id: uuid::Uuid) -> Result<june_domain::Session, june_domain::ports::StoreError> {
                let sql = format!("SELECT {} FROM sessions WHERE id = $1", $crate::rows::SESSION_COLUMNS);
                let row: $crate::rows::SessionRow = sqlx::query_as(&sql)
                    .bind(id.to_string())
                    .fetch_one(&mut *self.reader().await?)
                    .await
                    .map_err($crate::store_error)?;
                row.try_into()
            }

            async fn find_live_by_room(
                &self,
                room_name: &str,
            ) -> Result<Option<june_domain::Session>, june_domain::ports::StoreError> {
                let sql = format!(
                    "SELECT {} FROM sessions WHERE room_name = $1 AND status IN ('created', 'active')",
                    $crate::rows::SESSION_COLUMNS
                );
                let row: Option<$crate::rows::SessionRow> = sqlx::query_as(&sql)
                    .bind(room_name)
                    .fetch_optional(&mut *self.reader().await?)
                    .await
                    .map_err($crate::store_error)?;
                row.map(june_domain::Session::try_from).transpose()
            }

            async fn list_live(&self, limit: u32) -> Result<Vec<june_domain::Session>, june_domain::ports::StoreError> {
                let sql = format!(
                    "SELECT {} FROM sessions WHERE status IN ('created', 'active') \
                     ORDER BY created_at ASC, id ASC LIMIT $1",
                    $crate::rows::SESSION_COLUMNS
                );
                let rows: Vec<$crate::rows::SessionRow> = sqlx::query_as(&sql)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *self.reader().await?)
                    .await
                    .map_err($crate::store_error)?;
                rows.into_iter().map(june_domain::Session::try_from).collect()
            }

            async fn find_by_room_sids(
                &self,
                room_sids: &[String],
            ) -> Result<Vec<june_domain::Session>, june_domain::ports::StoreError> {
                let mut found = Vec::new();
                for sids in room_sids.chunks($crate::sql::CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM sessions WHERE livekit_room_sid IN ",
                        $crate::rows::SESSION_COLUMNS
                    ));
                    Self::push_list(&mut qb, sids);
                    // Oldest first, so a caller keying by sid keeps the newest.
                    qb.push(" ORDER BY created_at");
                    let rows: Vec<$crate::rows::SessionRow> = qb
                        .build_query_as()
                        .fetch_all(&mut *self.reader().await?)
                        .await
                        .map_err($crate::store_error)?;
                    for row in rows {
                        found.push(june_domain::Session::try_from(row)?);
                    }
                }
                Ok(found)
            }

            async fn list(
                &self,
                f: &june_domain::ports::SessionFilter,
            ) -> Result<Vec<june_domain::Session>, june_domain::ports::StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM sessions WHERE 1 = 1",
                    $crate::rows::SESSION_COLUMNS
                ));
                if let Some(user) = &f.user_id {
                    qb.push(" AND user_id = ").push_bind(user.clone());
                }
                if let Some(status) = f.status {
                    qb.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(c) = f.after {
                    let at = $crate::time::to_micros(c.created_at);
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
                let rows: Vec<$crate::rows::SessionRow> = qb
                    .build_query_as()
                    .fetch_all(&mut *self.reader().await?)
                    .await
                    .map_err($crate::store_error)?;
                rows.into_iter().map(june_domain::Session::try_from).collect()
            }

            async fn advance_status(
                &self,
                id: uuid::Uuid,
                to: june_domain::SessionStatus,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<june_domain::ports::Transition, june_domain::ports::StoreError> {
                // One UPDATE guarded by the allowed predecessors: of concurrent writers
                // (webhooks, replicas, the reaper) exactly one moves the row, and never back.
                let from: Vec<&str> = june_domain::SessionStatus::ALL
                    .into_iter()
                    .filter(|s| s.can_become(to))
                    .map(|s| s.as_str())
                    .collect();
                let mut changed = false;
                if !from.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE sessions SET status = ");
                    qb.push_bind(to.as_str())
                        .push(", updated_at = ")
                        .push_bind($crate::time::to_micros(at));
                    if !to.is_live() {
                        qb.push(", ended_at = ").push_bind($crate::time::to_micros(at));
                    }
                    qb.push(" WHERE id = ").push_bind(id.to_string());
                    qb.push(" AND status IN (");
                    let mut list = qb.separated(", ");
                    for status in from {
                        list.push_bind(status);
                    }
                    qb.push(")");
                    changed = qb
                        .build()
                        .execute(&mut *self.writer().await?)
                        .await
                        .map_err($crate::store_error)?
                        .rows_affected()
                        == 1;
                }
                Ok(june_domain::ports::Transition {
                    session: june_domain::ports::SessionStore::get(self, id).await?,
                    changed,
                })
            }

        }

        #[async_trait::async_trait]
        impl june_domain::ports::PresenceStore for $store {
            async fn record_presence(
                &self,
                news: &[june_domain::ports::Presence],
            ) -> Result<(), june_domain::ports::StoreError> {
                // The upserts, then one recount per session from its rows, all in one
                // transaction (one commit). SQLite takes the batch as one multi-statement call
                // (one round trip to its connection thread); PostgreSQL cannot prepare several
                // statements as one, so it sends them one by one inside the transaction.
                for news in news.chunks($crate::sql::CHUNK) {
                    // Rows in key order, so two replicas' batches cannot deadlock; the sort is
                    // stable, so news about one identity keeps its order.
                    let mut upserts: Vec<&june_domain::ports::Presence> = news.iter().collect();
                    upserts.sort_by_key(|n| (n.session_id, n.identity.as_str()));
                    let recounts: Vec<uuid::Uuid> = news
                        .iter()
                        .map(|n| n.session_id)
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    // Statement `i`: the upserts, then one recount per session.
                    let push = |qb: &mut sqlx::QueryBuilder<'_, $db>, i: usize| {
                        if let Some(n) = upserts.get(i) {
                            Self::push_upsert(qb, n);
                        } else if let Some(id) = recounts.get(i - upserts.len()) {
                            Self::push_recount(qb, *id);
                        }
                    };
                    let statements = upserts.len() + recounts.len();
                    let mut writer = self.writer().await?;
                    if $one_trip {
                        let mut qb = sqlx::QueryBuilder::<$db>::new("BEGIN; ");
                        for i in 0..statements {
                            push(&mut qb, i);
                            qb.push("; ");
                        }
                        qb.push("COMMIT");
                        if let Err(e) = qb.build().execute(&mut *writer).await {
                            let _ = sqlx::query("ROLLBACK").execute(&mut *writer).await;
                            return Err($crate::store_error(e));
                        }
                    } else {
                        let mut tx = sqlx::Connection::begin(&mut *writer)
                            .await
                            .map_err($crate::store_error)?;
                        for i in 0..statements {
                            let mut qb = sqlx::QueryBuilder::<$db>::new("");
                            push(&mut qb, i);
                            qb.build()
                                .execute(&mut *tx)
                                .await
                                .map_err($crate::store_error)?;
                        }
                        tx.commit().await.map_err($crate::store_error)?;
                    }
                }
                Ok(())
            }

        }

        #[async_trait::async_trait]
        impl june_domain::ports::LeaseStore for $store {
            async fn try_lease(
                &self,
                name: &str,
                holder: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, june_domain::ports::StoreError> {
                let done = sqlx::query(
                    "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
                     WHERE leases.holder = excluded.holder OR leases.until < $4",
                )
                .bind(name)
                .bind(holder)
                .bind($crate::time::to_micros(until))
                .bind($crate::time::to_micros(now))
                .execute(&mut *self.writer().await?)
                .await
                .map_err($crate::store_error)?;
                Ok(done.rows_affected() == 1)
            }

        }

        #[async_trait::async_trait]
        impl june_domain::ports::VoiceStateStore for $store {
            async fn claim_dispatch(
                &self,
                id: uuid::Uuid,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, june_domain::ports::StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET dispatched_at = $1 WHERE id = $2 AND dispatched_at IS NULL",
                )
                .bind($crate::time::to_micros(at))
                .bind(id.to_string())
                .execute(&mut *self.writer().await?)
                .await
                .map_err($crate::store_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_dispatch(&self, id: uuid::Uuid) -> Result<(), june_domain::ports::StoreError> {
                sqlx::query("UPDATE sessions SET dispatched_at = NULL WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *self.writer().await?)
                    .await
                    .map_err($crate::store_error)?;
                Ok(())
            }

            async fn next_turn(&self, id: uuid::Uuid) -> Result<u64, june_domain::ports::StoreError> {
                let (n,): (i64,) = sqlx::query_as(
                    "UPDATE sessions SET turn_generation = turn_generation + 1 WHERE id = $1 \
                     RETURNING turn_generation",
                )
                .bind(id.to_string())
                .fetch_one(&mut *self.writer().await?)
                .await
                .map_err($crate::store_error)?;
                Ok(u64::try_from(n).unwrap_or_default())
            }

            async fn current_turn(&self, id: uuid::Uuid) -> Result<u64, june_domain::ports::StoreError> {
                let (n,): (i64,) = sqlx::query_as("SELECT turn_generation FROM sessions WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_one(&mut *self.reader().await?)
                    .await
                    .map_err($crate::store_error)?;
                Ok(u64::try_from(n).unwrap_or_default())
            }

            async fn note_final(
                &self,
                id: uuid::Uuid,
                text: &str,
                at: chrono::DateTime<chrono::Utc>,
                window: chrono::Duration,
            ) -> Result<bool, june_domain::ports::StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET last_final_text = $1, last_final_at = $2 WHERE id = $3 \
                     AND NOT (last_final_text IS NOT NULL AND last_final_text = $1 \
                              AND last_final_at >= $4)",
                )
                .bind(text)
                .bind($crate::time::to_micros(at))
                .bind(id.to_string())
                .bind($crate::time::to_micros(at - window))
                .execute(&mut *self.writer().await?)
                .await
                .map_err($crate::store_error)?;
                Ok(done.rows_affected() == 1)
            }

        }

        #[async_trait::async_trait]
        impl june_domain::ports::StoreHealth for $store {
            fn pool_stats(&self) -> Option<(u32, u32)> {
                Some(self.connection_stats())
            }

            async fn ping(&self) -> Result<(), june_domain::ports::StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&mut *self.reader().await?)
                    .await
                    .map_err($crate::store_error)?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl june_domain::ports::HistoryStore for $store {
            async fn append(
                &self,
                session_id: uuid::Uuid,
                e: &june_domain::HistoryEntry,
            ) -> Result<(), june_domain::ports::StoreError> {
                sqlx::query(
                    "INSERT INTO history (session_id, role, content, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(session_id.to_string())
                .bind(e.role.as_str())
                .bind(&e.content)
                .bind($crate::time::to_micros(e.timestamp))
                .execute(&mut *self.writer().await?)
                .await
                .map_err($crate::store_error)?;
                Ok(())
            }

            async fn recent(
                &self,
                session_id: uuid::Uuid,
                limit: u32,
            ) -> Result<Vec<june_domain::HistoryEntry>, june_domain::ports::StoreError> {
                let rows: Vec<$crate::rows::HistoryRow> = sqlx::query_as(
                    "SELECT role, content, created_at FROM \
                       (SELECT seq, role, content, created_at FROM history WHERE session_id = $1 \
                        ORDER BY seq DESC LIMIT $2) AS newest \
                     ORDER BY seq ASC",
                )
                .bind(session_id.to_string())
                .bind(i64::from(limit))
                .fetch_all(&mut *self.reader().await?)
                .await
                .map_err($crate::store_error)?;
                rows.into_iter()
                    .map(|r| {
                        Ok(june_domain::HistoryEntry {
                            role: june_domain::Role::parse(&r.role)
                                .ok_or_else(|| $crate::rows::corrupt("role", &r.role))?,
                            content: r.content,
                            timestamp: $crate::time::from_micros(r.created_at)?,
                        })
                    })
                    .collect()
            }

            async fn clear(&self, session_id: uuid::Uuid) -> Result<(), june_domain::ports::StoreError> {
                sqlx::query("DELETE FROM history WHERE session_id = $1")
                    .bind(session_id.to_string())
                    .execute(&mut *self.writer().await?)
                    .await
                    .map_err($crate::store_error)?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl june_domain::ports::EventStore for $store {
            async fn seen(
                &self,
                event_ids: &[String],
            ) -> Result<std::collections::HashSet<String>, june_domain::ports::StoreError> {
                let mut seen = std::collections::HashSet::new();
                for ids in event_ids.chunks($crate::sql::CHUNK) {
                    let mut qb =
                        sqlx::QueryBuilder::<$db>::new("SELECT id FROM webhook_events WHERE id IN ");
                    Self::push_list(&mut qb, ids);
                    let rows: Vec<(String,)> = qb
                        .build_query_as()
                        .fetch_all(&mut *self.reader().await?)
                        .await
                        .map_err($crate::store_error)?;
                    seen.extend(rows.into_iter().map(|(id,)| id));
                }
                Ok(seen)
            }

            async fn record(
                &self,
                events: &[june_domain::RecordedEvent],
            ) -> Result<Vec<bool>, june_domain::ports::StoreError> {
                // One multi-row INSERT; RETURNING names the rows that were new.
                let mut new = std::collections::HashSet::new();
                for chunk in events.chunks($crate::sql::CHUNK / 10) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO webhook_events (id, event, session_id, room_name, participant, \
                         track_sid, created_at, received_at, payload) ",
                    );
                    qb.push_values(chunk, |mut row, e| {
                        row.push_bind(e.id.clone())
                            .push_bind(e.event.clone())
                            .push_bind(e.session_id.map(|id| id.to_string()))
                            .push_bind(e.room_name.clone())
                            .push_bind(e.participant.clone())
                            .push_bind(e.track_sid.clone())
                            .push_bind($crate::time::to_micros(e.created_at))
                            .push_bind($crate::time::to_micros(e.received_at))
                            .push_bind(e.payload.to_string());
                    });
                    qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
                    let rows: Vec<(String,)> = qb
                        .build_query_as()
                        .fetch_all(&mut *self.writer().await?)
                        .await
                        .map_err($crate::store_error)?;
                    new.extend(rows.into_iter().map(|(id,)| id));
                }
                Ok(events.iter().map(|e| new.contains(&e.id)).collect())
            }

            async fn list(
                &self,
                session_id: uuid::Uuid,
                limit: u32,
                after: Option<june_domain::ports::EventCursor>,
            ) -> Result<Vec<june_domain::RecordedEvent>, june_domain::ports::StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM webhook_events WHERE session_id = ",
                    $crate::rows::EVENT_COLUMNS
                ));
                qb.push_bind(session_id.to_string());
                if let Some(c) = after {
                    let at = $crate::time::to_micros(c.created_at);
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
                let rows: Vec<$crate::rows::EventRow> = qb
                    .build_query_as()
                    .fetch_all(&mut *self.reader().await?)
                    .await
                    .map_err($crate::store_error)?;
                rows.into_iter().map(june_domain::RecordedEvent::try_from).collect()
            }
        }

        #[async_trait::async_trait]
        impl june_domain::ports::IdempotencyStore for $store {
            async fn begin(
                &self,
                key: &str,
                fingerprint: &str,
                now: chrono::DateTime<chrono::Utc>,
                not_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<june_domain::ports::IdempotencyState, june_domain::ports::StoreError> {
                use june_domain::ports::IdempotencyState;
                sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND created_at < $2")
                    .bind(key)
                    .bind($crate::time::to_micros(not_before))
                    .execute(&mut *self.writer().await?)
                    .await
                    .map_err($crate::store_error)?;
                // The primary key settles races: exactly one request claims the key.
                let claimed = sqlx::query(
                    "INSERT INTO idempotency_keys (key, fingerprint, response, created_at) \
                     VALUES ($1, $2, NULL, $3) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(fingerprint)
                .bind($crate::time::to_micros(now))
                .execute(&mut *self.writer().await?)
                .await
                .map_err($crate::store_error)?
                .rows_affected()
                    == 1;
                if claimed {
                    return Ok(IdempotencyState::Started);
                }
                let row: Option<$crate::rows::IdempotencyRow> = sqlx::query_as(
                    "SELECT fingerprint, response FROM idempotency_keys WHERE key = $1",
                )
                .bind(key)
                .fetch_optional(&mut *self.writer().await?)
                .await
                .map_err($crate::store_error)?;
                Ok(match row {
                    // Released between our insert and select: the caller asks again.
                    None => IdempotencyState::InProgress,
                    Some(r) if r.fingerprint != fingerprint => IdempotencyState::Mismatch,
                    Some(r) => match r.response {
                        None => IdempotencyState::InProgress,
                        Some(text) => IdempotencyState::Completed(
                            serde_json::from_str(&text)
                                .map_err(|_| $crate::rows::corrupt("idempotent response", key))?,
                        ),
                    },
                })
            }

            async fn complete(&self, key: &str, response: &serde_json::Value) -> Result<(), june_domain::ports::StoreError> {
                sqlx::query("UPDATE idempotency_keys SET response = $1 WHERE key = $2")
                    .bind(response.to_string())
                    .bind(key)
                    .execute(&mut *self.writer().await?)
                    .await
                    .map_err($crate::store_error)?;
                Ok(())
            }

            async fn abandon(&self, key: &str) -> Result<(), june_domain::ports::StoreError> {
                sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND response IS NULL")
                    .bind(key)
                    .execute(&mut *self.writer().await?)
                    .await
                    .map_err($crate::store_error)?;
                Ok(())
            }
        }
    };
}

pub(crate) use sql_store;
