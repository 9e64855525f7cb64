//! A client generated from the committed spec (openapi-python-client, installed and run by
//! `make python-client`) drives the main flow against the real server.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_generated_python_client_drives_the_main_flow() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var("JUNE_CONFORMANCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv/bin/python"));
    let client_dir = root.join("target/python-client");
    assert!(
        client_dir.join("june_orchestrator_client").exists(),
        "{} is missing: run `make python-client` (make test does)",
        client_dir.display()
    );
    let app = spawn_app().await;
    // The owner joins the room as soon as the session has made it (a room LiveKit already
    // had would be refused: 409 room_name_taken).
    let (room, joiner) = ("py-client-room", "py-client");
    app.lk.join_when_created(room, joiner, true);
    let script = root.join("tests/clients/python_client_flow.py");
    let args = vec![
        script.display().to_string(),
        client_dir.display().to_string(),
        app.address.clone(),
        joiner.to_owned(),
        room.to_owned(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new(python).args(args).output())
        .await
        .unwrap()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "generated client flow failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}
