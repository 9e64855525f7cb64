//! The store contract, run against SQLite (a temp file per test).

mod contract;

use june_store::{StoreOptions, Stores, connect};

struct Db {
    stores: Stores,
    _dir: tempfile::TempDir,
    url: String,
}

impl Db {
    async fn cleanup(self) {}
}

async fn fresh() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/june.db", dir.path().display());
    let stores = connect(&url, &StoreOptions::default()).await.unwrap();
    Db {
        stores,
        _dir: dir,
        url,
    }
}

store_contract!(fresh);

#[tokio::test]
async fn reopening_the_file_keeps_every_session() {
    let db = fresh().await;
    let s = contract::session("keep", "room-keep");
    db.stores.sessions.insert(&s).await.unwrap();
    drop(db.stores);

    let reopened = connect(&db.url, &StoreOptions::default()).await.unwrap();
    assert_eq!(reopened.sessions.get(s.id).await.unwrap(), s);
}

#[tokio::test]
async fn the_database_runs_in_wal_mode_and_the_folder_is_created() {
    let db = fresh().await;
    db.stores.health.ping().await.unwrap();
    let path = db.url.trim_start_matches("sqlite://");
    assert!(std::path::Path::new(path).exists());
    assert!(std::path::Path::new(&format!("{path}-wal")).exists());
}

#[tokio::test]
async fn an_unknown_scheme_is_refused() {
    assert!(
        connect("mysql://x", &StoreOptions::default())
            .await
            .is_err()
    );
}

/// Both backends must run the same migrations, version for version.
#[test]
fn both_dialects_have_the_same_migration_versions() {
    let versions = |dialect: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(versions("sqlite"), versions("postgres"));
    assert!(!versions("sqlite").is_empty());
}

#[tokio::test]
async fn an_in_memory_database_reads_what_it_wrote() {
    // One connection serves reads and writes: a second one would be another, empty database.
    let stores = connect("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    let s = contract::session("mem", "room-mem");
    stores.sessions.insert(&s).await.unwrap();
    assert_eq!(stores.sessions.get(s.id).await.unwrap(), s);
    assert_eq!(stores.health.pool_stats(), Some((1, 1)));
}

#[tokio::test]
async fn concurrent_writes_queue_on_the_writer_and_all_land() {
    let db = fresh().await;
    let writes = (0..64).map(|i| {
        let sessions = db.stores.sessions.clone();
        tokio::spawn(async move {
            let s = contract::session(&format!("u{i}"), &format!("room-{i}"));
            sessions.insert(&s).await.map(|()| s.id)
        })
    });
    let ids: Vec<_> = futures_util::future::join_all(writes)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    for id in ids {
        db.stores.sessions.get(id).await.unwrap();
    }
}
