//! Schemathesis (installed by `make schemathesis-deps`) generates requests from the committed
//! spec against the real server with every dependency present (the LiveKit double, a fake
//! Gemini and TTS): no 5xx, and every response matches its schema.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use june_testkit::drip::{Chunk, DripServer};
use june_testkit::recorder::Recorder;

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn generated_requests_get_no_server_error_and_schema_conforming_answers() {
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
    let app = spawn_app_with(&[
        ("GEMINI_API_KEY", "k"),
        ("GEMINI_BASE_URL", gemini_url.as_str()),
        ("TTS_SERVICE_URL", tts_url.as_str()),
        ("STT_SERVICE_TOKEN", "stt-token-for-schemathesis"),
        ("JUNE__RATE_LIMIT__IP_PER_SECOND", "0"),
    ])
    .await;
    let args = vec![
        "run".to_owned(),
        root.join("openapi/openapi.json").display().to_string(),
        "--url".to_owned(),
        app.address.clone(),
        "--max-examples".to_owned(),
        "15".to_owned(),
        "--checks".to_owned(),
        "not_a_server_error,response_schema_conformance".to_owned(),
        "--seed".to_owned(),
        "20261125".to_owned(),
        "--request-timeout".to_owned(),
        "10".to_owned(),
    ];
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::task::spawn_blocking(move || Command::new(st).args(args).output()),
    )
    .await
    .expect("schemathesis finishes within 5 minutes")
    .unwrap()
    .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
}
