//! What one process stores, another serves: sessions and webhooks across processes.

use june_testkit::webhook::{VALID_FOR_SECS, authorization, participant_event, protojson};
use serde_json::json;

use crate::harness::Cluster;

#[tokio::test]
async fn a_session_made_on_one_process_is_read_tokened_and_deleted_on_another() {
    let cluster = Cluster::start(&[]).await;
    let a = cluster.spawn("a").await;
    let b = cluster.spawn("b").await;

    let (status, created) = a.post("/api/sessions", json!({"user_id": "alice"})).await;
    assert_eq!(status, 200, "{created}");
    let id = created["session_id"].as_str().unwrap();
    let room = created["room_name"].as_str().unwrap();

    let (status, read) = b.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["room_name"], room);
    assert_eq!(read["status"], "created");
    let claims = cluster.verify(&read["access_token"]);
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.video.room, room);

    let (status, guest) = b
        .post(
            &format!("/api/sessions/{id}/guest-token"),
            json!({"guest_name": "Sam"}),
        )
        .await;
    assert_eq!(status, 200, "{guest}");
    assert_eq!(guest["room_name"], room);
    assert_eq!(cluster.verify(&guest["access_token"]).video.room, room);

    let (status, _) = b.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    let (status, _) = a.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 404, "deleted once, by the other process");
    let (_, read) = a.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(read["status"], "ended");
    assert!(cluster.lk.room(room).is_none(), "the room is gone");
    drop((a, b));
    cluster.finish().await;
}

#[tokio::test]
async fn a_webhook_delivered_to_two_processes_is_applied_once() {
    let cluster = Cluster::start(&[]).await;
    let a = cluster.spawn("a").await;
    let b = cluster.spawn("b").await;
    let (status, created) = a.post("/api/sessions", json!({"user_id": "bob"})).await;
    assert_eq!(status, 200, "{created}");
    let id = created["session_id"].as_str().unwrap();
    let name = created["room_name"].as_str().unwrap();
    let room = cluster.lk.room(name).unwrap();
    let carol = cluster.lk.join(name, "carol", true);

    let body = protojson(&participant_event("participant_joined", &room, &carol));
    let auth = authorization(
        body.as_bytes(),
        cluster.lk.api_key(),
        cluster.lk.api_secret(),
        VALID_FOR_SECS,
    );
    let (ra, rb) = tokio::join!(a.post_webhook(&body, &auth), b.post_webhook(&body, &auth));
    assert_eq!((ra.0, rb.0), (200, 200), "{ra:?} {rb:?}");
    let answers = [&ra.1["status"], &rb.1["status"]];
    assert!(answers.contains(&&json!("received")), "{answers:?}");

    for replica in [&a, &b] {
        let (status, log) = replica.get(&format!("/api/sessions/{id}/events")).await;
        assert_eq!(status, 200, "{log}");
        let events = log["events"].as_array().unwrap();
        assert_eq!(
            events.len(),
            1,
            "one event, seen by {}: {log}",
            replica.name
        );
        let (_, session) = replica.get(&format!("/api/sessions/{id}")).await;
        assert_eq!(session["participant_count"], 1, "{session}");
    }
    // Delivered again later, to either: a duplicate.
    let (status, again) = b.post_webhook(&body, &auth).await;
    assert_eq!((status, again), (200, json!({"status": "duplicate"})));
    drop((a, b));
    cluster.finish().await;
}
