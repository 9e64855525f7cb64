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
    // The owner shows up in the room as a real client would after joining.
    let joiner = "py-client";
    let lk = app.lk.clone();
    let script = root.join("tests/clients/python_client_flow.py");
    let args = vec![
        script.display().to_string(),
        client_dir.display().to_string(),
        app.address.clone(),
        joiner.to_owned(),
    ];
    // Join the owner once the room exists: the script creates it, so watch for it.
    let watcher = tokio::spawn(async move {
        for _ in 0..200 {
            if let Some(room) = lk.room_names().into_iter().next() {
                lk.join(&room, joiner, true);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    let out = tokio::task::spawn_blocking(move || Command::new(python).args(args).output())
        .await
        .unwrap()
        .expect("python runs");
    watcher.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "generated client flow failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}
