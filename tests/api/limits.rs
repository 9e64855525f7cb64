//! Rate limits behind an ingress and across replicas (issue 17, design §8.2): the client
//! address comes from forwarding headers only through trusted proxies, and
//! `RATE_LIMIT_REDIS_URL` makes every replica count one budget.
//!
//! No assertion is about speed: a count of answered requests is checked against what the
//! budget allows over the time the test actually took (`burst + rate × elapsed`).

use std::time::{Duration, Instant};

use crate::helpers::{TestApp, spawn_app_with};

const REDIS: &str = "redis://127.0.0.1:6379";

/// Requests the budget allows over `elapsed`: the burst, plus one refill per started second
/// (at `per_second` = 1).
fn budget(burst: u64, elapsed: Duration) -> u64 {
    burst + elapsed.as_secs() + 1
}

/// Sends `n` requests, the i-th to `apps[i % apps.len()]` as `request` builds it. Returns how
/// many were answered and the `Retry-After` of the last 429; any other status fails the test
/// (a limit, or Redis away, never turns into an error).
async fn send_many(
    apps: &[&TestApp],
    n: usize,
    request: impl Fn(&TestApp, usize) -> reqwest::RequestBuilder,
) -> (u64, Option<String>) {
    let (mut answered, mut retry_after) = (0, None);
    for i in 0..n {
        let resp = request(apps[i % apps.len()], i).send().await.unwrap();
        match resp.status().as_u16() {
            200 => answered += 1,
            429 => {
                retry_after = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
            }
            other => panic!("status {other}: {}", resp.text().await.unwrap()),
        }
    }
    (answered, retry_after)
}

/// `GET /` (budgeted per address, no store call) with `headers`.
fn root(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    headers
        .iter()
        .fold(app.client.get(app.url("/")), |req, (name, value)| {
            req.header(*name, *value)
        })
}

/// The status of one `GET /` with `headers`.
async fn status(app: &TestApp, headers: &[(&str, &str)]) -> u16 {
    root(app, headers).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_from_an_untrusted_peer_does_not_escape_the_address_budget() {
    // Arrange: no trusted proxy (the default), one request per second, a burst of three.
    let app = spawn_app_with(&[
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "1"),
        ("JUNE__RATE_LIMIT__IP_BURST", "3"),
    ])
    .await;

    // Act: every request claims another client, in both headers.
    let started = Instant::now();
    let (answered, _) = send_many(&[&app], 20, |app, n| {
        let xff = format!("203.0.113.{n}");
        let forwarded = format!("for=198.51.100.{n}");
        root(app, &[("x-forwarded-for", &xff), ("forwarded", &forwarded)])
    })
    .await;

    // Assert: one budget for the peer, whatever the headers said.
    let allowed = budget(3, started.elapsed());
    assert!(
        answered <= allowed,
        "{answered} answered, the budget allows {allowed}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = spawn_app_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "1"),
        ("JUNE__RATE_LIMIT__IP_BURST", "2"),
    ])
    .await;

    // Client A spends its budget behind the proxy (the test client at 127.0.0.1).
    let started = Instant::now();
    let (answered, refused) = send_many(&[&app], 20, |app, _| {
        root(app, &[("x-forwarded-for", "203.0.113.1")])
    })
    .await;
    let allowed = budget(2, started.elapsed());
    assert!(
        answered <= allowed,
        "{answered} answered, the budget allows {allowed}"
    );
    assert_eq!(
        refused.as_deref(),
        Some("1"),
        "A was refused with Retry-After"
    );

    // Other clients behind the same proxy, in either header, and the proxy itself: fresh
    // budgets, so their first request is answered.
    let b = [("x-forwarded-for", "203.0.113.1, 203.0.113.2")];
    assert_eq!(
        status(&app, &b).await,
        200,
        "the right-most untrusted hop, not A"
    );
    let c = [("forwarded", r#"for="[2001:db8::1]:4711""#)];
    assert_eq!(status(&app, &c).await, 200);
    assert_eq!(status(&app, &[]).await, 200, "the proxy's own requests");

    // Refusals are counted by scope, never by address.
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"june_rate_limited_total{scope="address"}"#),
        "{text}"
    );
    assert!(!text.contains("203.0.113.1"));
}

/// Two in-process replicas on one Redis, with a key prefix of their own, per-second rates of
/// one, and `extra`.
async fn replicas_on_redis(extra: &[(&str, &str)]) -> (TestApp, TestApp) {
    let prefix = format!("june-e2e:{}:", uuid::Uuid::new_v4());
    let mut env = vec![
        ("RATE_LIMIT_REDIS_URL", REDIS),
        ("JUNE__RATE_LIMIT__REDIS_KEY_PREFIX", prefix.as_str()),
        // Generous: these tests are about sharing; a slow machine must not make them fall back.
        ("JUNE__RATE_LIMIT__REDIS_TIMEOUT_MS", "5000"),
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "1"),
        ("JUNE__RATE_LIMIT__PER_SECOND", "1"),
    ];
    env.extend_from_slice(extra);
    let a = spawn_app_with(&env).await;
    let b = a.replica().await;
    (a, b)
}

/// The sum of answered requests across both replicas stays within one budget, and both say
/// in `/readyz` that Redis counts it.
async fn assert_one_budget(apps: [&TestApp; 2], answered: u64, burst: u64, started: Instant) {
    let allowed = budget(burst, started.elapsed());
    assert!(
        answered <= allowed,
        "{answered} answered across both, one budget allows {allowed}"
    );
    for app in apps {
        let (status, body) = app.get("/readyz").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["rate_limit"]["status"], "ok", "{body}");
        assert_eq!(body["checks"]["rate_limit"]["backend"], "redis", "{body}");
    }
}

#[tokio::test]
async fn two_replicas_on_one_redis_share_one_address_budget() {
    let (a, b) = replicas_on_redis(&[("JUNE__RATE_LIMIT__IP_BURST", "3")]).await;

    // Alternate between the replicas.
    let started = Instant::now();
    let (answered, retry_after) = send_many(&[&a, &b], 20, |app, _| root(app, &[])).await;

    assert_one_budget([&a, &b], answered, 3, started).await;
    assert_eq!(retry_after.as_deref(), Some("1"), "Redis's Retry-After");
}

/// The same for one principal (an API key) calling both replicas.
#[tokio::test]
async fn two_replicas_on_one_redis_share_one_principal_budget() {
    let key = "usr-key-0123456789abcdef";
    let keys = format!("{key}:user");
    let (a, b) = replicas_on_redis(&[
        ("JUNE__RATE_LIMIT__IP_BURST", "1000"),
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "1000"),
        ("JUNE__RATE_LIMIT__BURST", "2"),
        ("AUTH_MODE", "api_key"),
        ("API_KEYS", &keys),
    ])
    .await;

    let started = Instant::now();
    let (answered, retry_after) = send_many(&[&a, &b], 20, |app, _| {
        app.client.get(app.url("/api/sessions")).bearer_auth(key)
    })
    .await;

    assert_one_budget([&a, &b], answered, 2, started).await;
    assert_eq!(retry_after.as_deref(), Some("1"));
}

#[tokio::test]
async fn with_redis_away_requests_are_decided_locally_and_readyz_says_degraded() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let app = spawn_app_with(&[
        ("RATE_LIMIT_REDIS_URL", &url),
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "1"),
        ("JUNE__RATE_LIMIT__IP_BURST", "2"),
    ])
    .await;

    // Every request gets its answer, from this replica's own budget.
    let started = Instant::now();
    let (answered, _) = send_many(&[&app], 10, |app, _| root(app, &[])).await;
    let allowed = budget(2, started.elapsed());
    assert!(
        answered >= 1 && answered <= allowed,
        "{answered} of {allowed}"
    );

    // Ready, but degraded, and the gauge says the local limiter decides.
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let check = &body["checks"]["rate_limit"];
    assert_eq!(check["status"], "degraded", "{body}");
    assert_eq!(check["backend"], "local", "{body}");
    assert!(
        check["detail"].as_str().unwrap().starts_with("redis: "),
        "{body}"
    );
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"june_rate_limit_backend{backend="redis"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"june_rate_limit_backend{backend="local"} 1"#),
        "{text}"
    );
}
