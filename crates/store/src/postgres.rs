//! The PostgreSQL adapter, for several replicas sharing one database. Migrations from
//! `migrations/postgres` (same versions as SQLite's).

use std::str::FromStr;
use std::time::Duration;

use june_domain::ports::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::StoreOptions;
use crate::sql::sql_store;
use crate::store_error;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Every store port in one PostgreSQL database (or schema).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`; a `search_path` in `options` picks a schema) and
    /// applies the embedded migrations. The pool reconnects by itself after an outage.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let statement_timeout = options.statement_timeout.as_millis().to_string();
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
            .connect_with(connect)
            .await
            .map_err(store_error)?;
        let store = PgStore { pool };
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

    fn connection_stats(&self) -> (u32, u32) {
        (
            self.pool.size(),
            u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        )
    }
}

sql_store!(PgStore, sqlx::Postgres, one_trip = false);
