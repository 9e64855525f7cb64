//! The session lifecycle as LiveKit drives it: webhooks in (verified, deduplicated,
//! order-tolerant), the event log out, and the reaper that catches what webhooks missed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, DurationRound, Utc};
use uuid::Uuid;

use crate::adoption::RoomAdopter;
use crate::batch::{BatchError, Batcher};
use crate::events::{EventKind, LiveKitEvent, ReapReport, RecordedEvent, WebhookOutcome};
use crate::model::{Room, Session, SessionKind, SessionStatus};
use crate::ports::{
    Clock, EventCursor, EventStore, LeaseStore, Presence, PresenceStore, RoomService, SessionStore,
    StoreError, WebhookVerifier,
};
use crate::service::SessionError;
use crate::voice::BotDispatch;

/// Most webhook deliveries applied as one batch.
pub const WEBHOOK_BATCH: usize = 64;

/// Deliveries that may wait for a batch; more are answered 503 at once (LiveKit retries).
const WEBHOOK_QUEUE: usize = 4 * WEBHOOK_BATCH;

/// Webhook batches applied at once: while one batch writes, the next one reads.
const WEBHOOK_LANES: usize = 2;

/// What one webhook delivery came to, and the work it leaves for after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReceipt {
    /// Received or duplicate.
    pub outcome: WebhookOutcome,
    /// Voice bots this delivery claimed: the caller runs
    /// [`VoiceService::dispatch_bots`](crate::VoiceService::dispatch_bots) with it after
    /// answering (LiveKit's agent dispatch is slow; no delivery waits for it).
    pub dispatch: Option<BotDispatch>,
}

/// Live sessions one reaper pass looks at, at most (the rest wait for the next pass).
pub const REAP_BATCH: u32 = 1000;

/// Live sessions one reaper pass reconciles with LiveKit's participant list, at most (one
/// ListParticipants call each; the rest wait for the next pass).
pub const RECONCILE_BATCH: usize = 20;

/// A page of a session's event log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// Newest first.
    pub events: Vec<RecordedEvent>,
    /// Where the next page starts, if there may be one.
    pub next_cursor: Option<EventCursor>,
}

/// The lease that lets one replica at a time run the reaper.
pub const REAPER_LEASE: &str = "reaper";

/// The ports [`LifecycleService`] works with.
pub(crate) struct LifecyclePorts {
    /// Sessions: found by room, status steps, the reaper's listing.
    pub sessions: Arc<dyn SessionStore>,
    /// Who is in each room.
    pub presence: Arc<dyn PresenceStore>,
    /// The reaper's lease.
    pub leases: Arc<dyn LeaseStore>,
    /// The event log and webhook dedupe.
    pub events: Arc<dyn EventStore>,
    /// LiveKit rooms (the reaper deletes and lists them).
    pub rooms: Arc<dyn RoomService>,
    /// Checks webhook signatures.
    pub verifier: Arc<dyn WebhookVerifier>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Webhook handling, the event log and the reaper. Cheap to clone.
#[derive(Clone)]
pub struct LifecycleService {
    /// Names this instance as a lease holder.
    instance: String,
    sessions: Arc<dyn SessionStore>,
    presence: Arc<dyn PresenceStore>,
    leases: Arc<dyn LeaseStore>,
    events: Arc<dyn EventStore>,
    rooms: Arc<dyn RoomService>,
    verifier: Arc<dyn WebhookVerifier>,
    clock: Arc<dyn Clock>,
    voice: Option<crate::voice::VoiceService>,
    /// Room adoption (`voice.adopt_rooms`), when on.
    adopter: Option<RoomAdopter>,
    /// Where the reaper's next turn of reconciling sessions that look right starts.
    reconcile_turn: Arc<AtomicUsize>,
    /// Deliveries in flight, applied together (see [`LifecycleService::receive`]).
    batches: Arc<Batcher<LiveKitEvent, Result<WebhookReceipt, SessionError>>>,
}

impl LifecycleService {
    /// Wires the service to its adapters ([`Domain::new`](crate::Domain::new) is the public
    /// way; this one builds a service alone for the crate's tests).
    pub(crate) fn new(ports: LifecyclePorts) -> Self {
        LifecycleService {
            instance: Uuid::new_v4().to_string(),
            sessions: ports.sessions,
            presence: ports.presence,
            leases: ports.leases,
            events: ports.events,
            rooms: ports.rooms,
            verifier: ports.verifier,
            clock: ports.clock,
            voice: None,
            adopter: None,
            reconcile_turn: Arc::new(AtomicUsize::new(0)),
            batches: Arc::new(Batcher::new(WEBHOOK_BATCH, WEBHOOK_QUEUE, WEBHOOK_LANES)),
        }
    }

    /// Lets `track_published` events claim the voice bots' dispatch.
    pub(crate) fn with_voice(mut self, voice: crate::voice::VoiceService) -> Self {
        self.voice = Some(voice);
        self
    }

    /// Turns room adoption on (`voice.adopt_rooms`): a signed `room_started` for a room no
    /// live session owns creates a room session for it (see [`RoomAdopter`]).
    pub fn with_adoption(mut self, adopter: RoomAdopter) -> Self {
        self.adopter = Some(adopter);
        self
    }

    /// A LiveKit webhook delivery: verifies it, then applies it. The signature is checked
    /// before anything is read or stored; a duplicate id changes nothing.
    ///
    /// Deliveries that arrive while others are being applied wait and are applied together
    /// as the next batch (one store call per step for the whole batch; see
    /// [`crate::batch`]), yet each gets its own answer: if a batch fails, its events are
    /// applied one by one. Bot dispatch is only claimed here; the receipt carries the order.
    #[tracing::instrument(skip_all)]
    pub async fn receive(
        &self,
        body: &[u8],
        authorization: Option<&str>,
    ) -> Result<WebhookReceipt, SessionError> {
        let event = self.verifier.verify(body, authorization)?.without_nul();
        tracing::debug!(event = %event.kind.as_str(), event_id = %event.id, "webhook verified");
        match self
            .batches
            .submit(event, |events| self.apply_or_each(events))
            .await
        {
            Ok(answer) => answer,
            Err(e @ (BatchError::Full | BatchError::Abandoned)) => {
                Err(SessionError::Store(StoreError::Unavailable(Box::new(e))))
            }
        }
    }

    /// Applies a batch; if it fails (nothing of it was recorded), applies its events one by
    /// one, so one bad event (or a store blip) answers for itself and the others still land.
    async fn apply_or_each(
        &self,
        events: Vec<LiveKitEvent>,
    ) -> Vec<Result<WebhookReceipt, SessionError>> {
        if events.len() > 1 {
            tracing::debug!(events = events.len(), "applying a webhook batch");
        }
        match self.apply_batch(events.clone()).await {
            Ok(receipts) => receipts.into_iter().map(Ok).collect(),
            Err(e) if events.len() == 1 => vec![Err(e)],
            Err(_) => {
                let mut answers = Vec::with_capacity(events.len());
                for event in events {
                    let alone = self.apply_batch(vec![event]).await;
                    answers.push(alone.map(|mut r| r.remove(0)));
                }
                answers
            }
        }
    }

    /// Applies verified events, one receipt per event in order: status, presence, then the
    /// record. Effects come first and are idempotent, so a failure before the record lets
    /// LiveKit's retry finish the job, and a replica racing us on the same id only repeats
    /// what is already true. A batch asks the store once per step (dedupe, sessions,
    /// presence, record) instead of once per event; on an error nothing was recorded and
    /// the bot dispatches it claimed are given back.
    pub(crate) async fn apply_batch(
        &self,
        events: Vec<LiveKitEvent>,
    ) -> Result<Vec<WebhookReceipt>, SessionError> {
        let mut claimed = Vec::new();
        let applied = self.apply_claiming(events, &mut claimed).await;
        if applied.is_err()
            && let Some(voice) = &self.voice
        {
            for (_, order) in &claimed {
                voice.unclaim_bots(order).await;
            }
        }
        applied
    }

    async fn apply_claiming(
        &self,
        events: Vec<LiveKitEvent>,
        claimed: &mut Vec<(usize, BotDispatch)>,
    ) -> Result<Vec<WebhookReceipt>, SessionError> {
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let seen = self.events.seen(&ids).await?;
        let received_at = self.clock.now();
        let mut first = HashSet::new();
        let fresh: Vec<(usize, LiveKitEvent)> = events
            .into_iter()
            .enumerate()
            .filter(|(_, e)| !seen.contains(&e.id) && first.insert(e.id.clone()))
            .collect();
        let sids: Vec<String> = fresh
            .iter()
            .filter_map(|(_, e)| e.room_sid.clone().filter(|s| !s.is_empty()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let by_sid: HashMap<String, Session> = if sids.is_empty() {
            HashMap::new()
        } else {
            self.sessions
                .find_by_room_sids(&sids)
                .await?
                .into_iter()
                .map(|s| (s.livekit_room_sid.clone(), s))
                .collect()
        };

        let mut news = Vec::new();
        let mut records = Vec::with_capacity(fresh.len());
        let mut slots = Vec::with_capacity(fresh.len());
        for (slot, event) in fresh {
            let at = event.created_at.unwrap_or(received_at);
            let known = event.room_sid.as_deref().and_then(|sid| by_sid.get(sid));
            let session = match known {
                Some(s) => Some(s.clone()),
                None => self.live_session_named(&event, at).await?,
            };
            if let Some(s) = &session {
                let (presence, dispatch) = self.effects(s, &event, at).await?;
                news.extend(presence);
                claimed.extend(dispatch.map(|d| (slot, d)));
            } else {
                tracing::debug!(room = ?event.room_name, "webhook for a room no session owns");
            }
            records.push(RecordedEvent {
                id: event.id,
                event: event.kind.as_str().to_owned(),
                session_id: session.as_ref().map(|s| s.id),
                room_name: event.room_name,
                participant: event.participant.map(|p| p.identity),
                track_sid: event.track.map(|t| t.sid),
                created_at: at,
                received_at,
                payload: event.payload,
            });
            slots.push(slot);
        }
        if !news.is_empty() {
            self.presence.record_presence(&news).await?;
        }
        let recorded = if records.is_empty() {
            Vec::new()
        } else {
            self.events.record(&records).await?
        };

        let mut receipts = vec![
            WebhookReceipt {
                outcome: WebhookOutcome::Duplicate,
                dispatch: None,
            };
            ids.len()
        ];
        for ((slot, record), new) in slots.into_iter().zip(records).zip(recorded) {
            if new {
                receipts[slot].outcome = WebhookOutcome::Received {
                    event: record.event,
                    session_id: record.session_id,
                };
            }
        }
        // A claim won is ours to run, even if another replica recorded the event first.
        for (slot, order) in claimed.drain(..) {
            receipts[slot].dispatch = Some(order);
        }
        Ok(receipts)
    }

    /// The live session of the event's room name, for an event whose room sid matched no
    /// session, if the event is not older than the session (a stale event for an earlier
    /// room of the same name must not touch a new session). With room adoption on, a
    /// `room_started` for a room no live session owns adopts it.
    async fn live_session_named(
        &self,
        event: &LiveKitEvent,
        at: DateTime<Utc>,
    ) -> Result<Option<Session>, SessionError> {
        let Some(name) = event.room_name.as_deref().filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        match (self.sessions.find_live_by_room(name).await?, &self.adopter) {
            (Some(live), _) => Ok(Some(live).filter(|s| at >= whole_seconds(s.created_at))),
            (None, Some(adopter)) if event.kind == EventKind::RoomStarted => {
                adopter.adopt_started(name, event.room_sid.as_deref()).await
            }
            (None, _) => Ok(None),
        }
    }

    /// Status steps and side effects of an event; its presence news and its claimed bot
    /// dispatch, if any, are returned for the caller to write (and run) with the rest of
    /// its batch.
    async fn effects(
        &self,
        s: &Session,
        event: &LiveKitEvent,
        at: DateTime<Utc>,
    ) -> Result<(Option<Presence>, Option<BotDispatch>), SessionError> {
        let news = |present: bool| {
            event
                .participant
                .as_ref()
                .filter(|p| !p.is_dependent())
                .map(|p| Presence {
                    session_id: s.id,
                    identity: p.identity.clone(),
                    present,
                    at,
                })
        };
        Ok(match event.kind {
            EventKind::RoomStarted => {
                self.step(s, SessionStatus::Active, at).await?;
                (None, None)
            }
            EventKind::RoomFinished => {
                self.step(s, SessionStatus::Ended, at).await?;
                (None, None)
            }
            EventKind::ParticipantJoined => {
                self.step(s, SessionStatus::Active, at).await?;
                (news(true), None)
            }
            EventKind::ParticipantLeft | EventKind::ParticipantConnectionAborted => {
                (news(false), None)
            }
            EventKind::TrackPublished => match &self.voice {
                Some(voice) => (None, voice.claim_bots(s, event).await?),
                None => (None, None),
            },
            // Recorded for the event log; no lifecycle change.
            EventKind::TrackUnpublished | EventKind::Other(_) => (None, None),
        })
    }

    /// Moves the session to `to` unless the copy read for this event already rules it out:
    /// statuses only move forward, so a step the copy cannot take, the stored row cannot
    /// either, and the write (the common case: every join after the first) is skipped.
    async fn step(
        &self,
        s: &Session,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        if s.status.can_become(to) {
            self.sessions.advance_status(s.id, to, at).await?;
        }
        Ok(())
    }

    /// A page of the session's event log, newest first.
    pub async fn events(
        &self,
        session_id: Uuid,
        limit: Option<u32>,
        after: Option<EventCursor>,
    ) -> Result<EventPage, SessionError> {
        self.sessions.get(session_id).await?;
        let limit = limit
            .unwrap_or(crate::DEFAULT_PAGE)
            .clamp(1, crate::MAX_PAGE);
        let mut events = self.events.list(session_id, limit + 1, after).await?;
        let next_cursor = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| EventCursor {
                created_at: e.created_at,
                id: e.id.clone(),
            })
        } else {
            None
        };
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    /// One reaper pass. Sessions past `expires_at` get their room deleted and become
    /// `expired`; live sessions older than `grace` whose room LiveKit no longer lists
    /// become `ended`. If LiveKit cannot be asked, nothing is ended on a guess.
    ///
    /// Only the holder of the reaper lease (taken for `lease_for`, renewed each pass) works,
    /// so with several replicas each room is deleted once; and every step is idempotent and
    /// forward-only besides, so a lease that lapses mid-pass does no harm.
    #[tracing::instrument(skip_all)]
    pub async fn reap(
        &self,
        grace: Duration,
        lease_for: Duration,
    ) -> Result<ReapReport, SessionError> {
        let now = self.clock.now();
        if !self
            .leases
            .try_lease(REAPER_LEASE, &self.instance, now, now + lease_for)
            .await?
        {
            return Ok(ReapReport {
                skipped: Some("another replica holds the reaper lease".into()),
                ..Default::default()
            });
        }
        let live = self.sessions.list_live(REAP_BATCH).await?;
        let mut report = ReapReport::default();
        let (overdue, current): (Vec<&Session>, Vec<&Session>) =
            live.iter().partition(|s| now >= s.expires_at);
        for s in overdue {
            // A room session's room is LiveKit's: it stays.
            if s.kind == SessionKind::Owned
                && let Err(e) = self.rooms.delete_room(&s.room_name).await
            {
                tracing::warn!(session_id = %s.id, error = %e, "could not delete an expired session's room; will retry");
                continue;
            }
            if self
                .sessions
                .advance_status(s.id, SessionStatus::Expired, now)
                .await?
                .changed
            {
                report.expired += 1;
            }
        }
        let rooms = match self.rooms.list_rooms(&[]).await {
            Ok(rooms) => rooms,
            Err(e) => {
                report.skipped = Some(e.to_string());
                return Ok(report);
            }
        };
        let listed: HashSet<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
        let vanished = current
            .into_iter()
            .filter(|s| s.created_at + grace <= now && !listed.contains(s.room_name.as_str()));
        for s in vanished {
            if self
                .sessions
                .advance_status(s.id, SessionStatus::Ended, now)
                .await?
                .changed
            {
                report.ended += 1;
            }
        }
        self.reconcile(&live, &rooms, now).await;
        Ok(report)
    }

    /// Repairs presence drift (a lost webhook leaves a ghost participant) for up to
    /// [`RECONCILE_BATCH`] live, unexpired sessions per pass: each gets LiveKit's participant
    /// list and [`PresenceStore::reconcile`]. First those whose stored count differs from the
    /// number LiveKit gives for their room, then the others in turn (a rotating start), since
    /// LiveKit's number also counts agents, which we never count, and so can hide a ghost.
    /// A failure is logged and left for a later pass.
    async fn reconcile(&self, live: &[Session], rooms: &[Room], now: DateTime<Utc>) {
        let listed: HashMap<&str, u32> = rooms
            .iter()
            .map(|r| (r.name.as_str(), r.num_participants))
            .collect();
        let (mismatched, agreeing): (Vec<&Session>, Vec<&Session>) = live
            .iter()
            .filter(|s| now < s.expires_at && listed.contains_key(s.room_name.as_str()))
            .partition(|s| listed.get(s.room_name.as_str()) != Some(&s.participant_count));
        let spare = RECONCILE_BATCH.saturating_sub(mismatched.len());
        let start = if agreeing.is_empty() {
            0
        } else {
            self.reconcile_turn.fetch_add(spare, Ordering::Relaxed) % agreeing.len()
        };
        let rotated = agreeing[start..].iter().chain(&agreeing[..start]);
        let drifting = mismatched
            .iter()
            .chain(rotated.take(spare))
            .take(RECONCILE_BATCH);
        for s in drifting {
            // The time before asking: news LiveKit sends after its answer is newer, so it
            // still wins over the repair.
            let at = self.clock.now();
            let people = match self.rooms.list_participants(&s.room_name).await {
                Ok(people) => people,
                Err(e) => {
                    tracing::warn!(session_id = %s.id, error = %e, "could not list a room's participants to reconcile presence");
                    continue;
                }
            };
            let identities: Vec<String> = people.into_iter().map(|p| p.identity).collect();
            match self.presence.reconcile(s.id, &identities, at).await {
                Ok(count) if count != s.participant_count => {
                    tracing::info!(session_id = %s.id, was = s.participant_count, now = count, "presence reconciled with LiveKit");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(session_id = %s.id, error = %e, "could not reconcile presence");
                }
            }
        }
    }
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::seconds(1)).unwrap_or(t)
}
