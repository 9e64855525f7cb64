//! The SQLite WAL checkpointer: checkpoints run on their own connection, beside the writer,
//! instead of inside a writer's commit.
//!
//! With SQLite's automatic checkpoint, the commit that pushes the WAL past 1000 pages copies
//! the WAL into the database file and fsyncs it before answering: that one request waits
//! for the disk (the create p99 of docs/benchmarks.md). Here `wal_autocheckpoint` is off
//! and a task checkpoints instead: a `PASSIVE` checkpoint (it never waits for the writer or
//! readers, and the writer never waits for it) whenever the writer is idle, and, once the
//! WAL has grown past its limit because the writer never idles or readers hold old frames,
//! a `RESTART` checkpoint that waits for them (up to the busy timeout) so the next write
//! starts the WAL afresh. `journal_size_limit` then truncates the file back to the limit.
//! Durability is unchanged (`synchronous=NORMAL`: the WAL is fsynced at checkpoints).
//!
//! Off by default (`database.sqlite_checkpoint_ms = 0`): under sustained writes it measured a
//! worse tail than SQLite's own checkpoint (docs/benchmarks.md, issue #18 continued).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::task::JoinHandle;

use crate::conns::Connections;

/// The checkpointer's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointPolicy {
    /// How often it looks at the WAL.
    pub every: Duration,
    /// WAL size past which a checkpoint waits for the writer and readers.
    pub wal_limit_bytes: u64,
}

/// What one pass did (for tests and debug logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pass {
    /// WAL frames before the pass.
    pub wal_frames: i64,
    /// Frames copied into the database.
    pub checkpointed: i64,
    /// Whether the pass had to force a `RESTART`.
    pub forced: bool,
}

/// The running task; stopped when the store (its last clone) is dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer(JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Checkpointer {
    /// Opens the checkpointer's own connection to the database of `options` and starts it.
    pub(crate) async fn start(
        options: &SqliteConnectOptions,
        writer: Arc<Connections>,
        policy: CheckpointPolicy,
    ) -> Result<Self, sqlx::Error> {
        // A forced checkpoint holds writers off while it waits for readers: keep that short,
        // and try again next tick rather than stall commits.
        let mut conn = options.clone().busy_timeout(FORCED_WAIT).connect().await?;
        let page_size: (i64,) = sqlx::query_as("PRAGMA page_size")
            .fetch_one(&mut conn)
            .await?;
        let limit_frames = i64::try_from(policy.wal_limit_bytes).unwrap_or(i64::MAX)
            / (page_size.0 + WAL_FRAME_HEADER).max(1);
        let wal = wal_path(options);
        Ok(Checkpointer(tokio::spawn(async move {
            let mut tick = tokio::time::interval(policy.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let idle = writer.is_idle();
                let big = wal
                    .as_ref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .is_some_and(|m| m.len() > policy.wal_limit_bytes);
                if !idle && !big {
                    continue;
                }
                match pass(&mut conn, limit_frames).await {
                    Ok(p) if p.forced => {
                        tracing::debug!(?p, "WAL past its limit: forced a checkpoint")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
                }
            }
        })))
    }
}

/// Longest a forced checkpoint waits for the writer and readers.
const FORCED_WAIT: Duration = Duration::from_millis(100);

/// Bytes of a WAL frame header (besides the page).
const WAL_FRAME_HEADER: i64 = 24;

/// One checkpoint pass: `PASSIVE`, then `RESTART` if the WAL is still past `limit_frames`.
pub(crate) async fn pass(
    conn: &mut SqliteConnection,
    limit_frames: i64,
) -> Result<Pass, sqlx::Error> {
    let (_busy, wal_frames, checkpointed): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *conn)
            .await?;
    let mut result = Pass {
        wal_frames,
        checkpointed,
        forced: false,
    };
    if wal_frames > limit_frames && checkpointed < wal_frames {
        let (_busy, _frames, done): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
                .fetch_one(&mut *conn)
                .await?;
        result.checkpointed = done;
        result.forced = true;
    }
    Ok(result)
}

/// The `-wal` file beside the database, if it is a file.
fn wal_path(options: &SqliteConnectOptions) -> Option<PathBuf> {
    let db = options.get_filename();
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    (!db.as_os_str().is_empty()).then(|| PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteJournalMode;

    const LIMIT: u64 = 64 * 1024;

    fn options(dir: &tempfile::TempDir) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(dir.path().join("wal.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_millis(100))
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", LIMIT.to_string())
    }

    async fn write_rows(conn: &mut SqliteConnection, n: usize) {
        for i in 0..n {
            sqlx::query("INSERT INTO t (v) VALUES (?)")
                .bind(format!("{i:0>400}"))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }

    fn wal_len(dir: &tempfile::TempDir) -> u64 {
        std::fs::metadata(dir.path().join("wal.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn a_passive_pass_copies_the_wal_and_the_next_write_truncates_it_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let options = options(&dir);
        let mut writer = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(&mut writer)
            .await
            .unwrap();
        write_rows(&mut writer, 500).await;
        assert!(wal_len(&dir) > LIMIT, "autocheckpoint is off: the WAL grew");

        let mut checkpointer = options.connect().await.unwrap();
        let done = pass(&mut checkpointer, 16).await.unwrap();
        assert!(done.wal_frames > 16);
        assert_eq!(done.checkpointed, done.wal_frames);
        assert!(!done.forced, "nothing held frames back");

        write_rows(&mut writer, 1).await;
        assert!(
            wal_len(&dir) <= LIMIT,
            "the WAL restarted and was truncated"
        );
        let rows: (i64,) = sqlx::query_as("SELECT count(*) FROM t")
            .fetch_one(&mut checkpointer)
            .await
            .unwrap();
        assert_eq!(rows.0, 501);
    }

    #[tokio::test]
    async fn a_wal_past_its_limit_that_a_reader_holds_back_forces_a_restart_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let options = options(&dir);
        let mut writer = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(&mut writer)
            .await
            .unwrap();
        write_rows(&mut writer, 10).await;
        // A reader whose snapshot predates the next writes holds their frames back.
        let mut reader = options.connect().await.unwrap();
        sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
        sqlx::query("SELECT count(*) FROM t")
            .fetch_one(&mut reader)
            .await
            .unwrap();
        write_rows(&mut writer, 300).await;

        let mut checkpointer = options.connect().await.unwrap();
        let held = pass(&mut checkpointer, 16).await.unwrap();
        assert!(
            held.forced,
            "past the limit with frames held back: {held:?}"
        );
        assert!(held.checkpointed < held.wal_frames);

        // Under the limit nothing is forced, however many frames are held back.
        let under = pass(&mut checkpointer, i64::MAX).await.unwrap();
        assert!(!under.forced);

        sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
        let freed = pass(&mut checkpointer, 16).await.unwrap();
        assert_eq!(freed.checkpointed, freed.wal_frames);
        assert!(!freed.forced);
    }
}
