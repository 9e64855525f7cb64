//! The session lifecycle as LiveKit drives it: webhooks in (verified, deduplicated,
//! order-tolerant), the event log out, and the reaper that catches what webhooks missed.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use uuid::Uuid;

use crate::events::{EventKind, LiveKitEvent, ReapReport, RecordedEvent, WebhookOutcome};
use crate::model::{Session, SessionStatus};
use crate::ports::{Clock, EventCursor, EventStore, RoomService, SessionStore, WebhookVerifier};
use crate::service::SessionError;

/// Live sessions one reaper pass looks at, at most (the rest wait for the next pass).
pub const REAP_BATCH: u32 = 1000;

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

/// Webhook handling, the event log and the reaper. Cheap to clone.
#[derive(Clone)]
pub struct LifecycleService {
    /// Names this instance as a lease holder.
    instance: String,
    sessions: Arc<dyn SessionStore>,
    events: Arc<dyn EventStore>,
    rooms: Arc<dyn RoomService>,
    verifier: Arc<dyn WebhookVerifier>,
    clock: Arc<dyn Clock>,
    voice: Option<crate::voice::VoiceService>,
}

impl LifecycleService {
    /// Wires the service to its adapters.
    pub fn new(
        sessions: Arc<dyn SessionStore>,
        events: Arc<dyn EventStore>,
        rooms: Arc<dyn RoomService>,
        verifier: Arc<dyn WebhookVerifier>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        LifecycleService {
            instance: Uuid::new_v4().to_string(),
            sessions,
            events,
            rooms,
            verifier,
            clock,
            voice: None,
        }
    }

    /// Lets `track_published` events dispatch the voice bots.
    pub fn with_voice(mut self, voice: crate::voice::VoiceService) -> Self {
        self.voice = Some(voice);
        self
    }

    /// Verifies a webhook delivery and applies it. The signature is checked before anything
    /// is read or stored; a duplicate id changes nothing.
    #[tracing::instrument(skip_all)]
    pub async fn receive(
        &self,
        body: &[u8],
        authorization: Option<&str>,
    ) -> Result<WebhookOutcome, SessionError> {
        let event = self.verifier.verify(body, authorization)?;
        self.apply(event).await
    }

    /// Applies a verified event: status, presence, then the record. Effects come first and
    /// are idempotent, so a failure before the record lets LiveKit's retry finish the job,
    /// and a replica racing us on the same id only repeats what is already true.
    #[tracing::instrument(skip_all, fields(event = %event.kind.as_str(), event_id = %event.id))]
    pub async fn apply(&self, event: LiveKitEvent) -> Result<WebhookOutcome, SessionError> {
        if self.events.seen(&event.id).await? {
            return Ok(WebhookOutcome::Duplicate);
        }
        let received_at = self.clock.now();
        let at = event.created_at.unwrap_or(received_at);
        let session = self.session_for(&event, at).await?;
        if let Some(s) = &session {
            self.effects(s, &event, at).await?;
        } else {
            tracing::debug!(room = ?event.room_name, "webhook for a room no session owns");
        }
        let record = RecordedEvent {
            id: event.id.clone(),
            event: event.kind.as_str().to_owned(),
            session_id: session.as_ref().map(|s| s.id),
            room_name: event.room_name.clone(),
            participant: event.participant.as_ref().map(|p| p.identity.clone()),
            track_sid: event.track.as_ref().map(|t| t.sid.clone()),
            created_at: at,
            received_at,
            payload: event.payload,
        };
        if !self.events.record(&record).await? {
            return Ok(WebhookOutcome::Duplicate);
        }
        Ok(WebhookOutcome::Received {
            event: record.event,
            session_id: record.session_id,
        })
    }

    /// The session an event is about: by room sid (exact), else the live session of that
    /// room name if the event is not older than the session (a stale event for an earlier
    /// room of the same name must not touch a new session).
    async fn session_for(
        &self,
        event: &LiveKitEvent,
        at: DateTime<Utc>,
    ) -> Result<Option<Session>, SessionError> {
        if let Some(sid) = event.room_sid.as_deref().filter(|s| !s.is_empty())
            && let Some(s) = self.sessions.find_by_room_sid(sid).await?
        {
            return Ok(Some(s));
        }
        let Some(name) = event.room_name.as_deref().filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        let live = self.sessions.find_live_by_room(name).await?;
        Ok(live.filter(|s| at >= whole_seconds(s.created_at)))
    }

    async fn effects(
        &self,
        s: &Session,
        event: &LiveKitEvent,
        at: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        match event.kind {
            EventKind::RoomStarted => self.step(s, SessionStatus::Active, at).await?,
            EventKind::RoomFinished => self.step(s, SessionStatus::Ended, at).await?,
            EventKind::ParticipantJoined => {
                if let Some(p) = event.participant.as_ref().filter(|p| !p.is_dependent()) {
                    self.sessions
                        .record_presence(s.id, &p.identity, true, at)
                        .await?;
                }
                self.step(s, SessionStatus::Active, at).await?;
            }
            EventKind::ParticipantLeft | EventKind::ParticipantConnectionAborted => {
                if let Some(p) = event.participant.as_ref().filter(|p| !p.is_dependent()) {
                    self.sessions
                        .record_presence(s.id, &p.identity, false, at)
                        .await?;
                }
            }
            EventKind::TrackPublished => {
                if let Some(voice) = &self.voice {
                    voice.on_track_published(s, event).await?;
                }
            }
            // Recorded for the event log; no lifecycle change.
            EventKind::TrackUnpublished | EventKind::Other(_) => {}
        }
        Ok(())
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
            .sessions
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
            if let Err(e) = self.rooms.delete_room(&s.room_name).await {
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
        Ok(report)
    }
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::seconds(1)).unwrap_or(t)
}
