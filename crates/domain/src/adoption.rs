//! Room adoption (`voice.adopt_rooms`, design §8.1): a room LiveKit has and no live session
//! owns becomes a *room session* when a final transcript or a signed `room_started` names it.
//! June's bots and apps share such a room (`ozzu-main`) that no `POST /api/sessions` created.
//!
//! A room session has the same conversation, turns, barge-in and metrics as any session; its
//! owner is [`ROOM_SESSION_OWNER`], it mints no owner token, and ending it never deletes the
//! room (see [`SessionKind::Room`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::auth::ROOM_SESSION_OWNER;
use crate::model::{Room, Session, SessionKind, SessionStatus};
use crate::policy::{SessionPolicy, room_name_problem};
use crate::ports::{Clock, RoomService, SessionStore, StoreError};
use crate::service::SessionError;

/// How long LiveKit's answer about a room (it has it, or not) is reused.
pub const ROOM_CACHE_TTL: Duration = Duration::seconds(5);

/// Most room names whose answer is kept at once.
pub const ROOM_CACHE_MAX: usize = 1000;

/// What LiveKit said about a room name, and when.
#[derive(Debug, Clone)]
struct Answer {
    room: Option<Room>,
    at: DateTime<Utc>,
}

/// Creates room sessions for rooms LiveKit has and no live session owns. Cheap to clone;
/// clones share the cache of LiveKit's answers.
#[derive(Clone)]
pub struct RoomAdopter {
    sessions: Arc<dyn SessionStore>,
    rooms: Arc<dyn RoomService>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    language: String,
    /// LiveKit's recent answers, so an unauthenticated poster naming rooms that do not exist
    /// costs LiveKit one `ListRooms` per name per [`ROOM_CACHE_TTL`], at most.
    known: Arc<Mutex<HashMap<String, Answer>>>,
}

impl RoomAdopter {
    /// An adopter giving room sessions the policy's default lifetime and language.
    pub fn new(
        sessions: Arc<dyn SessionStore>,
        rooms: Arc<dyn RoomService>,
        clock: Arc<dyn Clock>,
        policy: &SessionPolicy,
    ) -> Self {
        RoomAdopter {
            sessions,
            rooms,
            clock,
            ttl: policy.session_ttl(None),
            language: policy.default_language.clone(),
            known: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The live session of `room_name`, adopting the room if LiveKit has it and no live
    /// session owns it. `Ok(None)`: LiveKit has no such room (or the name breaks the room-name
    /// rules, so no session could have it).
    ///
    /// Two replicas adopting at once end with one session: the store keeps one live session
    /// per room name, and the loser reads the winner's.
    pub async fn adopt(&self, room_name: &str) -> Result<Option<Session>, SessionError> {
        if room_name_problem(room_name).is_some() {
            return Ok(None);
        }
        if let Some(live) = self.sessions.find_live_by_room(room_name).await? {
            return Ok(Some(live));
        }
        let Some(room) = self.livekit_room(room_name).await? else {
            return Ok(None);
        };
        self.insert(room_name, room.sid).await.map(Some)
    }

    /// Like [`RoomAdopter::adopt`], for a signed `room_started`: the signature is LiveKit's
    /// word that it has the room, so the event's room sid is used without asking LiveKit
    /// (when the event carries one).
    pub async fn adopt_started(
        &self,
        room_name: &str,
        room_sid: Option<&str>,
    ) -> Result<Option<Session>, SessionError> {
        let Some(sid) = room_sid.filter(|s| !s.is_empty()) else {
            return self.adopt(room_name).await;
        };
        if room_name_problem(room_name).is_some() {
            return Ok(None);
        }
        if let Some(live) = self.sessions.find_live_by_room(room_name).await? {
            return Ok(Some(live));
        }
        self.insert(room_name, sid.to_owned()).await.map(Some)
    }

    /// Stores a new room session for the room, or reads the one that got there first.
    async fn insert(&self, room_name: &str, room_sid: String) -> Result<Session, SessionError> {
        let now = self.clock.now();
        let session = Session {
            id: Uuid::new_v4(),
            user_id: ROOM_SESSION_OWNER.to_owned(),
            room_name: room_name.to_owned(),
            livekit_room_sid: room_sid,
            status: SessionStatus::Created,
            language: self.language.clone(),
            metadata: serde_json::Map::new(),
            // The bots are already in the room (they are who posts its transcripts).
            voice: false,
            kind: SessionKind::Room,
            created_at: now,
            expires_at: now + self.ttl,
            updated_at: now,
            ended_at: None,
            participant_count: 0,
            last_activity_at: None,
        };
        match self.sessions.insert(&session).await {
            Ok(()) => {
                tracing::info!(session_id = %session.id, room = %room_name, "room adopted as a room session");
                Ok(session)
            }
            Err(StoreError::Conflict(_)) => {
                // Another replica (or request) adopted it first: theirs is the session.
                self.sessions
                    .find_live_by_room(room_name)
                    .await?
                    .ok_or_else(|| SessionError::RoomNameTaken(room_name.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The live room session of `room_name` past its expiry becomes `expired` (its room is
    /// LiveKit's and stays), so that the next adoption starts a fresh one.
    pub(crate) async fn retire(&self, overdue: &Session) -> Result<(), SessionError> {
        self.sessions
            .advance_status(overdue.id, SessionStatus::Expired, self.clock.now())
            .await?;
        Ok(())
    }

    /// LiveKit's room of this name, if it has one, from the cache while the answer is fresh.
    async fn livekit_room(&self, name: &str) -> Result<Option<Room>, SessionError> {
        let now = self.clock.now();
        if let Some(answer) = self.lock().get(name)
            && now - answer.at < ROOM_CACHE_TTL
            && now >= answer.at
        {
            return Ok(answer.room.clone());
        }
        let room = self
            .rooms
            .list_rooms(&[name.to_owned()])
            .await?
            .into_iter()
            .find(|r| r.name == name);
        let mut known = self.lock();
        if known.len() >= ROOM_CACHE_MAX && !known.contains_key(name) {
            known.retain(|_, a| now - a.at < ROOM_CACHE_TTL && now >= a.at);
            if known.len() >= ROOM_CACHE_MAX
                && let Some(oldest) = known
                    .iter()
                    .min_by_key(|(_, a)| a.at)
                    .map(|(k, _)| k.clone())
            {
                known.remove(&oldest);
            }
        }
        known.insert(
            name.to_owned(),
            Answer {
                room: room.clone(),
                at: now,
            },
        );
        Ok(room)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Answer>> {
        // The map holds only cached answers: a panic elsewhere cannot leave it inconsistent.
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn cached(&self) -> usize {
        self.lock().len()
    }
}
