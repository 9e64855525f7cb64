//! The webhook intake: deliveries that arrive while a batch is being applied wait and are
//! applied together as the next batch, so the store is asked once per step for the whole
//! batch instead of once per delivery (docs/benchmarks.md). Under light load a batch is one
//! delivery and nothing waits.

use june_domain::ports::StoreError;
use june_domain::{LifecycleService, LiveKitEvent, SessionError, WebhookOutcome};
use tokio::sync::{mpsc, oneshot};

/// Most deliveries applied as one batch.
pub const MAX_BATCH: usize = 64;

/// Batches applied at once: while one batch writes, the next one reads.
const WORKERS: usize = 2;

type Reply = oneshot::Sender<Result<WebhookOutcome, SessionError>>;

/// Hands verified events to the task that applies them. Cheap to clone; the task ends
/// when the last handle is dropped, after answering what it has taken.
#[derive(Clone)]
pub struct WebhookIntake {
    queue: mpsc::Sender<(LiveKitEvent, Reply)>,
}

impl WebhookIntake {
    /// Starts the applying task on the current Tokio runtime.
    pub fn start(lifecycle: LifecycleService) -> Self {
        let (queue, pending) = mpsc::channel::<(LiveKitEvent, Reply)>(4 * MAX_BATCH);
        let pending = std::sync::Arc::new(tokio::sync::Mutex::new(pending));
        for _ in 0..WORKERS {
            let (lifecycle, pending) = (lifecycle.clone(), pending.clone());
            tokio::spawn(async move {
                let mut taken = Vec::with_capacity(MAX_BATCH);
                loop {
                    if pending.lock().await.recv_many(&mut taken, MAX_BATCH).await == 0 {
                        break;
                    }
                    let (events, replies): (Vec<_>, Vec<_>) = taken.drain(..).unzip();
                    apply(&lifecycle, events, replies).await;
                }
            });
        }
        WebhookIntake { queue }
    }

    /// Applies one verified event with whatever else is waiting, and answers for it alone.
    pub async fn apply(&self, event: LiveKitEvent) -> Result<WebhookOutcome, SessionError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((event, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn apply(lifecycle: &LifecycleService, events: Vec<LiveKitEvent>, replies: Vec<Reply>) {
    if events.len() > 1 {
        tracing::debug!(events = events.len(), "applying a webhook batch");
    }
    match lifecycle.apply_batch(events.clone()).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A caller that went away (client disconnect) needs no answer.
                let _ = reply.send(Ok(outcome));
            }
        }
        // Nothing of the batch was recorded: apply them one by one, so one bad event (or a
        // store blip) answers for itself and the others still land.
        Err(e) if events.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(_) => {
            for (event, reply) in events.into_iter().zip(replies) {
                let _ = reply.send(lifecycle.apply(event).await);
            }
        }
    }
}

fn stopped() -> SessionError {
    SessionError::Store(StoreError::Unavailable(
        "the webhook intake has stopped".into(),
    ))
}
