//! One way to build the services: every port in one struct, every policy in another, and
//! [`Domain::new`] wiring the services together (the lifecycle hands `track_published`
//! to the voice loop, every service reads the same clock).

use std::sync::Arc;

use crate::adoption::RoomAdopter;
use crate::conversation::{ConversationPolicy, ConversationPorts, ConversationService};
use crate::idempotency::IdempotencyService;
use crate::lifecycle::{LifecyclePorts, LifecycleService};
use crate::policy::SessionPolicy;
use crate::ports::{
    AgentDispatcher, ChatModel, Clock, EventStore, HistoryStore, IdempotencyStore, LeaseStore,
    LiveEvents, NoLiveEvents, NoObserver, PresenceStore, RoomService, SessionStore, SpeechToText,
    StoreHealth, SystemClock, TextToSpeech, TokenIssuer, TurnObserver, TurnStore, VoiceStateStore,
    WebhookVerifier,
};
use crate::service::SessionService;
use crate::voice::{VoiceConfig, VoicePorts, VoiceService};

/// Every port the domain reaches the world through. The optional ones (agent dispatch, the
/// language model, speech) may be left out: the services then answer "not configured".
#[derive(Clone)]
pub struct DomainPorts {
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Who is in each session's room.
    pub presence: Arc<dyn PresenceStore>,
    /// The voice loop's shared state (dispatch claims, turns, transcript dedupe).
    pub voice_state: Arc<dyn VoiceStateStore>,
    /// Leases (the reaper's).
    pub leases: Arc<dyn LeaseStore>,
    /// Readiness ping and pool gauges.
    pub health: Arc<dyn StoreHealth>,
    /// Conversation history.
    pub history: Arc<dyn HistoryStore>,
    /// LiveKit's events (and webhook dedupe).
    pub events: Arc<dyn EventStore>,
    /// `Idempotency-Key` records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// LiveKit rooms.
    pub rooms: Arc<dyn RoomService>,
    /// Join tokens.
    pub tokens: Arc<dyn TokenIssuer>,
    /// Webhook signatures.
    pub verifier: Arc<dyn WebhookVerifier>,
    /// LiveKit agent dispatch (the voice bots), if configured.
    pub dispatcher: Option<Arc<dyn AgentDispatcher>>,
    /// The language model, if configured.
    pub llm: Option<Arc<dyn ChatModel>>,
    /// Text to speech, if configured.
    pub tts: Option<Arc<dyn TextToSpeech>>,
    /// Speech to text, if configured (health only).
    pub stt: Option<Arc<dyn SpeechToText>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Voice-turn metrics.
    pub observer: Arc<dyn TurnObserver>,
    /// Turn records.
    pub turns: Arc<dyn TurnStore>,
    /// Live captions and the session event stream (nothing by default).
    pub live: Arc<dyn LiveEvents>,
}

impl DomainPorts {
    /// Every store port from one value that implements them all (such as
    /// [`InMemoryStore`](crate::memory::InMemoryStore)); no dispatcher, model or speech,
    /// the system clock, no observer. Set the other fields with struct update syntax.
    pub fn with_store<S>(
        store: Arc<S>,
        rooms: Arc<dyn RoomService>,
        tokens: Arc<dyn TokenIssuer>,
        verifier: Arc<dyn WebhookVerifier>,
    ) -> Self
    where
        S: SessionStore
            + PresenceStore
            + VoiceStateStore
            + LeaseStore
            + StoreHealth
            + HistoryStore
            + EventStore
            + IdempotencyStore
            + TurnStore
            + 'static,
    {
        DomainPorts {
            sessions: store.clone(),
            presence: store.clone(),
            voice_state: store.clone(),
            leases: store.clone(),
            health: store.clone(),
            history: store.clone(),
            events: store.clone(),
            turns: store.clone(),
            idempotency: store,
            rooms,
            tokens,
            verifier,
            dispatcher: None,
            llm: None,
            tts: None,
            stt: None,
            clock: Arc::new(SystemClock),
            observer: Arc::new(NoObserver),
            live: Arc::new(NoLiveEvents),
        }
    }
}

/// The policies of every service; the binary fills them from configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainPolicies {
    /// Sessions: lifetimes, room options, the default language.
    pub sessions: SessionPolicy,
    /// Conversations: the system instruction, the history window, the TTS voice.
    pub conversation: ConversationPolicy,
    /// The voice loop: bot names, thresholds.
    pub voice: VoiceConfig,
    /// Adopt rooms LiveKit has and no session owns (`voice.adopt_rooms`): a final transcript
    /// or a signed `room_started` for such a room creates a room session.
    pub adopt_rooms: bool,
}

/// The services, wired to the same ports. Cheap to clone; build one per process.
#[derive(Clone)]
pub struct Domain {
    /// The session use cases.
    pub sessions: SessionService,
    /// Webhooks, the event log, the reaper (bot dispatch claims go to `voice`).
    pub lifecycle: LifecycleService,
    /// Chat turns and speech.
    pub conversation: ConversationService,
    /// Transcripts, turns, barge-in.
    pub voice: VoiceService,
    /// The `Idempotency-Key` protocol, for the layer that reads the header.
    pub idempotency: IdempotencyService,
}

impl Domain {
    /// Wires the services to `ports` under `policies`. Every status change a service makes
    /// is published to `ports.live` (see `announce.rs`).
    pub fn new(mut ports: DomainPorts, policies: DomainPolicies) -> Self {
        ports.sessions = Arc::new(crate::announce::StatusAnnouncer {
            inner: ports.sessions,
            live: ports.live.clone(),
        });
        let idempotency = IdempotencyService::new(ports.idempotency, ports.clock.clone());
        let adopter = policies.adopt_rooms.then(|| {
            RoomAdopter::new(
                ports.sessions.clone(),
                ports.rooms.clone(),
                ports.clock.clone(),
                &policies.sessions,
            )
        });
        let sessions = SessionService::new(
            crate::service::SessionPorts {
                store: ports.sessions.clone(),
                history: ports.history.clone(),
                health: ports.health,
                rooms: ports.rooms.clone(),
                tokens: ports.tokens,
                clock: ports.clock.clone(),
                turns: ports.turns.clone(),
            },
            policies.sessions,
        );
        let conversation = ConversationService::new(
            ConversationPorts {
                sessions: ports.sessions.clone(),
                history: ports.history.clone(),
                llm: ports.llm.clone(),
                tts: ports.tts.clone(),
                stt: ports.stt,
                clock: ports.clock.clone(),
                turns: ports.turns.clone(),
                live: ports.live.clone(),
                observer: ports.observer.clone(),
            },
            policies.conversation.clone(),
        );
        let voice = VoiceService::new(
            VoicePorts {
                sessions: ports.sessions.clone(),
                voice_state: ports.voice_state,
                history: ports.history,
                llm: ports.llm,
                tts: ports.tts,
                dispatcher: ports.dispatcher,
                clock: ports.clock.clone(),
                observer: ports.observer,
                turns: ports.turns,
                live: ports.live,
            },
            policies.conversation,
            policies.voice,
        );
        let voice = match &adopter {
            Some(adopter) => voice.with_adoption(adopter.clone()),
            None => voice,
        };
        let lifecycle = LifecycleService::new(LifecyclePorts {
            sessions: ports.sessions,
            presence: ports.presence,
            leases: ports.leases,
            events: ports.events,
            rooms: ports.rooms,
            verifier: ports.verifier,
            clock: ports.clock,
        })
        .with_voice(voice.clone());
        let lifecycle = match adopter {
            Some(adopter) => lifecycle.with_adoption(adopter),
            None => lifecycle,
        };
        Domain {
            sessions,
            lifecycle,
            conversation,
            voice,
            idempotency,
        }
    }
}
