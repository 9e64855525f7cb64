//! In-memory adapters of the store and room ports: for embedding the domain in tests, demos
//! and single-process tools. They keep the same contracts as the real adapters (live room
//! names are unique, status only moves forward, deleting a missing room is fine).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::events::RecordedEvent;
use crate::model::{HistoryEntry, Participant, Room, RoomSpec, Session, SessionStatus};
use crate::ports::{
    EventCursor, EventStore, HistoryStore, RoomError, RoomService, SessionFilter, SessionStore,
    StoreError, Transition,
};

/// Whether an identity is in a session's room, and LiveKit's time of that news.
type Presence = (bool, DateTime<Utc>);

#[derive(Debug, Default, Clone)]
struct VoiceState {
    dispatched: bool,
    turn: u64,
    last_final: Option<(String, DateTime<Utc>)>,
}

/// Sessions and history in a `Mutex<HashMap>`.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    sessions: Mutex<HashMap<Uuid, Session>>,
    history: Mutex<HashMap<Uuid, Vec<HistoryEntry>>>,
    presence: Mutex<HashMap<(Uuid, String), Presence>>,
    leases: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    /// Per session: dispatched, turn generation, last final transcript.
    voice: Mutex<HashMap<Uuid, VoiceState>>,
    events: Mutex<Vec<RecordedEvent>>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("in-memory store lock poisoned".into())
}

#[async_trait]
impl SessionStore for InMemoryStore {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let mut map = self.sessions.lock().map_err(poisoned)?;
        if map.contains_key(&session.id)
            || map
                .values()
                .any(|s| s.status.is_live() && s.room_name == session.room_name)
        {
            return Err(StoreError::Conflict(session.room_name.clone()));
        }
        map.insert(session.id, session.clone());
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Session, StoreError> {
        let map = self.sessions.lock().map_err(poisoned)?;
        map.get(&id).cloned().ok_or(StoreError::NotFound)
    }

    async fn find_live_by_room(&self, room_name: &str) -> Result<Option<Session>, StoreError> {
        let map = self.sessions.lock().map_err(poisoned)?;
        Ok(map
            .values()
            .find(|s| s.status.is_live() && s.room_name == room_name)
            .cloned())
    }

    async fn find_by_room_sid(&self, room_sid: &str) -> Result<Option<Session>, StoreError> {
        let map = self.sessions.lock().map_err(poisoned)?;
        Ok(map
            .values()
            .filter(|s| s.livekit_room_sid == room_sid)
            .max_by_key(|s| s.created_at)
            .cloned())
    }

    async fn list_live(&self, limit: u32) -> Result<Vec<Session>, StoreError> {
        let map = self.sessions.lock().map_err(poisoned)?;
        let mut live: Vec<Session> = map
            .values()
            .filter(|s| s.status.is_live())
            .cloned()
            .collect();
        live.sort_by_key(|s| (s.created_at, s.id));
        live.truncate(limit as usize);
        Ok(live)
    }

    async fn record_presence(
        &self,
        session_id: Uuid,
        identity: &str,
        present: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut sessions = self.sessions.lock().map_err(poisoned)?;
        let session = sessions.get_mut(&session_id).ok_or(StoreError::NotFound)?;
        let mut presence = self.presence.lock().map_err(poisoned)?;
        let entry = presence
            .entry((session_id, identity.to_owned()))
            .or_insert((present, at));
        if at >= entry.1 {
            *entry = (present, at);
        }
        session.participant_count = presence
            .iter()
            .filter(|((id, _), (here, _))| *id == session_id && *here)
            .count() as u32;
        session.last_activity_at = presence
            .iter()
            .filter(|((id, _), _)| *id == session_id)
            .map(|(_, (_, t))| *t)
            .max();
        Ok(())
    }

    async fn list(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        let map = self.sessions.lock().map_err(poisoned)?;
        let mut all: Vec<Session> = map
            .values()
            .filter(|s| filter.user_id.as_ref().is_none_or(|u| &s.user_id == u))
            .filter(|s| filter.status.is_none_or(|st| s.status == st))
            .filter(|s| {
                filter
                    .after
                    .is_none_or(|c| (s.created_at, s.id) < (c.created_at, c.id))
            })
            .cloned()
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        all.truncate(filter.limit as usize);
        Ok(all)
    }

    async fn advance_status(
        &self,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Transition, StoreError> {
        let mut map = self.sessions.lock().map_err(poisoned)?;
        let s = map.get_mut(&id).ok_or(StoreError::NotFound)?;
        let changed = s.status.can_become(to);
        if changed {
            s.status = to;
            s.updated_at = at;
            if !to.is_live() {
                s.ended_at = Some(at);
            }
        }
        Ok(Transition {
            session: s.clone(),
            changed,
        })
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut leases = self.leases.lock().map_err(poisoned)?;
        match leases.get(name) {
            Some((other, end)) if other != holder && *end >= now => Ok(false),
            _ => {
                leases.insert(name.to_owned(), (holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn claim_dispatch(&self, id: Uuid, _at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.get(id).await?;
        let mut voice = self.voice.lock().map_err(poisoned)?;
        let state = voice.entry(id).or_default();
        Ok(!std::mem::replace(&mut state.dispatched, true))
    }

    async fn release_dispatch(&self, id: Uuid) -> Result<(), StoreError> {
        let mut voice = self.voice.lock().map_err(poisoned)?;
        voice.entry(id).or_default().dispatched = false;
        Ok(())
    }

    async fn next_turn(&self, id: Uuid) -> Result<u64, StoreError> {
        self.get(id).await?;
        let mut voice = self.voice.lock().map_err(poisoned)?;
        let state = voice.entry(id).or_default();
        state.turn += 1;
        Ok(state.turn)
    }

    async fn current_turn(&self, id: Uuid) -> Result<u64, StoreError> {
        let voice = self.voice.lock().map_err(poisoned)?;
        Ok(voice.get(&id).map_or(0, |v| v.turn))
    }

    async fn note_final(
        &self,
        id: Uuid,
        text: &str,
        at: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let mut voice = self.voice.lock().map_err(poisoned)?;
        let state = voice.entry(id).or_default();
        if let Some((last, when)) = &state.last_final
            && last == text
            && at - *when <= window
        {
            return Ok(false);
        }
        state.last_final = Some((text.to_owned(), at));
        Ok(true)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl HistoryStore for InMemoryStore {
    async fn append(&self, session_id: Uuid, entry: &HistoryEntry) -> Result<(), StoreError> {
        let mut map = self.history.lock().map_err(poisoned)?;
        map.entry(session_id).or_default().push(entry.clone());
        Ok(())
    }

    async fn recent(&self, session_id: Uuid, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        let map = self.history.lock().map_err(poisoned)?;
        let all = map.get(&session_id).map(Vec::as_slice).unwrap_or_default();
        Ok(all[all.len().saturating_sub(limit as usize)..].to_vec())
    }

    async fn clear(&self, session_id: Uuid) -> Result<(), StoreError> {
        self.history.lock().map_err(poisoned)?.remove(&session_id);
        Ok(())
    }
}

#[async_trait]
impl EventStore for InMemoryStore {
    async fn seen(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .events
            .lock()
            .map_err(poisoned)?
            .iter()
            .any(|e| e.id == event_id))
    }

    async fn record(&self, event: &RecordedEvent) -> Result<bool, StoreError> {
        let mut events = self.events.lock().map_err(poisoned)?;
        if events.iter().any(|e| e.id == event.id) {
            return Ok(false);
        }
        events.push(event.clone());
        Ok(true)
    }

    async fn list(
        &self,
        session_id: Uuid,
        limit: u32,
        after: Option<EventCursor>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.events.lock().map_err(poisoned)?;
        let mut mine: Vec<RecordedEvent> = events
            .iter()
            .filter(|e| e.session_id == Some(session_id))
            .filter(|e| {
                after
                    .as_ref()
                    .is_none_or(|c| (e.created_at, e.id.as_str()) < (c.created_at, c.id.as_str()))
            })
            .cloned()
            .collect();
        mine.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        mine.truncate(limit as usize);
        Ok(mine)
    }
}

/// Rooms in memory, with LiveKit's rules: creating a live room returns it unchanged,
/// deleting a missing room is fine, an unknown room has no participants.
#[derive(Debug, Default)]
pub struct InMemoryRooms {
    rooms: Mutex<HashMap<String, (Room, Vec<Participant>)>>,
}

impl InMemoryRooms {
    /// Puts a participant in a room (as if it joined), creating the room if needed.
    pub fn join(&self, room: &str, participant: Participant) {
        if let Ok(mut map) = self.rooms.lock() {
            let entry = map.entry(room.to_owned()).or_insert_with(|| {
                (
                    Room {
                        sid: format!("RM_{}", &Uuid::new_v4().simple().to_string()[..12]),
                        name: room.to_owned(),
                        ..Default::default()
                    },
                    Vec::new(),
                )
            });
            entry.1.retain(|p| p.identity != participant.identity);
            entry.1.push(participant);
            entry.0.num_participants = entry.1.len() as u32;
        }
    }
}

fn unavailable<T>(_: T) -> RoomError {
    RoomError::Unavailable {
        message: "in-memory rooms lock poisoned".into(),
        source: None,
    }
}

#[async_trait]
impl RoomService for InMemoryRooms {
    async fn create_room(&self, spec: &RoomSpec) -> Result<Room, RoomError> {
        let mut map = self.rooms.lock().map_err(unavailable)?;
        let entry = map.entry(spec.name.clone()).or_insert_with(|| {
            (
                Room {
                    sid: format!("RM_{}", &Uuid::new_v4().simple().to_string()[..12]),
                    name: spec.name.clone(),
                    num_participants: 0,
                    max_participants: spec.max_participants,
                    creation_time: Utc::now().timestamp(),
                    metadata: spec.metadata.clone(),
                },
                Vec::new(),
            )
        });
        Ok(entry.0.clone())
    }

    async fn delete_room(&self, name: &str) -> Result<(), RoomError> {
        self.rooms.lock().map_err(unavailable)?.remove(name);
        Ok(())
    }

    async fn list_rooms(&self, names: &[String]) -> Result<Vec<Room>, RoomError> {
        let map = self.rooms.lock().map_err(unavailable)?;
        Ok(map
            .values()
            .filter(|(r, _)| names.is_empty() || names.contains(&r.name))
            .map(|(r, _)| r.clone())
            .collect())
    }

    async fn list_participants(&self, room: &str) -> Result<Vec<Participant>, RoomError> {
        let map = self.rooms.lock().map_err(unavailable)?;
        Ok(map.get(room).map(|(_, p)| p.clone()).unwrap_or_default())
    }

    async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), RoomError> {
        let mut map = self.rooms.lock().map_err(unavailable)?;
        let (info, people) = map
            .get_mut(room)
            .ok_or_else(|| RoomError::NotFound(identity.to_owned()))?;
        let before = people.len();
        people.retain(|p| p.identity != identity);
        if people.len() == before {
            return Err(RoomError::NotFound(identity.to_owned()));
        }
        info.num_participants = people.len() as u32;
        Ok(())
    }
}
