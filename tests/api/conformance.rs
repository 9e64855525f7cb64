//! Conformance with an SDK we did not write: LiveKit's official Python server SDK
//! (`livekit-api`, installed into `.venv` by `make conformance-deps`) signs webhooks that our
//! server must accept, and verifies the tokens our server mints.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::spawn_app;

/// The venv's Python: `JUNE_CONFORMANCE_PYTHON`, else `<workspace>/.venv/bin/python`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("JUNE_CONFORMANCE_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

#[tokio::test]
async fn the_official_python_sdk_signs_webhooks_we_accept_and_accepts_our_tokens() {
    let py = python();
    assert!(
        py.exists(),
        "{} is missing: run `make conformance-deps` (make test does) to install LiveKit's Python SDK",
        py.display()
    );
    let app = spawn_app().await;
    let session = app.create_session("py-alice").await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/livekit_sdk.py");

    // The SDK's blocking HTTP calls run off the async runtime that serves our app.
    let args = vec![
        script.display().to_string(),
        "--url".to_owned(),
        app.url("/api/livekit-webhooks"),
        "--key".to_owned(),
        app.lk.api_key().to_owned(),
        "--secret".to_owned(),
        app.lk.api_secret().to_owned(),
        "--room".to_owned(),
        session["room_name"].as_str().unwrap().to_owned(),
        "--room-sid".to_owned(),
        session["livekit_room_sid"].as_str().unwrap().to_owned(),
        "--token".to_owned(),
        session["access_token"].as_str().unwrap().to_owned(),
        "--identity".to_owned(),
        "py-alice".to_owned(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new(py).args(args).output())
        .await
        .unwrap()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "conformance script failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");

    // What the SDK's webhooks did to the session.
    let id = session["session_id"].as_str().unwrap();
    let (_, s) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(s["status"], "active");
    assert_eq!(s["participant_count"], 1);
    let (_, log) = app.get(&format!("/api/sessions/{id}/events")).await;
    assert_eq!(log["events"].as_array().unwrap().len(), 2);
}
