//! A micro-batcher: calls that arrive while a batch is being applied wait, and are applied
//! together as the next batch. Under light load a batch is one call and nothing waits.
//!
//! It is a *combining* batcher, with no task of its own, so it runs on any executor (the
//! domain names no runtime): each caller queues its item with a one-shot reply channel, then
//! competes for a *turn* (an async lock). Whoever holds a turn drains up to `max` queued
//! items, applies them as one batch with the function it brought, answers each item through
//! its channel, and gives the turn back; a caller whose item another caller's batch answered
//! simply returns that answer. With several turns (`lanes`), one batch can be read while
//! the previous one writes.
//!
//! Used for LiveKit webhooks ([`crate::LifecycleService::receive`]) and for the SQLite
//! group commit of new sessions (june-store). See docs/benchmarks.md for why batching pays.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use futures_channel::oneshot;
use futures_util::future::{Either, select, select_all};

/// Why a submitted item got no answer from its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The queue already holds `capacity` items: the caller is refused at once rather than
    /// queued without bound.
    #[error("the batch queue is full")]
    Full,
    /// The caller applying the batch that held this item went away (its future was dropped)
    /// before answering it. The item may or may not have taken effect.
    #[error("the batch holding this item was abandoned before it answered")]
    Abandoned,
}

/// A queued item and where its answer goes.
struct Waiting<T, R> {
    seq: u64,
    item: T,
    reply: oneshot::Sender<R>,
}

struct Queue<T, R> {
    items: VecDeque<Waiting<T, R>>,
    next_seq: u64,
}

/// Queues items and applies them in batches of at most `max`, in arrival order. Share one
/// per kind of work (behind an `Arc`, or inside a shared service).
pub struct Batcher<T, R> {
    queue: Mutex<Queue<T, R>>,
    turns: Vec<futures_util::lock::Mutex<()>>,
    max: usize,
    capacity: usize,
}

impl<T, R> std::fmt::Debug for Batcher<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("max", &self.max)
            .field("capacity", &self.capacity)
            .field("lanes", &self.turns.len())
            .finish_non_exhaustive()
    }
}

impl<T, R> Batcher<T, R> {
    /// A batcher applying at most `max` items per batch, holding at most `capacity` waiting
    /// items (more are refused with [`BatchError::Full`]), and running at most `lanes`
    /// batches at once. Each is at least 1.
    pub fn new(max: usize, capacity: usize, lanes: usize) -> Self {
        Batcher {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                next_seq: 0,
            }),
            turns: (0..lanes.max(1))
                .map(|_| futures_util::lock::Mutex::new(()))
                .collect(),
            max: max.max(1),
            capacity: capacity.max(1),
        }
    }

    /// Applies `item` together with whatever else is waiting, and returns its own answer.
    ///
    /// `apply` gets a batch (at most `max` items, in arrival order) and must answer each
    /// item, in order; an item it leaves unanswered gets [`BatchError::Abandoned`]. The
    /// caller may run `apply` for other callers' items (that is the point), so `apply` must
    /// do the same whoever calls it. Dropping this future before its item is taken
    /// withdraws the item.
    pub async fn submit<F, Fut>(&self, item: T, mut apply: F) -> Result<R, BatchError>
    where
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (reply, mut answer) = oneshot::channel();
        let seq = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.items.len() >= self.capacity {
                return Err(BatchError::Full);
            }
            let seq = queue.next_seq;
            queue.next_seq += 1;
            queue.items.push_back(Waiting { seq, item, reply });
            seq
        };
        let _withdraw = Withdraw { batcher: self, seq };
        loop {
            if self.taken(seq) {
                // Another caller's batch holds it: only that caller can answer now.
                return answer.await.map_err(|_| BatchError::Abandoned);
            }
            let turn = select_all(self.turns.iter().map(|t| t.lock()));
            let guard = match select(&mut answer, turn).await {
                Either::Left((answered, _)) => return answered.map_err(|_| BatchError::Abandoned),
                Either::Right(((guard, _, others), _)) => {
                    // Stop waiting on the other lanes at once, so their releases wake
                    // someone who is still waiting.
                    drop(others);
                    guard
                }
            };
            let batch = self.take();
            if batch.is_empty() {
                continue;
            }
            let (items, replies): (Vec<T>, Vec<oneshot::Sender<R>>) =
                batch.into_iter().map(|w| (w.item, w.reply)).unzip();
            let answers = apply(items).await;
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that went away needs no answer.
                let _ = reply.send(answer);
            }
            drop(guard);
            if let Ok(Some(mine)) = answer.try_recv() {
                return Ok(mine);
            }
        }
    }

    /// Whether the item numbered `seq` has left the queue (items leave in order).
    fn taken(&self, seq: u64) -> bool {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.items.front().is_none_or(|w| w.seq > seq)
    }

    /// The next batch: up to `max` items from the front.
    fn take(&self) -> Vec<Waiting<T, R>> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let n = queue.items.len().min(self.max);
        queue.items.drain(..n).collect()
    }
}

/// Removes a caller's item from the queue if the caller goes away before it is taken.
struct Withdraw<'a, T, R> {
    batcher: &'a Batcher<T, R>,
    seq: u64,
}

impl<T, R> Drop for Withdraw<'_, T, R> {
    fn drop(&mut self) {
        let mut queue = self
            .batcher
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if queue.items.front().is_some_and(|w| w.seq <= self.seq) {
            queue.items.retain(|w| w.seq != self.seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::FutureExt;
    use futures_util::future::join_all;

    use super::*;

    /// Applies batches, remembering each one, after waiting for `gate` once (so callers pile
    /// up behind the first batch).
    struct Recorder {
        batches: Mutex<Vec<Vec<u32>>>,
        gate: futures_util::lock::Mutex<Option<oneshot::Receiver<()>>>,
    }

    impl Recorder {
        fn new(gate: Option<oneshot::Receiver<()>>) -> Self {
            Recorder {
                batches: Mutex::new(Vec::new()),
                gate: futures_util::lock::Mutex::new(gate),
            }
        }

        async fn apply(&self, items: Vec<u32>) -> Vec<u32> {
            if let Some(gate) = self.gate.lock().await.take() {
                let _ = gate.await;
            }
            self.batches.lock().unwrap().push(items.clone());
            items.into_iter().map(|i| i * 10).collect()
        }
    }

    #[tokio::test]
    async fn a_lone_caller_applies_its_own_item_at_once() {
        let batcher = Batcher::new(8, 32, 1);
        let rec = Recorder::new(None);
        assert_eq!(batcher.submit(7, |b| rec.apply(b)).await, Ok(70));
        assert_eq!(*rec.batches.lock().unwrap(), vec![vec![7]]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_are_all_answered_in_batches_of_at_most_max_in_order() {
        let batcher = Arc::new(Batcher::new(4, 64, 1));
        let (open, gate) = oneshot::channel();
        let rec = Arc::new(Recorder::new(Some(gate)));
        // The first caller holds the turn, waiting on the gate, while the others queue.
        let first = {
            let (batcher, rec) = (batcher.clone(), rec.clone());
            tokio::spawn(async move { batcher.submit(0, |b| rec.apply(b)).await })
        };
        while batcher.queue.lock().unwrap().next_seq == 0 || !batcher.taken(0) {
            tokio::task::yield_now().await;
        }
        let mut callers = Vec::new();
        for i in 1..=10 {
            let (b, rec) = (batcher.clone(), rec.clone());
            callers.push(tokio::spawn(async move {
                (i, b.submit(i, |items| rec.apply(items)).await)
            }));
            // One at a time, so the arrival order is known.
            while batcher.queue.lock().unwrap().items.len() < i as usize {
                tokio::task::yield_now().await;
            }
        }
        open.send(()).unwrap();

        assert_eq!(first.await.unwrap(), Ok(0));
        for (i, answer) in join_all(callers).await.into_iter().map(Result::unwrap) {
            assert_eq!(answer, Ok(i * 10), "each caller gets its own answer");
        }
        let batches = rec.batches.lock().unwrap().clone();
        assert_eq!(batches[0], vec![0]);
        assert!(batches.iter().all(|b| b.len() <= 4), "{batches:?}");
        let all: Vec<u32> = batches.concat();
        assert_eq!(all, (0..=10).collect::<Vec<_>>(), "arrival order is kept");
        assert!(batches.len() <= 1 + 3, "the waiting callers were combined");
    }

    #[tokio::test]
    async fn a_failing_batch_answers_every_item() {
        let batcher: Batcher<u32, Result<u32, String>> = Batcher::new(8, 32, 1);
        let calls = AtomicUsize::new(0);
        let fail = |items: Vec<u32>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                items
                    .iter()
                    .map(|i| Err(format!("item {i} failed")))
                    .collect::<Vec<_>>()
            }
        };
        let answers = join_all((0..5).map(|i| batcher.submit(i, fail))).await;
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(a, Ok(Err(format!("item {i} failed"))));
        }
        assert!(calls.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn an_item_left_unanswered_is_abandoned_not_stuck() {
        let batcher = Batcher::new(8, 32, 1);
        let held = batcher.turns[0].lock().await;
        let mut waiting: Vec<_> = (0..3)
            .map(|i| {
                Box::pin(batcher.submit(i, |items: Vec<u32>| async move {
                    // Answers only the first item of each batch.
                    items.into_iter().take(1).collect::<Vec<_>>()
                }))
            })
            .collect();
        for w in &mut waiting {
            assert!(w.as_mut().now_or_never().is_none());
        }
        drop(held);
        let answers = join_all(waiting).await;
        assert_eq!(
            answers,
            vec![
                Ok(0),
                Err(BatchError::Abandoned),
                Err(BatchError::Abandoned)
            ]
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let batcher = Batcher::new(1, 2, 1);
        // Two items wait behind a turn nobody gives back yet.
        let held = batcher.turns[0].lock().await;
        let mut waiting: Vec<_> = (0..2)
            .map(|i| Box::pin(batcher.submit(i, |b: Vec<u32>| async move { b })))
            .collect();
        for w in &mut waiting {
            assert!(w.as_mut().now_or_never().is_none());
        }
        assert_eq!(
            batcher.submit(9, |b: Vec<u32>| async move { b }).await,
            Err(BatchError::Full)
        );
        drop(held);
        assert_eq!(join_all(waiting).await, vec![Ok(0), Ok(1)]);
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_withdraws_its_item() {
        let batcher = Batcher::new(8, 32, 1);
        let held = batcher.turns[0].lock().await;
        let mut gone = Box::pin(batcher.submit(1, |b: Vec<u32>| async move { b }));
        assert!(gone.as_mut().now_or_never().is_none());
        drop(gone);
        drop(held);
        let rec = Recorder::new(None);
        assert_eq!(batcher.submit(2, |b| rec.apply(b)).await, Ok(20));
        assert_eq!(*rec.batches.lock().unwrap(), vec![vec![2]]);
    }
}
