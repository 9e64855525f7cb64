//! A fixed set of SQLite connections, handed out without sqlx's pool.
//!
//! sqlx's pool pings every connection when it goes back to the pool (and by default before
//! each use too). For SQLite each ping is one more round trip to the connection's own
//! thread, and on the benchmark machine that round trip costs as much as the statement
//! itself (docs/benchmarks.md). A local file does not drop connections, so a few long-lived
//! connections behind async mutexes serve instead: one writer that every write queues on
//! (SQLite allows one writer at a time), and readers beside it (WAL).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use june_domain::ports::StoreError;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{Mutex, MutexGuard};

use crate::store_error;

pub(crate) struct Connections {
    slots: Vec<Mutex<SqliteConnection>>,
    next: AtomicUsize,
    wait: Duration,
}

impl Connections {
    /// Opens `n` connections; a caller waits at most `wait` for one to be free.
    pub(crate) async fn open(
        options: &SqliteConnectOptions,
        n: u32,
        wait: Duration,
    ) -> Result<Self, StoreError> {
        let mut slots = Vec::new();
        for _ in 0..n.max(1) {
            slots.push(Mutex::new(options.connect().await.map_err(store_error)?));
        }
        Ok(Connections {
            slots,
            next: AtomicUsize::new(0),
            wait,
        })
    }

    /// A free connection if there is one; else the next one in turn once it frees up
    /// (first come, first served), or `Unavailable` after the wait.
    pub(crate) async fn get(&self) -> Result<MutexGuard<'_, SqliteConnection>, StoreError> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(conn) = self.slots[(start + i) % n].try_lock() {
                return Ok(conn);
            }
        }
        tokio::time::timeout(self.wait, self.slots[start % n].lock())
            .await
            .map_err(|_| {
                StoreError::Unavailable(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no SQLite connection was free in time",
                )))
            })
    }

    /// Whether no connection is in use (the checkpointer waits for that).
    pub(crate) fn is_idle(&self) -> bool {
        self.slots.iter().all(|s| s.try_lock().is_ok())
    }

    /// `(connections, idle)` for the pool gauge.
    pub(crate) fn stats(&self) -> (u32, u32) {
        let idle = self.slots.iter().filter(|s| s.try_lock().is_ok()).count();
        (
            u32::try_from(self.slots.len()).unwrap_or(u32::MAX),
            u32::try_from(idle).unwrap_or(u32::MAX),
        )
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[tokio::test]
    async fn a_busy_set_answers_unavailable_after_the_wait_and_serves_once_free() {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        let conns = Connections::open(&options, 1, Duration::from_millis(30))
            .await
            .unwrap();
        let held = conns.get().await.unwrap();
        assert_eq!(conns.stats(), (1, 0));
        assert!(matches!(
            conns.get().await.unwrap_err(),
            StoreError::Unavailable(_)
        ));
        drop(held);
        assert_eq!(conns.stats(), (1, 1));
        let _again = conns.get().await.unwrap();
    }
}
