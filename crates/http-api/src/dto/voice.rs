use june_domain::Transcript;
use serde::Deserialize;

use super::lenient::{first_of, non_blank, number};
use crate::error::ApiError;

/// `POST /api/webhooks/stt` body, read as the STT bots send it: each field may come under one
/// of several keys, and the first key that holds a non-blank string wins (`room_name`, then
/// `roomName`, then `room`). A value of another type reads as absent; any other body reads
/// as `{}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SttTranscriptRequest {
    /// `partial` or `final` (the default).
    #[serde(default, deserialize_with = "non_blank")]
    #[schema(example = "final")]
    pub event: Option<String>,
    /// Alias of `event`.
    #[serde(rename = "type", default, deserialize_with = "non_blank")]
    pub kind: Option<String>,
    /// The room of the session spoken in (or under `roomName` or `room`).
    #[serde(default, deserialize_with = "non_blank")]
    #[schema(value_type = String, required = true)]
    pub room_name: Option<String>,
    /// Alias of `room_name`.
    #[serde(rename = "roomName", default, deserialize_with = "non_blank")]
    pub room_name_camel: Option<String>,
    /// Alias of `room_name`.
    #[serde(default, deserialize_with = "non_blank")]
    pub room: Option<String>,
    /// Who spoke.
    #[serde(default, deserialize_with = "non_blank")]
    pub participant: Option<String>,
    /// Alias of `participant`.
    #[serde(default, deserialize_with = "non_blank")]
    pub session_id: Option<String>,
    /// Alias of `participant`.
    #[serde(default, deserialize_with = "non_blank")]
    pub participant_identity: Option<String>,
    /// What was said (empty when absent).
    #[serde(default, deserialize_with = "non_blank")]
    pub text: Option<String>,
    /// Alias of `text`.
    #[serde(default, deserialize_with = "non_blank")]
    pub transcript: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    pub language: Option<String>,
    /// The recogniser's confidence; a value that is not a number is ignored.
    #[serde(default, deserialize_with = "number")]
    pub confidence: Option<f32>,
}

impl SttTranscriptRequest {
    /// The transcript; 422 for an unknown `event` or no room.
    pub fn try_into_domain(self) -> Result<Transcript, ApiError> {
        let is_final = match first_of([&self.event, &self.kind]).as_deref() {
            None | Some("final") => true,
            Some("partial") => false,
            Some(_) => {
                return Err(ApiError::invalid(
                    "event",
                    "must be \"partial\" or \"final\"",
                ));
            }
        };
        Ok(Transcript {
            room_name: room([&self.room_name, &self.room_name_camel, &self.room])?,
            participant: first_of([
                &self.participant,
                &self.session_id,
                &self.participant_identity,
            ]),
            text: first_of([&self.text, &self.transcript]).unwrap_or_default(),
            is_final,
            language: self.language,
            confidence: self.confidence,
        })
    }
}

/// `POST /api/webhooks/voice_onset` body (barge-in), read like the STT body: the first key
/// that holds a non-blank string names the room.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct VoiceOnsetRequest {
    /// The room whose turn is interrupted (or under `roomName` or `room`).
    #[serde(default, deserialize_with = "non_blank")]
    #[schema(value_type = String, required = true)]
    pub room_name: Option<String>,
    /// Alias of `room_name`.
    #[serde(rename = "roomName", default, deserialize_with = "non_blank")]
    pub room_name_camel: Option<String>,
    /// Alias of `room_name`.
    #[serde(default, deserialize_with = "non_blank")]
    pub room: Option<String>,
    /// Who started speaking. Accepted and not used: the room's turn stops whoever spoke.
    #[serde(default, deserialize_with = "non_blank")]
    pub participant: Option<String>,
}

impl VoiceOnsetRequest {
    /// The room; 422 when no key names one.
    pub fn room(&self) -> Result<String, ApiError> {
        room([&self.room_name, &self.room_name_camel, &self.room])
    }
}

fn room(keys: [&Option<String>; 3]) -> Result<String, ApiError> {
    first_of(keys).ok_or_else(|| ApiError::invalid("room_name", "is required"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dto::Lenient;

    fn stt(body: serde_json::Value) -> Result<Transcript, ApiError> {
        serde_json::from_value::<Lenient<SttTranscriptRequest>>(body)
            .unwrap()
            .0
            .try_into_domain()
    }

    #[test]
    fn aliases_are_read_in_order_and_blank_ones_are_skipped() {
        let t = stt(json!({"room_name": "a", "roomName": "b", "room": "c"})).unwrap();
        assert_eq!(t.room_name, "a");
        let t = stt(json!({"room_name": " ", "roomName": 5, "room": "c"})).unwrap();
        assert_eq!(t.room_name, "c");
        let t = stt(json!({"roomName": " b ", "transcript": "hi", "session_id": "p"})).unwrap();
        assert_eq!((t.room_name.as_str(), t.text.as_str()), ("b", "hi"));
        assert_eq!(t.participant.as_deref(), Some("p"));
        let t = stt(json!({"room": "r", "text": "", "transcript": "said"})).unwrap();
        assert_eq!(t.text, "said");
    }

    #[test]
    fn the_event_defaults_to_final_and_is_checked() {
        assert!(stt(json!({"room": "r"})).unwrap().is_final);
        assert!(
            !stt(json!({"room": "r", "type": "partial"}))
                .unwrap()
                .is_final
        );
        assert!(
            stt(json!({"room": "r", "event": "final", "type": "partial"}))
                .unwrap()
                .is_final
        );
        assert!(
            !stt(json!({"room": "r", "event": 1, "type": "partial"}))
                .unwrap()
                .is_final
        );
        match stt(json!({"room": "r", "event": "done"})) {
            Err(ApiError::Validation { field, .. }) => assert_eq!(field, "event"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_room_is_422_naming_room_name_and_the_event_is_judged_first() {
        match stt(json!([])) {
            Err(ApiError::Validation { field, message }) => {
                assert_eq!(
                    (field.as_str(), message.as_str()),
                    ("room_name", "room_name: is required")
                );
            }
            other => panic!("{other:?}"),
        }
        match stt(json!({"event": "x"})) {
            Err(ApiError::Validation { field, .. }) => assert_eq!(field, "event"),
            other => panic!("{other:?}"),
        }
        let onset: Lenient<VoiceOnsetRequest> =
            serde_json::from_value(json!({"room": "", "roomName": "r"})).unwrap();
        assert_eq!(onset.0.room().unwrap(), "r");
    }

    #[test]
    fn a_confidence_that_is_not_a_number_is_ignored() {
        let t = stt(json!({"room": "r", "confidence": 0.93, "language": " en "})).unwrap();
        assert_eq!(
            (t.confidence, t.language.as_deref()),
            (Some(0.93), Some("en"))
        );
        assert_eq!(
            stt(json!({"room": "r", "confidence": "high"}))
                .unwrap()
                .confidence,
            None
        );
    }
}
