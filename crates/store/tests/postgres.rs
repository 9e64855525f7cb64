//! The store contract, run against the real PostgreSQL server: a fresh schema per test,
//! dropped afterwards. `JUNE_TEST_POSTGRES_URL` overrides the server
//! (default `postgres://postgres@127.0.0.1:5432/test`).

mod contract;

use june_store::{StoreOptions, Stores, connect};
use sqlx::Connection;

fn server() -> String {
    std::env::var("JUNE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

struct Db {
    stores: Stores,
    schema: String,
}

impl Db {
    async fn cleanup(self) {
        drop(self.stores);
        let mut admin = sqlx::PgConnection::connect(&server()).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

async fn fresh() -> Db {
    let schema = format!("june_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server())
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (see .ci/run)");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let sep = if server().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20search_path%3D{schema}", server());
    let stores = connect(&url, &StoreOptions::default()).await.unwrap();
    Db { stores, schema }
}

store_contract!(fresh);

#[tokio::test]
async fn migrations_run_once_even_when_replicas_start_together() {
    let db = fresh().await;
    let url = format!(
        "{}?options=-c%20search_path%3D{}",
        server().split('?').next().unwrap(),
        db.schema
    );
    let options = StoreOptions::default();
    let (a, b) = tokio::join!(connect(&url, &options), connect(&url, &options));
    a.unwrap();
    b.unwrap();
    db.cleanup().await;
}
