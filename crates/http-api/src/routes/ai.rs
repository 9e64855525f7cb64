//! `POST /api/ai/chat` and `/api/ai/process` (one handler): a chat turn as JSON or as an SSE
//! stream; `POST /api/tts/publish`: speak text into a room and report TTS's real outcome.

use std::time::Instant;

use actix_web::http::header::ACCEPT;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use june_domain::ports::{DeltaSink, Flow};
use june_domain::{ChatOutcome, ChatTurn, NoDeltas, SessionError};
use serde_json::json;
use tokio::sync::mpsc;

use super::owned_session;
use crate::AppState;
use crate::auth::Caller;
use crate::dto::{ChatRequestDto, ChatResponse, StatusResponse, TtsPublishRequest};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ValidJson;

/// What the chat task sends to the SSE response.
enum Frame {
    Delta(String),
    Done(Result<ChatOutcome, SessionError>),
}

struct ChannelSink(mpsc::UnboundedSender<Frame>);

#[async_trait]
impl DeltaSink for ChannelSink {
    async fn push(&mut self, delta: &str) -> Flow {
        // A client that went away does not stop the turn: it is still stored.
        let _ = self.0.send(Frame::Delta(delta.to_owned()));
        Flow::Continue
    }
}

fn sse(event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn wants_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// `POST /api/ai/chat`, `POST /api/ai/process`
#[utoipa::path(
    post,
    path = "/api/ai/chat",
    tag = "ai",
    request_body = ChatRequestDto,
    responses(
        (
            status = 200,
            description = "JSON, or with `Accept: text/event-stream` an SSE stream: `delta` events (`{text}`), then `done` (the JSON answer) or `error` (the error body)",
            content((ChatResponse = "application/json"), (String = "text/event-stream"))
        ),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
)]
pub async fn chat(
    state: web::Data<AppState>,
    req: HttpRequest,
    Caller(caller): Caller,
    ValidJson(body): ValidJson<ChatRequestDto>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let id = owned_session(&state, &caller, &body.session_id).await?;
    let turn = ChatTurn {
        session_id: id,
        text: body.text,
        language: body.language,
        speak: body.speak.unwrap_or(false),
    };
    if !wants_stream(&req) {
        let out = state.conversation.chat(turn, &mut NoDeltas).await?;
        return Ok(HttpResponse::Ok().json(ChatResponse::new(id, out, started)));
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let conversation = state.conversation.clone();
    // Tracked: the reply is stored even if the client goes away, and a shutdown waits for it.
    state.background.spawn("chat reply", async move {
        let mut sink = ChannelSink(tx.clone());
        let result = conversation.chat(turn, &mut sink).await;
        let _ = tx.send(Frame::Done(result));
    });
    // An error before the first delta still gets its proper status, not a 200 stream.
    let first = match rx.recv().await {
        Some(Frame::Done(Err(e))) => return Err(e.into()),
        Some(frame) => frame,
        None => {
            return Err(ApiError::Session(SessionError::Llm(
                june_domain::ports::LlmError::Upstream("the chat task stopped".into()),
            )));
        }
    };
    let stream = futures_util::stream::unfold(Some((Some(first), rx)), move |state| async move {
        let (pending, mut rx) = state?;
        let frame = match pending {
            Some(frame) => frame,
            None => rx.recv().await?,
        };
        let (bytes, next) = match frame {
            Frame::Delta(text) => (sse("delta", &json!({ "text": text })), Some((None, rx))),
            Frame::Done(Ok(out)) => {
                let done =
                    serde_json::to_value(ChatResponse::new(id, out, started)).unwrap_or_default();
                (sse("done", &done), None)
            }
            Frame::Done(Err(e)) => {
                let body = serde_json::to_value(ApiError::from(e).body()).unwrap_or_default();
                (sse("error", &body), None)
            }
        };
        Some((Ok::<_, std::convert::Infallible>(bytes), next))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream))
}

/// `POST /api/tts/publish`
#[utoipa::path(
    post,
    path = "/api/tts/publish",
    tag = "ai",
    request_body = TtsPublishRequest,
    responses(
        (status = 200, body = StatusResponse),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
)]
pub async fn tts_publish(
    state: web::Data<AppState>,
    caller: Caller,
    ValidJson(body): ValidJson<TtsPublishRequest>,
) -> Result<HttpResponse, ApiError> {
    // Speaking into any room is an operator's or a service's act.
    caller.require_admin()?;
    if body.room_name.trim().is_empty() {
        return Err(ApiError::invalid("room_name", "must not be empty"));
    }
    if body.text.trim().is_empty() {
        return Err(ApiError::invalid("text", "must not be empty"));
    }
    let request = state.conversation.speech_request(
        body.room_name.clone(),
        body.text,
        body.language,
        body.speaker,
        body.speed,
    );
    let answer = state.conversation.speak(request).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "published",
        "room_name": body.room_name,
        "tts": answer,
    })))
}
