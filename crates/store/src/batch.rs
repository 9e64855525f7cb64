//! Group commit: calls that arrive while a batch is being written wait, and are written
//! together as the next batch. Under light load a batch is one call and nothing waits.
//! SQLite has one writer, and each commit is a round trip to its thread; writing many rows
//! per round trip is what lets it keep up (docs/benchmarks.md).

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// A queue of items in front of a task that writes them in batches of at most `max`.
pub(crate) struct Batcher<T, R> {
    queue: mpsc::Sender<(T, oneshot::Sender<R>)>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the writing task on the current Tokio runtime; it ends when the last
    /// `Batcher` is dropped. `write` answers every item of a batch, in order.
    pub(crate) fn start<F, Fut>(max: usize, write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (queue, mut pending) = mpsc::channel::<(T, oneshot::Sender<R>)>(4 * max);
        tokio::spawn(async move {
            let mut taken = Vec::with_capacity(max);
            while pending.recv_many(&mut taken, max).await > 0 {
                let (items, replies): (Vec<T>, Vec<_>) = taken.drain(..).unzip();
                for (reply, answer) in replies.into_iter().zip(write(items).await) {
                    // A caller that went away needs no answer.
                    let _ = reply.send(answer);
                }
            }
        });
        Batcher { queue }
    }

    /// Queues `item` and waits for its answer; `None` if the task has stopped.
    pub(crate) async fn submit(&self, item: T) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((item, reply)).await.ok()?;
        answer.await.ok()
    }
}

impl<T, R> std::fmt::Debug for Batcher<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}
