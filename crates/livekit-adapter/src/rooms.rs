//! Rooms and participants through LiveKit's Twirp RoomService.

use std::time::Duration;

use async_trait::async_trait;
use june_domain::ports::{RoomError, RoomService};
use june_domain::{Participant, ParticipantState, Room, RoomSpec, Track, TrackKind};
use livekit_api::services::room::{CreateRoomOptions, RoomClient, SendDataOptions};
use livekit_api::services::{ServerError, ServiceError};
use livekit_protocol as proto;
use secrecy::{ExposeSecret, SecretString};

/// The LiveKit HTTP API base for a client-facing WebSocket URL (`ws`→`http`, `wss`→`https`).
pub fn api_url_from_ws(ws_url: &str) -> String {
    if let Some(rest) = ws_url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = ws_url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        ws_url.to_owned()
    }
}

/// [`RoomService`] on LiveKit's `RoomClient`, with a per-call timeout and no region
/// failover (we talk to one self-hosted server).
pub struct LiveKitRoomService {
    client: RoomClient,
    api_url: String,
    timeout: Duration,
}

impl std::fmt::Debug for LiveKitRoomService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKitRoomService")
            .field("api_url", &self.api_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LiveKitRoomService {
    /// A client of the server at `api_url` (`http(s)://…`), giving up on a call after `timeout`.
    pub fn new(api_url: &str, api_key: &str, api_secret: &SecretString, timeout: Duration) -> Self {
        let client = RoomClient::with_api_key(api_url, api_key, api_secret.expose_secret())
            .with_failover(false)
            .with_request_timeout(timeout);
        LiveKitRoomService {
            client,
            api_url: api_url.to_owned(),
            timeout,
        }
    }

    fn map_error(&self, e: ServiceError) -> RoomError {
        map_service_error(e, &self.api_url, self.timeout)
    }
}

/// LiveKit's service errors as [`RoomError`]s: Twirp codes, timeouts, unreachable servers, and
/// the plain-text 401 the server sends for a bad key/secret.
pub(crate) fn map_service_error(e: ServiceError, api_url: &str, timeout: Duration) -> RoomError {
    let unavailable =
        |message: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            RoomError::Unavailable { message, source }
        };
    match e {
        ServiceError::Twirp(ServerError::Twirp(code)) => match code.code.as_str() {
            "not_found" => RoomError::NotFound(code.msg),
            "unauthenticated" | "permission_denied" => RoomError::Unauthorized(format!(
                "LiveKit refused the call ({}: {})",
                code.code, code.msg
            )),
            "invalid_argument"
            | "malformed"
            | "out_of_range"
            | "already_exists"
            | "failed_precondition"
            | "bad_route" => RoomError::Rejected(format!("{}: {}", code.code, code.msg)),
            _ => unavailable(
                format!("LiveKit answered {}: {}", code.code, code.msg),
                None,
            ),
        },
        ServiceError::Twirp(ServerError::Request(err)) => {
            if err.is_timeout() {
                unavailable(
                    format!("LiveKit did not answer within {timeout:?}"),
                    Some(Box::new(err)),
                )
            } else if err.is_decode() {
                // The server's auth middleware answers a bad/expired/unknown-key token with
                // a plain-text 401, which RoomClient cannot decode as a Twirp error.
                RoomError::Unauthorized(
                    "LiveKit answered with a non-Twirp error; a plain-text 401 means the \
                         API key/secret is wrong"
                        .into(),
                )
            } else {
                unavailable(
                    format!("cannot reach LiveKit at {api_url}"),
                    Some(Box::new(err)),
                )
            }
        }
        ServiceError::Twirp(ServerError::Url(err)) => unavailable(
            format!("the LiveKit URL {api_url:?} is not valid"),
            Some(Box::new(err)),
        ),
        ServiceError::Twirp(ServerError::Prost(err)) => unavailable(
            "LiveKit's reply could not be decoded".into(),
            Some(Box::new(err)),
        ),
        ServiceError::AccessToken(err) => unavailable(
            "could not sign the LiveKit API token".into(),
            Some(Box::new(err)),
        ),
        ServiceError::Env(err) => {
            unavailable("LiveKit client misconfigured".into(), Some(Box::new(err)))
        }
    }
}

/// Counts a LiveKit call by method and outcome, and times it.
pub(crate) async fn observed<T, F>(method: &'static str, call: F) -> Result<T, RoomError>
where
    F: std::future::Future<Output = Result<T, RoomError>>,
{
    let started = std::time::Instant::now();
    let result = call.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(RoomError::NotFound(_)) => "not_found",
        Err(RoomError::Unauthorized(_)) => "unauthorized",
        Err(RoomError::Rejected(_)) => "rejected",
        Err(RoomError::Unavailable { .. }) => "unavailable",
    };
    metrics::counter!("june_livekit_calls_total", "method" => method, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("june_livekit_call_duration_seconds", "method" => method)
        .record(started.elapsed().as_secs_f64());
    result
}

fn room(r: proto::Room) -> Room {
    Room {
        sid: r.sid,
        name: r.name,
        num_participants: r.num_participants,
        max_participants: r.max_participants,
        creation_time: r.creation_time,
        metadata: r.metadata,
    }
}

fn participant(p: proto::ParticipantInfo) -> Participant {
    use proto::participant_info::State;
    let state = match State::try_from(p.state) {
        Ok(State::Joining) => ParticipantState::Joining,
        Ok(State::Joined) => ParticipantState::Joined,
        Ok(State::Active) => ParticipantState::Active,
        Ok(State::Disconnected) | Err(_) => ParticipantState::Disconnected,
    };
    Participant {
        identity: p.identity,
        name: p.name,
        sid: p.sid,
        state,
        joined_at: p.joined_at,
        metadata: p.metadata,
        is_publisher: p.is_publisher,
        tracks: p
            .tracks
            .into_iter()
            .map(|t| Track {
                kind: match proto::TrackType::try_from(t.r#type) {
                    Ok(proto::TrackType::Video) => TrackKind::Video,
                    Ok(proto::TrackType::Data) => TrackKind::Data,
                    _ => TrackKind::Audio,
                },
                source: proto::TrackSource::try_from(t.source)
                    .unwrap_or(proto::TrackSource::Unknown)
                    .as_str_name()
                    .to_ascii_lowercase(),
                sid: t.sid,
                muted: t.muted,
            })
            .collect(),
    }
}

#[async_trait]
impl RoomService for LiveKitRoomService {
    #[tracing::instrument(skip_all, fields(room = %spec.name))]
    async fn create_room(&self, spec: &RoomSpec) -> Result<Room, RoomError> {
        let options = CreateRoomOptions {
            empty_timeout: spec.empty_timeout_secs,
            departure_timeout: spec.departure_timeout_secs,
            max_participants: spec.max_participants,
            metadata: spec.metadata.clone(),
            ..Default::default()
        };
        observed("CreateRoom", async {
            self.client
                .create_room(&spec.name, options)
                .await
                .map(room)
                .map_err(|e| self.map_error(e))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(room = %name))]
    async fn delete_room(&self, name: &str) -> Result<(), RoomError> {
        match self
            .client
            .delete_room(name)
            .await
            .map_err(|e| self.map_error(e))
        {
            // Already gone: deletes are idempotent.
            Err(RoomError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    async fn list_rooms(&self, names: &[String]) -> Result<Vec<Room>, RoomError> {
        observed("ListRooms", async {
            self.client
                .list_rooms(names.to_vec())
                .await
                .map(|rooms| rooms.into_iter().map(room).collect())
                .map_err(|e| self.map_error(e))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(room = %name))]
    async fn list_participants(&self, name: &str) -> Result<Vec<Participant>, RoomError> {
        observed("ListParticipants", async {
            self.client
                .list_participants(name)
                .await
                .map(|ps| ps.into_iter().map(participant).collect())
                .map_err(|e| self.map_error(e))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(room = %name))]
    async fn remove_participant(&self, name: &str, identity: &str) -> Result<(), RoomError> {
        observed("RemoveParticipant", async {
            self.client
                .remove_participant(name, identity)
                .await
                .map_err(|e| self.map_error(e))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(room = %name, topic = %topic))]
    async fn send_data(
        &self,
        name: &str,
        payload: Vec<u8>,
        topic: &str,
        reliable: bool,
    ) -> Result<(), RoomError> {
        let kind = if reliable {
            proto::data_packet::Kind::Reliable
        } else {
            proto::data_packet::Kind::Lossy
        };
        let options = SendDataOptions {
            kind,
            topic: Some(topic.to_owned()),
            ..Default::default()
        };
        observed("SendData", async {
            self.client
                .send_data(name, payload, options)
                .await
                .map_err(|e| self.map_error(e))
        })
        .await
    }
}
