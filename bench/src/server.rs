//! `june-serverbench`: the release server binary as users run it (SQLite, its own process),
//! the LiveKit test double in this process on loopback, and `wrk` as the load generator.
//!
//! `june-serverbench [--server PATH] [--seconds 10]
//!   [--connections 32] [--threads 2] [--sessions 10000] [--webhook-events 150000] [--perf DIR]
//!   [--database sqlite|postgres] [--replicas 1] [--redis URL]`
//!
//! Prints a Markdown table (docs/benchmarks.md keeps the last one): throughput and latency of
//! POST /api/sessions, GET /api/sessions/{id}, POST /token and signed POST
//! /api/livekit-webhooks, the CPU the server and the double used meanwhile, and the server's
//! RSS idle, with 10 000 live sessions and at its peak. `--perf DIR` records a `perf`
//! profile of the server during each scenario and writes its hottest symbols to DIR.
//! The server binary defaults to `june-orchestrator` beside this one (build both with
//! `--release`; `make bench` does).
//!
//! Replicas (issue #17): `--database postgres` runs the servers on a schema of their own on
//! the test PostgreSQL (`JUNE_TEST_POSTGRES_URL`), `--replicas N` starts N processes on it,
//! and wrk's threads are spread over them (each thread keeps to one replica, as clients
//! behind a balancer do; `--threads` is raised to a multiple of N). `--redis URL` turns the
//! shared limiter on (`RATE_LIMIT_REDIS_URL`) with budgets too large to refuse anything, so
//! every request pays for its Redis round trip; without it the limits are off.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use june_testkit::LiveKitDouble;
use june_testkit::pg::PgSchema;
use june_testkit::webhook::{authorization, participant_event, protojson};
use livekit_protocol as proto;
use serde_json::{Value, json};

struct Args {
    server: PathBuf,
    seconds: u64,
    connections: usize,
    threads: usize,
    sessions: usize,
    webhook_events: usize,
    perf: Option<PathBuf>,
    postgres: bool,
    replicas: usize,
    redis: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        server: std::env::current_exe()?.with_file_name("june-orchestrator"),
        seconds: 10,
        connections: 32,
        threads: 2,
        sessions: 10_000,
        webhook_events: 150_000,
        perf: None,
        postgres: false,
        replicas: 1,
        redis: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--server" => a.server = value.into(),
            "--seconds" => a.seconds = value.parse()?,
            "--connections" => a.connections = value.parse()?,
            "--threads" => a.threads = value.parse()?,
            "--sessions" => a.sessions = value.parse()?,
            "--webhook-events" => a.webhook_events = value.parse()?,
            "--perf" => a.perf = Some(value.into()),
            "--database" => {
                a.postgres = match value.as_str() {
                    "postgres" => true,
                    "sqlite" => false,
                    other => bail!("--database is sqlite or postgres, not {other}"),
                }
            }
            "--replicas" => a.replicas = value.parse()?,
            "--redis" => a.redis = Some(value),
            other => bail!("unknown flag {other}"),
        }
    }
    if a.replicas == 0 {
        bail!("--replicas must be at least 1");
    }
    if a.replicas > 1 && !a.postgres {
        bail!(
            "--replicas {} needs --database postgres (SQLite is one process's)",
            a.replicas
        );
    }
    if a.perf.is_some() && a.replicas > 1 {
        bail!("--perf profiles one server: use it with --replicas 1");
    }
    // Each wrk thread keeps to one replica.
    a.threads = a.threads.div_ceil(a.replicas) * a.replicas;
    Ok(a)
}

/// The server process; killed when dropped so a failed run leaves nothing behind.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn spawn_server(
    a: &Args,
    lk: &LiveKitDouble,
    dir: &Path,
    database_url: &str,
    n: usize,
) -> Result<Server> {
    let port = free_port()?;
    let log_name = format!("server-{n}.log");
    let log = std::fs::File::create(dir.join(&log_name))?;
    let mut cmd = Command::new(&a.server);
    cmd.env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", database_url)
        .env("LIVEKIT_WS_URL", lk.ws_url())
        .env("LIVEKIT_API_KEY", lk.api_key())
        .env("LIVEKIT_API_SECRET", lk.api_secret())
        .env("LOG_LEVEL", "warn");
    match &a.redis {
        // The shared limiter on, with budgets no run reaches: every request asks Redis.
        Some(url) => cmd
            .env("RATE_LIMIT_REDIS_URL", url)
            .env("JUNE__RATE_LIMIT__IP_PER_SECOND", "10000000")
            .env("JUNE__RATE_LIMIT__IP_BURST", "10000000")
            .env("JUNE__RATE_LIMIT__PER_SECOND", "10000000")
            .env("JUNE__RATE_LIMIT__BURST", "10000000"),
        // Every wrk connection comes from 127.0.0.1: the per-address budget would measure
        // itself.
        None => cmd
            .env("JUNE__RATE_LIMIT__IP_PER_SECOND", "0")
            .env("JUNE__RATE_LIMIT__PER_SECOND", "0"),
    };
    let child = cmd
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!(
                "start {} (build it with `cargo build --release`)",
                a.server.display()
            )
        })?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = june_testkit::http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
            && r.status().is_success()
        {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the server did not become ready; see {}/{log_name}",
        dir.display()
    )
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
fn rss(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} in /proc/{pid}/status"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .context("a number")?
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU seconds (user + system) a process has used so far, and those of its reaped children.
fn cpu_seconds(pid: &str) -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: utime, stime, cutime, cstime are the
    // 12th to 15th.
    let rest = stat.rsplit_once(')').context("/proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> { Ok(fields[i].parse::<f64>()?) };
    // Linux reports in USER_HZ, which is 100 on every platform Rust targets here.
    Ok((
        (ticks(11)? + ticks(12)?) / 100.0,
        (ticks(13)? + ticks(14)?) / 100.0,
    ))
}

/// What one wrk run reported (its `done` callback in bench/wrk/scenario.lua).
struct Outcome {
    name: String,
    requests: u64,
    non_2xx: u64,
    socket_errors: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_cores: f64,
    double_cores: f64,
    wrk_cores: f64,
}

/// A request shape for wrk.
struct Scenario<'a> {
    name: &'a str,
    /// Connections, if not `--connections`.
    connections: Option<usize>,
    path: String,
    method: &'a str,
    body: Option<String>,
    signed: Option<PathBuf>,
}

async fn run_wrk(a: &Args, servers: &[Server], s: Scenario<'_>) -> Result<Outcome> {
    let server = &servers[0];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("wrk/scenario.lua");
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.arg(format!("-t{}", a.threads))
        .arg(format!("-c{}", s.connections.unwrap_or(a.connections)))
        .arg(format!("-d{}s", a.seconds))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(&script)
        .arg(format!("{}{}", server.base, s.path))
        .env("WRK_METHOD", s.method)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if servers.len() > 1 {
        let addrs: Vec<&str> = servers
            .iter()
            .map(|s| s.base.trim_start_matches("http://"))
            .collect();
        cmd.env("WRK_ADDRS", addrs.join(","));
    }
    if let Some(body) = &s.body {
        cmd.env("WRK_BODY", body);
    }
    if let Some(prefix) = &s.signed {
        cmd.env("WRK_SIGNED", prefix);
    }
    let profiler = match &a.perf {
        Some(dir) => Some(
            tokio::process::Command::new("perf")
                .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
                .arg(dir.join(format!("{}.data", slug(s.name))))
                .arg("-p")
                .arg(server.pid().to_string())
                .arg("--")
                .arg("sleep")
                .arg(a.seconds.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("start perf (apt-get install linux-perf)")?,
        ),
        None => None,
    };
    let servers_cpu = || -> Result<f64> {
        servers
            .iter()
            .map(|s| Ok(cpu_seconds(&s.pid().to_string())?.0))
            .sum()
    };
    let (server_before, (double_before, children_before)) = (servers_cpu()?, cpu_seconds("self")?);
    let output = cmd
        .output()
        .await
        .context("run wrk (apt-get install wrk)")?;
    // wrk is reaped by now, so its CPU is in our children's account (perf is not yet).
    let (server_after, (double_after, children_after)) = (servers_cpu()?, cpu_seconds("self")?);
    if let Some(mut p) = profiler {
        p.wait().await?;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| {
            format!(
                "wrk printed no summary: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let int = |k: &str| summary[k].as_u64().unwrap_or_default();
    let seconds = int("duration_us") as f64 / 1e6;
    Ok(Outcome {
        name: s.name.to_owned(),
        requests: int("requests"),
        non_2xx: int("non_2xx"),
        socket_errors: int("socket_errors"),
        seconds,
        p50_ms: int("p50_us") as f64 / 1000.0,
        p99_ms: int("p99_us") as f64 / 1000.0,
        server_cores: (server_after - server_before) / seconds,
        double_cores: (double_after - double_before) / seconds,
        wrk_cores: (children_after - children_before) / seconds,
    })
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

async fn create_session(client: &reqwest::Client, base: &str, user: &str) -> Result<Value> {
    let r = client
        .post(format!("{base}/api/sessions"))
        .json(&json!({ "user_id": user }))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("creating a session answered {}", r.status());
    }
    Ok(r.json().await?)
}

/// Fills the store with `n` live sessions, 32 requests in flight.
async fn fill(client: &reqwest::Client, base: &str, n: usize) -> Result<()> {
    use futures_util::StreamExt;
    let results: Vec<Result<Value>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let (client, base) = (client.clone(), base.to_owned());
            async move { create_session(&client, &base, &format!("resident-{}", i % 500)).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().try_for_each(|r| r.map(drop))
}

/// Writes `events` signed participant webhooks, split into one file per wrk thread: every
/// event has its own id, over 50 rooms with 8 people each joining and leaving in turn.
fn sign_webhooks(
    lk: &LiveKitDouble,
    rooms: &[proto::Room],
    events: usize,
    threads: usize,
    prefix: &Path,
) -> Result<()> {
    let mut files = (0..threads)
        .map(|t| {
            let mut name = prefix.as_os_str().to_owned();
            name.push(t.to_string());
            Ok(std::io::BufWriter::new(std::fs::File::create(name)?))
        })
        .collect::<Result<Vec<_>>>()?;
    for g in 0..events {
        let room = &rooms[g % rooms.len()];
        let who = proto::ParticipantInfo {
            identity: format!("p-{}", (g / rooms.len()) % 8),
            ..Default::default()
        };
        let kind = if (g / (rooms.len() * 8)).is_multiple_of(2) {
            "participant_joined"
        } else {
            "participant_left"
        };
        let body = protojson(&participant_event(kind, room, &who));
        // Valid for the whole run; LiveKit's own tokens live for minutes too.
        let auth = authorization(body.as_bytes(), lk.api_key(), lk.api_secret(), 3600);
        writeln!(files[g % threads], "{auth}\t{body}")?;
    }
    for f in &mut files {
        f.flush()?;
    }
    Ok(())
}

fn perf_report(dir: &Path, name: &str) -> Result<()> {
    let data = dir.join(format!("{}.data", slug(name)));
    let out = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "dso,symbol",
            "-i",
        ])
        .arg(&data)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let top: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(30)
        .collect();
    std::fs::write(
        dir.join(format!("{}.txt", slug(name))),
        format!("{name}\n{}\n", top.join("\n")),
    )?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let lk = LiveKitDouble::start();
    let dir = tempfile::tempdir()?;
    if let Some(p) = &a.perf {
        std::fs::create_dir_all(p)?;
    }
    let schema = match a.postgres {
        true => Some(PgSchema::create().await),
        false => None,
    };
    let database_url = schema.as_ref().map_or_else(
        || format!("sqlite://{}/bench.db", dir.path().display()),
        PgSchema::url,
    );
    let mut servers = Vec::new();
    for n in 0..a.replicas {
        servers.push(spawn_server(&a, &lk, dir.path(), &database_url, n).await?);
    }
    let server = &servers[0];
    let client = june_testkit::http_client();
    // Summed over the replicas.
    let rss_all = || -> Result<(f64, f64)> {
        servers.iter().try_fold((0.0, 0.0), |(now, peak), s| {
            let (n, p) = rss(s.pid())?;
            Ok((now + n, peak + p))
        })
    };
    let (idle, _) = rss_all()?;

    let filling = Instant::now();
    fill(&client, &server.base, a.sessions).await?;
    let filled_in = filling.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (with_sessions, _) = rss_all()?;

    let target = create_session(&client, &server.base, "bench-target").await?;
    let id = target["session_id"]
        .as_str()
        .context("session_id")?
        .to_owned();
    let room_name = target["room_name"]
        .as_str()
        .context("room_name")?
        .to_owned();
    let mut rooms = Vec::new();
    for i in 0..50 {
        let s = create_session(&client, &server.base, &format!("webhook-target-{i}")).await?;
        let name = s["room_name"].as_str().context("room_name")?;
        rooms.push(lk.room(name).context("a bench session's room")?);
    }
    let prefix = dir.path().join("webhooks-");
    sign_webhooks(&lk, &rooms, a.webhook_events, a.threads, &prefix)?;

    let scenarios = [
        Scenario {
            name: "POST /api/sessions",
            connections: None,
            path: "/api/sessions".into(),
            method: "POST",
            body: Some(json!({ "user_id": "bench-load" }).to_string()),
            signed: None,
        },
        // The create target (p99 ≤ 5 ms) at a concurrency that does not queue behind the
        // writer.
        Scenario {
            name: "POST /api/sessions (8 connections)",
            connections: Some(8),
            path: "/api/sessions".into(),
            method: "POST",
            body: Some(json!({ "user_id": "bench-load" }).to_string()),
            signed: None,
        },
        Scenario {
            name: "GET /api/sessions/{id}",
            connections: None,
            path: format!("/api/sessions/{id}"),
            method: "GET",
            body: None,
            signed: None,
        },
        Scenario {
            name: "POST /token",
            connections: None,
            path: "/token".into(),
            method: "POST",
            body: Some(
                json!({ "roomName": room_name, "participantName": "bench-user" }).to_string(),
            ),
            signed: None,
        },
        Scenario {
            name: "POST /api/livekit-webhooks (signed)",
            connections: None,
            path: "/api/livekit-webhooks".into(),
            method: "POST",
            body: None,
            signed: Some(prefix),
        },
    ];
    let mut outcomes = Vec::new();
    for s in scenarios {
        let name = s.name.to_owned();
        outcomes.push(run_wrk(&a, &servers, s).await?);
        if let Some(p) = &a.perf {
            perf_report(p, &name)?;
        }
    }
    let (end, peak) = rss_all()?;
    let mib = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.len() as f64 / 1024.0 / 1024.0)
            .unwrap_or(0.0)
    };
    let (db_size, wal_size) = (mib("bench.db"), mib("bench.db-wal"));

    let store = match (a.postgres, &a.redis) {
        (false, _) => "SQLite".to_owned(),
        (true, None) => "PostgreSQL".to_owned(),
        (true, Some(_)) => "PostgreSQL, shared limiter on Redis".to_owned(),
    };
    let replicas = match a.replicas {
        1 => "the release server".to_owned(),
        n => format!("{n} release server processes (wrk threads spread over them)"),
    };
    println!(
        "wrk -t{} -c{} -d{}s against {replicas} ({store}), LiveKit double in the driver, {} cores; CPU columns in cores used\n",
        a.threads,
        a.connections,
        a.seconds,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "| scenario | requests | non-2xx | errors | req/s | p50 ms | p99 ms | CPU: server | double | wrk |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for o in &outcomes {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            o.name,
            o.requests,
            o.non_2xx,
            o.socket_errors,
            o.requests as f64 / o.seconds,
            o.p50_ms,
            o.p99_ms,
            o.server_cores,
            o.double_cores,
            o.wrk_cores,
        );
    }
    let webhooks = outcomes.last().map(|o| o.requests).unwrap_or_default();
    if webhooks > a.webhook_events as u64 {
        println!(
            "\n{} webhooks were repeats of earlier events (only {} were signed); raise --webhook-events",
            webhooks - a.webhook_events as u64,
            a.webhook_events
        );
    }
    println!(
        "\n| server RSS{} | MiB |\n| --- | ---: |\n| idle, empty store | {idle:.1} |\n| with {} live sessions (created in {:.1} s) | {with_sessions:.1} |\n| after the scenarios | {end:.1} |\n| peak (VmHWM) | {peak:.1} |",
        if a.replicas > 1 { ", all replicas" } else { "" },
        a.sessions,
        filled_in.as_secs_f64()
    );
    if !a.postgres {
        println!("\nDatabase file {db_size:.1} MiB, WAL {wal_size:.1} MiB after the scenarios.");
    }
    drop(servers);
    if let Some(schema) = schema {
        schema.drop().await;
    }
    Ok(())
}
