//! The server's work after the answer, and the drain before it stops.
//!
//! [`Background`] owns every task a request leaves behind: voice turns, the producer of a
//! streamed chat reply, and LiveKit's agent dispatch. Each runs on the runtime that built the
//! `Background` (the binary's main runtime; an actix worker's runtime dies with its worker,
//! and the work with it) and is tracked, so a shutdown waits for it
//! ([`Background::shutdown`]) and abandons cleanly what outlives the deadline.
//!
//! Bot dispatch has its own bounded queue, a cap on jobs running at once, a timeout per
//! attempt and a few attempts with backoff. A full queue refuses an order at once and gives
//! its claim back, so no webhook ever waits for LiveKit and a later `track_published` (to any
//! replica) tries again. Voice turns are capped too: a final beyond the cap is refused (503)
//! before it cancels the running turn.
//!
//! [`Drain`] is the switch of a replica on its way out: `/readyz` answers 503 `draining`, and
//! every response carries `Connection: close` ([`close_while_draining`]) so keep-alive
//! clients reconnect, through the load balancer, to another replica.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use june_domain::{BotDispatch, VoiceService};
use tokio::runtime::Handle;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How long work abandoned at the shutdown deadline gets to give its claims back (one store
/// write each, all at once).
const ABANDON_GRACE: Duration = Duration::from_secs(2);

/// Bounds and retries of the background work; filled from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackgroundConfig {
    /// Dispatch orders waiting for a free job; a full queue refuses new ones.
    pub dispatch_queue: usize,
    /// Dispatch jobs running at once.
    pub dispatch_concurrency: usize,
    /// Attempts per order (1: no retry).
    pub dispatch_attempts: u32,
    /// Longest single attempt (both agents).
    pub dispatch_attempt_timeout: Duration,
    /// Wait before the second attempt, doubled before each later one.
    pub dispatch_backoff: Duration,
    /// Voice turns running at once.
    pub max_turns: usize,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        BackgroundConfig {
            dispatch_queue: 256,
            dispatch_concurrency: 8,
            dispatch_attempts: 3,
            dispatch_attempt_timeout: Duration::from_secs(12),
            dispatch_backoff: Duration::from_millis(500),
            max_turns: 256,
        }
    }
}

/// How a dispatch order ended (the `outcome` label of `june_bot_dispatches_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// Both agents were dispatched.
    Dispatched,
    /// Every attempt failed or timed out; the claim was given back.
    Failed,
    /// The queue was full; refused at once, the claim given back.
    QueueFull,
    /// The server was shutting down and took no new orders; the claim was given back.
    ShuttingDown,
    /// Still queued or running at the shutdown deadline; the claim was given back.
    Abandoned,
}

impl DispatchOutcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchOutcome::Dispatched => "dispatched",
            DispatchOutcome::Failed => "failed",
            DispatchOutcome::QueueFull => "queue_full",
            DispatchOutcome::ShuttingDown => "shutting_down",
            DispatchOutcome::Abandoned => "abandoned",
        }
    }
}

/// A running voice turn's place under [`BackgroundConfig::max_turns`]; freed when dropped.
#[derive(Debug)]
pub struct TurnSlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// The server's background work (see the module docs). Cheap to clone: clones share it.
#[derive(Clone)]
pub struct Background {
    inner: Arc<Inner>,
}

struct Inner {
    tracker: TaskTracker,
    runtime: Handle,
    /// Each order with the span of the webhook that claimed it (its job joins that trace).
    orders: mpsc::Sender<(BotDispatch, tracing::Span)>,
    turns: Arc<Semaphore>,
    /// Closes the dispatch intake; queued orders still run.
    closing: CancellationToken,
    /// Stops whatever still runs at the shutdown deadline.
    abandon: CancellationToken,
    voice: VoiceService,
}

/// What the dispatch jobs share.
#[derive(Clone)]
struct Jobs {
    voice: VoiceService,
    config: BackgroundConfig,
    tracker: TaskTracker,
    runtime: Handle,
    abandon: CancellationToken,
}

impl Background {
    /// Starts the dispatch intake on the current tokio runtime, where every background task
    /// will run. Panics outside a tokio runtime (as `tokio::spawn` does).
    pub fn new(voice: VoiceService, config: BackgroundConfig) -> Self {
        let tracker = TaskTracker::new();
        let runtime = Handle::current();
        let (orders, queue) = mpsc::channel(config.dispatch_queue.max(1));
        let closing = CancellationToken::new();
        let abandon = CancellationToken::new();
        let jobs = Jobs {
            voice: voice.clone(),
            config,
            tracker: tracker.clone(),
            runtime: runtime.clone(),
            abandon: abandon.clone(),
        };
        tracker.spawn_on(intake(jobs, queue, closing.clone()), &runtime);
        Background {
            inner: Arc::new(Inner {
                tracker,
                runtime,
                orders,
                turns: Arc::new(Semaphore::new(config.max_turns.max(1))),
                closing,
                abandon,
                voice,
            }),
        }
    }

    /// Queues a claimed bot dispatch without waiting for LiveKit. A full queue (or a server
    /// that is shutting down) refuses it at once, counts it and gives the claim back, so a
    /// later `track_published` tries again; only that one store write is awaited.
    pub async fn dispatch(&self, order: BotDispatch) {
        let sent = if self.inner.closing.is_cancelled() {
            Err(TrySendError::Closed((order, tracing::Span::none())))
        } else {
            self.inner
                .orders
                .try_send((order, tracing::Span::current()))
        };
        let (order, outcome) = match sent {
            Ok(()) => return,
            Err(TrySendError::Full((order, _))) => (order, DispatchOutcome::QueueFull),
            Err(TrySendError::Closed((order, _))) => (order, DispatchOutcome::ShuttingDown),
        };
        tracing::warn!(
            session_id = %order.session_id,
            outcome = outcome.as_str(),
            "voice bot dispatch refused; its claim is given back for the next track_published"
        );
        self.inner.voice.unclaim_bots(&order).await;
        crate::metrics::bot_dispatch(outcome.as_str());
    }

    /// A place for one more voice turn, if fewer than [`BackgroundConfig::max_turns`] run.
    pub fn turn_slot(&self) -> Option<TurnSlot> {
        self.inner
            .turns
            .clone()
            .try_acquire_owned()
            .ok()
            .map(TurnSlot)
    }

    /// Runs `task` in the background, tracked: a shutdown waits for it, and drops it (with a
    /// log line naming `what`) if it is still running at the deadline. It runs in a span of
    /// its own that belongs to the caller's trace (the request that started it), so a voice
    /// turn is one trace with its request; the request's span still ends with the response.
    pub fn spawn(&self, what: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let abandon = self.inner.abandon.clone();
        let span = background_span(what, &tracing::Span::current());
        self.inner.tracker.spawn_on(
            async move {
                tokio::select! {
                    () = task => {}
                    () = abandon.cancelled() => {
                        tracing::warn!(task = what, "background task abandoned at the shutdown deadline");
                    }
                }
            }
            .instrument(span),
            &self.inner.runtime,
        );
    }

    /// Background tasks running now (the intake included while it runs).
    pub fn len(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Whether no background task runs (after a shutdown, once all are done).
    pub fn is_empty(&self) -> bool {
        self.inner.tracker.is_empty()
    }

    /// Takes no more dispatch orders, lets queued and running work finish until `deadline`,
    /// then abandons what is left: dispatch orders give their claims back (within a short
    /// grace), turns and chat producers are dropped (a dropped turn holds nothing in the
    /// store: its generation is only a counter the next final moves on). Returns how many
    /// tasks were still running at the deadline. Safe to call more than once.
    pub async fn shutdown(&self, deadline: Instant) -> usize {
        let inner = &self.inner;
        inner.closing.cancel();
        inner.tracker.close();
        if tokio::time::timeout_at(deadline, inner.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = inner.tracker.len();
        tracing::warn!(
            tasks = left,
            "background work still running at the shutdown deadline is abandoned"
        );
        inner.abandon.cancel();
        if tokio::time::timeout(ABANDON_GRACE, inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = inner.tracker.len(),
                "abandoned background work did not stop in time"
            );
        }
        left
    }
}

/// The span of background work started in `started_in` (a request's span): its own root in
/// tracing, so the request's span ends with the response, but in the request's trace.
fn background_span(what: &'static str, started_in: &tracing::Span) -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "background",
        task = what,
        otel.name = what,
        trace_id = tracing::field::Empty,
    );
    june_trace_context::adopt(&span, started_in);
    if let Some(trace_id) = june_trace_context::trace_id(&span) {
        span.record("trace_id", trace_id);
    }
    span
}

/// Starts queued orders in turn, each once one of the `dispatch_concurrency` places is free
/// (a place first, then the order: what waits, waits in the bounded queue). After `closing`
/// it runs what is queued and ends; abandoned, it gives back what is still queued.
async fn intake(
    jobs: Jobs,
    mut queue: mpsc::Receiver<(BotDispatch, tracing::Span)>,
    closing: CancellationToken,
) {
    let places = Arc::new(Semaphore::new(jobs.config.dispatch_concurrency.max(1)));
    let mut open = true;
    loop {
        let place = tokio::select! {
            place = places.clone().acquire_owned() => place,
            () = jobs.abandon.cancelled() => break,
        };
        // The semaphore is never closed: a place is always granted.
        let Ok(place) = place else { break };
        let order = tokio::select! {
            biased;
            () = closing.cancelled(), if open => {
                queue.close();
                open = false;
                continue;
            }
            order = queue.recv() => order,
        };
        let Some((order, claimed_in)) = order else {
            break;
        };
        let job = jobs.clone();
        jobs.tracker.spawn_on(
            async move {
                let _place = place;
                job.run(order).await;
            }
            .instrument(background_span("bot dispatch", &claimed_in)),
            &jobs.runtime,
        );
    }
    queue.close();
    while let Ok((order, _)) = queue.try_recv() {
        // Given back concurrently, tracked like the jobs.
        let voice = jobs.voice.clone();
        jobs.tracker.spawn_on(
            async move { give_back(&voice, &order, DispatchOutcome::Abandoned).await },
            &jobs.runtime,
        );
    }
}

impl Jobs {
    /// One order: up to `dispatch_attempts` attempts, each bounded by its timeout, with a
    /// doubling backoff between them. Only the agents still owed are sent again (LiveKit's
    /// dispatch is not idempotent). Given up or abandoned, the claim goes back.
    async fn run(&self, order: BotDispatch) {
        let config = &self.config;
        let mut dispatched = Vec::new();
        let mut backoff = config.dispatch_backoff;
        let attempts = config.dispatch_attempts.max(1);
        for attempt in 1..=attempts {
            let tried = tokio::select! {
                biased;
                () = self.abandon.cancelled() => {
                    return give_back(&self.voice, &order, DispatchOutcome::Abandoned).await;
                }
                tried = tokio::time::timeout(
                    config.dispatch_attempt_timeout,
                    self.voice.dispatch_missing(&order, &mut dispatched),
                ) => tried,
            };
            match tried {
                Ok(Ok(())) => {
                    crate::metrics::bot_dispatch(DispatchOutcome::Dispatched.as_str());
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(session_id = %order.session_id, attempt, attempts, error = %e, "voice bot dispatch attempt failed");
                }
                Err(_) => {
                    tracing::warn!(session_id = %order.session_id, attempt, attempts, timeout_ms = config.dispatch_attempt_timeout.as_millis() as u64, "voice bot dispatch attempt timed out");
                }
            }
            if attempt < attempts {
                crate::metrics::bot_dispatch_retry();
                tokio::select! {
                    biased;
                    () = self.abandon.cancelled() => {
                        return give_back(&self.voice, &order, DispatchOutcome::Abandoned).await;
                    }
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = backoff.saturating_mul(2);
            }
        }
        give_back(&self.voice, &order, DispatchOutcome::Failed).await;
    }
}

/// Gives an order's claim back (a later `track_published` claims again) and counts it.
async fn give_back(voice: &VoiceService, order: &BotDispatch, outcome: DispatchOutcome) {
    tracing::warn!(
        session_id = %order.session_id,
        outcome = outcome.as_str(),
        "voice bot dispatch given up; the next track_published tries again"
    );
    voice.unclaim_bots(order).await;
    crate::metrics::bot_dispatch(outcome.as_str());
}

/// Whether this replica is draining (on its way out after SIGTERM). Cheap to clone: clones
/// share the switch.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<AtomicBool>, CancellationToken);

impl Drain {
    /// Starts the drain; `false` if it had already started.
    pub fn begin(&self) -> bool {
        let first = !self.0.swap(true, Ordering::SeqCst);
        self.1.cancel();
        first
    }

    /// Whether the drain has started.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Resolves when the drain starts: long-lived responses (the live streams) end then, so
    /// their clients reconnect to a replica that stays and the shutdown does not wait for
    /// them.
    pub async fn started(&self) {
        self.1.cancelled().await;
    }
}

/// The middleware function (with `actix_web::middleware::from_fn`): while the replica drains,
/// every response asks the client to close the connection, so its next request opens a new
/// one and the load balancer sends it to a replica that stays. Read after the handler, so a
/// request that began before the drain is answered this way too.
pub async fn close_while_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut res = next.call(req).await?.map_into_boxed_body();
    let draining = res
        .request()
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .is_some_and(|state| state.drain.is_draining());
    if draining {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use june_domain::memory::{InMemoryRooms, InMemoryStore};
    use june_domain::ports::{
        AgentDispatcher, MockTokenIssuer, MockWebhookVerifier, RoomError, SessionStore,
        VoiceStateStore,
    };
    use june_domain::{Domain, DomainPolicies, DomainPorts, SessionStatus};
    use tokio::sync::oneshot;

    use super::*;

    /// How the scripted LiveKit answers one CreateDispatch call.
    enum Answer {
        Accept,
        Fail,
        /// Never answers (the attempt's timeout ends it).
        Hang,
        /// Answers once the test sends on the other end.
        After(oneshot::Receiver<()>),
    }

    /// A LiveKit agent dispatch that answers as scripted (then accepts), and reports each
    /// call as it starts.
    struct Scripted {
        answers: Mutex<VecDeque<Answer>>,
        calls: Mutex<Vec<String>>,
        started: mpsc::UnboundedSender<String>,
    }

    #[async_trait]
    impl AgentDispatcher for Scripted {
        async fn dispatch(&self, room: &str, agent: &str, _: &str) -> Result<String, RoomError> {
            self.calls.lock().unwrap().push(format!("{room}/{agent}"));
            let _ = self.started.send(format!("{room}/{agent}"));
            let answer = self.answers.lock().unwrap().pop_front();
            match answer.unwrap_or(Answer::Accept) {
                Answer::Accept => Ok(format!("AD_{agent}")),
                Answer::Fail => Err(RoomError::Unavailable {
                    message: "connection refused".into(),
                    source: None,
                }),
                Answer::Hang => std::future::pending().await,
                Answer::After(gate) => {
                    let _ = gate.await;
                    Ok(format!("AD_{agent}"))
                }
            }
        }
    }

    struct Fixture {
        store: Arc<InMemoryStore>,
        dispatcher: Arc<Scripted>,
        started: mpsc::UnboundedReceiver<String>,
        background: Background,
    }

    fn fixture(answers: Vec<Answer>, config: BackgroundConfig) -> Fixture {
        let store = Arc::new(InMemoryStore::default());
        let (started_tx, started) = mpsc::unbounded_channel();
        let dispatcher = Arc::new(Scripted {
            answers: Mutex::new(answers.into()),
            calls: Mutex::default(),
            started: started_tx,
        });
        let Domain { voice, .. } = Domain::new(
            DomainPorts {
                dispatcher: Some(dispatcher.clone()),
                ..DomainPorts::with_store(
                    store.clone(),
                    Arc::new(InMemoryRooms::default()),
                    Arc::new(MockTokenIssuer::new()),
                    Arc::new(MockWebhookVerifier::new()),
                )
            },
            DomainPolicies::default(),
        );
        Fixture {
            store,
            dispatcher,
            started,
            background: Background::new(voice, config),
        }
    }

    impl Fixture {
        /// A live voice session whose dispatch is claimed, and its order.
        async fn claimed(&self, room: &str) -> BotDispatch {
            let session = june_testkit::session()
                .room(room)
                .status(SessionStatus::Active)
                .voice(true)
                .build();
            self.store.insert(&session).await.unwrap();
            assert!(
                self.store
                    .claim_dispatch(session.id, chrono::Utc::now())
                    .await
                    .unwrap()
            );
            BotDispatch {
                session_id: session.id,
                room_name: room.into(),
                language: "en".into(),
            }
        }

        /// Whether the order's claim is still held (a new claim would fail). Claims it if not.
        async fn still_claimed(&self, order: &BotDispatch) -> bool {
            !self
                .store
                .claim_dispatch(order.session_id, chrono::Utc::now())
                .await
                .unwrap()
        }

        fn calls(&self) -> Vec<String> {
            self.dispatcher.calls.lock().unwrap().clone()
        }

        /// Waits (no deadline: paused or not, the test's own timeout guards it) until every
        /// tracked task has ended.
        async fn settle(&self) -> usize {
            self.background
                .shutdown(Instant::now() + Duration::from_secs(3600))
                .await
        }
    }

    fn config() -> BackgroundConfig {
        BackgroundConfig {
            dispatch_attempt_timeout: Duration::from_secs(10),
            dispatch_backoff: Duration::from_millis(100),
            ..BackgroundConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_attempt_is_retried_and_only_the_agents_still_owed_are_sent_again() {
        // Arrange: LiveKit takes the STT bot, fails on the TTS bot, then takes it.
        let fx = fixture(vec![Answer::Accept, Answer::Fail, Answer::Accept], config());
        let order = fx.claimed("room-a").await;

        // Act
        fx.background.dispatch(order.clone()).await;
        assert_eq!(fx.settle().await, 0);

        // Assert: the STT bot once, the TTS bot twice; the claim stays (dispatched).
        assert_eq!(
            fx.calls(),
            ["room-a/june-stt", "room-a/june-tts", "room-a/june-tts"]
        );
        assert!(fx.still_claimed(&order).await);
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_whose_every_attempt_fails_or_times_out_gives_its_claim_back() {
        // Arrange: three attempts: refused, silent (the attempt's timeout ends it), refused.
        let fx = fixture(vec![Answer::Fail, Answer::Hang, Answer::Fail], config());
        let order = fx.claimed("room-b").await;

        // Act
        fx.background.dispatch(order.clone()).await;
        assert_eq!(fx.settle().await, 0);

        // Assert: three attempts at the STT bot, none at the TTS bot, and the claim is free
        // for the next track_published.
        assert_eq!(fx.calls(), ["room-b/june-stt"; 3]);
        assert!(!fx.still_claimed(&order).await);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_an_order_at_once_and_gives_its_claim_back() {
        // Arrange: one job at a time, one order queued; LiveKit holds the first call.
        let (open, gate) = oneshot::channel();
        let mut fx = fixture(
            vec![Answer::After(gate)],
            BackgroundConfig {
                dispatch_queue: 1,
                dispatch_concurrency: 1,
                ..config()
            },
        );
        let running = fx.claimed("room-1").await;
        let queued = fx.claimed("room-2").await;
        let refused = fx.claimed("room-3").await;

        // Act: the first order runs (and waits on LiveKit), the second waits in the queue,
        // the third finds it full.
        fx.background.dispatch(running.clone()).await;
        assert_eq!(fx.started.recv().await.unwrap(), "room-1/june-stt");
        fx.background.dispatch(queued.clone()).await;
        fx.background.dispatch(refused.clone()).await;

        // Assert: the refused order's claim is free while the others still hold theirs.
        assert!(!fx.still_claimed(&refused).await);
        assert!(fx.still_claimed(&queued).await);
        open.send(()).unwrap();
        assert_eq!(fx.settle().await, 0);
        assert_eq!(
            fx.calls(),
            [
                "room-1/june-stt",
                "room-1/june-tts",
                "room-2/june-stt",
                "room-2/june-tts"
            ]
        );
        assert!(fx.still_claimed(&running).await);
    }

    #[tokio::test(start_paused = true)]
    async fn work_left_at_the_shutdown_deadline_is_abandoned_and_gives_its_claims_back() {
        // Arrange: LiveKit never answers; one job at a time, so a second order waits queued.
        let mut fx = fixture(
            vec![Answer::Hang],
            BackgroundConfig {
                dispatch_concurrency: 1,
                dispatch_attempt_timeout: Duration::from_secs(3600),
                ..config()
            },
        );
        let running = fx.claimed("room-r").await;
        let queued = fx.claimed("room-q").await;
        fx.background.dispatch(running.clone()).await;
        assert_eq!(fx.started.recv().await.unwrap(), "room-r/june-stt");
        fx.background.dispatch(queued.clone()).await;
        fx.background
            .spawn("a turn that never ends", std::future::pending());

        // Act
        let left = fx
            .background
            .shutdown(Instant::now() + Duration::from_secs(1))
            .await;

        // Assert: the intake, the running job and the endless task were left; everything
        // stopped, and both claims are free for another replica.
        assert_eq!(left, 3);
        assert!(fx.background.is_empty());
        assert!(!fx.still_claimed(&running).await);
        assert!(!fx.still_claimed(&queued).await);
        assert_eq!(fx.calls(), ["room-r/june-stt"]);

        // An order after the shutdown is refused at once, its claim given back.
        let late = fx.claimed("room-late").await;
        fx.background.dispatch(late.clone()).await;
        assert!(!fx.still_claimed(&late).await);
    }

    #[tokio::test]
    async fn the_shutdown_waits_for_running_work_that_ends_before_the_deadline() {
        // Arrange: a task that ends when the test says so.
        let fx = fixture(Vec::new(), config());
        let (finish, finished) = oneshot::channel::<()>();
        let (done_tx, mut done) = mpsc::unbounded_channel();
        fx.background.spawn("a chat reply", async move {
            let _ = finished.await;
            let _ = done_tx.send(());
        });

        // Act: the shutdown starts first, the task ends afterwards.
        let shutdown = tokio::spawn({
            let background = fx.background.clone();
            async move {
                background
                    .shutdown(Instant::now() + Duration::from_secs(3600))
                    .await
            }
        });
        tokio::task::yield_now().await;
        finish.send(()).unwrap();

        // Assert: nothing was abandoned and the task ran to its end.
        assert_eq!(shutdown.await.unwrap(), 0);
        assert_eq!(done.try_recv(), Ok(()));
    }

    #[tokio::test]
    async fn turns_beyond_the_cap_find_no_place_until_one_ends() {
        let fx = fixture(
            Vec::new(),
            BackgroundConfig {
                max_turns: 2,
                ..config()
            },
        );
        let first = fx.background.turn_slot().unwrap();
        let _second = fx.background.turn_slot().unwrap();
        assert!(fx.background.turn_slot().is_none());
        drop(first);
        assert!(fx.background.turn_slot().is_some());
    }

    #[test]
    fn the_drain_starts_once_and_every_clone_sees_it() {
        let drain = Drain::default();
        let seen = drain.clone();
        assert!(!seen.is_draining());
        assert!(drain.begin());
        assert!(!drain.begin());
        assert!(seen.is_draining());
    }
}
