//! The whole app's state over mocked ports, for the in-process HTTP tests: `state()` gives
//! every port as a mock with no expectations (a call the test did not expect fails it), except
//! that tokens are minted (`jwt:{identity}:{room}`) and the store answers readiness pings.
//! A test hands in the ports its case touches, or `on_store` an in-memory store; the services
//! are built with `Domain::new`, as the binary builds them.

use std::sync::Arc;
use std::time::Duration;

use june_domain::memory::InMemoryStore;
use june_domain::ports::*;
use june_domain::{Domain, DomainPolicies, DomainPorts, IssuedToken, NoObserver};
use june_http_api::background::{Background, BackgroundConfig, Drain};
use june_http_api::{ApiConfig, AppState};

/// Builds an [`AppState`]; see the module docs for the defaults.
#[must_use]
pub struct StateBuilder {
    ports: DomainPorts,
    auth: Option<Arc<dyn june_domain::Authenticator>>,
    rate_limits: Option<june_http_api::limits::RateLimits>,
    proxies: june_http_api::client_addr::ProxyRules,
    background: BackgroundConfig,
    live: Option<june_http_api::live::LiveStreams>,
}

pub fn state() -> StateBuilder {
    let mut tokens = MockTokenIssuer::new();
    tokens.expect_issue().returning(|r| {
        Ok(IssuedToken {
            jwt: format!("jwt:{}:{}", r.identity, r.grants.room),
            expires_at: chrono::Utc::now() + r.ttl,
        })
    });
    // The store answers readiness pings; it has no pool.
    let mut health = MockStoreHealth::new();
    health.expect_ping().returning(|| Ok(()));
    health.expect_pool_stats().returning(|| None);
    StateBuilder {
        ports: DomainPorts {
            sessions: Arc::new(MockSessionStore::new()),
            presence: Arc::new(MockPresenceStore::new()),
            voice_state: Arc::new(MockVoiceStateStore::new()),
            leases: Arc::new(MockLeaseStore::new()),
            health: Arc::new(health),
            history: Arc::new(MockHistoryStore::new()),
            events: Arc::new(MockEventStore::new()),
            idempotency: Arc::new(MockIdempotencyStore::new()),
            rooms: Arc::new(MockRoomService::new()),
            tokens: Arc::new(tokens),
            verifier: Arc::new(MockWebhookVerifier::new()),
            dispatcher: None,
            llm: None,
            tts: None,
            stt: None,
            clock: Arc::new(SystemClock),
            observer: Arc::new(NoObserver),
            turns: Arc::new(MockTurnStore::new()),
            live: Arc::new(june_domain::NoLiveEvents),
        },
        auth: None,
        rate_limits: None,
        proxies: Default::default(),
        background: BackgroundConfig::default(),
        live: None,
    }
}

#[allow(dead_code)] // each test binary uses some
impl StateBuilder {
    /// A builder over `ports` as they are.
    pub fn over(ports: DomainPorts) -> Self {
        StateBuilder {
            ports,
            auth: None,
            rate_limits: None,
            proxies: Default::default(),
            background: BackgroundConfig::default(),
            live: None,
        }
    }

    pub fn sessions(mut self, store: impl SessionStore + 'static) -> Self {
        self.ports.sessions = Arc::new(store);
        self
    }

    pub fn rooms(mut self, rooms: impl RoomService + 'static) -> Self {
        self.ports.rooms = Arc::new(rooms);
        self
    }

    pub fn verifier(mut self, verifier: impl WebhookVerifier + 'static) -> Self {
        self.ports.verifier = Arc::new(verifier);
        self
    }

    pub fn events(mut self, events: impl EventStore + 'static) -> Self {
        self.ports.events = Arc::new(events);
        self
    }

    pub fn history(mut self, history: impl HistoryStore + 'static) -> Self {
        self.ports.history = Arc::new(history);
        self
    }

    pub fn idempotency(mut self, keys: impl IdempotencyStore + 'static) -> Self {
        self.ports.idempotency = Arc::new(keys);
        self
    }

    /// Limits instead of none.
    pub fn rate_limits(mut self, limits: june_http_api::limits::RateLimits) -> Self {
        self.rate_limits = Some(limits);
        self
    }

    /// Trusted proxies instead of none.
    pub fn proxies(mut self, proxies: june_http_api::client_addr::ProxyRules) -> Self {
        self.proxies = proxies;
        self
    }

    pub fn auth(mut self, auth: impl june_domain::Authenticator + 'static) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    pub fn dispatcher(mut self, dispatcher: impl AgentDispatcher + 'static) -> Self {
        self.ports.dispatcher = Some(Arc::new(dispatcher));
        self
    }

    /// The live stream's feed, turn records and bounds (an in-process feed, no records and
    /// the default bounds otherwise).
    pub fn live(mut self, live: june_http_api::live::LiveStreams) -> Self {
        self.live = Some(live);
        self
    }

    /// Where the services publish live events (nothing otherwise).
    pub fn live_events(mut self, live: Arc<dyn LiveEvents>) -> Self {
        self.ports.live = live;
        self
    }

    /// The background work's bounds (the defaults otherwise).
    pub fn background(mut self, config: BackgroundConfig) -> Self {
        self.background = config;
        self
    }

    /// Every store port in `store`.
    pub fn on_store(mut self, store: Arc<InMemoryStore>) -> Self {
        self.ports.sessions = store.clone();
        self.ports.presence = store.clone();
        self.ports.voice_state = store.clone();
        self.ports.leases = store.clone();
        self.ports.history = store.clone();
        self.ports.events = store.clone();
        self.ports.idempotency = store;
        self
    }

    /// The state, built the one way the binary builds it ([`Domain::new`]).
    pub fn build(self) -> AppState {
        let Domain {
            sessions,
            lifecycle,
            conversation,
            voice,
            idempotency,
        } = Domain::new(self.ports, DomainPolicies::default());
        AppState {
            background: Background::new(voice.clone(), self.background),
            drain: Drain::default(),
            live: self.live.unwrap_or_else(|| {
                june_http_api::live::LiveStreams::new(
                    Arc::new(LocalFeed::default()),
                    None,
                    Default::default(),
                )
            }),
            sessions,
            lifecycle,
            conversation,
            voice,
            idempotency,
            auth: self.auth,
            rate_limits: Arc::new(
                self.rate_limits
                    .unwrap_or_else(june_http_api::limits::RateLimits::off),
            ),
            config: ApiConfig {
                livekit_url: "ws://lk.test:7880".into(),
                default_bot_room: None,
                body_limit: 1024,
                body_timeout: Duration::from_secs(5),
                readiness_timeout: Duration::from_millis(200),
                cors_allow_origins: vec!["*".into()],
                version: "test",
                stt_token: None,
                stt_auth: june_http_api::SttAuth::Bearer,
                bots: june_http_api::BotIdentities::new("june-stt", "june-tts", ""),
                proxies: self.proxies,
            },
        }
    }
}
