//! The LiveKit RoomService double.

// Handlers return the reply itself as the error value; boxing it would only add noise here.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use livekit_api::access_token::{Claims, TokenVerifier, VideoGrants};
use livekit_protocol as proto;
use prost::Message;

/// Fixed credentials the double accepts (the secret is 32+ characters, as LiveKit wants).
pub const API_KEY: &str = "testkey";
/// See [`API_KEY`].
pub const API_SECRET: &str = "testsecret-0123456789abcdef0123456789";

/// How the double misbehaves, when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer every call with this HTTP status and the matching Twirp error.
    Status(u16),
    /// Accept the connection and never answer (until the client gives up).
    Hang,
}

/// One call the double received, for assertions on what the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Twirp method name (`CreateRoom`…).
    pub method: String,
    /// The request `Content-Type`.
    pub content_type: String,
    /// The request as JSON (decoded from whichever codec was used).
    pub body: serde_json::Value,
}

/// A data message a SendData call delivered to a live room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMessage {
    /// The room.
    pub room: String,
    /// The topic (`None` when the request had none).
    pub topic: Option<String>,
    /// The payload, as sent.
    pub payload: Vec<u8>,
    /// `true` for the `RELIABLE` kind, `false` for `LOSSY`.
    pub reliable: bool,
}

impl DataMessage {
    /// The payload parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    rooms: HashMap<String, (proto::Room, Vec<proto::ParticipantInfo>)>,
    dispatches: Vec<proto::AgentDispatch>,
    data: Vec<DataMessage>,
    failure: Option<Failure>,
    calls: Vec<Call>,
    next_id: u64,
    /// People who join a room the moment it is created: (room, identity, publishing).
    arrivals: Vec<(String, String, bool)>,
    /// CreateDispatch calls waiting for [`LiveKitDouble::release_dispatches`].
    held: usize,
}

impl State {
    fn sid(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:012}", self.next_id)
    }
}

type Shared = Arc<Mutex<State>>;

/// A LiveKit server double on 127.0.0.1 with a random port; stops when dropped.
pub struct LiveKitDouble {
    state: Shared,
    /// `true` while CreateDispatch calls are held unanswered (see
    /// [`LiveKitDouble::hold_dispatches`]).
    hold: Arc<tokio::sync::watch::Sender<bool>>,
    port: u16,
    handle: actix_web::dev::ServerHandle,
}

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl LiveKitDouble {
    /// Starts the double on its own thread and actix system.
    pub fn start() -> Self {
        let state: Shared = Arc::default();
        let hold = Arc::new(tokio::sync::watch::Sender::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        let held = hold.clone();
        std::thread::spawn(move || {
            let sys = actix_web::rt::System::new();
            sys.block_on(async move {
                let data = web::Data::new(shared);
                let hold = web::Data::from(held);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(hold.clone())
                        .app_data(web::PayloadConfig::new(10 * 1024 * 1024))
                        .route("/twirp/livekit.RoomService/{method}", web::post().to(twirp))
                        .route(
                            "/twirp/livekit.AgentDispatchService/{method}",
                            web::post().to(twirp),
                        )
                        .default_service(web::to(bad_route))
                })
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("bind the LiveKit double");
                let port = server.addrs()[0].port();
                let server = server.run();
                tx.send((port, server.handle())).expect("report the port");
                server.await.expect("LiveKit double server");
            });
        });
        let (port, handle) = rx.recv().expect("the LiveKit double started");
        LiveKitDouble {
            state,
            hold,
            port,
            handle,
        }
    }

    /// `http://127.0.0.1:PORT`, the API base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:PORT`, what clients would connect to.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The API key the double accepts.
    pub fn api_key(&self) -> &'static str {
        API_KEY
    }

    /// The API secret the double accepts.
    pub fn api_secret(&self) -> &'static str {
        API_SECRET
    }

    /// From now on, fail every call this way.
    pub fn fail(&self, failure: Failure) {
        lock(&self.state).failure = Some(failure);
    }

    /// Back to normal service.
    pub fn recover(&self) {
        lock(&self.state).failure = None;
    }

    /// The names of the live rooms.
    pub fn room_names(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.state).rooms.keys().cloned().collect();
        names.sort();
        names
    }

    /// A live room, as the double holds it.
    pub fn room(&self, name: &str) -> Option<proto::Room> {
        lock(&self.state).rooms.get(name).map(|(r, _)| r.clone())
    }

    /// Creates a room directly (as a client join would with auto-create).
    pub fn create_room(&self, name: &str) -> proto::Room {
        let mut st = lock(&self.state);
        create(
            &mut st,
            proto::CreateRoomRequest {
                name: name.to_owned(),
                ..Default::default()
            },
        )
    }

    /// Puts a participant in `room` as soon as it is created (as a client that joins right
    /// after the orchestrator made the room).
    pub fn join_when_created(&self, room: &str, identity: &str, publishing: bool) {
        lock(&self.state)
            .arrivals
            .push((room.to_owned(), identity.to_owned(), publishing));
    }

    /// Puts a participant in a room (creating the room), with one audio track if `publishing`.
    pub fn join(&self, room: &str, identity: &str, publishing: bool) -> proto::ParticipantInfo {
        join(&mut lock(&self.state), room, identity, publishing)
    }

    /// From now on, CreateDispatch calls are received (and counted by
    /// [`held_dispatches`](Self::held_dispatches)) but not answered until [`release_dispatches`](Self::release_dispatches): a LiveKit
    /// whose agent dispatch is slow, for as long as the test wants, with no timing involved.
    pub fn hold_dispatches(&self) {
        self.hold.send_replace(true);
    }

    /// Answers the held CreateDispatch calls, and every later one at once.
    pub fn release_dispatches(&self) {
        self.hold.send_replace(false);
    }

    /// How many CreateDispatch calls are waiting for [`release_dispatches`](Self::release_dispatches).
    pub fn held_dispatches(&self) -> usize {
        lock(&self.state).held
    }

    /// Agent dispatches made so far (CreateDispatch), oldest first.
    pub fn dispatches(&self) -> Vec<proto::AgentDispatch> {
        lock(&self.state).dispatches.clone()
    }

    /// Data messages delivered so far (SendData), oldest first.
    pub fn data_messages(&self) -> Vec<DataMessage> {
        lock(&self.state).data.clone()
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state).calls.clone()
    }
}

impl Drop for LiveKitDouble {
    fn drop(&mut self) {
        // A held call must not outlive the double.
        self.release_dispatches();
        let handle = self.handle.clone();
        // Stopping is async; run it on a throw-away system so Drop stays sync.
        let _ = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(false));
        })
        .join();
    }
}

/// See [`LiveKitDouble::join`].
fn join(st: &mut State, room: &str, identity: &str, publishing: bool) -> proto::ParticipantInfo {
    if !st.rooms.contains_key(room) {
        create(
            st,
            proto::CreateRoomRequest {
                name: room.to_owned(),
                ..Default::default()
            },
        );
    }
    let sid = st.sid("PA");
    let track_sid = st.sid("TR");
    let p = proto::ParticipantInfo {
        sid,
        identity: identity.to_owned(),
        name: identity.to_owned(),
        state: proto::participant_info::State::Active as i32,
        joined_at: now_secs(),
        is_publisher: publishing,
        tracks: if publishing {
            vec![proto::TrackInfo {
                sid: track_sid,
                r#type: proto::TrackType::Audio as i32,
                source: proto::TrackSource::Microphone as i32,
                ..Default::default()
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    if let Some((info, people)) = st.rooms.get_mut(room) {
        people.retain(|x| x.identity != identity);
        people.push(p.clone());
        info.num_participants = people.len() as u32;
        info.num_publishers = people.iter().filter(|x| x.is_publisher).count() as u32;
    }
    p
}

fn create(st: &mut State, req: proto::CreateRoomRequest) -> proto::Room {
    if let Some((room, _)) = st.rooms.get(&req.name) {
        // The real server returns a live room unchanged: new settings are ignored.
        return room.clone();
    }
    let room = proto::Room {
        sid: st.sid("RM"),
        name: req.name.clone(),
        empty_timeout: if req.empty_timeout == 0 {
            300
        } else {
            req.empty_timeout
        },
        departure_timeout: if req.departure_timeout == 0 {
            20
        } else {
            req.departure_timeout
        },
        max_participants: req.max_participants,
        creation_time: now_secs(),
        creation_time_ms: now_secs() * 1000,
        metadata: req.metadata,
        ..Default::default()
    };
    st.rooms
        .insert(req.name.clone(), (room.clone(), Vec::new()));
    let (now, later) = std::mem::take(&mut st.arrivals)
        .into_iter()
        .partition(|(r, _, _)| *r == req.name);
    st.arrivals = later;
    for (_, identity, publishing) in now {
        join(st, &req.name, &identity, publishing);
    }
    room
}

/// A Twirp error reply: JSON `{code, msg}` with the code's HTTP status.
fn twirp_error(code: &str, msg: &str) -> HttpResponse {
    let status = match code {
        "not_found" | "bad_route" => 404,
        "invalid_argument" | "malformed" | "out_of_range" => 400,
        "unauthenticated" => 401,
        "permission_denied" => 403,
        "already_exists" | "aborted" => 409,
        "resource_exhausted" => 429,
        "unavailable" => 503,
        "unimplemented" => 501,
        _ => 500,
    };
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(serde_json::json!({ "code": code, "msg": msg }).to_string())
}

/// The server's auth middleware answers in plain text, not Twirp JSON.
fn plain_401(msg: String) -> HttpResponse {
    HttpResponse::Unauthorized()
        .content_type("text/plain; charset=utf-8")
        .body(msg)
}

async fn bad_route(req: HttpRequest) -> HttpResponse {
    twirp_error(
        "bad_route",
        &format!("no handler for path {:?}", req.path()),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Json,
    Protobuf,
}

/// Grants of the caller: `None` header means no grants at all (the server lets such a request
/// through to fail its grant check); a bad header or token is a plain-text 401.
fn authenticate(req: &HttpRequest) -> Result<VideoGrants, HttpResponse> {
    let Some(header) = req.headers().get("authorization") else {
        return Ok(VideoGrants::default());
    };
    let header = header.to_str().unwrap_or_default();
    let Some(token) = header.strip_prefix("Bearer ") else {
        return Err(plain_401(
            "invalid authorization header. Must start with Bearer ".into(),
        ));
    };
    let Ok(unverified) = Claims::from_unverified(token) else {
        return Err(plain_401("invalid authorization token".into()));
    };
    if unverified.iss != API_KEY {
        return Err(plain_401("invalid API key".into()));
    }
    match TokenVerifier::with_api_key(API_KEY, API_SECRET).verify(token) {
        Ok(claims) if claims.exp > 0 => Ok(claims.video),
        Ok(_) => Err(plain_401("invalid authorization token: no exp".into())),
        Err(e) => Err(plain_401(format!("invalid authorization token: {e}"))),
    }
}

fn decode<M: Message + Default + serde::de::DeserializeOwned>(
    codec: Codec,
    body: &[u8],
) -> Result<M, HttpResponse> {
    match codec {
        Codec::Protobuf => M::decode(body).map_err(|e| {
            twirp_error(
                "malformed",
                &format!("the protobuf request could not be decoded: {e}"),
            )
        }),
        Codec::Json => {
            let body = if body.is_empty() {
                b"{}".as_slice()
            } else {
                body
            };
            serde_json::from_slice(body).map_err(|e| {
                twirp_error(
                    "malformed",
                    &format!("the json request could not be decoded: {e}"),
                )
            })
        }
    }
}

fn snake_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let mut snake = String::with_capacity(k.len() + 4);
                    for c in k.chars() {
                        if c.is_ascii_uppercase() {
                            snake.push('_');
                            snake.push(c.to_ascii_lowercase());
                        } else {
                            snake.push(c);
                        }
                    }
                    (snake, snake_keys(v))
                })
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(snake_keys).collect())
        }
        other => other,
    }
}

fn reply<M: Message + serde::Serialize>(codec: Codec, msg: &M) -> HttpResponse {
    match codec {
        Codec::Protobuf => HttpResponse::Ok()
            .content_type("application/protobuf")
            .body(msg.encode_to_vec()),
        Codec::Json => HttpResponse::Ok()
            .content_type("application/json")
            .body(snake_keys(serde_json::to_value(msg).unwrap_or_default()).to_string()),
    }
}

fn is_admin(grants: &VideoGrants, room: &str) -> bool {
    grants.room_admin && grants.room == room
}

fn denied() -> HttpResponse {
    twirp_error("unauthenticated", "permissions denied")
}

async fn twirp(
    req: HttpRequest,
    method: web::Path<String>,
    body: web::Bytes,
    state: web::Data<Shared>,
    hold: web::Data<tokio::sync::watch::Sender<bool>>,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let codec = match content_type.split(';').next().unwrap_or_default().trim() {
        "application/json" => Codec::Json,
        "application/protobuf" => Codec::Protobuf,
        _ => {
            return twirp_error(
                "bad_route",
                &format!("unexpected Content-Type: {content_type:?}"),
            );
        }
    };
    let failure = lock(&state).failure;
    match failure {
        Some(Failure::Hang) => {
            actix_web::rt::time::sleep(Duration::from_secs(120)).await;
            return twirp_error("deadline_exceeded", "hung");
        }
        Some(Failure::Status(status)) => {
            let code = match status {
                503 => "unavailable",
                429 => "resource_exhausted",
                404 => "not_found",
                _ => "internal",
            };
            return twirp_error(code, "the double was told to fail");
        }
        None => {}
    }
    let grants = match authenticate(&req) {
        Ok(g) => g,
        Err(resp) => return resp,
    };
    let method = method.into_inner();
    if method == "CreateDispatch" && *hold.borrow() {
        lock(&state).held += 1;
        let mut released = hold.subscribe();
        // Err only if the sender is gone, i.e. the double is being dropped: answer then.
        let _ = released.wait_for(|held| !held).await;
        lock(&state).held -= 1;
    }
    match handle(&method, codec, &body, &grants, &state, &content_type) {
        Ok(resp) | Err(resp) => resp,
    }
}

fn record<M: serde::Serialize>(state: &Shared, method: &str, content_type: &str, msg: &M) {
    lock(state).calls.push(Call {
        method: method.to_owned(),
        content_type: content_type.to_owned(),
        body: serde_json::to_value(msg).unwrap_or_default(),
    });
}

fn handle(
    method: &str,
    codec: Codec,
    body: &[u8],
    grants: &VideoGrants,
    state: &Shared,
    content_type: &str,
) -> Result<HttpResponse, HttpResponse> {
    match method {
        "CreateRoom" => {
            let req: proto::CreateRoomRequest = decode(codec, body)?;
            record(state, method, content_type, &req);
            if !grants.room_create {
                return Err(denied());
            }
            let room = create(&mut lock(state), req);
            Ok(reply(codec, &room))
        }
        "ListRooms" => {
            let req: proto::ListRoomsRequest = decode(codec, body)?;
            record(state, method, content_type, &req);
            if !grants.room_list {
                return Err(denied());
            }
            let st = lock(state);
            let mut rooms: Vec<proto::Room> = st
                .rooms
                .values()
                .filter(|(r, _)| req.names.is_empty() || req.names.contains(&r.name))
                .map(|(r, _)| r.clone())
                .collect();
            rooms.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(reply(codec, &proto::ListRoomsResponse { rooms }))
        }
        "DeleteRoom" => {
            let req: proto::DeleteRoomRequest = decode(codec, body)?;
            record(state, method, content_type, &req);
            if !grants.room_create {
                return Err(denied());
            }
            match lock(state).rooms.remove(&req.room) {
                Some(_) => Ok(reply(codec, &proto::DeleteRoomResponse {})),
                None => Err(twirp_error("not_found", "requested room does not exist")),
            }
        }
        "ListParticipants" => {
            let req: proto::ListParticipantsRequest = decode(codec, body)?;
            record(state, method, content_type, &req);
            if !is_admin(grants, &req.room) {
                return Err(denied());
            }
            let participants = lock(state)
                .rooms
                .get(&req.room)
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            Ok(reply(
                codec,
                &proto::ListParticipantsResponse { participants },
            ))
        }
        "GetParticipant" | "RemoveParticipant" => {
            let req: proto::RoomParticipantIdentity = decode(codec, body)?;
            record(state, method, content_type, &req);
            if !is_admin(grants, &req.room) {
                return Err(denied());
            }
            let mut st = lock(state);
            let Some((info, people)) = st.rooms.get_mut(&req.room) else {
                return Err(twirp_error("not_found", "requested room does not exist"));
            };
            let Some(pos) = people.iter().position(|p| p.identity == req.identity) else {
                return Err(twirp_error("not_found", "participant does not exist"));
            };
            if method == "GetParticipant" {
                return Ok(reply(codec, &people[pos]));
            }
            people.remove(pos);
            info.num_participants = people.len() as u32;
            Ok(reply(codec, &proto::RemoveParticipantResponse {}))
        }
        "SendData" => {
            let req: proto::SendDataRequest = decode(codec, body)?;
            record(state, method, content_type, &req);
            if !is_admin(grants, &req.room) {
                return Err(denied());
            }
            let mut st = lock(state);
            if !st.rooms.contains_key(&req.room) {
                return Err(twirp_error("not_found", "requested room does not exist"));
            }
            st.data.push(DataMessage {
                room: req.room,
                topic: req.topic,
                payload: req.data,
                reliable: req.kind == proto::data_packet::Kind::Reliable as i32,
            });
            Ok(reply(codec, &proto::SendDataResponse {}))
        }
        "CreateDispatch" => {
            let req: proto::CreateAgentDispatchRequest = decode(codec, body)?;
            record(state, method, content_type, &req);
            if !is_admin(grants, &req.room) {
                return Err(denied());
            }
            let mut st = lock(state);
            let dispatch = proto::AgentDispatch {
                id: st.sid("AD"),
                agent_name: req.agent_name,
                room: req.room,
                metadata: req.metadata,
                ..Default::default()
            };
            // Like the real server: every call is a new dispatch (not idempotent).
            st.dispatches.push(dispatch.clone());
            Ok(reply(codec, &dispatch))
        }
        other => Err(twirp_error(
            "bad_route",
            &format!("unknown method {other:?}"),
        )),
    }
}
