//! # june-redis-limiter
//!
//! The rate limits of June Orchestrator shared by every replica: june-http-api's
//! [`LimitBackend`] port on Redis. Each request runs one atomic Lua script (GCRA, on Redis's
//! own clock, `gcra.lua`) on a key per budget that expires when the budget is full again, so
//! Redis keeps no idle key. Keys are `prefix` + scope + a hash of the principal id or address,
//! so their size is bounded whatever the id.
//!
//! Depends on the `redis` crate (async `ConnectionManager` on tokio) and the port; the HTTP
//! crate never sees Redis. It never decides what happens when Redis is away: it answers with
//! an error within its deadline, and `RateLimits` decides locally.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use june_http_api::limits::{BackendError, LimitBackend, LimitKey, Rates, Verdict};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};

/// The GCRA script (see the file for its arguments and answer).
const GCRA: &str = include_str!("gcra.lua");

/// Bytes of the SHA-256 of an id kept in a key (128 bits: no collisions in practice).
const HASH_BYTES: usize = 16;

/// Why the limiter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RedisLimiterError {
    /// The URL is not one the Redis client takes (it is not repeated: it may hold a password).
    #[error("rate_limit.redis_url (RATE_LIMIT_REDIS_URL) is not a usable redis:// URL: {0}")]
    Url(String),
}

/// How the limiter talks to Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of every key (`june:rl:`); several deployments may share one Redis.
    pub key_prefix: String,
    /// Deadline of connecting and of each answer.
    pub timeout: Duration,
}

/// Budgets counted in Redis, one budget per key for every replica.
pub struct RedisLimiter {
    client: redis::Client,
    /// Made on first use (it connects lazily, so a replica starts while Redis is away), and
    /// forgotten after any call that failed or did not finish: the connection manager
    /// reconnects by itself after a *dropped* connection, but keeps a *silent* one (a
    /// partition, a lost NAT entry) forever; the next call then starts a fresh one.
    conn: Mutex<Option<ConnectionManager>>,
    options: RedisOptions,
    rates: Rates,
    script: redis::Script,
}

fn error(e: impl std::fmt::Display) -> BackendError {
    BackendError(e.to_string())
}

impl RedisLimiter {
    /// A limiter enforcing `rates` on the Redis at `url`. Does not connect.
    pub fn new(url: &str, options: RedisOptions, rates: Rates) -> Result<Self, RedisLimiterError> {
        let client = redis::Client::open(url).map_err(|e| RedisLimiterError::Url(e.to_string()))?;
        Ok(RedisLimiter {
            client,
            conn: Mutex::new(None),
            options,
            rates,
            script: redis::Script::new(GCRA),
        })
    }

    /// The key of `key`'s budget: prefix, scope, then the first 128 bits of the SHA-256 of
    /// the id (or of the address as text), in hex.
    pub fn key(&self, key: LimitKey<'_>) -> String {
        let digest = match key {
            LimitKey::Principal(id) => Sha256::digest(id.as_bytes()),
            LimitKey::Address(ip) => Sha256::digest(ip.to_string().as_bytes()),
        };
        let mut out = String::with_capacity(self.options.key_prefix.len() + 10 + 2 * HASH_BYTES);
        out.push_str(&self.options.key_prefix);
        out.push_str(key.scope().as_str());
        out.push(':');
        for byte in &digest[..HASH_BYTES] {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    fn slot(&self) -> MutexGuard<'_, Option<ConnectionManager>> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection manager, made now if there is none (no I/O here: it connects on first
    /// use, within the caller's deadline).
    fn connection(&self) -> Result<ConnectionManager, BackendError> {
        let mut slot = self.slot();
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            // Also bounds its own reconnects in the background; answers are bounded by `run`.
            .set_connection_timeout(Some(self.options.timeout))
            // One attempt per call: while Redis is away, `RateLimits` retries at its own pace.
            .set_number_of_retries(0);
        let conn =
            ConnectionManager::new_lazy_with_config(self.client.clone(), config).map_err(error)?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs one command within the deadline; a failure, a timeout or the caller giving up
    /// (the future dropped) forgets the connection.
    async fn run<T: redis::FromRedisValue>(
        &self,
        call: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, BackendError> {
        /// Forgets the connection unless disarmed: on error, timeout and cancellation.
        struct Unfinished<'a>(Option<&'a RedisLimiter>);
        impl Drop for Unfinished<'_> {
            fn drop(&mut self) {
                if let Some(limiter) = self.0 {
                    limiter.slot().take();
                }
            }
        }
        let mut conn = self.connection()?;
        let mut guard = Unfinished(Some(self));
        let answer = tokio::time::timeout(self.options.timeout, call(&mut conn))
            .await
            .map_err(|_| BackendError(format!("no answer within {:?}", self.options.timeout)))?
            .map_err(error)?;
        guard.0 = None;
        Ok(answer)
    }

    /// Counts one request of `key` as if at `now_micros` (Unix microseconds), or on Redis's
    /// clock when `None` (what the server does; tests pass a time to step through refills).
    pub async fn acquire_at(
        &self,
        key: LimitKey<'_>,
        now_micros: Option<u64>,
    ) -> Result<Verdict, BackendError> {
        let rate = self.rates.of(key.scope());
        if !rate.enabled() {
            return Ok(Verdict::Allowed);
        }
        let interval = (1_000_000 / u64::from(rate.per_second)).max(1);
        let mut call = self.script.key(self.key(key));
        call.arg(interval).arg(rate.effective_burst());
        if let Some(now) = now_micros {
            call.arg(now);
        }
        let (allowed, retry_after_us): (i64, i64) =
            self.run(async |conn| call.invoke_async(conn).await).await?;
        Ok(if allowed == 1 {
            Verdict::Allowed
        } else {
            Verdict::Limited {
                retry_after: Duration::from_micros(u64::try_from(retry_after_us).unwrap_or(0)),
            }
        })
    }

    /// The scopes this limiter enforces.
    pub fn rates(&self) -> Rates {
        self.rates
    }
}

#[async_trait]
impl LimitBackend for RedisLimiter {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn acquire(&self, key: LimitKey<'_>) -> Result<Verdict, BackendError> {
        self.acquire_at(key, None).await
    }

    async fn ping(&self) -> Result<(), BackendError> {
        self.run(async |conn| redis::cmd("PING").query_async::<String>(conn).await)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use june_http_api::limits::Rate;

    use super::*;

    fn limiter(prefix: &str) -> RedisLimiter {
        let rate = Rate {
            per_second: 1,
            burst: 1,
        };
        RedisLimiter::new(
            "redis://127.0.0.1:1",
            RedisOptions {
                key_prefix: prefix.into(),
                timeout: Duration::from_millis(50),
            },
            Rates {
                principal: rate,
                address: rate,
            },
        )
        .unwrap()
    }

    #[test]
    fn keys_are_prefix_scope_and_a_bounded_hash_never_the_id() {
        let l = limiter("june:rl:");
        let short = l.key(LimitKey::Principal("alice"));
        let long_id = "x".repeat(10_000);
        let long = l.key(LimitKey::Principal(&long_id));
        assert!(short.starts_with("june:rl:principal:"), "{short}");
        assert!(!short.contains("alice"));
        assert_eq!(short.len(), "june:rl:principal:".len() + 32);
        assert_eq!(long.len(), short.len());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let addr = l.key(LimitKey::Address(ip));
        assert!(addr.starts_with("june:rl:address:"), "{addr}");
        assert!(!addr.contains("192.0.2.1"));
        // Stable across processes and versions (replicas must agree): SHA-256 of "alice".
        assert_eq!(short, "june:rl:principal:2bd806c97f0e00af1a1fc3328fa763a9");
    }

    #[test]
    fn a_url_the_client_refuses_is_an_error_that_does_not_repeat_it() {
        let err = RedisLimiter::new(
            "nope://:hunter2@x",
            RedisOptions {
                key_prefix: String::new(),
                timeout: Duration::from_millis(50),
            },
            limiter("").rates(),
        )
        .err()
        .unwrap();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
