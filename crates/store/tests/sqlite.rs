//! The store contract, run against SQLite (a temp file per test).

mod contract;

use june_store::{Stores, connect};

struct Db {
    stores: Stores,
    _dir: tempfile::TempDir,
    url: String,
}

async fn fresh() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/june.db", dir.path().display());
    let stores = connect(&url).await.unwrap();
    Db {
        stores,
        _dir: dir,
        url,
    }
}

#[tokio::test]
async fn sessions_round_trip() {
    contract::sessions_round_trip(&fresh().await.stores).await;
}

#[tokio::test]
async fn a_live_room_name_is_unique_but_an_ended_one_can_be_reused() {
    contract::live_room_names_are_unique(&fresh().await.stores).await;
}

#[tokio::test]
async fn status_only_moves_forward() {
    contract::status_only_moves_forward(&fresh().await.stores).await;
}

#[tokio::test]
async fn listing_filters_and_pages_newest_first() {
    contract::listing_filters_and_pages(&fresh().await.stores).await;
}

#[tokio::test]
async fn history_appends_reads_the_newest_and_clears() {
    contract::history_appends_reads_and_clears(&fresh().await.stores).await;
}

#[tokio::test]
async fn sessions_are_found_by_room_sid_and_live_ones_listed_oldest_first() {
    contract::sessions_are_found_by_room_sid_and_live_ones_listed_oldest_first(
        &fresh().await.stores,
    )
    .await;
}

#[tokio::test]
async fn presence_counts_people_and_newer_news_wins() {
    contract::presence_counts_people_and_newer_news_wins(&fresh().await.stores).await;
}

#[tokio::test]
async fn events_are_recorded_once_and_listed_newest_first() {
    contract::events_are_recorded_once_and_listed_newest_first(&fresh().await.stores).await;
}

#[tokio::test]
async fn reopening_the_file_keeps_every_session() {
    let db = fresh().await;
    let s = contract::session("keep", "room-keep");
    db.stores.sessions.insert(&s).await.unwrap();
    drop(db.stores);

    let reopened = connect(&db.url).await.unwrap();
    assert_eq!(reopened.sessions.get(s.id).await.unwrap(), s);
}

#[tokio::test]
async fn the_database_runs_in_wal_mode_and_the_folder_is_created() {
    let db = fresh().await;
    db.stores.sessions.ping().await.unwrap();
    let path = db.url.trim_start_matches("sqlite://");
    assert!(std::path::Path::new(path).exists());
    assert!(std::path::Path::new(&format!("{path}-wal")).exists());
}

#[tokio::test]
async fn an_unknown_scheme_is_refused() {
    assert!(connect("mysql://x").await.is_err());
}
