//! Schemathesis (installed by `make schemathesis-deps`) generates requests from the committed
//! spec against the real server with every dependency present (the LiveKit double, a fake
//! Gemini and TTS), under `AUTH_MODE=api_key`: every check, every phase (examples, coverage,
//! fuzzing, stateful through the spec's links), and no failure. The one check left out is
//! `negative_data_rejection`: the server reads old clients' bodies leniently on purpose
//! (docs/compat.md, "What the spec says and the server reads").

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use june_testkit::drip::{Chunk, DripServer};
use june_testkit::recorder::Recorder;

use crate::helpers::spawn_app_with;

/// A service key: it may act for any user, so generated `user_id`s and identities are the
/// caller's to name, as the spec says of admins and services.
const API_KEY: &str = "schemathesis-service-key-0123456789";

#[tokio::test]
async fn every_check_and_phase_of_schemathesis_passes_under_api_keys() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let st = root.join(".venv/bin/schemathesis");
    assert!(
        st.exists(),
        "{} is missing: run `make schemathesis-deps` (make test does)",
        st.display()
    );
    let reply =
        r#"data: {"candidates":[{"content":{"parts":[{"text":"Fine."}]},"finishReason":"STOP"}]}"#;
    let gemini = DripServer::start(vec![Chunk::now(format!("{reply}\r\n\r\n"))]);
    let tts = Recorder::start();
    let (gemini_url, tts_url) = (gemini.url(), tts.url());
    let keys = format!("{API_KEY}:service");
    let app = spawn_app_with(&[
        ("AUTH_MODE", "api_key"),
        ("API_KEYS", keys.as_str()),
        // Schemathesis sends one `Authorization` to every operation: the STT bot's token is
        // the same secret, so its routes are reached too (each scheme is still checked on
        // its own, with no and with wrong credentials, by `ignored_auth`).
        ("STT_SERVICE_TOKEN", API_KEY),
        // `POST /api/livekit/token` without a room needs it (400 otherwise, as documented).
        ("JUNE__LIVEKIT__DEFAULT_BOT_ROOM", "schemathesis-bots"),
        ("GEMINI_API_KEY", "k"),
        ("GEMINI_BASE_URL", gemini_url.as_str()),
        ("TTS_SERVICE_URL", tts_url.as_str()),
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "0"),
        ("JUNE__RATE_LIMIT__PER_SECOND", "0"),
    ])
    .await;
    let report = tempfile::tempdir().unwrap();
    let args = [
        // Relative to the run's working directory, tests/api, as is the hooks file it names.
        "--config-file",
        "schemathesis.toml",
        "run",
        &root.join("openapi/openapi.json").display().to_string(),
        "--url",
        &app.address,
        "--header",
        &format!("Authorization: Bearer {API_KEY}"),
        "--checks",
        "all",
        "--exclude-checks",
        "negative_data_rejection",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "25",
        "--seed",
        "20261125",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--report-dir",
        &report.path().display().to_string(),
        "--no-color",
    ]
    .map(str::to_owned);
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::task::spawn_blocking(move || {
            Command::new(st)
                .args(args)
                .current_dir(root.join("tests/api"))
                .output()
        }),
    )
    .await
    .expect("schemathesis finishes within 10 minutes")
    .unwrap()
    .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}\nschemathesis ran for {:?}", started.elapsed());
}
