//! The session use cases: create, read, list, end, participants, guests, history.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::Principal;
pub use crate::error::SessionError;
use crate::model::{
    HistoryEntry, Participant, Room, RoomSpec, Session, SessionKind, SessionStatus,
};
use crate::policy::{
    Grants, IssuedToken, MAX_IDENTITY_LEN, MAX_TTL_SECONDS, SessionPolicy, TokenRequest,
    generated_room_name, guest_identity, room_name_problem,
};
use crate::ports::{
    Clock, HistoryStore, PageCursor, RoomError, RoomService, SessionFilter, SessionStore,
    StoreError, StoreHealth, TokenIssuer, TurnStore, TurnSummary,
};
use crate::turns::TurnRecord;

/// Largest page of a session listing.
pub const MAX_PAGE: u32 = 200;
/// Page size when the client asks for none.
pub const DEFAULT_PAGE: u32 = 50;
/// History entries returned by a read (the newest ones).
pub const HISTORY_READ_LIMIT: u32 = 1000;

/// What a client asks for when it starts a session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewSession {
    /// The owner.
    pub user_id: String,
    /// A room name of the client's choosing; generated when absent.
    pub room_name: Option<String>,
    /// Free-form metadata, stored as given.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Conversation language; the policy's default when absent.
    pub language: Option<String>,
    /// Dispatch the voice bots.
    pub voice: bool,
    /// Session lifetime in seconds; capped by the policy.
    pub ttl_seconds: Option<i64>,
}

/// A session together with a freshly minted owner token (`None` once the session is over).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionWithToken {
    /// The session.
    pub session: Session,
    /// The owner's join token.
    pub token: Option<IssuedToken>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPage {
    /// The sessions, newest first.
    pub sessions: Vec<Session>,
    /// Where the next page starts, if there may be one.
    pub next_cursor: Option<PageCursor>,
}

/// A guest's token and who it is for.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestToken {
    /// The room to join.
    pub room_name: String,
    /// The unique identity minted for the guest.
    pub identity: String,
    /// The display name.
    pub guest_name: String,
    /// The token.
    pub token: IssuedToken,
}

/// The session use cases over the ports. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct SessionService {
    store: Arc<dyn SessionStore>,
    history: Arc<dyn HistoryStore>,
    health: Arc<dyn StoreHealth>,
    rooms: Arc<dyn RoomService>,
    tokens: Arc<dyn TokenIssuer>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    turns: Arc<dyn TurnStore>,
}

/// Builder arguments of [`SessionService`].
pub(crate) struct SessionPorts {
    /// Sessions.
    pub store: Arc<dyn SessionStore>,
    /// History.
    pub history: Arc<dyn HistoryStore>,
    /// Readiness ping and pool gauges.
    pub health: Arc<dyn StoreHealth>,
    /// LiveKit rooms.
    pub rooms: Arc<dyn RoomService>,
    /// Join tokens.
    pub tokens: Arc<dyn TokenIssuer>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Turn records.
    pub turns: Arc<dyn TurnStore>,
}

/// Most turns one page lists.
pub const MAX_TURNS_PAGE: u32 = 100;

/// A page of a session's turn records, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnPage {
    /// The turns.
    pub turns: Vec<TurnRecord>,
    /// The `cursor` of the next page (the last turn's number), if there are more.
    pub next_cursor: Option<u64>,
}

impl SessionService {
    /// Wires the service to its adapters ([`Domain::new`](crate::Domain::new) is the public
    /// way; this one builds a service alone for the crate's tests).
    pub(crate) fn new(ports: SessionPorts, policy: SessionPolicy) -> Self {
        SessionService {
            store: ports.store,
            history: ports.history,
            health: ports.health,
            rooms: ports.rooms,
            tokens: ports.tokens,
            clock: ports.clock,
            policy,
            turns: ports.turns,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// Creates the LiveKit room, stores the session and mints the owner's token.
    ///
    /// Nothing is stored unless the room was created; if storing fails after the room was
    /// created, the room is deleted again so no orphan is left behind. A name a live session
    /// already holds is never deleted (LiveKit's CreateRoom hands back the existing room, which
    /// is that session's); a generated name that collides is simply drawn again.
    #[tracing::instrument(skip_all, fields(user_id = %new.user_id))]
    pub async fn create(&self, new: NewSession) -> Result<SessionWithToken, SessionError> {
        let user_id = validate_identity("user_id", &new.user_id)?;
        // `service:…` names the server's own principals (the owner of room sessions).
        if crate::auth::is_service_identity(&user_id) {
            return Err(SessionError::invalid(
                "user_id",
                "is reserved: `service:` names the server's own principals",
            ));
        }
        let language = match new.language.as_deref().map(str::trim) {
            None | Some("") => self.policy.default_language.clone(),
            Some(l) => validate_language(l)?,
        };
        validate_ttl(new.ttl_seconds)?;
        let id = Uuid::new_v4();
        let chosen = match new.room_name {
            Some(name) => {
                if let Some(problem) = room_name_problem(&name) {
                    return Err(SessionError::invalid("room_name", problem));
                }
                if self.store.find_live_by_room(&name).await?.is_some() {
                    return Err(SessionError::RoomNameTaken(name));
                }
                // LiveKit's CreateRoom hands back a room that already exists: a room that is
                // no session's (someone's lobby) must not become the caller's.
                if !self
                    .rooms
                    .list_rooms(std::slice::from_ref(&name))
                    .await?
                    .is_empty()
                {
                    return Err(SessionError::RoomNameTaken(name));
                }
                Some(name)
            }
            None => None,
        };

        let now = self.clock.now();
        let expires_at = now + self.policy.session_ttl(new.ttl_seconds);
        let mut draws = 0;
        let session = loop {
            let room_name = chosen
                .clone()
                .unwrap_or_else(|| generated_room_name(&user_id, &random_hex()));
            let spec = RoomSpec {
                name: room_name.clone(),
                empty_timeout_secs: self.policy.empty_timeout_secs,
                departure_timeout_secs: self.policy.departure_timeout_secs,
                max_participants: self.policy.max_participants,
                metadata: serde_json::json!({ "session_id": id, "user_id": user_id }).to_string(),
            };
            let room = self.rooms.create_room(&spec).await?;
            let session = Session {
                id,
                user_id: user_id.clone(),
                room_name,
                livekit_room_sid: room.sid,
                status: SessionStatus::Created,
                language: language.clone(),
                metadata: new.metadata.clone(),
                voice: new.voice,
                kind: SessionKind::Owned,
                created_at: now,
                expires_at,
                updated_at: now,
                ended_at: None,
                participant_count: 0,
                last_activity_at: None,
            };
            match self.store.insert(&session).await {
                Ok(()) => break session,
                // A live session holds the name, and the room LiveKit handed back is its room.
                Err(StoreError::Conflict(_))
                    if chosen.is_none() && draws < GENERATED_NAME_DRAWS =>
                {
                    draws += 1;
                    tracing::info!(room = %session.room_name, "generated room name already live; drawing another");
                }
                Err(StoreError::Conflict(_)) => {
                    return Err(SessionError::RoomNameTaken(session.room_name));
                }
                Err(e) => {
                    // Undo the room so a failed create leaves nothing behind.
                    if let Err(undo) = self.rooms.delete_room(&session.room_name).await {
                        tracing::warn!(error = %undo, room = %session.room_name, "could not delete the room of a session that failed to store");
                    }
                    return Err(e.into());
                }
            }
        };
        let token = self.owner_token(&session, now)?;
        Ok(SessionWithToken {
            session,
            token: Some(token),
        })
    }

    /// The id-taking use cases below act for the system (no caller check): each is its
    /// `*_for` twin called with [`Principal::anonymous`], which may act for anyone.
    ///
    /// The session with a freshly minted owner token (tokens are never stored); none once
    /// the session is over or past its expiry, and none for a room session (it has no owner
    /// to join as).
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn get(&self, id: Uuid) -> Result<SessionWithToken, SessionError> {
        self.get_for(&Principal::anonymous(), id).await
    }

    /// [`get`](Self::get) for `caller`: someone else's session is `NotFound`. One read.
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn get_for(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<SessionWithToken, SessionError> {
        let session = self.owned(caller, id).await?;
        self.with_token(session)
    }

    /// The session (as it stands now) with an owner token if it is live.
    fn with_token(&self, session: Session) -> Result<SessionWithToken, SessionError> {
        let now = self.clock.now();
        let token = if session.status.is_live() && session.kind == SessionKind::Owned {
            Some(self.owner_token(&session, now)?)
        } else {
            None
        };
        Ok(SessionWithToken { session, token })
    }

    /// A page of sessions, newest first.
    pub async fn list(
        &self,
        user_id: Option<String>,
        status: Option<SessionStatus>,
        limit: Option<u32>,
        after: Option<PageCursor>,
    ) -> Result<SessionPage, SessionError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let filter = SessionFilter {
            user_id,
            status,
            limit: limit + 1,
            after,
        };
        let mut sessions = self.store.list(&filter).await?;
        let now = self.clock.now();
        for s in &mut sessions {
            s.status = s.effective_status(now);
        }
        let next_cursor = if sessions.len() > limit as usize {
            sessions.truncate(limit as usize);
            sessions.last().map(|s| PageCursor {
                created_at: s.created_at,
                id: s.id,
            })
        } else {
            None
        };
        Ok(SessionPage {
            sessions,
            next_cursor,
        })
    }

    /// Deletes the room (a room already gone is fine) and ends the session.
    /// A session that is already over is `NotFound`: the second delete is a 404.
    /// A room session's room is LiveKit's (and its participants'): it is never deleted.
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn end(&self, id: Uuid) -> Result<Session, SessionError> {
        self.end_for(&Principal::anonymous(), id).await
    }

    /// [`end`](Self::end) for `caller`: someone else's session is `NotFound`. One read, one
    /// room deletion, one update.
    #[tracing::instrument(skip_all, fields(session_id = %id))]
    pub async fn end_for(&self, caller: &Principal, id: Uuid) -> Result<Session, SessionError> {
        let session = self.owned(caller, id).await?;
        self.end_read(session).await
    }

    async fn end_read(&self, session: Session) -> Result<Session, SessionError> {
        if !session.status.is_live() {
            return Err(SessionError::NotFound);
        }
        if session.kind == SessionKind::Owned {
            self.rooms.delete_room(&session.room_name).await?;
        }
        let now = self.clock.now();
        Ok(self
            .store
            .advance_status(session.id, SessionStatus::Ended, now)
            .await?
            .session)
    }

    /// Who is in the session's room now, as LiveKit sees it.
    pub async fn participants(&self, id: Uuid) -> Result<Vec<Participant>, SessionError> {
        self.participants_for(&Principal::anonymous(), id).await
    }

    /// [`participants`](Self::participants) for `caller`. One read.
    pub async fn participants_for(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<Vec<Participant>, SessionError> {
        let session = self.authorize(caller, id).await?;
        Ok(self.rooms.list_participants(&session.room_name).await?)
    }

    /// Disconnects a participant from the session's room.
    pub async fn remove_participant(&self, id: Uuid, identity: &str) -> Result<(), SessionError> {
        self.remove_participant_for(&Principal::anonymous(), id, identity)
            .await
    }

    /// [`remove_participant`](Self::remove_participant) for `caller`. One read.
    pub async fn remove_participant_for(
        &self,
        caller: &Principal,
        id: Uuid,
        identity: &str,
    ) -> Result<(), SessionError> {
        let session = self.authorize(caller, id).await?;
        self.remove_from(&session, identity).await
    }

    async fn remove_from(&self, session: &Session, identity: &str) -> Result<(), SessionError> {
        match self
            .rooms
            .remove_participant(&session.room_name, identity)
            .await
        {
            Err(RoomError::NotFound(_)) => {
                Err(SessionError::ParticipantNotFound(identity.to_owned()))
            }
            other => Ok(other?),
        }
    }

    /// Mints a token for a guest of a live session: a unique identity, no data channel.
    pub async fn guest_token(
        &self,
        id: Uuid,
        guest_name: &str,
        ttl_seconds: Option<i64>,
        can_publish: bool,
    ) -> Result<GuestToken, SessionError> {
        validate_guest(guest_name, ttl_seconds)?;
        let session = self.current(id).await?;
        self.guest_token_of(session, guest_name, ttl_seconds, can_publish)
    }

    /// [`guest_token`](Self::guest_token) for a session already read through
    /// [`authorize`](Self::authorize): no second read.
    pub fn guest_token_in(
        &self,
        mut session: Session,
        guest_name: &str,
        ttl_seconds: Option<i64>,
        can_publish: bool,
    ) -> Result<GuestToken, SessionError> {
        validate_guest(guest_name, ttl_seconds)?;
        session.status = session.effective_status(self.clock.now());
        self.guest_token_of(session, guest_name, ttl_seconds, can_publish)
    }

    fn guest_token_of(
        &self,
        session: Session,
        guest_name: &str,
        ttl_seconds: Option<i64>,
        can_publish: bool,
    ) -> Result<GuestToken, SessionError> {
        let guest_name = guest_name.trim();
        if !session.status.is_live() {
            return Err(SessionError::NotLive(session.status));
        }
        let now = self.clock.now();
        let identity = guest_identity(guest_name, &random_hex());
        let request = TokenRequest {
            identity: identity.clone(),
            name: guest_name.to_owned(),
            metadata: String::new(),
            grants: Grants::guest(&session.room_name, can_publish),
            ttl: self.policy.token_ttl(ttl_seconds, now, session.expires_at),
        };
        let token = self.tokens.issue(&request)?;
        Ok(GuestToken {
            room_name: session.room_name,
            identity,
            guest_name: guest_name.to_owned(),
            token,
        })
    }

    /// The session's conversation, oldest first.
    pub async fn history(&self, id: Uuid) -> Result<Vec<HistoryEntry>, SessionError> {
        self.history_for(&Principal::anonymous(), id).await
    }

    /// [`history`](Self::history) for `caller`: one session read, one history read.
    pub async fn history_for(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<Vec<HistoryEntry>, SessionError> {
        self.authorize(caller, id).await?;
        Ok(self.history.recent(id, HISTORY_READ_LIMIT).await?)
    }

    /// Forgets the session's conversation.
    pub async fn clear_history(&self, id: Uuid) -> Result<(), SessionError> {
        self.clear_history_for(&Principal::anonymous(), id).await
    }

    /// [`clear_history`](Self::clear_history) for `caller`. One session read.
    pub async fn clear_history_for(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<(), SessionError> {
        self.authorize(caller, id).await?;
        Ok(self.history.clear(id).await?)
    }

    /// [`get_for`](Self::get_for) with the session's turns in figures: one session read and
    /// one read of its turn rows, the second only once the caller may see the session (a
    /// flood of unknown ids costs one read each, not two).
    pub async fn get_with_summary_for(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<(SessionWithToken, TurnSummary), SessionError> {
        let session = self.get_for(caller, id).await?;
        let summary = self.turns.summary(id).await?;
        Ok((session, summary))
    }

    /// A page of the session's turn records for `caller`, newest first: at most `limit`
    /// (1–[`MAX_TURNS_PAGE`]) turns numbered below `before`. One session read, one turn read.
    pub async fn turns_for(
        &self,
        caller: &Principal,
        id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<TurnPage, SessionError> {
        if limit == 0 || limit > MAX_TURNS_PAGE {
            return Err(SessionError::invalid(
                "limit",
                format!("must be between 1 and {MAX_TURNS_PAGE}"),
            ));
        }
        self.authorize(caller, id).await?;
        let mut turns = self.turns.list_turns(id, before, limit + 1).await?;
        let more = turns.len() > limit as usize;
        turns.truncate(limit as usize);
        let next_cursor = if more {
            turns.last().map(|t| t.turn)
        } else {
            None
        };
        Ok(TurnPage { turns, next_cursor })
    }

    /// One turn record of the session for `caller`; `TurnNotFound` when it is not stored.
    pub async fn turn_for(
        &self,
        caller: &Principal,
        id: Uuid,
        turn: u64,
    ) -> Result<TurnRecord, SessionError> {
        self.authorize(caller, id).await?;
        self.turns
            .get_turn(id, turn)
            .await?
            .ok_or(SessionError::TurnNotFound(turn))
    }

    /// The session, if `caller` may see it, as stored (one read). Someone else's session is
    /// `NotFound` (not a 403): callers learn nothing about sessions that are not theirs.
    ///
    /// The `*_for(caller, id, …)` entry points (`get_for`, `end_for`, `history_for`, …)
    /// authorize and act on the session read once; prefer them to `authorize` followed by
    /// the id-taking use case, which reads the session again.
    pub async fn authorize(&self, caller: &Principal, id: Uuid) -> Result<Session, SessionError> {
        let session = self.store.get(id).await?;
        if caller.may_act_as(&session.user_id) {
            Ok(session)
        } else {
            Err(SessionError::NotFound)
        }
    }

    /// [`authorize`](Self::authorize), with the status as it stands now (see `current`).
    async fn owned(&self, caller: &Principal, id: Uuid) -> Result<Session, SessionError> {
        let mut session = self.authorize(caller, id).await?;
        session.status = session.effective_status(self.clock.now());
        Ok(session)
    }

    /// Connections open and idle in the store's pool, if it has one.
    pub fn store_pool(&self) -> Option<(u32, u32)> {
        self.health.pool_stats()
    }

    /// Whether the store answers (readiness).
    pub async fn check_store(&self) -> Result<(), SessionError> {
        Ok(self.health.ping().await?)
    }

    /// The rooms LiveKit has live now.
    pub async fn rooms(&self) -> Result<Vec<Room>, SessionError> {
        Ok(self.rooms.list_rooms(&[]).await?)
    }

    /// A token for a participant of any room, as the v3.0 token routes minted them.
    pub fn participant_token(
        &self,
        room: &str,
        identity: &str,
        metadata: &str,
        grants: Grants,
    ) -> Result<IssuedToken, SessionError> {
        if let Some(problem) = room_name_problem(room) {
            return Err(SessionError::invalid("roomName", problem));
        }
        let identity = validate_identity("participantName", identity)?;
        let request = TokenRequest {
            name: identity.clone(),
            identity,
            metadata: metadata.to_owned(),
            grants,
            ttl: self.policy.token_ttl,
        };
        Ok(self.tokens.issue(&request)?)
    }

    /// The live session that owns `room_name`, if `caller` may act for its owner.
    pub async fn live_by_room(
        &self,
        caller: &Principal,
        room_name: &str,
    ) -> Result<Session, SessionError> {
        // No session has a name outside the room-name rules: not found, without a lookup.
        if room_name_problem(room_name).is_some() {
            return Err(SessionError::NotFound);
        }
        match self.store.find_live_by_room(room_name).await? {
            Some(s) if caller.may_act_as(&s.user_id) => Ok(s),
            _ => Err(SessionError::NotFound),
        }
    }

    /// Reads a session as it stands now: one past its expiry reads as `expired` even before
    /// the reaper has deleted its room and stored the change (reads never write, and never
    /// leave a room behind in LiveKit).
    async fn current(&self, id: Uuid) -> Result<Session, SessionError> {
        let mut session = self.store.get(id).await?;
        session.status = session.effective_status(self.clock.now());
        Ok(session)
    }

    fn owner_token(&self, s: &Session, now: DateTime<Utc>) -> Result<IssuedToken, SessionError> {
        let request = TokenRequest {
            identity: s.user_id.clone(),
            name: s.user_id.clone(),
            metadata: String::new(),
            grants: Grants::owner(&s.room_name),
            ttl: self.policy.token_ttl(None, now, s.expires_at),
        };
        Ok(self.tokens.issue(&request)?)
    }
}

/// A language code (BCP 47 style, e.g. `en`, `pt-BR`): letters, digits and `-`/`_`, at most
/// 35 characters. It is stored and sent to the speech services, so nothing else gets in.
fn validate_language(value: &str) -> Result<String, SessionError> {
    if value.len() > 35 {
        return Err(SessionError::invalid("language", "is too long"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(SessionError::invalid(
            "language",
            "may only contain letters, digits, '-' and '_'",
        ));
    }
    Ok(value.to_owned())
}

/// A lifetime a client asked for: positive and at most [`MAX_TTL_SECONDS`], checked before
/// any duration is built from it.
fn validate_ttl(ttl_seconds: Option<i64>) -> Result<(), SessionError> {
    match ttl_seconds {
        Some(ttl) if !(1..=MAX_TTL_SECONDS).contains(&ttl) => Err(SessionError::invalid(
            "ttl_seconds",
            format!("must be between 1 and {MAX_TTL_SECONDS}"),
        )),
        _ => Ok(()),
    }
}

/// A guest's display name (trimmed: not empty, not too long, no control characters) and the
/// lifetime asked for.
fn validate_guest(guest_name: &str, ttl_seconds: Option<i64>) -> Result<(), SessionError> {
    let guest_name = guest_name.trim();
    if guest_name.is_empty() {
        return Err(SessionError::invalid("guest_name", "must not be empty"));
    }
    // Characters, as the OpenAPI spec's `maxLength` counts them, not UTF-8 bytes.
    if guest_name.chars().count() > MAX_IDENTITY_LEN {
        return Err(SessionError::invalid("guest_name", "is too long"));
    }
    if guest_name.chars().any(char::is_control) {
        return Err(SessionError::invalid(
            "guest_name",
            "must not contain control characters",
        ));
    }
    validate_ttl(ttl_seconds)
}

fn validate_identity(field: &'static str, value: &str) -> Result<String, SessionError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(SessionError::invalid(field, "is required"));
    }
    if v.chars().count() > MAX_IDENTITY_LEN {
        return Err(SessionError::invalid(
            field,
            "is longer than 256 characters",
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(SessionError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

/// How often a generated room name that collides with a live one is drawn again. 32 random
/// bits make a collision rare, but one user with ~100 000 live sessions meets one.
const GENERATED_NAME_DRAWS: u32 = 3;

fn random_hex() -> String {
    Uuid::new_v4().simple().to_string()
}
