//! # june-orchestrator
//!
//! The server binary's library half: [`config::Settings`] (layered configuration),
//! [`telemetry`], and [`Application`], which wires the adapters (SQLite store, LiveKit) into
//! the HTTP API. `main.rs` only loads settings, starts logging, builds and runs; the
//! end-to-end tests build the same [`Application`] on port 0. No business logic lives here.

pub mod config;
pub mod telemetry;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use june_ai_adapters::{GeminiChat, GeminiConfig, HttpSttClient, HttpTtsClient};
use june_auth::{ApiKeys, Chain, Oidc, OidcConfig};
use june_domain::Authenticator;
use june_domain::ports::{
    ChatModel, LiveFeed, LocalFeed, RoomService, SpeechToText, TextToSpeech, TurnStore,
};
use june_domain::{
    ConversationPolicy, Domain, DomainPolicies, DomainPorts, LifecycleService, SessionPolicy,
    VoiceConfig,
};
use june_http_api::background::{Background, BackgroundConfig, Drain};
use june_http_api::limits::{Rate, RateLimits, Rates, SharedOptions};
use june_http_api::live::{LiveConfig, LiveHub, LiveStreams, StreamConfig};
use june_http_api::{ApiConfig, AppState};
use june_livekit_adapter::{
    LiveKitAgentDispatcher, LiveKitRoomService, LiveKitTokenIssuer, LiveKitWebhookVerifier,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Settings;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Store(#[from] june_store::ConnectError),
    /// The live feed's PostgreSQL connection could not be set up.
    #[error("cannot set up the live feed: {0}")]
    Feed(#[source] june_domain::ports::StoreError),
    /// The authentication settings could not be used.
    #[error("authentication: {0}")]
    Auth(String),
    /// The HTTP client of the AI adapters could not be built.
    #[error(transparent)]
    HttpClient(#[from] june_ai_adapters::ClientError),
    /// The shared rate limiter could not be set up.
    #[error(transparent)]
    RateLimit(#[from] june_redis_limiter::RedisLimiterError),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// host:port
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The authenticators of `auth.mode`; `None` for `none`.
fn authenticator(settings: &Settings) -> Result<Option<Arc<dyn Authenticator>>, StartError> {
    let auth = &settings.auth;
    let mut chain: Vec<Arc<dyn Authenticator>> = Vec::new();
    for mode in auth.modes() {
        match mode.as_str() {
            "api_key" => chain.push(Arc::new(
                ApiKeys::parse(&auth.api_keys).map_err(StartError::Auth)?,
            )),
            "oidc" => chain.push(Arc::new(Oidc::new(
                june_ai_adapters::http_client(Duration::from_secs(5))?,
                OidcConfig {
                    issuer: auth.oidc_issuer.clone(),
                    audience: auth.oidc_audience.clone(),
                    identity_claim: auth.identity_claim.clone(),
                    roles_claim: auth.roles_claim.clone(),
                    leeway: Duration::from_secs(auth.leeway_secs),
                    refresh_floor: Duration::from_secs(auth.jwks_refresh_floor_secs),
                },
            ))),
            _ => {}
        }
    }
    Ok((!chain.is_empty()).then(|| Arc::new(Chain(chain)) as Arc<dyn Authenticator>))
}

/// Opens and migrates the database the settings name.
pub async fn open_store(settings: &Settings) -> Result<june_store::Stores, StartError> {
    let db = &settings.database;
    let options = june_store::StoreOptions {
        max_connections: db.max_connections,
        connect_timeout: Duration::from_millis(db.connect_timeout_ms),
        statement_timeout: Duration::from_millis(db.statement_timeout_ms),
        call_timeout: Duration::from_millis(db.call_timeout_ms),
        statement_cache_capacity: db.statement_cache_capacity,
        sqlite_cache_kib: db.sqlite_cache_kib,
        sqlite_wal_limit_bytes: db.sqlite_wal_limit_bytes,
        sqlite_checkpoint_every: (db.sqlite_checkpoint_ms > 0)
            .then(|| Duration::from_millis(db.sqlite_checkpoint_ms)),
    };
    Ok(june_store::connect(db.url.expose_secret(), &options).await?)
}

fn non_empty(secret: &SecretString) -> Option<SecretString> {
    (!secret.expose_secret().is_empty()).then(|| secret.clone())
}

/// The AI adapters that are configured, shared by chat and the voice loop.
struct Ai {
    llm: Option<Arc<dyn ChatModel>>,
    tts: Option<Arc<dyn TextToSpeech>>,
    stt: Option<Arc<dyn SpeechToText>>,
    policy: ConversationPolicy,
}

/// Builds the AI adapters whichever are configured.
fn ai(settings: &Settings) -> Result<Ai, StartError> {
    let client = june_ai_adapters::http_client(Duration::from_secs(5))?;
    let ai = &settings.ai;
    let llm = non_empty(&ai.gemini_api_key).map(|api_key| {
        Arc::new(GeminiChat::new(
            client.clone(),
            GeminiConfig {
                base_url: ai.base_url.clone(),
                api_key,
                model: ai.model.clone(),
                temperature: ai.temperature,
                max_output_tokens: Some(ai.max_output_tokens),
                timeout: Duration::from_millis(ai.timeout_ms),
                max_retries: ai.max_retries,
                backoff: Duration::from_millis(ai.backoff_ms),
            },
        )) as Arc<dyn ChatModel>
    });
    let tts = (!settings.tts.url.is_empty()).then(|| {
        Arc::new(HttpTtsClient::new(
            client.clone(),
            &settings.tts.url,
            non_empty(&settings.tts.service_token),
            Duration::from_millis(settings.tts.timeout_ms),
        )) as Arc<dyn TextToSpeech>
    });
    let stt = (!settings.stt.url.is_empty()).then(|| {
        Arc::new(HttpSttClient::new(client.clone(), &settings.stt.url)) as Arc<dyn SpeechToText>
    });
    if llm.is_none() {
        tracing::warn!("no GEMINI_API_KEY: chat answers 503 llm_not_configured");
    }
    Ok(Ai {
        llm,
        tts,
        stt,
        policy: ConversationPolicy {
            system_instruction: ai.system_instruction.clone(),
            max_turns: ai.history_max_turns,
            max_chars: ai.history_max_chars,
            voice_id: settings.tts.voice_id.clone(),
            speed: settings.tts.speed,
        },
    })
}

/// The request budgets: shared through Redis when `rate_limit.redis_url` is set (decided
/// locally while it is away), else this replica's own. Redis is not called here: a replica
/// starts whether Redis answers or not.
fn rate_limits(settings: &Settings) -> Result<RateLimits, StartError> {
    let r = &settings.rate_limit;
    let rates = Rates {
        principal: Rate {
            per_second: r.per_second,
            burst: r.burst,
        },
        address: Rate {
            per_second: r.ip_per_second,
            burst: r.ip_burst,
        },
    };
    let url = r.redis_url.expose_secret();
    if url.is_empty() {
        return Ok(RateLimits::new(rates.principal, rates.address));
    }
    let timeout = Duration::from_millis(r.redis_timeout_ms);
    let redis = june_redis_limiter::RedisLimiter::new(
        url,
        june_redis_limiter::RedisOptions {
            key_prefix: r.redis_key_prefix.clone(),
            timeout,
        },
        rates,
    )?;
    tracing::info!(prefix = %r.redis_key_prefix, "rate limits shared through Redis");
    Ok(RateLimits::shared(
        rates,
        Arc::new(redis),
        SharedOptions {
            timeout,
            retry_every: Duration::from_millis(r.redis_retry_ms),
        },
    ))
}

/// The live feed (PostgreSQL `LISTEN/NOTIFY` when the store is PostgreSQL, so a stream on
/// one replica sees the turns of another; in-process otherwise) and the `LiveEvents` the
/// services publish to (captions in the room, then the feed).
fn live(
    settings: &Settings,
    rooms: Arc<dyn RoomService>,
    turns: Option<Arc<dyn TurnStore>>,
) -> Result<(Arc<dyn LiveFeed>, Arc<LiveHub>), StartError> {
    let url = settings.database.url.expose_secret();
    let feed: Arc<dyn LiveFeed> = if url.starts_with("postgres:") || url.starts_with("postgresql:")
    {
        Arc::new(
            june_store::PgFeed::start(
                url,
                turns,
                june_store::FeedOptions {
                    timeout: Duration::from_millis(settings.database.connect_timeout_ms),
                    ..Default::default()
                },
            )
            .map_err(StartError::Feed)?,
        )
    } else {
        Arc::new(LocalFeed::default())
    };
    let c = &settings.captions;
    let hub = LiveHub::start(
        rooms,
        feed.clone(),
        LiveConfig {
            captions: c.enabled,
            queue: c.queue,
            send_timeout: Duration::from_millis(c.send_timeout_ms),
        },
    );
    if !c.enabled {
        tracing::info!("captions.enabled=false: no captions are sent to the rooms");
    }
    Ok((feed, Arc::new(hub)))
}

/// How long past the shutdown deadline a reaper pass in progress may take to end.
const REAPER_GRACE: Duration = Duration::from_secs(1);

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    reaper: Option<Reaper>,
    background: Background,
    drain: Drain,
    /// `server.drain_seconds`.
    drain_for: Duration,
    /// `server.shutdown_timeout_secs`.
    shutdown_timeout: Duration,
    signals: mpsc::Receiver<()>,
    signal: ShutdownSignal,
}

/// Asks a running [`Application`] to drain and stop exactly as SIGTERM does; a second call
/// cuts the current wait short as a second SIGTERM does. For tests and embedders; cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(mpsc::Sender<()>);

impl ShutdownSignal {
    /// Sends the signal (never waits; signals beyond a few pending ones add nothing).
    pub fn send(&self) {
        let _ = self.0.try_send(());
    }
}

/// The reaper task and the switch that stops it.
struct Reaper {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs reaper passes every `interval` until told to stop. A failed pass is logged and
/// retried at the next tick; it never takes the server down.
fn spawn_reaper(
    lifecycle: LifecycleService,
    interval: Duration,
    grace: chrono::Duration,
) -> Reaper {
    let (stop, mut stopped) = watch::channel(false);
    // Held across a missed tick or two, released to another replica if this one dies.
    let lease_for =
        chrono::Duration::from_std(interval * 3).unwrap_or(chrono::Duration::minutes(2));
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => match lifecycle.reap(grace, lease_for).await {
                    Ok(report) => {
                        if report.expired + report.ended > 0 {
                            tracing::info!(expired = report.expired, ended = report.ended, "reaper pass");
                        }
                        if let Some(why) = report.skipped {
                            tracing::debug!(reason = %why, "reaper pass skipped or partial");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reaper pass failed"),
                },
                _ = stopped.changed() => break,
            }
        }
    });
    Reaper { stop, task }
}

impl Application {
    /// Opens the store, builds the adapters and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        // Before any LiveKit token is minted (see june_auth::install_crypto_provider).
        june_auth::install_crypto_provider();
        let stores = open_store(&settings).await?;
        let lk = &settings.livekit;
        let rooms = LiveKitRoomService::new(
            &settings.livekit_api_url(),
            &lk.api_key,
            &lk.api_secret,
            Duration::from_millis(lk.request_timeout_ms),
        );
        let rooms: Arc<dyn RoomService> = Arc::new(rooms);
        // The stored turn records, which a stream's resume replays and which PostgreSQL's feed
        // reads a large record back from.
        let turns: Option<Arc<dyn TurnStore>> = Some(stores.turns.clone());
        let (feed, live) = live(&settings, rooms.clone(), turns.clone())?;
        let tokens = LiveKitTokenIssuer::new(lk.api_key.clone(), lk.api_secret.clone());
        let verifier = LiveKitWebhookVerifier::new(&lk.api_key, &lk.api_secret);
        let s = &settings.sessions;
        let policy = SessionPolicy {
            default_session_ttl: chrono::Duration::seconds(s.default_ttl_secs),
            max_session_ttl: chrono::Duration::seconds(s.max_ttl_secs),
            token_ttl: chrono::Duration::seconds(s.token_ttl_secs),
            empty_timeout_secs: s.empty_timeout_secs,
            departure_timeout_secs: s.departure_timeout_secs,
            max_participants: s.max_participants,
            default_language: s.default_language.clone(),
        };
        let ai = ai(&settings)?;
        let v = &settings.voice;
        let ports = DomainPorts {
            sessions: stores.sessions,
            presence: stores.presence,
            voice_state: stores.voice,
            leases: stores.leases,
            health: stores.health,
            history: stores.history,
            events: stores.events,
            idempotency: stores.idempotency,
            turns: stores.turns,
            rooms,
            tokens: Arc::new(tokens),
            verifier: Arc::new(verifier),
            dispatcher: Some(Arc::new(LiveKitAgentDispatcher::new(
                &settings.livekit_api_url(),
                &lk.api_key,
                &lk.api_secret,
                Duration::from_millis(lk.request_timeout_ms),
            ))),
            llm: ai.llm,
            tts: ai.tts,
            stt: ai.stt,
            clock: Arc::new(june_http_api::clock::TokioClock),
            observer: Arc::new(june_http_api::metrics::PrometheusTurns),
            live,
        };
        let policies = DomainPolicies {
            sessions: policy,
            conversation: ai.policy,
            voice: VoiceConfig {
                stt_agent: v.stt_agent_name.clone(),
                tts_agent: v.tts_agent_name.clone(),
                orchestrator_url: v.public_url.clone(),
                min_confidence: v.min_confidence,
                duplicate_window: chrono::Duration::milliseconds(v.duplicate_window_ms),
                max_sentence_chars: v.max_sentence_chars,
            },
            adopt_rooms: v.adopt_rooms,
        };
        let Domain {
            sessions,
            lifecycle,
            conversation,
            voice,
            idempotency,
        } = Domain::new(ports, policies);
        june_http_api::metrics::handle();
        let background = Background::new(
            voice.clone(),
            BackgroundConfig {
                dispatch_queue: v.dispatch_queue,
                dispatch_concurrency: v.dispatch_concurrency,
                dispatch_attempts: v.dispatch_attempts,
                dispatch_attempt_timeout: Duration::from_millis(v.dispatch_attempt_timeout_ms),
                dispatch_backoff: Duration::from_millis(v.dispatch_backoff_ms),
                max_turns: v.max_concurrent_turns,
            },
        );
        let drain = Drain::default();
        let reaper = settings.reaper.enabled.then(|| {
            spawn_reaper(
                lifecycle.clone(),
                Duration::from_millis(settings.reaper.interval_ms),
                chrono::Duration::seconds(settings.reaper.grace_secs),
            )
        });
        let state = AppState {
            sessions,
            lifecycle,
            conversation,
            idempotency,
            voice,
            auth: authenticator(&settings)?,
            rate_limits: Arc::new(rate_limits(&settings)?),
            config: ApiConfig {
                livekit_url: lk.ws_url.clone(),
                default_bot_room: Some(lk.default_bot_room.clone()).filter(|r| !r.is_empty()),
                body_limit: settings.server.body_limit_bytes,
                body_timeout: Duration::from_millis(settings.server.body_timeout_ms.max(1)),
                readiness_timeout: Duration::from_millis(lk.readiness_timeout_ms),
                cors_allow_origins: settings.cors_origins(),
                version: env!("CARGO_PKG_VERSION"),
                stt_token: non_empty(&settings.voice.stt_token),
                stt_auth: june_http_api::SttAuth::parse(&settings.stt.auth).unwrap_or_default(),
                bots: june_http_api::BotIdentities::new(
                    &v.stt_agent_name,
                    &v.tts_agent_name,
                    &lk.bot_identities,
                ),
                proxies: settings.proxy_rules(),
            },
            background: background.clone(),
            drain: drain.clone(),
            live: LiveStreams::new(
                feed,
                turns,
                StreamConfig {
                    max_streams: settings.live.max_streams,
                    client_buffer: settings.live.client_buffer,
                    ping_every: Duration::from_millis(settings.live.ping_ms),
                    max_replay: settings.live.max_replay,
                },
            ),
        };
        settings.log_drop_in();

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        if state.auth.is_none() && !is_loopback(&settings.server.host) {
            tracing::warn!(
                host = %settings.server.host,
                "AUTH_MODE=none on a non-loopback address: anyone who can reach it may create sessions and mint tokens"
            );
        }
        let listener = TcpListener::bind(&address).map_err(|source| StartError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                address: address.clone(),
                source,
            })?
            .port();
        // Signals are ours (see `run_until_stopped`): actix's would stop accepting at once.
        let server = HttpServer::new(move || june_http_api::app(state.clone()))
            .disable_signals()
            .shutdown_timeout(settings.server.shutdown_timeout_secs)
            .listen(listener)
            .map_err(|source| StartError::Bind { address, source })?
            .run();
        tracing::info!(port, livekit = %settings.livekit_api_url(), "june-orchestrator listening");
        let (signal, signals) = mpsc::channel(4);
        Ok(Application {
            port,
            server,
            reaper,
            background,
            drain,
            drain_for: Duration::from_secs(settings.server.drain_seconds),
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
            signals,
            signal: ShutdownSignal(signal),
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server from elsewhere (tests restart it this way). Stopped so,
    /// the server skips the drain: it stops accepting at once, then finishes as after one.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// What SIGTERM does, in process: see [`ShutdownSignal`].
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.signal.clone()
    }

    /// Serves until SIGTERM or SIGINT ([`shutdown_signal`](Self::shutdown_signal) in
    /// process), then leaves without dropping work (design §8.2):
    ///
    /// 1. drain: `/readyz` answers 503 `draining` and responses say `Connection: close`, while
    ///    every route still serves, for `server.drain_seconds` (a second signal ends it);
    /// 2. stop accepting, finish in-flight requests, then wait for voice turns and bot
    ///    dispatches, all within `server.shutdown_timeout_secs`; what is left at the deadline
    ///    is abandoned cleanly (dispatch claims are given back) — a further signal ends the
    ///    wait at once;
    /// 3. the reaper, told to stop with the server, ends within the same budget; log, return.
    ///
    /// Stopped through [`handle`](Self::handle) instead, it starts at step 2.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            server,
            reaper,
            background,
            drain,
            drain_for,
            shutdown_timeout,
            mut signals,
            signal,
            ..
        } = self;
        let handle = server.handle();
        let os_signals = forward_os_signals(signal);
        // The server runs on its own task: it must be polled for `handle.stop` to progress.
        let mut running = tokio::spawn(server);
        let finished = tokio::select! {
            finished = &mut running => Some(finished),
            Some(()) = signals.recv() => None,
        };
        let deadline = match finished {
            // Stopped through the handle, or failed: no drain.
            Some(_) => Instant::now() + shutdown_timeout,
            None => {
                drain.begin();
                tracing::info!(
                    drain_seconds = drain_for.as_secs(),
                    "shutdown signal: draining (/readyz answers 503 and connections close; every route still serves)"
                );
                tokio::select! {
                    () = tokio::time::sleep(drain_for) => {}
                    Some(()) = signals.recv() => tracing::info!("a second signal: the drain is cut short"),
                }
                tracing::info!(
                    shutdown_timeout_secs = shutdown_timeout.as_secs(),
                    "no longer accepting; finishing in-flight requests, voice turns and bot dispatches"
                );
                let deadline = Instant::now() + shutdown_timeout;
                tokio::select! {
                    () = handle.stop(true) => {}
                    Some(()) = signals.recv() => {
                        tracing::warn!("another signal: in-flight requests are cut");
                        handle.stop(false).await;
                    }
                }
                deadline
            }
        };
        let served = running
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Some(reaper) = &reaper {
            let _ = reaper.stop.send(true);
        }
        let left = tokio::select! {
            left = background.shutdown(deadline) => left,
            Some(()) = signals.recv() => {
                tracing::warn!("another signal: background work is abandoned now");
                background.shutdown(Instant::now()).await
            }
        };
        if let Some(reaper) = reaper {
            // Told to stop with the server: a pass in progress finishes its store calls (each
            // bounded) within the same budget, or a last second past it.
            let until = deadline.max(Instant::now() + REAPER_GRACE);
            if tokio::time::timeout_at(until, reaper.task).await.is_err() {
                tracing::warn!("the reaper did not stop in time; its lease lapses on its own");
            }
        }
        os_signals.abort();
        tracing::info!(abandoned_tasks = left, "june-orchestrator stopped");
        served
    }
}

/// Listens for SIGTERM and SIGINT from now on (before the server runs, so an early signal is
/// not the default kill), and forwards each to `signal` on a task of its own. Without a way
/// to listen, nothing is forwarded (logged) and only the handle stops the server.
fn forward_os_signals(signal: ShutdownSignal) -> JoinHandle<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal as listen};
        let listeners = (
            listen(SignalKind::terminate()),
            listen(SignalKind::interrupt()),
        );
        tokio::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = listeners else {
                tracing::warn!("cannot listen for SIGTERM/SIGINT");
                return;
            };
            loop {
                tokio::select! {
                    Some(()) = term.recv() => tracing::info!("SIGTERM received"),
                    Some(()) = int.recv() => tracing::info!("SIGINT received"),
                    else => return,
                }
                signal.send();
            }
        })
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C received");
            signal.send();
        }
    })
}
