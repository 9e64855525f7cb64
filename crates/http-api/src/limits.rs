//! Request budgets per principal and per client address, and the port they are counted
//! through.
//!
//! [`LimitBackend`] is the port of a *shared* budget (the Redis one of `june-redis-limiter`,
//! one budget across replicas); the in-process `LocalLimiter` (governor) is the embedded
//! default and the fallback. [`RateLimits`] asks the shared backend when there is one, with
//! a deadline on every call; when it fails or is slow, that request is decided by the local
//! limiter, and the replica *falls back*: it decides locally (one `warn` line, the
//! `june_rate_limit_backend` gauge, `/readyz` "degraded") and tries the shared backend again
//! once per `retry_every` only, so an outage does not cost every request the deadline. The
//! first answer puts it back (one `info` line). A request never fails because the shared
//! backend is away.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::error::ApiError;

/// Requests allowed per second and in a burst, for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained requests per second (0 disables the limit).
    pub per_second: u32,
    /// Burst on top (raised to `per_second` when lower).
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        per_second: 0,
        burst: 0,
    };

    /// Whether this rate limits anything.
    pub fn enabled(&self) -> bool {
        self.per_second > 0
    }

    /// The burst in force: never below one second's worth.
    pub fn effective_burst(&self) -> u32 {
        self.burst.max(self.per_second)
    }
}

/// The two budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Per authenticated principal.
    pub principal: Rate,
    /// Per client address.
    pub address: Rate,
}

impl Rates {
    /// The rate of `scope`.
    pub fn of(&self, scope: Scope) -> Rate {
        match scope {
            Scope::Principal => self.principal,
            Scope::Address => self.address,
        }
    }
}

/// Which budget a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// An authenticated principal's.
    Principal,
    /// A client address's.
    Address,
}

impl Scope {
    /// The label of metrics and keys (a closed set).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Principal => "principal",
            Scope::Address => "address",
        }
    }
}

/// Whose budget: a principal's id or a client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey<'a> {
    /// An authenticated principal.
    Principal(&'a str),
    /// A client address (after trusted proxies, see `client_addr`).
    Address(IpAddr),
}

impl LimitKey<'_> {
    /// The budget this key is counted against.
    pub fn scope(&self) -> Scope {
        match self {
            LimitKey::Principal(_) => Scope::Principal,
            LimitKey::Address(_) => Scope::Address,
        }
    }
}

/// What a backend decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; go on.
    Allowed,
    /// Over budget: the next request is allowed after `retry_after`.
    Limited {
        /// Time until one request fits the budget again.
        retry_after: Duration,
    },
}

/// A backend could not decide (unreachable, refused, an unexpected answer). The message is
/// shown in `/readyz` and the fallback log line, so it never carries a URL or a password.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Where budgets are counted. Each backend is built with the [`Rates`] it enforces; callers
/// only ask about enabled scopes.
#[async_trait]
pub trait LimitBackend: Send + Sync {
    /// A short fixed name for logs, the metric label and `/readyz` (`"local"`, `"redis"`).
    fn name(&self) -> &'static str;

    /// Counts one request of `key`. Errors when the backend cannot decide; the caller then
    /// decides elsewhere (it never turns into a failed request).
    async fn acquire(&self, key: LimitKey<'_>) -> Result<Verdict, BackendError>;

    /// Whether the backend answers, counting nothing (the recovery probe of `/readyz`).
    async fn ping(&self) -> Result<(), BackendError>;
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

fn keyed<K: Hash + Eq + Clone>(rate: Rate) -> Option<Keyed<K>> {
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.effective_burst())?;
    Some(RateLimiter::keyed(
        Quota::per_second(per_second).allow_burst(burst),
    ))
}

fn local_check<K: Hash + Eq + Clone>(limiter: Option<&Keyed<K>>, key: &K) -> Verdict {
    match limiter.map(|l| l.check_key(key)) {
        None | Some(Ok(())) => Verdict::Allowed,
        Some(Err(not_until)) => Verdict::Limited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        },
    }
}

/// The in-process limiter (governor, keyed): one budget per key in this process.
struct LocalLimiter {
    by_principal: Option<Keyed<String>>,
    by_address: Option<Keyed<IpAddr>>,
    seen: AtomicU64,
}

impl LocalLimiter {
    /// A limiter enforcing `rates` (a disabled rate lets everything through).
    fn new(rates: Rates) -> Self {
        LocalLimiter {
            by_principal: keyed(rates.principal),
            by_address: keyed(rates.address),
            seen: AtomicU64::new(0),
        }
    }

    /// Decides at once (the local limiter never fails).
    fn check(&self, key: LimitKey<'_>) -> Verdict {
        // Keyed limiters keep every key they saw: forget idle ones now and then.
        if self
            .seen
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(4096)
        {
            if let Some(l) = &self.by_address {
                l.retain_recent();
            }
            if let Some(l) = &self.by_principal {
                l.retain_recent();
            }
        }
        match key {
            LimitKey::Principal(id) => local_check(self.by_principal.as_ref(), &id.to_owned()),
            LimitKey::Address(ip) => local_check(self.by_address.as_ref(), &ip),
        }
    }
}

/// How the shared backend is called.
#[derive(Debug, Clone, Copy)]
pub struct SharedOptions {
    /// Deadline of every call (then the request is decided locally).
    pub timeout: Duration,
    /// While falling back, the shared backend is tried again at most this often.
    pub retry_every: Duration,
}

/// What `/readyz` shows of the limits (`checks.rate_limit`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LimitHealth {
    /// `ok`, or `degraded` while a configured shared backend is away (never unready).
    pub status: &'static str,
    /// The backend deciding now: `local`, or the shared one's name.
    pub backend: &'static str,
    /// Why it is degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

struct SharedState {
    up: bool,
    /// While down: when the backend may be tried again.
    next_try: Instant,
    /// While down: the last failure.
    detail: String,
}

struct Shared {
    backend: Arc<dyn LimitBackend>,
    options: SharedOptions,
    state: Mutex<SharedState>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        // The state is a few plain fields, consistent whatever panicked while holding it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether to call the backend now: always while up; while down, once per `retry_every`
    /// (the caller that gets the turn pushes the next one back, even if it is cancelled).
    fn may_try(&self) -> bool {
        let mut state = self.lock();
        if state.up {
            return true;
        }
        let now = Instant::now();
        if now < state.next_try {
            return false;
        }
        state.next_try = now + self.options.retry_every;
        true
    }

    fn answered(&self) {
        let mut state = self.lock();
        if !state.up {
            state.up = true;
            state.detail.clear();
            drop(state);
            crate::metrics::rate_limit_backend(self.backend.name(), true);
            tracing::info!(
                backend = self.backend.name(),
                "rate limits are shared again: the backend answers"
            );
        }
    }

    fn failed(&self, detail: String) {
        crate::metrics::rate_limit_backend_error();
        let mut state = self.lock();
        state.next_try = Instant::now() + self.options.retry_every;
        let was_up = std::mem::replace(&mut state.up, false);
        state.detail = format!("{}: {detail}", self.backend.name());
        drop(state);
        if was_up {
            crate::metrics::rate_limit_backend(self.backend.name(), false);
            tracing::warn!(
                backend = self.backend.name(),
                error = %detail,
                retry_every_ms = self.options.retry_every.as_millis() as u64,
                "rate limits fall back to this replica's own budget until the backend answers"
            );
        }
    }

    /// Runs `call` on the backend within the deadline and records the outcome; `None` when
    /// it was not tried or did not answer.
    async fn call<T, F>(&self, call: F) -> Option<T>
    where
        F: Future<Output = Result<T, BackendError>>,
    {
        match tokio::time::timeout(self.options.timeout, call).await {
            Ok(Ok(value)) => {
                self.answered();
                Some(value)
            }
            Ok(Err(e)) => {
                self.failed(e.0);
                None
            }
            Err(_) => {
                self.failed(format!("no answer within {:?}", self.options.timeout));
                None
            }
        }
    }
}

/// The two limits of the API, counted locally or through a shared backend.
pub struct RateLimits {
    rates: Rates,
    local: LocalLimiter,
    shared: Option<Shared>,
}

/// `Retry-After` in whole seconds: rounded up, at least one.
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl RateLimits {
    /// Limits counted in this process only.
    pub fn new(per_principal: Rate, per_ip: Rate) -> Self {
        let rates = Rates {
            principal: per_principal,
            address: per_ip,
        };
        crate::metrics::rate_limit_backend("local", true);
        RateLimits {
            rates,
            local: LocalLimiter::new(rates),
            shared: None,
        }
    }

    /// Limits counted through `backend` (built for the same rates), decided locally while
    /// it is away.
    pub fn shared(rates: Rates, backend: Arc<dyn LimitBackend>, options: SharedOptions) -> Self {
        crate::metrics::rate_limit_backend(backend.name(), true);
        RateLimits {
            rates,
            local: LocalLimiter::new(rates),
            shared: Some(Shared {
                backend,
                options,
                state: Mutex::new(SharedState {
                    up: true,
                    next_try: Instant::now(),
                    detail: String::new(),
                }),
            }),
        }
    }

    /// No limits at all.
    pub fn off() -> Self {
        Self::new(Rate::OFF, Rate::OFF)
    }

    /// Counts one request of `key`; 429 with `Retry-After` once its budget is spent.
    pub async fn check(&self, key: LimitKey<'_>) -> Result<(), ApiError> {
        let scope = key.scope();
        if !self.rates.of(scope).enabled() {
            return Ok(());
        }
        let shared = match &self.shared {
            Some(shared) if shared.may_try() => shared.call(shared.backend.acquire(key)).await,
            _ => None,
        };
        match shared.unwrap_or_else(|| self.local.check(key)) {
            Verdict::Allowed => Ok(()),
            Verdict::Limited { retry_after } => {
                crate::metrics::rate_limited(scope.as_str());
                Err(ApiError::RateLimited {
                    retry_after_secs: retry_after_secs(retry_after),
                })
            }
        }
    }

    /// Counts a request from `ip`; 429 once its budget is spent.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.check(LimitKey::Address(ip)).await
    }

    /// Counts a request of an authenticated principal.
    pub async fn check_principal(&self, id: &str) -> Result<(), ApiError> {
        self.check(LimitKey::Principal(id)).await
    }

    /// For `/readyz`: which backend decides and whether the shared one is away. Pings the
    /// shared backend (within the deadline; while falling back, only when a retry is due), so
    /// an idle replica notices both an outage and the recovery.
    pub async fn health(&self) -> LimitHealth {
        let Some(shared) = &self.shared else {
            return LimitHealth {
                status: "ok",
                backend: "local",
                detail: None,
            };
        };
        if shared.may_try() {
            shared.call(shared.backend.ping()).await;
        }
        let state = shared.lock();
        if state.up {
            LimitHealth {
                status: "ok",
                backend: shared.backend.name(),
                detail: None,
            }
        } else {
            LimitHealth {
                status: "degraded",
                backend: "local",
                detail: Some(format!(
                    "{}; each replica counts its own budget until it answers",
                    state.detail
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use super::*;

    /// A shared backend that allows everything, fails, or never answers, and counts calls.
    #[derive(Default)]
    struct Fake {
        calls: AtomicUsize,
        failing: AtomicBool,
        hanging: AtomicBool,
    }

    #[async_trait]
    impl LimitBackend for Arc<Fake> {
        fn name(&self) -> &'static str {
            "fake"
        }

        async fn acquire(&self, _: LimitKey<'_>) -> Result<Verdict, BackendError> {
            self.ping().await.map(|()| Verdict::Limited {
                retry_after: Duration::from_millis(1500),
            })
        }

        async fn ping(&self) -> Result<(), BackendError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.hanging.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(BackendError("connection refused".into()));
            }
            Ok(())
        }
    }

    const RATE: Rate = Rate {
        per_second: 1,
        burst: 2,
    };
    const RATES: Rates = Rates {
        principal: RATE,
        address: RATE,
    };
    const OPTIONS: SharedOptions = SharedOptions {
        timeout: Duration::from_millis(50),
        retry_every: Duration::from_secs(1),
    };

    fn ip() -> IpAddr {
        IpAddr::from([192, 0, 2, 1])
    }

    fn limits(fake: &Arc<Fake>) -> RateLimits {
        RateLimits::shared(RATES, Arc::new(fake.clone()), OPTIONS)
    }

    #[tokio::test]
    async fn the_local_limiter_allows_the_burst_then_refuses_with_retry_after() {
        let limits = RateLimits::new(RATE, RATE);
        assert!(limits.check_ip(ip()).await.is_ok());
        assert!(limits.check_ip(ip()).await.is_ok());
        let Err(ApiError::RateLimited { retry_after_secs }) = limits.check_ip(ip()).await else {
            panic!("the third request is over the burst");
        };
        assert_eq!(retry_after_secs, 1);
        // Other keys and the other scope have their own budgets.
        assert!(limits.check_ip(IpAddr::from([192, 0, 2, 2])).await.is_ok());
        assert!(limits.check_principal("alice").await.is_ok());
        assert_eq!(limits.health().await.backend, "local");
    }

    #[tokio::test]
    async fn a_disabled_scope_never_asks_a_backend() {
        let fake = Arc::new(Fake::default());
        let limits = RateLimits::shared(
            Rates {
                principal: Rate::OFF,
                address: RATE,
            },
            Arc::new(fake.clone()),
            OPTIONS,
        );
        for _ in 0..5 {
            assert!(limits.check_principal("alice").await.is_ok());
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_shared_backend_decides_while_it_answers_with_its_retry_after() {
        let fake = Arc::new(Fake::default());
        let limits = limits(&fake);
        // The fake refuses everything: the local budget (2) is not what decides.
        let Err(ApiError::RateLimited { retry_after_secs }) = limits.check_ip(ip()).await else {
            panic!("the shared backend's verdict");
        };
        assert_eq!(retry_after_secs, 2, "1.5 s rounds up");
        let health = limits.health().await;
        assert_eq!((health.status, health.backend), ("ok", "fake"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_backend_falls_back_and_is_retried_once_per_interval() {
        let fake = Arc::new(Fake::default());
        fake.failing.store(true, Ordering::SeqCst);
        let limits = limits(&fake);
        // Decided locally: the burst of two, then 429.
        assert!(limits.check_ip(ip()).await.is_ok());
        assert!(limits.check_ip(ip()).await.is_ok());
        assert!(limits.check_ip(ip()).await.is_err());
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "one try, then wait");
        let health = limits.health().await;
        assert_eq!((health.status, health.backend), ("degraded", "local"));
        assert!(health.detail.unwrap().contains("fake: connection refused"));
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            1,
            "readyz waits its turn too"
        );

        // Back: the next try after the interval finds it and it decides again.
        fake.failing.store(false, Ordering::SeqCst);
        let _ = limits.check_principal("alice").await;
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(OPTIONS.retry_every).await;
        assert!(
            limits.check_principal("alice").await.is_err(),
            "the fake refuses"
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        assert_eq!(limits.health().await.status, "ok");
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_that_does_not_answer_costs_one_deadline_per_interval() {
        let fake = Arc::new(Fake::default());
        fake.hanging.store(true, Ordering::SeqCst);
        let limits = limits(&fake);
        assert!(limits.check_ip(ip()).await.is_ok(), "decided locally");
        for _ in 0..10 {
            let _ = limits.check_ip(ip()).await;
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        let health = limits.health().await;
        assert!(health.detail.unwrap().contains("no answer within"));
        // readyz finds it back when the retry is due, with no request at all.
        fake.hanging.store(false, Ordering::SeqCst);
        tokio::time::advance(OPTIONS.retry_every).await;
        assert_eq!(limits.health().await.status, "ok");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn readyz_notices_an_outage_without_traffic() {
        let fake = Arc::new(Fake::default());
        let limits = limits(&fake);
        assert_eq!(limits.health().await.status, "ok");
        fake.failing.store(true, Ordering::SeqCst);
        assert_eq!(limits.health().await.status, "degraded");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }
}
