//! A rolling restart behind a balancer: replica A gets SIGTERM, drains, exits 0 and comes
//! back as a new process while clients keep sending requests through the balancer; not one
//! request fails.
//!
//! Needs the drain of design §8.2 (on SIGTERM `/readyz` answers 503 for
//! `server.drain_seconds` while everything else is still served, with `Connection: close`;
//! then the server stops accepting and finishes what is in flight). Without it, A stops
//! accepting at once, and the connections the balancer still sends it before its next
//! readiness poll fail.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use june_testkit::Balancer;
use serde_json::json;

use crate::harness::{Cluster, client, eventually, read};

/// Long enough for the balancer (polling every 100 ms) to see `/readyz` go 503 many times
/// over before A stops accepting.
const DRAIN_SECONDS: &str = "2";

#[derive(Default)]
struct Load {
    ok: AtomicUsize,
    failed: AtomicUsize,
    /// The first failures, for the report.
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Load {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 20 {
            failures.push(what);
        }
    }
}

/// Creates a session and reads it back, in a loop, through the balancer.
async fn worker(n: usize, keep_alive: bool, base: String, load: Arc<Load>) {
    let client = client(keep_alive);
    let mut i = 0;
    while !load.stop.load(Ordering::SeqCst) {
        i += 1;
        let user = format!("rolling-{n}-{i}");
        let created = client
            .post(format!("{base}/api/sessions"))
            .json(&json!({ "user_id": user }))
            .send()
            .await;
        let id = match created {
            Ok(resp) => match read(resp).await {
                (200, body) => body["session_id"].as_str().unwrap_or_default().to_owned(),
                (status, body) => {
                    load.fail(format!("create: {status} {body}"));
                    continue;
                }
            },
            Err(e) => {
                load.fail(format!("create: {e:?}"));
                continue;
            }
        };
        load.ok.fetch_add(1, Ordering::SeqCst);
        match client.get(format!("{base}/api/sessions/{id}")).send().await {
            Ok(resp) => match read(resp).await {
                (200, _) => {
                    load.ok.fetch_add(1, Ordering::SeqCst);
                }
                (status, body) => load.fail(format!("read: {status} {body}")),
            },
            Err(e) => load.fail(format!("read: {e:?}")),
        }
    }
}

#[tokio::test]
async fn a_rolling_restart_behind_a_balancer_fails_no_request() {
    let cluster = Cluster::start(&[("JUNE__SERVER__DRAIN_SECONDS", DRAIN_SECONDS)]).await;
    let mut a = cluster.spawn("a").await;
    let b = cluster.spawn("b").await;
    let lb = Balancer::start();
    let (a_id, b_id) = (lb.add(a.addr()), lb.add(b.addr()));
    eventually(
        "both are in the balancer",
        Duration::from_secs(10),
        async || (lb.is_ready(a_id) && lb.is_ready(b_id)).then_some(()),
    )
    .await;

    // Keep-alive clients, which the drain must move with `Connection: close`, and clients
    // that open a connection per request, which the balancer places anew each time.
    let load = Arc::new(Load::default());
    let workers: Vec<_> = (0..6)
        .map(|n| tokio::spawn(worker(n, n % 2 == 0, lb.url(), load.clone())))
        .collect();
    eventually("requests flow", Duration::from_secs(30), async || {
        (load.ok.load(Ordering::SeqCst) >= 40).then_some(())
    })
    .await;

    a.terminate();
    let status = a.exit_status(Duration::from_secs(30)).await;
    assert!(status.success(), "SIGTERM ends with exit 0, not {status}");
    // Checked after the failures, which say more when this does not hold.
    let unready_at_exit = !lb.is_ready(a_id);
    lb.remove(a_id);

    let a2 = cluster.spawn("a2").await;
    let a2_id = lb.add(a2.addr());
    let b_before = lb.answered(b_id);
    eventually(
        "the new A serves through the balancer",
        Duration::from_secs(30),
        async || (lb.answered(a2_id) >= 10).then_some(()),
    )
    .await;
    load.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    let failed = load.failed.load(Ordering::SeqCst);
    assert_eq!(
        failed,
        0,
        "failed requests (of {}), the first ones: {:#?}",
        failed + load.ok.load(Ordering::SeqCst),
        load.failures.lock().unwrap()
    );
    assert!(
        unready_at_exit,
        "the balancer had taken A out by the time it exited"
    );
    assert_eq!(lb.refused(), 0, "the balancer always had a ready replica");
    assert!(lb.answered(a_id) > 0, "A served before its restart");
    assert!(lb.answered(b_id) > b_before, "B served alongside the new A");
    drop((a, a2, b, lb));
    cluster.finish().await;
}
