//! One client hammering two processes gets one per-address budget between them, shared
//! through Redis (`RATE_LIMIT_REDIS_URL`), not one per replica.
//!
//! Needs the shared limiter and the trusted-proxy rules (issue #17 parts 1 and 2). The test's
//! Redis keys are its own whatever else uses the server: a key prefix unique to the run, a
//! client address unique to the run (named by `X-Forwarded-For` from the trusted 127.0.0.1),
//! and a logical database of its own (9). Keys expire by themselves, so nothing is flushed.
//! Redis gets a second per call, not the 50 ms default: a call that misses its deadline is
//! decided by the local limiter, and this test is about the shared one, not the fallback.

use std::time::Instant;

use futures_util::StreamExt;

use crate::harness::{Cluster, client};

const RATE: u32 = 5;
const BURST: u32 = 10;
/// Far more than one budget over the time they take, half to each replica.
const REQUESTS: usize = 200;

#[tokio::test]
async fn two_processes_share_one_per_address_budget_through_redis() {
    let (rate, burst) = (RATE.to_string(), BURST.to_string());
    let run = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("june:rl:replicas:{run}:");
    let cluster = Cluster::start(&[
        ("RATE_LIMIT_REDIS_URL", "redis://127.0.0.1:6379/9"),
        ("JUNE__RATE_LIMIT__REDIS_KEY_PREFIX", &prefix),
        ("JUNE__RATE_LIMIT__REDIS_TIMEOUT_MS", "1000"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", &rate),
        ("JUNE__RATE_LIMIT__IP_BURST", &burst),
    ])
    .await;
    let a = cluster.spawn("a").await;
    let b = cluster.spawn("b").await;
    // An address from the benchmarking range 198.18.0.0/15, unique to this run.
    let [hi, lo, ..] = *uuid::Uuid::new_v4().as_bytes();
    let client_ip = format!("198.{}.{hi}.{lo}", 18 + lo % 2);

    let http = client(true);
    let started = Instant::now();
    let answers: Vec<(&str, u16)> = futures_util::stream::iter(0..REQUESTS)
        .map(|i| {
            let replica = if i % 2 == 0 { &a } else { &b };
            let request = http
                .get(replica.url("/api/sessions?user_id=nobody"))
                .header("x-forwarded-for", &client_ip);
            async move {
                let resp = request.send().await.expect("an answer");
                (replica.name.as_str(), resp.status().as_u16())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    // Every decision was made inside this window, so the budget over it is an upper bound.
    let elapsed = started.elapsed();

    let unexpected: Vec<_> = answers
        .iter()
        .filter(|(_, s)| *s != 200 && *s != 429)
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    let ok = answers.iter().filter(|(_, s)| *s == 200).count() as u64;
    let budget = u64::from(BURST) + (f64::from(RATE) * elapsed.as_secs_f64()).ceil() as u64 + 1;
    assert!(
        ok <= budget,
        "{ok} requests allowed across both replicas in {elapsed:?}; one budget is at most {budget} \
         (burst {BURST} + {RATE}/s)"
    );
    assert!(ok >= u64::from(BURST), "the burst is allowed: {ok}");
    for name in ["a", "b"] {
        assert!(
            answers.iter().any(|(r, s)| *r == name && *s == 429),
            "{name} refused its share"
        );
    }
    drop((a, b));
    cluster.finish().await;
}
