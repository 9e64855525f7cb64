//! `GET /api/sessions/{id}/stream`: the session's live events as Server-Sent Events
//! (design.md §8.3).
//!
//! Events: `transcript` (`{turn, text}`), `reply` (`{turn, index, text}`), `turn` (the turn
//! record) and `status` (`{status}`); a `: ping` comment every `live.ping_secs`.
//!
//! **Ids and resume.** Every event's `id` says where a client that saw it stands: `N.0` is
//! turn N's transcript, `N.K` its reply sentence K−1, `N.end` its record (turn N is
//! complete); a `status` event carries `C.end` for the newest turn this stream has completed.
//! On reconnect the browser sends the last id as `Last-Event-ID`: after `N.end` the stored
//! turns after N are replayed as `turn` events, after `N.K` the stored turns from N on (turn N
//! was incomplete; its record has all of it); then the stream goes live, skipping what the
//! replay covered. The subscription is made before the store is read, so nothing published
//! in between is lost. What a resume cannot give back: the transcript and sentences of a turn
//! still running when the client reconnects that were published while it was away (its
//! `turn` record follows when it ends).
//!
//! **Bounds.** At most `live.max_streams` open streams per replica (503 `too_many_streams`
//! beyond); `live.client_buffer` events wait per client, and a client that lets them pile up
//! is disconnected (it may resume). The stream ends when the session ends (after the
//! `status` event), when the replica starts draining, or when the client goes away.

use std::collections::VecDeque;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use june_domain::ports::{LiveEvent, SessionEvent};
use june_domain::{SessionStatus, TurnRecord};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use super::session_id;
use crate::AppState;
use crate::auth::Caller;
use crate::background::Drain;
use crate::dto::SessionIdPath;
use crate::error::{ApiError, ErrorBody};

/// The sequence number of a turn's record among its events: after every sentence.
const END: u64 = u64::MAX;

/// Where a client stands: `(turn, seq)`, ordered; `seq` [`END`] means the turn is complete.
type Position = (u64, u64);

/// The position of `Last-Event-ID` (`N.end` or `N.K`).
fn parse_position(raw: &str) -> Option<Position> {
    let (turn, seq) = raw.split_once('.')?;
    let turn = turn.parse().ok()?;
    let seq = if seq == "end" { END } else { seq.parse().ok()? };
    Some((turn, seq))
}

fn id_of(p: Position) -> String {
    if p.1 == END {
        format!("{}.end", p.0)
    } else {
        format!("{}.{}", p.0, p.1)
    }
}

/// The position of a turn event (`None` for a status).
fn position(event: &LiveEvent) -> Option<Position> {
    match event {
        LiveEvent::Transcript { turn, .. } => Some((*turn, 0)),
        LiveEvent::Reply { turn, index, .. } => Some((*turn, u64::from(*index) + 1)),
        LiveEvent::TurnEnded(record) => Some((record.turn, END)),
        LiveEvent::Status(_) => None,
    }
}

fn frame(id: &str, event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {event}\ndata: {data}\n\n"))
}

/// The record as `GET /api/sessions/{id}/turns/{n}` serves it (the same DTO), so a client
/// reads one shape from either.
fn turn_frame(record: &TurnRecord) -> Bytes {
    let data =
        serde_json::to_value(crate::dto::TurnResponse::from(record.clone())).unwrap_or_default();
    frame(&id_of((record.turn, END)), "turn", &data)
}

/// `GET /api/sessions/{id}/stream`
#[utoipa::path(
    get,
    path = "/api/sessions/{id}/stream",
    tag = "sessions",
    params(
        SessionIdPath,
        (
            "Last-Event-ID" = Option<String>,
            Header,
            description = "Resume after this event id (`N.end` or `N.K`, as the stream sent it): the stored turns the client missed are sent first as `turn` events",
            pattern = r"^[0-9]+\.([0-9]+|end)$"
        ),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `transcript` (`{turn, text}`), `reply` (`{turn, index, text}`), `turn` (the turn record), `status` (`{status}`); a `: ping` comment every 15 s. Ends when the session ends.", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such session (or not yours)", body = ErrorBody),
        (status = 422, description = "`Last-Event-ID` is not an id this stream sent", body = ErrorBody),
        (status = 503, description = "Too many open streams on this replica (`too_many_streams`)", body = ErrorBody),
    ),
)]
pub async fn stream_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    Caller(caller): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let resume = match req.headers().get("last-event-id") {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(parse_position).ok_or_else(|| {
            ApiError::invalid("Last-Event-ID", "must be an event id this stream sent")
        })?),
    };
    let session = state.sessions.authorize(&caller, id).await?;
    let live = &state.live;
    let Ok(slot) = live.slots.clone().try_acquire_owned() else {
        metrics::counter!("june_live_streams_refused_total").increment(1);
        return Err(ApiError::Unavailable {
            detail: "too many live streams are open on this replica; retry later".into(),
            code: "too_many_streams",
        });
    };
    // Subscribe first, then read the store: what is published in between arrives live.
    let events = live.feed.subscribe(id, live.config.client_buffer).boxed();
    metrics::counter!("june_live_streams_opened_total").increment(1);
    let mut stream = Stream {
        events,
        floor: None,
        completed: 0,
        pending: VecDeque::new(),
        finished: false,
        _slot: slot,
    };
    if let Some(from) = resume {
        stream.floor = Some(from);
        stream.completed = if from.1 == END {
            from.0
        } else {
            from.0.saturating_sub(1)
        };
        stream.replay(&state, id, from).await?;
    }
    let status = session.effective_status(chrono::Utc::now());
    if !status.is_live() {
        // Nothing more will happen: the replay (if any), the status, the end.
        stream.push_status(status);
    }
    let body = futures_util::stream::unfold(
        (stream, state.drain.clone(), ticker(live.config.ping_every)),
        |(mut stream, drain, mut ping)| async move {
            let next = stream.next_frame(&drain, &mut ping).await?;
            Some((Ok::<_, actix_web::Error>(next), (stream, drain, ping)))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        // Proxies such as nginx must not hold the events back.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

fn ticker(every: std::time::Duration) -> tokio::time::Interval {
    let mut ping = tokio::time::interval(every.max(std::time::Duration::from_millis(1)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping
}

/// One client's stream.
struct Stream {
    events: futures_util::stream::BoxStream<'static, SessionEvent>,
    /// Live turn events at or before this position were covered by the resume.
    floor: Option<Position>,
    /// The newest turn this client has completely (the id of `status` events).
    completed: u64,
    /// Frames to send before waiting for more.
    pending: VecDeque<Bytes>,
    /// Nothing after `pending`.
    finished: bool,
    _slot: OwnedSemaphorePermit,
}

impl Stream {
    /// Queues the stored turns after `from` (from its turn on when it was incomplete).
    async fn replay(&mut self, state: &AppState, id: Uuid, from: Position) -> Result<(), ApiError> {
        let Some(turns) = &state.live.turns else {
            return Ok(());
        };
        let mut after = if from.1 == END {
            from.0
        } else {
            from.0.saturating_sub(1)
        };
        let mut left = state.live.config.max_replay;
        while left > 0 {
            let asked = left.min(100);
            let page = turns
                .turns_after(id, after, asked)
                .await
                .map_err(june_domain::SessionError::from)?;
            let Some(last) = page.last() else { break };
            after = last.turn;
            left = if page.len() < asked as usize {
                0
            } else {
                left - asked
            };
            for record in &page {
                self.pending.push_back(turn_frame(record));
                self.completed = self.completed.max(record.turn);
                self.floor = self.floor.max(Some((record.turn, END)));
            }
        }
        Ok(())
    }

    fn push_status(&mut self, status: SessionStatus) {
        let data = json!({ "status": status.as_str() });
        self.pending
            .push_back(frame(&id_of((self.completed, END)), "status", &data));
        if !status.is_live() {
            self.finished = true;
        }
    }

    /// The frame of a live event, unless the resume covered it.
    fn push_event(&mut self, event: SessionEvent) {
        if let Some(at) = position(&event.event)
            && self.floor.is_some_and(|floor| at <= floor)
        {
            return;
        }
        match event.event {
            LiveEvent::Transcript { turn, text } => self.pending.push_back(frame(
                &id_of((turn, 0)),
                "transcript",
                &json!({ "turn": turn, "text": text }),
            )),
            LiveEvent::Reply { turn, index, text } => self.pending.push_back(frame(
                &id_of((turn, u64::from(index) + 1)),
                "reply",
                &json!({ "turn": turn, "index": index, "text": text }),
            )),
            LiveEvent::TurnEnded(record) => {
                self.completed = self.completed.max(record.turn);
                self.pending.push_back(turn_frame(&record));
            }
            LiveEvent::Status(status) => self.push_status(status),
        }
    }

    /// The next frame to send; `None` ends the stream.
    async fn next_frame(
        &mut self,
        drain: &Drain,
        ping: &mut tokio::time::Interval,
    ) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            tokio::select! {
                biased;
                () = drain.started() => return None,
                event = self.events.next() => match event {
                    Some(event) => self.push_event(event),
                    // Dropped by the feed for not keeping up (or the feed is gone).
                    None => {
                        metrics::counter!("june_live_streams_dropped_total").increment(1);
                        return None;
                    }
                },
                _ = ping.tick() => return Some(Bytes::from_static(b": ping\n\n")),
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        metrics::counter!("june_live_streams_closed_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_order_as_positions() {
        assert_eq!(parse_position("3.end"), Some((3, END)));
        assert_eq!(parse_position("3.2"), Some((3, 2)));
        assert_eq!(id_of((3, END)), "3.end");
        assert_eq!(id_of((3, 2)), "3.2");
        assert!(parse_position("3").is_none());
        assert!(parse_position("x.1").is_none());
        assert!(parse_position("-1.end").is_none());
        assert!((3, 2) < (3, END) && (3, END) < (4, 0));
    }
}
