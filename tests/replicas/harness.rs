//! Server processes for the replica tests: the release binary started with an environment of
//! the test's choosing, on one PostgreSQL schema and the in-test LiveKit double.
//!
//! A [`Replica`] is one child process: it listens on a port of its own choosing (`PORT=0`; the
//! harness reads the port from its JSON `june-orchestrator listening` log line, so no port is
//! guessed), writes its log to a file in the cluster's temp folder, and is killed and reaped
//! when dropped. A test that panics prints every replica's log tail and keeps the folder.
//! If nextest itself kills a hung test, it kills the test's process group, which the children
//! are in (they are never moved to a group of their own).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use june_testkit::LiveKitDouble;
use june_testkit::pg::PgSchema;
use livekit_api::access_token::{Claims, TokenVerifier};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// How long a process may take to listen and then to answer `/readyz` 200.
const START_WITHIN: Duration = Duration::from_secs(30);
/// Every request's deadline: a hung server fails the test instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The server binary: `JUNE_BIN`, else `target/release/june-orchestrator` of this workspace
/// (`make replicas` builds it first).
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("JUNE_BIN") {
        return bin.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("release/june-orchestrator")
}

/// An HTTP client with a per-request deadline; `keep_alive: false` opens a new connection for
/// every request (so a balancer places each one).
pub fn client(keep_alive: bool) -> reqwest::Client {
    // Installs the rustls provider reqwest needs.
    let _ = june_testkit::http_client();
    let builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
    let builder = if keep_alive {
        builder
    } else {
        builder.pool_max_idle_per_host(0)
    };
    builder.build().expect("an HTTP client")
}

/// What several replicas share: the database schema, the LiveKit double, the settings.
pub struct Cluster {
    /// The LiveKit double every replica talks to.
    pub lk: LiveKitDouble,
    /// The replicas' schema.
    pub schema: PgSchema,
    env: Vec<(String, String)>,
    dir: LogDir,
    spawned: AtomicUsize,
}

/// The replicas' log folder: removed at the end, kept (and named) when the test fails.
struct LogDir(Option<tempfile::TempDir>);

impl Drop for LogDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!("replica logs kept in {}", dir.keep().display());
        }
    }
}

impl Cluster {
    /// A fresh schema and LiveKit double; `extra` settings for every replica (they win over
    /// the defaults here).
    pub async fn start(extra: &[(&str, &str)]) -> Cluster {
        let bin = binary();
        assert!(
            bin.is_file(),
            "no server binary at {}: run `make release` (or set JUNE_BIN)",
            bin.display()
        );
        let lk = LiveKitDouble::start();
        let schema = PgSchema::create().await;
        let mut env: Vec<(String, String)> = [
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", "0".to_owned()),
            ("DATABASE_URL", schema.url()),
            ("LIVEKIT_WS_URL", lk.ws_url()),
            ("LIVEKIT_API_KEY", lk.api_key().to_owned()),
            ("LIVEKIT_API_SECRET", lk.api_secret().to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "info".to_owned()),
            ("JUNE__LIVEKIT__REQUEST_TIMEOUT_MS", "2000".to_owned()),
            ("JUNE__LIVEKIT__READINESS_TIMEOUT_MS", "1000".to_owned()),
            // A few processes per test, two tests at a time, on one server.
            ("JUNE__DATABASE__MAX_CONNECTIONS", "4".to_owned()),
            // Every request comes from 127.0.0.1: the per-address budget would measure the
            // load, not the replicas. The rate-limit test sets its own.
            ("JUNE__RATE_LIMIT__IP_PER_SECOND", "0".to_owned()),
            ("JUNE__RATE_LIMIT__PER_SECOND", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            env.retain(|(key, _)| key.as_str() != *k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        Cluster {
            lk,
            schema,
            env,
            dir: LogDir(Some(
                tempfile::tempdir().expect("a temp folder for the logs"),
            )),
            spawned: AtomicUsize::new(0),
        }
    }

    /// Starts the binary as replica `name` and waits until it listens and is ready.
    pub async fn spawn(&self, name: &str) -> Replica {
        self.spawn_with(name, &[]).await
    }

    /// [`Cluster::spawn`] with settings for this process only.
    pub async fn spawn_with(&self, name: &str, extra: &[(&str, &str)]) -> Replica {
        let n = self.spawned.fetch_add(1, Ordering::SeqCst);
        let dir = self.dir.0.as_ref().expect("the log folder").path();
        let log = dir.join(format!("{n}-{name}.log"));
        let file = std::fs::File::create(&log).expect("the log file");
        let mut cmd = Command::new(binary());
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary().display()));
        let mut replica = Replica {
            name: name.to_owned(),
            port: 0,
            child,
            exited: None,
            log,
            client: client(true),
        };
        replica.port = replica.listening().await;
        replica.until_ready().await;
        replica
    }

    /// Verifies a token with LiveKit's own verifier and the double's secret.
    pub fn verify(&self, token: &Value) -> Claims {
        TokenVerifier::with_api_key(self.lk.api_key(), self.lk.api_secret())
            .verify(token.as_str().expect("a token"))
            .expect("a token LiveKit accepts")
    }

    /// A connection to the replicas' schema, to look at what they stored.
    pub async fn db(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.schema.url())
            .await
            .expect("PostgreSQL")
    }

    /// Drops the schema (call it after the replicas are gone).
    pub async fn finish(self) {
        self.schema.drop().await;
    }
}

/// One server process.
pub struct Replica {
    /// The test's name for it (`a`, `b`…).
    pub name: String,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    child: Child,
    exited: Option<ExitStatus>,
    log: PathBuf,
    client: reqwest::Client,
}

impl Replica {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a rolling restart's first step); see [`Replica::exit_status`].
    pub fn terminate(&self) {
        kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM).expect("SIGTERM");
    }

    /// Sends SIGKILL (a crash: nothing runs in the process after it) and reaps it.
    pub fn kill9(&mut self) {
        kill(Pid::from_raw(self.pid() as i32), Signal::SIGKILL).expect("SIGKILL");
        self.exited = Some(self.child.wait().expect("reap the killed process"));
    }

    /// Waits for the process to exit, at most `within` (then the test fails).
    pub async fn exit_status(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited {
                return status;
            }
            if let Some(status) = self.child.try_wait().expect("the process's state") {
                self.exited = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON lines of its log.
    pub fn log_events(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The port from the `june-orchestrator listening` line.
    async fn listening(&mut self) -> u16 {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            let port = self.log_events().into_iter().find_map(|e| {
                (e["message"] == "june-orchestrator listening").then(|| e["port"].as_u64())?
            });
            if let Some(port) = port {
                return u16::try_from(port).expect("a port");
            }
            if let Some(status) = self.child.try_wait().expect("the process's state") {
                self.exited = Some(status);
                panic!(
                    "{} exited ({status}) before listening:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen within {START_WITHIN:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn until_ready(&self) {
        let deadline = Instant::now() + START_WITHIN;
        let mut last = (0, Value::Null);
        while Instant::now() < deadline {
            last = self.get("/readyz").await;
            if last.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never became ready: {last:?}", self.name);
    }

    /// One request; its status and JSON (or text) body. A transport error fails the test.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().expect("a method"), self.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {method} {path}: {e}", self.name));
        read(resp).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None).await
    }

    /// Posts a webhook as LiveKit does: `application/webhook+json`, the raw JWT header.
    pub async fn post_webhook(&self, body: &str, authorization: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url("/api/livekit-webhooks"))
            .header("content-type", "application/webhook+json")
            .header("authorization", authorization)
            .body(body.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: webhook: {e}", self.name));
        read(resp).await
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!(
                "---- replica {} (pid {}, {}) last lines of {} ----\n{tail}",
                self.name,
                self.child.id(),
                self.exited
                    .map_or_else(|| "killed by the harness".to_owned(), |s| s.to_string()),
                self.log.display()
            );
        }
    }
}

/// A response's status and JSON body (or its text as a JSON string).
pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Waits until `check` returns `Some`, polling every 20 ms; fails the test after `within`
/// (a hang guard, not a timing assertion).
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "never within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
