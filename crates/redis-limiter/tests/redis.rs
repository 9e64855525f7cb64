//! The GCRA script against the real Redis on 127.0.0.1:6379 (a key prefix per test), and
//! the fallback of `RateLimits` when Redis is away: a closed port, a cut path and a stalled
//! one (`june_testkit::TcpProxy`). No assertion is about speed; waits have deadlines only so
//! that a bug cannot hang the suite.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use june_http_api::error::ApiError;
use june_http_api::limits::{
    LimitBackend, LimitKey, Rate, RateLimits, Rates, SharedOptions, Verdict,
};
use june_redis_limiter::{RedisLimiter, RedisOptions};
use june_testkit::proxy::TcpProxy;

const REDIS: &str = "redis://127.0.0.1:6379";
/// Bounds every wait for a recovery (a hang fails the test instead of stalling the suite).
const DEADLINE: Duration = Duration::from_secs(20);

fn rates(per_second: u32, burst: u32) -> Rates {
    let rate = Rate { per_second, burst };
    Rates {
        principal: rate,
        address: rate,
    }
}

fn limiter_at(url: &str, rates: Rates, timeout: Duration) -> RedisLimiter {
    RedisLimiter::new(
        url,
        RedisOptions {
            key_prefix: format!("june-test:{}:", uuid::Uuid::new_v4()),
            timeout,
        },
        rates,
    )
    .unwrap()
}

fn limiter(rates: Rates) -> RedisLimiter {
    limiter_at(REDIS, rates, Duration::from_secs(5))
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

/// Unix microseconds of a fixed instant, for steps through a budget without sleeping.
const T0: u64 = 1_800_000_000_000_000;

#[tokio::test]
async fn the_script_allows_the_burst_then_refuses_then_refills() {
    // Two per second (one request per 500 ms), a burst of three.
    let l = limiter(rates(2, 3));
    let alice = LimitKey::Principal("alice");

    for _ in 0..3 {
        assert_eq!(
            l.acquire_at(alice, Some(T0)).await.unwrap(),
            Verdict::Allowed
        );
    }
    assert_eq!(
        l.acquire_at(alice, Some(T0)).await.unwrap(),
        Verdict::Limited {
            retry_after: Duration::from_millis(500)
        },
        "the fourth waits exactly one emission interval"
    );
    // Part of the way, still refused, with the rest of the wait.
    assert_eq!(
        l.acquire_at(alice, Some(T0 + 200_000)).await.unwrap(),
        Verdict::Limited {
            retry_after: Duration::from_millis(300)
        }
    );
    // One interval later exactly one request fits.
    assert_eq!(
        l.acquire_at(alice, Some(T0 + 500_000)).await.unwrap(),
        Verdict::Allowed
    );
    assert!(matches!(
        l.acquire_at(alice, Some(T0 + 500_000)).await.unwrap(),
        Verdict::Limited { .. }
    ));
    // Idle long enough, the whole burst is back, never more.
    let later = T0 + 10_000_000;
    for _ in 0..3 {
        assert_eq!(
            l.acquire_at(alice, Some(later)).await.unwrap(),
            Verdict::Allowed
        );
    }
    assert!(matches!(
        l.acquire_at(alice, Some(later)).await.unwrap(),
        Verdict::Limited { .. }
    ));
}

#[tokio::test]
async fn a_burst_below_the_rate_is_raised_to_one_seconds_worth() {
    // As the local limiter does: ten per second allows ten at once, whatever the burst says.
    let l = limiter(rates(10, 3));
    let bob = LimitKey::Principal("bob");
    for _ in 0..10 {
        assert_eq!(l.acquire_at(bob, Some(T0)).await.unwrap(), Verdict::Allowed);
    }
    assert_eq!(
        l.acquire_at(bob, Some(T0)).await.unwrap(),
        Verdict::Limited {
            retry_after: Duration::from_millis(100)
        }
    );
}

#[tokio::test]
async fn every_key_and_scope_has_its_own_budget() {
    let l = limiter(rates(1, 1));
    assert_eq!(
        l.acquire_at(LimitKey::Principal("alice"), Some(T0))
            .await
            .unwrap(),
        Verdict::Allowed
    );
    assert!(matches!(
        l.acquire_at(LimitKey::Principal("alice"), Some(T0))
            .await
            .unwrap(),
        Verdict::Limited { .. }
    ));
    for key in [
        LimitKey::Principal("bob"),
        LimitKey::Address(ip(1)),
        LimitKey::Address(ip(2)),
    ] {
        assert_eq!(l.acquire_at(key, Some(T0)).await.unwrap(), Verdict::Allowed);
    }
    // A disabled scope never touches Redis.
    let principals_only = limiter(Rates {
        principal: Rate {
            per_second: 1,
            burst: 1,
        },
        address: Rate::OFF,
    });
    let key = principals_only.key(LimitKey::Address(ip(1)));
    for _ in 0..3 {
        assert_eq!(
            principals_only
                .acquire(LimitKey::Address(ip(1)))
                .await
                .unwrap(),
            Verdict::Allowed
        );
    }
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn a_key_lives_only_until_its_budget_is_full_again() {
    // Two per second: each request pushes the key's life 500 ms further, up to the burst.
    let l = limiter(rates(2, 4));
    let key = l.key(LimitKey::Principal("alice"));
    let mut conn = redis().await;

    assert_eq!(
        l.acquire_at(LimitKey::Principal("alice"), Some(T0))
            .await
            .unwrap(),
        Verdict::Allowed
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 500, "{ttl} ms");
    for _ in 0..3 {
        l.acquire_at(LimitKey::Principal("alice"), Some(T0))
            .await
            .unwrap();
    }
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 500 && ttl <= 2000, "{ttl} ms");
    // A refusal writes nothing: the life stays the same length.
    l.acquire_at(LimitKey::Principal("alice"), Some(T0))
        .await
        .unwrap();
    let after: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(after <= ttl, "{after} ms after {ttl} ms");
}

#[tokio::test]
async fn on_redis_time_the_burst_is_refused_then_refilled() {
    // Twenty per second: a burst of twenty, then a refill every 50 ms.
    let l = limiter(rates(20, 20));
    let key = LimitKey::Address(ip(9));
    for _ in 0..20 {
        assert_eq!(l.acquire(key).await.unwrap(), Verdict::Allowed);
    }
    let Verdict::Limited { retry_after } = l.acquire(key).await.unwrap() else {
        panic!("over the burst on Redis's clock")
    };
    assert!(retry_after <= Duration::from_millis(50), "{retry_after:?}");
    tokio::time::sleep(retry_after).await;
    let refilled = tokio::time::timeout(DEADLINE, async {
        while l.acquire(key).await.unwrap() != Verdict::Allowed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(refilled.is_ok(), "the budget refills");
    assert!(l.ping().await.is_ok());
}

/// Limits shared through `limiter`, falling back fast and retrying every 50 ms.
fn shared(limiter: RedisLimiter, rates: Rates, timeout: Duration) -> RateLimits {
    RateLimits::shared(
        rates,
        Arc::new(limiter),
        SharedOptions {
            timeout,
            retry_every: Duration::from_millis(50),
        },
    )
}

/// Checks until `health` says `status`, within the deadline.
async fn until_status(limits: &RateLimits, status: &str) {
    let reached = tokio::time::timeout(DEADLINE, async {
        loop {
            if limits.health().await.status == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "never {status}: {:?}",
        limits.health().await
    );
}

async fn exists(key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn with_redis_on_a_closed_port_the_local_limiter_decides() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let rates = rates(1, 2);
    let limits = shared(
        limiter_at(&url, rates, Duration::from_millis(200)),
        rates,
        Duration::from_millis(200),
    );

    // The burst of two, then a 429 with its Retry-After: the local budget, never an error.
    let answers = tokio::time::timeout(DEADLINE, async {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(limits.check_ip(ip(1)).await);
        }
        out
    })
    .await
    .expect("answered");
    assert!(answers[0].is_ok() && answers[1].is_ok(), "{answers:?}");
    assert!(
        matches!(
            answers[2],
            Err(ApiError::RateLimited {
                retry_after_secs: 1
            })
        ),
        "{answers:?}"
    );
    let health = limits.health().await;
    assert_eq!((health.status, health.backend), ("degraded", "local"));
    let detail = health.detail.unwrap();
    assert!(detail.starts_with("redis: "), "{detail}");
}

/// Redis goes away (every connection cut, new ones refused) and comes back.
#[tokio::test]
async fn a_cut_path_falls_back_and_recovers_when_redis_returns() {
    let proxy = TcpProxy::start("127.0.0.1:6379".parse::<SocketAddr>().unwrap());
    let url = format!("redis://127.0.0.1:{}", proxy.port());
    let rates = rates(100, 100);
    let limiter = limiter_at(&url, rates, Duration::from_millis(500));
    let (k1, k3) = (
        limiter.key(LimitKey::Address(ip(1))),
        limiter.key(LimitKey::Address(ip(3))),
    );
    let limits = shared(limiter, rates, Duration::from_millis(500));

    assert!(limits.check_ip(ip(1)).await.is_ok());
    assert!(exists(&k1).await, "counted in Redis");
    assert_eq!(limits.health().await.backend, "redis");

    proxy.cut();
    let answered = tokio::time::timeout(DEADLINE, limits.check_ip(ip(2))).await;
    assert!(
        matches!(answered, Ok(Ok(()))),
        "decided locally: {answered:?}"
    );
    until_status(&limits, "degraded").await;
    assert_eq!(limits.health().await.backend, "local");

    proxy.restore();
    until_status(&limits, "ok").await;
    assert_eq!(limits.health().await.backend, "redis");
    assert!(limits.check_ip(ip(3)).await.is_ok());
    assert!(exists(&k3).await, "counted in Redis again");
}

/// A silent partition: Redis neither answers nor closes. Each request pays the deadline at
/// most once per retry interval, is decided locally, and Redis is used again once it answers.
#[tokio::test]
async fn a_stalled_path_falls_back_within_the_deadline_and_recovers() {
    let proxy = TcpProxy::start("127.0.0.1:6379".parse::<SocketAddr>().unwrap());
    let url = format!("redis://127.0.0.1:{}", proxy.port());
    let rates = rates(100, 100);
    let limiter = limiter_at(&url, rates, Duration::from_millis(200));
    let key = |n| limiter.key(LimitKey::Address(ip(n)));
    let (k1, k3) = (key(1), key(3));
    let limits = shared(limiter, rates, Duration::from_millis(200));

    assert!(limits.check_ip(ip(1)).await.is_ok());
    assert!(exists(&k1).await);

    proxy.stall();
    for n in 0..5 {
        let answered = tokio::time::timeout(DEADLINE, limits.check_ip(ip(2))).await;
        assert!(matches!(answered, Ok(Ok(()))), "request {n}: {answered:?}");
    }
    let health = limits.health().await;
    assert_eq!(health.status, "degraded");
    assert!(health.detail.unwrap().contains("no answer within"));

    proxy.resume();
    until_status(&limits, "ok").await;
    assert!(limits.check_ip(ip(3)).await.is_ok());
    assert!(exists(&k3).await, "counted in Redis again");
}

/// A connection that stays silent for good (a firewall lost its state; Redis failed over):
/// the connection manager would keep waiting on it, so the limiter replaces it, and Redis is
/// used again as soon as new connections go through.
#[tokio::test]
async fn a_connection_lost_silently_is_replaced() {
    let proxy = TcpProxy::start("127.0.0.1:6379".parse::<SocketAddr>().unwrap());
    let url = format!("redis://127.0.0.1:{}", proxy.port());
    let rates = rates(100, 100);
    let limiter = limiter_at(&url, rates, Duration::from_millis(200));
    let k3 = limiter.key(LimitKey::Address(ip(3)));
    let limits = shared(limiter, rates, Duration::from_millis(200));
    assert!(limits.check_ip(ip(1)).await.is_ok());
    assert_eq!(limits.health().await.backend, "redis");

    proxy.stall();
    let answered = tokio::time::timeout(DEADLINE, limits.check_ip(ip(2))).await;
    assert!(matches!(answered, Ok(Ok(()))), "{answered:?}");
    proxy.heal_new_only();

    until_status(&limits, "ok").await;
    assert!(limits.check_ip(ip(3)).await.is_ok());
    assert!(exists(&k3).await, "counted in Redis on a new connection");
}
