//! `spawn_app()`: the real `Application` wired to the LiveKit double and a fresh database.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use june_orchestrator::Application;
use june_orchestrator::config::Settings;
use june_testkit::LiveKitDouble;
use livekit_api::access_token::{Claims, TokenVerifier};
use serde_json::Value;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        june_orchestrator::telemetry::init("debug", false, std::io::stdout);
    }
});

/// A running server and what it talks to. Clones of the LiveKit double and the temp folder
/// are shared by [`TestApp::replica`]s.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub lk: Arc<LiveKitDouble>,
    pub handle: actix_web::dev::ServerHandle,
    pub db_url: String,
    pub extra_env: Vec<(String, String)>,
    _dir: Arc<tempfile::TempDir>,
}

/// The settings a test server runs with.
pub fn env_for(
    lk: &LiveKitDouble,
    db_url: &str,
    extra: &[(String, String)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("DATABASE_URL", db_url.to_owned()),
        ("LIVEKIT_WS_URL", lk.ws_url()),
        ("LIVEKIT_API_KEY", lk.api_key().to_owned()),
        ("LIVEKIT_API_SECRET", lk.api_secret().to_owned()),
        ("JUNE__LIVEKIT__REQUEST_TIMEOUT_MS", "1000".to_owned()),
        ("JUNE__LIVEKIT__READINESS_TIMEOUT_MS", "500".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().cloned());
    env
}

async fn start(env: &HashMap<String, String>) -> (String, actix_web::dev::ServerHandle) {
    LazyLock::force(&TRACING);
    let settings = Settings::load(env, None).expect("test settings");
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    (address, handle)
}

/// A server with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A server with extra environment variables.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let lk = Arc::new(LiveKitDouble::start());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = format!("sqlite://{}/june.db", dir.path().display());
    let extra_env: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let db_url = extra_env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .map(|(_, v)| v.clone())
        .unwrap_or(db_url);
    let (address, handle) = start(&env_for(&lk, &db_url, &extra_env)).await;
    TestApp {
        address,
        client: june_testkit::http_client(),
        lk,
        handle,
        db_url,
        extra_env,
        _dir: dir,
    }
}

impl TestApp {
    /// A second server on the same database and LiveKit, as another replica would be.
    pub async fn replica(&self) -> TestApp {
        let (address, handle) = start(&env_for(&self.lk, &self.db_url, &self.extra_env)).await;
        TestApp {
            address,
            client: self.client.clone(),
            lk: self.lk.clone(),
            handle,
            db_url: self.db_url.clone(),
            extra_env: self.extra_env.clone(),
            _dir: self._dir.clone(),
        }
    }

    /// Stops the server and starts a new one on the same database and LiveKit.
    pub async fn restart(&mut self) {
        self.handle.stop(true).await;
        let (address, handle) = start(&env_for(&self.lk, &self.db_url, &self.extra_env)).await;
        self.address = address;
        self.handle = handle;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(resp).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        read(self.client.delete(self.url(path)).send().await.unwrap()).await
    }

    /// `POST /api/sessions` for `user_id`, expecting success.
    pub async fn create_session(&self, user_id: &str) -> Value {
        let (status, body) = self
            .post("/api/sessions", serde_json::json!({ "user_id": user_id }))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Posts a webhook body as LiveKit does: `application/webhook+json`, raw JWT header.
    pub async fn post_webhook(&self, body: &str, authorization: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .post(self.url("/api/livekit-webhooks"))
            .header("content-type", "application/webhook+json")
            .header("user-agent", "LiveKit")
            .body(body.to_owned());
        if let Some(auth) = authorization {
            req = req.header("authorization", auth);
        }
        read(req.send().await.unwrap()).await
    }

    /// Signs `event` as the LiveKit server would and posts it.
    pub async fn send_event(&self, event: &livekit_protocol::WebhookEvent) -> (u16, Value) {
        let body = june_testkit::webhook::protojson(event);
        let auth = june_testkit::webhook::authorization(
            body.as_bytes(),
            self.lk.api_key(),
            self.lk.api_secret(),
            june_testkit::webhook::VALID_FOR_SECS,
        );
        self.post_webhook(&body, Some(&auth)).await
    }

    /// The session's history as (role, content) pairs.
    pub async fn history(&self, id: &str) -> Vec<(String, String)> {
        let (_, body) = self.get(&format!("/api/sessions/{id}/history")).await;
        body["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["role"].as_str().unwrap().to_owned(),
                    e["content"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Verifies a token with LiveKit's own verifier and the double's secret.
    pub fn verify(&self, token: &str) -> Claims {
        TokenVerifier::with_api_key(self.lk.api_key(), self.lk.api_secret())
            .verify(token)
            .expect("a token LiveKit accepts")
    }
}

pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// One request with an optional bearer and JSON body; its status and JSON (or text) body.
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    read(req.send().await.unwrap()).await
}

/// Seconds since the epoch.
pub fn now() -> usize {
    chrono::Utc::now().timestamp() as usize
}

/// A fresh PostgreSQL schema per test, and the server's URL (`JUNE_TEST_POSTGRES_URL`).
pub use june_testkit::pg::{PgSchema, server as pg_server};
