use june_domain::Transcript;
use serde::Deserialize;

use super::lenient::{first_of, flag, non_blank, number, present, text_or_number};
use crate::error::ApiError;

/// `POST /api/webhooks/stt` body, read as every June STT bot revision sends it (design §8.1,
/// docs/compat.md): each field may come under one of several keys, and the first key that
/// holds a non-blank string wins (`room_name`, then `roomName`, then `room`). A value of
/// another type reads as absent; keys not listed here are ignored; any other body reads as
/// `{}`.
///
/// Final or partial: `event` (else `type`) decides when it is given: `final` or `transcript`
/// is a final, `partial` or `partial_transcript` a partial, anything else is 422. Without
/// one, `partial: true` or `is_partial: true` makes a partial, and everything else is a final.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SttTranscriptRequest {
    /// `final` (the default) or `transcript` (= final), `partial` or `partial_transcript`
    /// (= partial).
    #[serde(default, deserialize_with = "non_blank")]
    #[schema(value_type = Option<TranscriptEvent>, example = "final")]
    pub event: Option<String>,
    /// Alias of `event`, read when `event` is absent.
    #[serde(rename = "type", default, deserialize_with = "non_blank")]
    #[schema(value_type = Option<TranscriptEvent>)]
    pub kind: Option<String>,
    /// `true`: a partial. Read only when neither `event` nor `type` is given.
    #[serde(default, deserialize_with = "flag")]
    pub partial: Option<bool>,
    /// Alias of `partial`.
    #[serde(default, deserialize_with = "flag")]
    pub is_partial: Option<bool>,
    /// The room of the session spoken in (or under `roomName` or `room`), trimmed. No
    /// control characters (422); a room no live session owns is 404 for a final and
    /// `200 skipped/unknown_room` for a partial, and session rooms are 1–128 of
    /// `A-Z a-z 0-9 _ - .`.
    #[serde(default, deserialize_with = "non_blank")]
    #[schema(value_type = String, required = true, pattern = r"^\s*[A-Za-z0-9_.-]{1,128}\s*$")]
    pub room_name: Option<String>,
    /// Alias of `room_name`.
    #[serde(rename = "roomName", default, deserialize_with = "non_blank")]
    #[schema(value_type = Option<String>, pattern = r"^\s*[A-Za-z0-9_.-]{1,128}\s*$")]
    pub room_name_camel: Option<String>,
    /// Alias of `room_name`.
    #[serde(default, deserialize_with = "non_blank")]
    #[schema(value_type = Option<String>, pattern = r"^\s*[A-Za-z0-9_.-]{1,128}\s*$")]
    pub room: Option<String>,
    /// Who spoke (or under `user_id`, `session_id` or `participant_identity`).
    #[serde(default, deserialize_with = "non_blank")]
    pub participant: Option<String>,
    /// Alias of `participant`.
    #[serde(default, deserialize_with = "non_blank")]
    pub user_id: Option<String>,
    /// Alias of `participant`.
    #[serde(default, deserialize_with = "non_blank")]
    pub session_id: Option<String>,
    /// Alias of `participant`.
    #[serde(default, deserialize_with = "non_blank")]
    pub participant_identity: Option<String>,
    /// What was said (empty when absent), or under `transcript`, `final_text`, `content`,
    /// `partial_text` or `message`.
    #[serde(default, deserialize_with = "non_blank")]
    pub text: Option<String>,
    /// Alias of `text`.
    #[serde(default, deserialize_with = "non_blank")]
    pub transcript: Option<String>,
    /// Alias of `text`.
    #[serde(default, deserialize_with = "non_blank")]
    pub final_text: Option<String>,
    /// Alias of `text`.
    #[serde(default, deserialize_with = "non_blank")]
    pub content: Option<String>,
    /// Alias of `text` (v3.x read it).
    #[serde(default, deserialize_with = "non_blank")]
    pub partial_text: Option<String>,
    /// Alias of `text` (v3.x read it).
    #[serde(default, deserialize_with = "non_blank")]
    pub message: Option<String>,
    /// The language heard; the session's language when absent or `null`.
    #[serde(default, deserialize_with = "non_blank")]
    pub language: Option<String>,
    /// The recogniser's confidence; a value that is not a number is ignored.
    #[serde(default, deserialize_with = "number")]
    pub confidence: Option<f32>,
    /// The bot's id of this transcript. A final with the same id as the session's last final
    /// is a resend, skipped as `duplicate` (without an id, the same text within
    /// `voice.duplicate_window_ms` is). A number is taken as its text.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, example = "1b4e28ba-2fa1-11d2-883f-0016d3cca427")]
    pub transcript_id: Option<String>,
    /// When the bot heard it (any form). Accepted and not used.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "2026-01-01T12:00:00.000000")]
    pub timestamp: Option<serde_json::Value>,
    /// The recogniser's segments. Accepted and not used.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub segments: Option<serde_json::Value>,
    /// Audio of the utterance. Accepted and not used.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub audio_data: Option<serde_json::Value>,
}

/// What a transcript is: `final` and `transcript` are finals, `partial` and
/// `partial_transcript` partials (the names of the STT bot's revisions). Anything else is 422.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TranscriptEvent {
    /// A final transcript: starts a turn.
    Final,
    /// A final, as june-stt 1.C and later name it.
    Transcript,
    /// A partial transcript: starts nothing.
    Partial,
    /// A partial, as june-stt 1.C and later name it.
    PartialTranscript,
}

impl SttTranscriptRequest {
    /// Final or partial; 422 for an `event` (or `type`) that is neither.
    fn is_final(&self) -> Result<bool, ApiError> {
        match first_of([&self.event, &self.kind]).as_deref() {
            Some("final" | "transcript") => Ok(true),
            Some("partial" | "partial_transcript") => Ok(false),
            Some(_) => Err(ApiError::invalid(
                "event",
                "must be \"final\", \"transcript\", \"partial\" or \"partial_transcript\"",
            )),
            None => Ok(!(self.partial == Some(true) || self.is_partial == Some(true))),
        }
    }

    /// The transcript; 422 for an unknown `event` or no room.
    pub fn try_into_domain(self) -> Result<Transcript, ApiError> {
        let is_final = self.is_final()?;
        Ok(Transcript {
            room_name: room([&self.room_name, &self.room_name_camel, &self.room])?,
            participant: first_of([
                &self.participant,
                &self.user_id,
                &self.session_id,
                &self.participant_identity,
            ]),
            text: first_of([
                &self.text,
                &self.transcript,
                &self.final_text,
                &self.content,
                &self.partial_text,
                &self.message,
            ])
            .unwrap_or_default(),
            is_final,
            language: self.language,
            confidence: self.confidence,
            transcript_id: self.transcript_id,
        })
    }
}

/// `POST /api/webhooks/voice_onset` body (barge-in), read like the STT body: the first key
/// that holds a non-blank string names the room.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct VoiceOnsetRequest {
    /// The room whose turn is interrupted (or under `roomName` or `room`), trimmed; 422 when
    /// no key names one, 404 when no live session owns it.
    #[serde(default, deserialize_with = "non_blank")]
    #[schema(value_type = String, required = true, pattern = r"^\s*[A-Za-z0-9_.-]{1,128}\s*$")]
    pub room_name: Option<String>,
    /// Alias of `room_name`.
    #[serde(rename = "roomName", default, deserialize_with = "non_blank")]
    #[schema(value_type = Option<String>, pattern = r"^\s*[A-Za-z0-9_.-]{1,128}\s*$")]
    pub room_name_camel: Option<String>,
    /// Alias of `room_name`.
    #[serde(default, deserialize_with = "non_blank")]
    #[schema(value_type = Option<String>, pattern = r"^\s*[A-Za-z0-9_.-]{1,128}\s*$")]
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
    fn every_event_name_of_the_stt_revisions_is_read() {
        // june-stt 1.A/1.B: "final"/"partial"; 1.C/1.D: "transcript"/"partial_transcript".
        for (event, is_final) in [
            ("final", true),
            ("transcript", true),
            ("partial", false),
            ("partial_transcript", false),
        ] {
            let t = stt(json!({"room": "r", "event": event})).unwrap();
            assert_eq!(t.is_final, is_final, "event {event}");
            let t = stt(json!({"room": "r", "type": event})).unwrap();
            assert_eq!(t.is_final, is_final, "type {event}");
        }
        match stt(json!({"room": "r", "event": "interim"})) {
            Err(ApiError::Validation { field, message }) => {
                assert_eq!(field, "event");
                assert!(message.contains("partial_transcript"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_an_event_the_partial_flags_decide_and_else_it_is_final() {
        assert!(!stt(json!({"room": "r", "partial": true})).unwrap().is_final);
        assert!(
            !stt(json!({"room": "r", "is_partial": true}))
                .unwrap()
                .is_final
        );
        assert!(
            !stt(json!({"room": "r", "partial": false, "is_partial": true}))
                .unwrap()
                .is_final
        );
        assert!(
            stt(json!({"room": "r", "partial": false}))
                .unwrap()
                .is_final
        );
        // Not a boolean: says nothing.
        assert!(
            stt(json!({"room": "r", "partial": "true"}))
                .unwrap()
                .is_final
        );
        assert!(stt(json!({"room": "r", "is_partial": 1})).unwrap().is_final);
        // An event, when given, wins over the flags (1.A sends both, and they agree).
        assert!(
            stt(json!({"room": "r", "event": "final", "partial": true}))
                .unwrap()
                .is_final
        );
        assert!(
            !stt(json!({"room": "r", "event": "partial", "partial": true}))
                .unwrap()
                .is_final
        );
        assert!(
            stt(json!({"room": "r", "event": "transcript", "partial": true}))
                .unwrap()
                .is_final
        );
    }

    #[test]
    fn every_text_key_is_read_in_order() {
        let keys = [
            "text",
            "transcript",
            "final_text",
            "content",
            "partial_text",
            "message",
        ];
        for (i, key) in keys.iter().enumerate() {
            let mut body = json!({"room": "r"});
            body[*key] = json!(format!("said {key}"));
            // Every later key is present too, and loses.
            for later in &keys[i + 1..] {
                body[*later] = json!("later");
            }
            assert_eq!(stt(body).unwrap().text, format!("said {key}"));
        }
        let t = stt(json!({"room": "r", "text": " ", "final_text": 3, "content": "c"})).unwrap();
        assert_eq!(t.text, "c");
        assert_eq!(stt(json!({"room": "r"})).unwrap().text, "");
    }

    #[test]
    fn every_participant_key_is_read_in_order() {
        let keys = [
            "participant",
            "user_id",
            "session_id",
            "participant_identity",
        ];
        for (i, key) in keys.iter().enumerate() {
            let mut body = json!({"room": "r"});
            body[*key] = json!(*key);
            for later in &keys[i + 1..] {
                body[*later] = json!("later");
            }
            assert_eq!(stt(body).unwrap().participant.as_deref(), Some(*key));
        }
        assert_eq!(stt(json!({"room": "r"})).unwrap().participant, None);
    }

    #[test]
    fn a_transcript_id_is_kept_and_the_ignored_fields_are_accepted_in_any_form() {
        // june-stt 1.C (services/orchestrator_client.py @0274d5d) sends all of these.
        let t = stt(json!({
            "transcript_id": "5f0c6f2e-6a7e-4a5e-9a43-0d6a3f0e2b11",
            "user_id": "ozzu-app",
            "participant": "ozzu-app",
            "event": "partial_transcript",
            "text": "hel",
            "language": null,
            "timestamp": "2026-01-01T12:00:00.123456",
            "room_name": "ozzu-main",
            "partial": true,
            "utterance_id": "u1",
            "partial_sequence": 3,
            "is_streaming": true,
            "sota_optimized": true,
            "streaming_metadata": {"chunk_ms": 200},
            "segments": [{"start": 0.0, "end": 1.2, "text": "hel"}],
            "audio_data": "UklGRg==",
        }))
        .unwrap();
        assert_eq!(
            t.transcript_id.as_deref(),
            Some("5f0c6f2e-6a7e-4a5e-9a43-0d6a3f0e2b11")
        );
        assert_eq!((t.is_final, t.language), (false, None));
        assert_eq!(
            stt(json!({"room": "r", "transcript_id": 42}))
                .unwrap()
                .transcript_id
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            stt(json!({"room": "r", "transcript_id": " "}))
                .unwrap()
                .transcript_id,
            None
        );
        for odd in [json!(null), json!(1), json!("x"), json!({"a": [1]})] {
            let t = stt(json!({"room": "r", "timestamp": odd, "segments": odd, "audio_data": odd}));
            assert!(t.is_ok(), "{odd}");
        }
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
