//! A fresh PostgreSQL schema per test, on the real server: `JUNE_TEST_POSTGRES_URL`, by
//! default `postgres://postgres@127.0.0.1:5432/test` (`.ci/run` starts it).

use sqlx::Connection;

/// The server's URL.
pub fn server() -> String {
    std::env::var("JUNE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own, so tests run side by side on one database; dropped by
/// [`PgSchema::drop`] (a test that fails leaves it behind, for a look).
#[derive(Debug)]
pub struct PgSchema {
    /// `june_test_<uuid>`.
    pub name: String,
}

impl PgSchema {
    /// Creates the schema.
    pub async fn create() -> PgSchema {
        let name = format!("june_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server())
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (see .ci/run) or JUNE_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut admin)
            .await
            .expect("CREATE SCHEMA");
        PgSchema { name }
    }

    /// The server's URL with this schema as the `search_path`.
    pub fn url(&self) -> String {
        self.with_search_path(server())
    }

    /// [`PgSchema::url`] with another `host:port` (to go through a proxy).
    pub fn url_via(&self, host_port: &str) -> String {
        let server = server();
        let (scheme, rest) = server.split_once("://").unwrap_or(("postgres", &server));
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        self.with_search_path(format!("{scheme}://{user}{host_port}{tail}"))
    }

    fn with_search_path(&self, url: String) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-c%20search_path%3D{}", self.name)
    }

    /// Drops the schema and everything in it.
    pub async fn drop(self) {
        let mut admin = sqlx::PgConnection::connect(&server())
            .await
            .expect("PostgreSQL");
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut admin)
            .await
            .expect("DROP SCHEMA");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_credentials_and_database_and_add_the_search_path() {
        let schema = PgSchema {
            name: "june_test_x".into(),
        };
        // Only the default server: the variable is not set in CI.
        if std::env::var_os("JUNE_TEST_POSTGRES_URL").is_none() {
            assert_eq!(
                schema.url(),
                "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Djune_test_x"
            );
            assert_eq!(
                schema.url_via("127.0.0.1:4000"),
                "postgres://postgres@127.0.0.1:4000/test?options=-c%20search_path%3Djune_test_x"
            );
        }
    }
}
