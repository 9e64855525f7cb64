use june_domain::RecordedEvent;
use june_domain::ports::EventCursor;
use serde::{Deserialize, Serialize};

use super::rfc3339;

/// `GET /api/sessions/{id}/events` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Page size, 1 to 200 (50 by default); a larger value is read as 200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (empty: the first page).
    #[param(pattern = r"^([0-9]{1,16}_([0-7][0-9a-f])*)?$")]
    pub cursor: Option<String>,
}

/// One event of the log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventDto {
    pub id: String,
    pub event: String,
    /// LiveKit's time of the event.
    pub created_at: String,
    /// When we received it.
    pub received_at: String,
    pub room_name: Option<String>,
    pub participant: Option<String>,
    pub track_sid: Option<String>,
    /// The body as LiveKit sent it.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<RecordedEvent> for EventDto {
    fn from(e: RecordedEvent) -> Self {
        EventDto {
            id: e.id,
            event: e.event,
            created_at: rfc3339(e.created_at),
            received_at: rfc3339(e.received_at),
            room_name: e.room_name,
            participant: e.participant,
            track_sid: e.track_sid,
            payload: e.payload,
        }
    }
}

/// `GET /api/sessions/{id}/events` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventList {
    pub session_id: String,
    pub events: Vec<EventDto>,
    pub next_cursor: Option<String>,
}

/// `{created_at µs}_{event id as hex}`: opaque and URL-safe whatever the id holds.
pub fn encode_event_cursor(c: &EventCursor) -> String {
    let hex: String = c.id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{}_{hex}", c.created_at.timestamp_micros())
}

/// Reads a cursor made by [`encode_event_cursor`].
pub fn decode_event_cursor(s: &str) -> Option<EventCursor> {
    let (micros, hex) = s.split_once('_')?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(EventCursor {
        created_at: chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: String::from_utf8(bytes).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_cursors_round_trip_and_garbage_is_refused() {
        let c = EventCursor {
            created_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: "sha256:ab/_=".into(),
        };
        assert_eq!(decode_event_cursor(&encode_event_cursor(&c)), Some(c));
        for bad in ["", "x", "1_zz", "1_abc", "no_61"] {
            assert_eq!(decode_event_cursor(bad), None, "{bad}");
        }
    }
}
