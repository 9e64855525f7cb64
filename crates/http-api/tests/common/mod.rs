//! The whole app's state over mocked ports, for the in-process HTTP tests: `state()` gives
//! every port as a mock with no expectations (a call the test did not expect fails it), except
//! that tokens are minted (`jwt:{identity}:{room}`) and the store answers readiness pings.
//! A test hands in the ports its case touches, or `on_store` an in-memory store.

use std::sync::Arc;
use std::time::Duration;

use june_domain::memory::InMemoryStore;
use june_domain::ports::*;
use june_domain::{
    ConversationPolicy, ConversationPorts, ConversationService, IssuedToken, LifecyclePorts,
    LifecycleService, NoObserver, SessionPolicy, SessionService, VoiceConfig, VoicePorts,
    VoiceService,
};
use june_http_api::{ApiConfig, AppState};

/// Builds an [`AppState`]; see the module docs for the defaults.
#[must_use]
pub struct StateBuilder {
    sessions: Arc<dyn SessionStore>,
    presence: Arc<dyn PresenceStore>,
    leases: Arc<dyn LeaseStore>,
    events: Arc<dyn EventStore>,
    rooms: Arc<dyn RoomService>,
    verifier: Arc<dyn WebhookVerifier>,
    idempotency: Arc<dyn IdempotencyStore>,
    auth: Option<Arc<dyn june_domain::Authenticator>>,
    voice: Option<VoiceService>,
}

pub fn state() -> StateBuilder {
    StateBuilder {
        sessions: Arc::new(MockSessionStore::new()),
        presence: Arc::new(MockPresenceStore::new()),
        leases: Arc::new(MockLeaseStore::new()),
        events: Arc::new(MockEventStore::new()),
        rooms: Arc::new(MockRoomService::new()),
        verifier: Arc::new(MockWebhookVerifier::new()),
        idempotency: Arc::new(MockIdempotencyStore::new()),
        auth: None,
        voice: None,
    }
}

#[allow(dead_code)] // each test binary uses some
impl StateBuilder {
    pub fn sessions(mut self, store: impl SessionStore + 'static) -> Self {
        self.sessions = Arc::new(store);
        self
    }

    pub fn rooms(mut self, rooms: impl RoomService + 'static) -> Self {
        self.rooms = Arc::new(rooms);
        self
    }

    pub fn verifier(mut self, verifier: impl WebhookVerifier + 'static) -> Self {
        self.verifier = Arc::new(verifier);
        self
    }

    pub fn events(mut self, events: impl EventStore + 'static) -> Self {
        self.events = Arc::new(events);
        self
    }

    pub fn idempotency(mut self, keys: impl IdempotencyStore + 'static) -> Self {
        self.idempotency = Arc::new(keys);
        self
    }

    pub fn auth(mut self, auth: impl june_domain::Authenticator + 'static) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Sessions, presence, leases and events in `store`.
    pub fn on_store(mut self, store: Arc<InMemoryStore>) -> Self {
        self.sessions = store.clone();
        self.presence = store.clone();
        self.leases = store.clone();
        self.events = store;
        self
    }

    /// The voice loop, also handed to the webhooks (to claim the bots).
    pub fn voice(mut self, voice: VoiceService) -> Self {
        self.voice = Some(voice);
        self
    }

    pub fn build(self) -> AppState {
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
        let mut lifecycle = LifecycleService::new(LifecyclePorts {
            sessions: self.sessions.clone(),
            presence: self.presence,
            leases: self.leases,
            events: self.events,
            rooms: self.rooms.clone(),
            verifier: self.verifier,
            clock: Arc::new(SystemClock),
        });
        if let Some(voice) = &self.voice {
            lifecycle = lifecycle.with_voice(voice.clone());
        }
        let voice = self.voice.unwrap_or_else(|| {
            VoiceService::new(
                VoicePorts {
                    sessions: Arc::new(MockSessionStore::new()),
                    voice_state: Arc::new(MockVoiceStateStore::new()),
                    history: Arc::new(MockHistoryStore::new()),
                    llm: None,
                    tts: None,
                    dispatcher: None,
                    clock: Arc::new(SystemClock),
                    observer: Arc::new(NoObserver),
                },
                ConversationPolicy::default(),
                VoiceConfig::default(),
            )
        });
        AppState {
            sessions: SessionService::new(
                self.sessions.clone(),
                Arc::new(MockHistoryStore::new()),
                Arc::new(health),
                self.rooms,
                Arc::new(tokens),
                Arc::new(SystemClock),
                SessionPolicy::default(),
            ),
            lifecycle,
            idempotency: self.idempotency,
            auth: self.auth,
            rate_limits: Arc::new(june_http_api::auth::RateLimits::off()),
            voice,
            conversation: ConversationService::new(
                ConversationPorts {
                    sessions: self.sessions,
                    history: Arc::new(MockHistoryStore::new()),
                    llm: None,
                    tts: None,
                    stt: None,
                    clock: Arc::new(SystemClock),
                },
                ConversationPolicy::default(),
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
            },
        }
    }
}
