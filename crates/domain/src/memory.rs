//! In-memory adapters of the store and room ports: for embedding the domain in tests, demos
//! and single-process tools. They keep the same contracts as the real adapters (live room
//! names are unique, status only moves forward, deleting a missing room is fine).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::events::RecordedEvent;
use crate::model::{HistoryEntry, Participant, Room, RoomSpec, Session, SessionStatus};
use crate::ports::{
    EventCursor, EventStore, HistoryStore, IdempotencyState, IdempotencyStore, LeaseStore,
    Presence, PresenceStore, RoomError, RoomService, SessionFilter, SessionStore, StoreError,
    StoreHealth, Transition, TurnGeneration, TurnStart, TurnStore, TurnSummary, VoiceStateStore,
};
use crate::turns::{InterruptedBy, TurnRecord};

#[derive(Debug, Clone)]
struct VoiceState {
    dispatched: bool,
    turn: u64,
    bumped_by: InterruptedBy,
    /// Turn numbers handed out (voice and chat).
    turn_count: u64,
    last_final: Option<(String, DateTime<Utc>)>,
}

impl Default for VoiceState {
    fn default() -> Self {
        VoiceState {
            dispatched: false,
            turn: 0,
            bumped_by: InterruptedBy::NewerFinal,
            turn_count: 0,
            last_final: None,
        }
    }
}

/// Everything the store holds, behind one lock so each call is atomic as a transaction is.
#[derive(Debug, Default)]
struct State {
    sessions: HashMap<Uuid, Session>,
    history: HashMap<Uuid, Vec<HistoryEntry>>,
    /// Per (session, identity): whether it is in the room, and LiveKit's time of that news.
    presence: HashMap<(Uuid, String), (bool, DateTime<Utc>)>,
    leases: HashMap<String, (String, DateTime<Utc>)>,
    /// Per session: dispatched, turn generation, last final transcript.
    voice: HashMap<Uuid, VoiceState>,
    events: Vec<RecordedEvent>,
    /// Turn records by (session, turn).
    turns: std::collections::BTreeMap<(Uuid, u64), TurnRecord>,
    /// Per key: fingerprint, response once complete, when claimed.
    idempotency: HashMap<String, (String, Option<serde_json::Value>, DateTime<Utc>)>,
}

/// Every store port in memory (one `Mutex`), with the contracts of the SQL adapters: the
/// store contract suite (june-store's `tests/contract`) runs against it too.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

impl InMemoryStore {
    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("in-memory store lock poisoned".into()))
    }
}

#[async_trait]
impl SessionStore for InMemoryStore {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state.sessions.contains_key(&session.id)
            || state
                .sessions
                .values()
                .any(|s| s.status.is_live() && s.room_name == session.room_name)
        {
            return Err(StoreError::Conflict(session.room_name.clone()));
        }
        state.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Session, StoreError> {
        let state = self.state()?;
        state.sessions.get(&id).cloned().ok_or(StoreError::NotFound)
    }

    async fn find_live_by_room(&self, room_name: &str) -> Result<Option<Session>, StoreError> {
        let state = self.state()?;
        Ok(state
            .sessions
            .values()
            .find(|s| s.status.is_live() && s.room_name == room_name)
            .cloned())
    }

    async fn find_by_room_sids(&self, room_sids: &[String]) -> Result<Vec<Session>, StoreError> {
        let state = self.state()?;
        let mut found: Vec<Session> = state
            .sessions
            .values()
            .filter(|s| room_sids.contains(&s.livekit_room_sid))
            .cloned()
            .collect();
        found.sort_by_key(|s| (s.created_at, s.id));
        Ok(found)
    }

    async fn list(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        let state = self.state()?;
        let mut all: Vec<Session> = state
            .sessions
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

    async fn list_live(&self, limit: u32) -> Result<Vec<Session>, StoreError> {
        let state = self.state()?;
        let mut live: Vec<Session> = state
            .sessions
            .values()
            .filter(|s| s.status.is_live())
            .cloned()
            .collect();
        live.sort_by_key(|s| (s.created_at, s.id));
        live.truncate(limit as usize);
        Ok(live)
    }

    async fn advance_status(
        &self,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Transition, StoreError> {
        let mut state = self.state()?;
        let s = state.sessions.get_mut(&id).ok_or(StoreError::NotFound)?;
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
}

impl State {
    /// Applies one piece of news if it is not older than what is known, and moves the
    /// session's count and last activity by the change alone (as the SQL adapters' triggers).
    fn apply_presence(&mut self, n: &Presence) {
        let key = (n.session_id, n.identity.clone());
        let was = match self.presence.get(&key) {
            Some(&(_, at)) if n.at < at => return,
            Some(&(here, _)) => here,
            None => false,
        };
        self.presence.insert(key, (n.present, n.at));
        if let Some(session) = self.sessions.get_mut(&n.session_id) {
            let count =
                i64::from(session.participant_count) + i64::from(n.present) - i64::from(was);
            session.participant_count = u32::try_from(count).unwrap_or_default();
            session.last_activity_at = session.last_activity_at.max(Some(n.at));
        }
    }
}

#[async_trait]
impl PresenceStore for InMemoryStore {
    async fn record_presence(&self, news: &[Presence]) -> Result<(), StoreError> {
        let mut state = self.state()?;
        // All or nothing, as the SQL adapters' statement.
        if news
            .iter()
            .any(|n| !state.sessions.contains_key(&n.session_id))
        {
            return Err(StoreError::NotFound);
        }
        for n in news {
            state.apply_presence(n);
        }
        Ok(())
    }

    async fn reconcile(
        &self,
        session_id: Uuid,
        listed: &[String],
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let mut state = self.state()?;
        if !state.sessions.contains_key(&session_id) {
            return Err(StoreError::NotFound);
        }
        let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let repairs: Vec<Presence> = state
            .presence
            .iter()
            .filter(|((s, who), (here, _))| {
                *s == session_id && *here != listed.contains(who.as_str())
            })
            .map(|((_, who), (here, _))| Presence {
                session_id,
                identity: who.clone(),
                present: !here,
                at,
            })
            .collect();
        for n in &repairs {
            state.apply_presence(n);
        }
        let mine = || state.presence.iter().filter(|((s, _), _)| *s == session_id);
        let count = mine().filter(|(_, (here, _))| *here).count();
        let last = mine().map(|(_, (_, t))| *t).max();
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        if let Some(session) = state.sessions.get_mut(&session_id) {
            session.participant_count = count;
            session.last_activity_at = last;
        }
        Ok(count)
    }
}

#[async_trait]
impl LeaseStore for InMemoryStore {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        match state.leases.get(name) {
            // The SQL adapters: taken unless another holder's lease ends at or after `now`.
            Some((other, end)) if other != holder && *end >= now => Ok(false),
            _ => {
                state
                    .leases
                    .insert(name.to_owned(), (holder.to_owned(), until));
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl VoiceStateStore for InMemoryStore {
    async fn claim_dispatch(&self, id: Uuid, _at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if !state.sessions.contains_key(&id) {
            return Ok(false);
        }
        let voice = state.voice.entry(id).or_default();
        Ok(!std::mem::replace(&mut voice.dispatched, true))
    }

    async fn release_dispatch(&self, id: Uuid) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if let Some(voice) = state.voice.get_mut(&id) {
            voice.dispatched = false;
        }
        Ok(())
    }

    async fn next_turn(&self, id: Uuid) -> Result<u64, StoreError> {
        let mut state = self.state()?;
        if !state.sessions.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        let voice = state.voice.entry(id).or_default();
        voice.turn += 1;
        voice.bumped_by = InterruptedBy::VoiceOnset;
        Ok(voice.turn)
    }

    async fn start_turn(&self, id: Uuid) -> Result<TurnStart, StoreError> {
        let mut state = self.state()?;
        if !state.sessions.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        let voice = state.voice.entry(id).or_default();
        voice.turn += 1;
        voice.bumped_by = InterruptedBy::NewerFinal;
        voice.turn_count += 1;
        Ok(TurnStart {
            generation: voice.turn,
            turn: voice.turn_count,
        })
    }

    async fn current_turn(&self, id: Uuid) -> Result<TurnGeneration, StoreError> {
        let state = self.state()?;
        if !state.sessions.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        let voice = state.voice.get(&id).cloned().unwrap_or_default();
        Ok(TurnGeneration {
            generation: voice.turn,
            bumped_by: voice.bumped_by,
        })
    }

    async fn note_final(
        &self,
        id: Uuid,
        text: &str,
        at: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        if !state.sessions.contains_key(&id) {
            return Ok(false);
        }
        let voice = state.voice.entry(id).or_default();
        if let Some((last, when)) = &voice.last_final
            && last == text
            && *when >= at - window
        {
            return Ok(false);
        }
        voice.last_final = Some((text.to_owned(), at));
        Ok(true)
    }
}

#[async_trait]
impl TurnStore for InMemoryStore {
    async fn record_turn(&self, record: &TurnRecord) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if !state.sessions.contains_key(&record.session_id) {
            return Err(StoreError::NotFound);
        }
        state
            .turns
            .insert((record.session_id, record.turn), record.clone());
        Ok(())
    }

    async fn list_turns(
        &self,
        session_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        let state = self.state()?;
        let end = before.unwrap_or(u64::MAX);
        Ok(state
            .turns
            .range((session_id, 0)..(session_id, end))
            .rev()
            .take(limit as usize)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn turns_after(
        &self,
        session_id: Uuid,
        after: u64,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        let state = self.state()?;
        Ok(state
            .turns
            .range((session_id, after.saturating_add(1))..=(session_id, u64::MAX))
            .take(limit as usize)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn get_turn(
        &self,
        session_id: Uuid,
        turn: u64,
    ) -> Result<Option<TurnRecord>, StoreError> {
        Ok(self.state()?.turns.get(&(session_id, turn)).cloned())
    }

    async fn allocate_turn(&self, session_id: Uuid) -> Result<u64, StoreError> {
        let mut state = self.state()?;
        if !state.sessions.contains_key(&session_id) {
            return Err(StoreError::NotFound);
        }
        let voice = state.voice.entry(session_id).or_default();
        voice.turn_count += 1;
        Ok(voice.turn_count)
    }

    async fn summary(&self, session_id: Uuid) -> Result<TurnSummary, StoreError> {
        let state = self.state()?;
        let records: Vec<&TurnRecord> = state
            .turns
            .range((session_id, 0)..=(session_id, u64::MAX))
            .map(|(_, r)| r)
            .collect();
        let mut firsts: Vec<u64> = records
            .iter()
            .filter_map(|r| r.timings_ms.first_tts_request)
            .collect();
        firsts.sort_unstable();
        Ok(TurnSummary {
            turns: records.len() as u64,
            first_tts_p50_ms: nearest_rank(&firsts, 50),
            first_tts_p95_ms: nearest_rank(&firsts, 95),
            total_tokens: records.iter().map(|r| r.usage.total_tokens).sum(),
        })
    }
}

/// The nearest-rank percentile `p` of sorted `values` (the SQL adapters compute the same).
pub fn nearest_rank(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get((rank - 1) as usize).copied()
}

#[async_trait]
impl StoreHealth for InMemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.state().map(drop)
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        None
    }
}

#[async_trait]
impl HistoryStore for InMemoryStore {
    async fn append(&self, session_id: Uuid, entry: &HistoryEntry) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if !state.sessions.contains_key(&session_id) {
            return Err(StoreError::NotFound);
        }
        state
            .history
            .entry(session_id)
            .or_default()
            .push(entry.clone());
        Ok(())
    }

    async fn recent(&self, session_id: Uuid, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        let state = self.state()?;
        let all = state
            .history
            .get(&session_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(all[all.len().saturating_sub(limit as usize)..].to_vec())
    }

    async fn clear(&self, session_id: Uuid) -> Result<(), StoreError> {
        self.state()?.history.remove(&session_id);
        Ok(())
    }
}

#[async_trait]
impl EventStore for InMemoryStore {
    async fn seen(&self, event_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        let state = self.state()?;
        Ok(state
            .events
            .iter()
            .filter(|e| event_ids.contains(&e.id))
            .map(|e| e.id.clone())
            .collect())
    }

    async fn record(&self, events: &[RecordedEvent]) -> Result<Vec<bool>, StoreError> {
        let mut state = self.state()?;
        let mut new = Vec::with_capacity(events.len());
        for event in events {
            let fresh = !state.events.iter().any(|e| e.id == event.id);
            if fresh {
                state.events.push(event.clone());
            }
            new.push(fresh);
        }
        Ok(new)
    }

    async fn list(
        &self,
        session_id: Uuid,
        limit: u32,
        after: Option<EventCursor>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let state = self.state()?;
        let mut mine: Vec<RecordedEvent> = state
            .events
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

#[async_trait]
impl IdempotencyStore for InMemoryStore {
    async fn begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> Result<IdempotencyState, StoreError> {
        let mut state = self.state()?;
        if state
            .idempotency
            .get(key)
            .is_some_and(|(_, _, at)| *at < not_before)
        {
            state.idempotency.remove(key);
        }
        Ok(match state.idempotency.get(key) {
            None => {
                state
                    .idempotency
                    .insert(key.to_owned(), (fingerprint.to_owned(), None, now));
                IdempotencyState::Started
            }
            Some((fp, _, _)) if fp != fingerprint => IdempotencyState::Mismatch,
            Some((_, None, _)) => IdempotencyState::InProgress,
            Some((_, Some(response), _)) => IdempotencyState::Completed(response.clone()),
        })
    }

    async fn complete(&self, key: &str, response: &serde_json::Value) -> Result<(), StoreError> {
        if let Some(entry) = self.state()?.idempotency.get_mut(key) {
            entry.1 = Some(response.clone());
        }
        Ok(())
    }

    async fn abandon(&self, key: &str) -> Result<(), StoreError> {
        let mut state = self.state()?;
        if state.idempotency.get(key).is_some_and(|e| e.1.is_none()) {
            state.idempotency.remove(key);
        }
        Ok(())
    }
}

/// Rooms in memory, with LiveKit's rules: creating a live room returns it unchanged,
/// deleting a missing room is fine, an unknown room has no participants. Data messages sent
/// to a live room are kept (see [`InMemoryRooms::sent_data`]).
#[derive(Debug, Default)]
pub struct InMemoryRooms {
    rooms: Mutex<HashMap<String, (Room, Vec<Participant>)>>,
    sent: Mutex<Vec<SentData>>,
}

/// A data message [`InMemoryRooms`] was asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentData {
    /// The room.
    pub room: String,
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Whether it was sent reliably.
    pub reliable: bool,
}

impl InMemoryRooms {
    /// The data messages sent so far, oldest first.
    pub fn sent_data(&self) -> Vec<SentData> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

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

    async fn send_data(
        &self,
        room: &str,
        payload: Vec<u8>,
        topic: &str,
        reliable: bool,
    ) -> Result<(), RoomError> {
        if !self.rooms.lock().map_err(unavailable)?.contains_key(room) {
            return Err(RoomError::NotFound(room.to_owned()));
        }
        self.sent.lock().map_err(unavailable)?.push(SentData {
            room: room.to_owned(),
            topic: topic.to_owned(),
            payload,
            reliable,
        });
        Ok(())
    }
}
