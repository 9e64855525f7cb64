//! The PostgreSQL adapter, for several replicas sharing one database. Migrations from
//! `migrations/postgres` (same versions as SQLite's).

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use june_domain::ports::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use crate::StoreOptions;
use crate::bounded::Abandonments;
use crate::sql::sql_store;
use crate::store_error;

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
            .options([("statement_timeout", statement_timeout.as_str())]);
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

    async fn reader(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.pool.acquire().await.map_err(store_error)
    }

    /// The same pool: PostgreSQL runs writers side by side.
    async fn writer(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.reader().await
    }

    async fn insert_session(&self, s: &june_domain::Session) -> Result<(), StoreError> {
        Self::insert_one(&mut *self.writer().await?, s).await
    }

    /// Shared with the `Bounded` wrapper, which notes its timeouts there.
    pub(crate) fn abandonments(&self) -> Abandonments {
        self.abandoned.clone()
    }

    fn connection_stats(&self) -> (u32, u32) {
        (
            self.pool.size(),
            u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        )
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

sql_store!(PgStore, sqlx::Postgres, one_trip = false);
