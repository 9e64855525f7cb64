//! The TypeScript client (clients/typescript: openapi-typescript types + openapi-fetch, its
//! packages installed by `make ts-client-deps`): the committed generated file is what the
//! pinned generator makes of the committed spec, and the client drives the session flow
//! against the real server, with the LiveKit double and a wiremock Gemini set up here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::helpers::spawn_app_with;

/// A service key: it may name the owner of the sessions it creates.
const API_KEY: &str = "ts-client-service-key-0123456789";
/// What the fake model answers, sent back by the chat route.
use crate::rust_client::REPLY;

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript")
}

/// `node` from `JUNE_NODE` or the `PATH`.
fn node() -> Command {
    Command::new(std::env::var("JUNE_NODE").unwrap_or_else(|_| "node".to_owned()))
}

/// A package's CLI script inside the client's node_modules, which must be installed.
fn bin(dir: &Path, script: &str) -> PathBuf {
    let path = dir.join("node_modules").join(script);
    assert!(
        path.exists(),
        "{} is missing: run `make ts-client-deps` (make test does)",
        path.display()
    );
    path
}

fn ran(what: &str, out: std::io::Result<Output>) -> String {
    let out = out.unwrap_or_else(|e| panic!("{what} did not start (is node on the PATH?): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs a blocking command off the runtime, so the server in this process keeps answering.
async fn run(what: &'static str, mut command: Command) -> String {
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap();
    ran(what, out)
}

#[tokio::test]
async fn the_committed_typescript_client_is_what_the_spec_generates() {
    // Arrange: the same generator and arguments as `npm run generate` (package.json), into a
    // temp folder.
    let dir = client_dir();
    let cli = bin(&dir, "openapi-typescript/bin/cli.js");
    let out = tempfile::tempdir().unwrap();
    let fresh = out.path().join("schema.d.ts");
    let mut command = node();
    command
        .current_dir(&dir)
        .arg(cli)
        .arg("../../openapi/openapi.json")
        .arg("--output")
        .arg(&fresh);
    // Act
    run("openapi-typescript", command).await;
    // Assert
    let committed = std::fs::read_to_string(dir.join("src/schema.d.ts")).unwrap();
    let generated = std::fs::read_to_string(&fresh).unwrap();
    assert!(
        committed == generated,
        "clients/typescript/src/schema.d.ts is stale: run `make openapi` and commit it"
    );
}

#[tokio::test]
async fn the_generated_typescript_client_drives_the_session_flow() {
    // Arrange: a server under API keys with a fake Gemini, and the owner joining the room
    // as soon as the session has made it.
    let gemini = crate::rust_client::gemini().await;
    let gemini_url = gemini.uri();
    let keys = format!("{API_KEY}:service");
    let app = spawn_app_with(&[
        ("AUTH_MODE", "api_key"),
        ("API_KEYS", keys.as_str()),
        ("GEMINI_API_KEY", "test-gemini-key"),
        ("GEMINI_BASE_URL", gemini_url.as_str()),
        ("AI_MODEL", "test-model"),
    ])
    .await;
    let (owner, room) = ("ts-owner", "ts-client-room");
    app.lk.join_when_created(room, owner, true);
    let dir = client_dir();
    let mut build = node();
    build
        .current_dir(&dir)
        .arg(bin(&dir, "typescript/bin/tsc"))
        .args(["-p", "."]);
    // `tsc` with the strict tsconfig: a type error in the client or the test fails here.
    run("tsc", build).await;

    // Act
    let mut flow = node();
    flow.current_dir(&dir)
        .args(["--test", "build/test/flow.test.js"])
        .env("JUNE_BASE_URL", &app.address)
        .env("JUNE_API_KEY", API_KEY)
        .env("JUNE_OWNER", owner)
        .env("JUNE_ROOM", room)
        .env("JUNE_REPLY", REPLY);
    let report = run("node --test", flow).await;

    // Assert: node's runner exits non-zero on any failed test; the summary says how many ran.
    assert!(report.contains("# fail 0"), "{report}");
    assert!(!report.contains("# pass 0"), "{report}");
    println!("{report}");
    assert_eq!(
        gemini.received_requests().await.unwrap().len(),
        1,
        "the chat reached the fake Gemini once"
    );
}
