use serde::{Deserialize, Serialize};

use super::lenient::{first_of, json_text, non_blank, present, text_or_number};

/// The superset answer of the legacy token routes (§2.2): every v3.0 client finds its keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(non_snake_case)]
pub struct LegacyTokenResponse {
    pub token: String,
    pub roomName: String,
    pub participantName: String,
    pub livekitUrl: String,
    pub ws_url: String,
}

/// A room in `POST /rooms/list`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomDto {
    pub sid: String,
    pub name: String,
    pub num_participants: u32,
    pub max_participants: u32,
    pub creation_time: i64,
    pub metadata: String,
}

/// `POST /rooms/list` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomDto>,
}

/// `POST /token`, `/livekit/token` body, read as v3.0 clients send it: a number is taken as
/// its text, a blank string counts as missing (400 `missing_fields`), and `metadata` may be a
/// string or an object (sent to LiveKit as its JSON text). Any other body reads as `{}`.
/// LiveKitApp sends `{room, identity}`: `room` is read when `roomName` is absent, `identity`
/// when `participantName` is. A body with `service_identity` and neither participant key is
/// a bot's, minted as by `POST /api/livekit/token`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct LegacyTokenRequest {
    /// The room to join (or under `room`): 1–128 of `A-Z a-z 0-9 _ - .` (422 otherwise).
    #[serde(rename = "roomName", default, deserialize_with = "text_or_number")]
    #[schema(value_type = String, required = true, example = "lobby", min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.-]{1,128}$")]
    pub room_name: Option<String>,
    /// Alias of `roomName`.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.-]{1,128}$")]
    pub room: Option<String>,
    /// The identity in the room (or under `identity`); a number is taken as its text
    /// (`42` → `"42"`). 1–256 characters once trimmed, no control characters (422).
    #[serde(
        rename = "participantName",
        default,
        deserialize_with = "text_or_number"
    )]
    #[schema(value_type = String, required = true, example = "zoe", min_length = 1, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub participant_name: Option<String>,
    /// Alias of `participantName`.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub identity: Option<String>,
    /// A bot's identity, read only when neither `participantName` nor `identity` is given:
    /// then the body is handled as by `POST /api/livekit/token` (the room may be absent).
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, example = "june-tts", min_length = 1, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub service_identity: Option<String>,
    #[serde(default, deserialize_with = "json_text")]
    #[schema(schema_with = string_or_object)]
    pub metadata: String,
}

impl LegacyTokenRequest {
    /// The room, under `roomName` or `room`.
    pub fn room(&self) -> Option<String> {
        first_of([&self.room_name, &self.room])
    }

    /// The participant's identity, under `participantName` or `identity`.
    pub fn identity(&self) -> Option<String> {
        first_of([&self.participant_name, &self.identity])
    }
}

/// `POST /api/livekit/token` body: a token for a voice bot. Read like the body of
/// `POST /token`: a number is taken as its text, a blank string counts as missing.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ServiceTokenRequest {
    /// The identity, e.g. `june-stt` (or under `participantName` or `identity`). A configured
    /// bot gets bot grants; any other identity a participant's token. 1–256 characters once
    /// trimmed, no control characters (422).
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = String, required = true, example = "june-stt", min_length = 1, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub service_identity: Option<String>,
    /// Alias of `service_identity` (june-tts sends `{roomName, participantName}` here).
    #[serde(
        rename = "participantName",
        default,
        deserialize_with = "text_or_number"
    )]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub participant_name: Option<String>,
    /// Alias of `service_identity`.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub identity: Option<String>,
    /// Room; `livekit.default_bot_room` when absent (400 `missing_fields` when that is not
    /// set either). 1–128 of `A-Z a-z 0-9 _ - .` (422 otherwise).
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.-]{1,128}$")]
    pub room: Option<String>,
    /// Alias of `room`, read when `room` is absent or blank.
    #[serde(rename = "roomName", default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.-]{1,128}$")]
    pub room_name: Option<String>,
}

impl ServiceTokenRequest {
    /// The room the body names, under either key.
    pub fn room(&self) -> Option<String> {
        first_of([&self.room, &self.room_name])
    }

    /// The identity, under `service_identity`, `participantName` or `identity`.
    pub fn identity(&self) -> Option<String> {
        first_of([
            &self.service_identity,
            &self.participant_name,
            &self.identity,
        ])
    }
}

/// A status answer (`{"status": …}` plus route-specific fields).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusResponse {
    pub status: String,
}

/// `POST /api/livekit/token-source` body (LiveKit's standard token endpoint). Read like the
/// body of `POST /token`: a number is taken as its text, a blank string counts as missing.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TokenSourceRequest {
    /// A live session's room (404 unless the caller may act for its owner); absent: a new
    /// session is created for the participant.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.-]{1,128}$")]
    pub room_name: Option<String>,
    /// The identity in the room: 1–256 characters once trimmed, no control characters, not
    /// starting with `service:` (422). With credentials it defaults to the caller's and must
    /// be theirs unless the caller is an admin or a service (403); with `AUTH_MODE=none` it
    /// is required (422 naming it when absent).
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^(?!\s*service:)[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub participant_identity: Option<String>,
    /// Accepted as LiveKit's clients send it, and not used: the token names the identity.
    #[serde(default, deserialize_with = "non_blank")]
    pub participant_name: Option<String>,
    #[serde(default, deserialize_with = "json_text")]
    #[schema(schema_with = string_or_object)]
    pub participant_metadata: String,
    /// Client-side room settings; agents and limits are refused (422), as is a value that is
    /// not an object.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = room_config)]
    pub room_config: Option<serde_json::Value>,
}

/// The schema of metadata read by [`json_text`].
fn string_or_object() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .description(Some(
            "Participant metadata: a string as sent, or an object sent as its JSON text.",
        ))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Object))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// Settings of `room_config` that are the server's to choose, never the client's: present
/// only as `null`.
pub const SERVER_SIDE_ROOM_CONFIG: &[&str] = &[
    "agents",
    "empty_timeout",
    "emptyTimeout",
    "departure_timeout",
    "departureTimeout",
    "max_participants",
    "maxParticipants",
    "egress",
];

/// The schema of `room_config`: an object (or `null`) in which the server's settings may only
/// be `null`.
fn room_config() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    SERVER_SIDE_ROOM_CONFIG
        .iter()
        .fold(
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
                .description(Some(
                    "Client-side room settings. What the server chooses (agents to dispatch, \
                     timeouts, limits, egress) is refused (422) unless `null`.",
                )),
            |schema, key| schema.property(*key, ObjectBuilder::new().schema_type(Type::Null)),
        )
        .into()
}

/// `POST /api/livekit/token-source` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenSourceResponse {
    pub server_url: String,
    pub participant_token: String,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::dto::Lenient;

    fn read<T: serde::de::DeserializeOwned + Default>(body: Value) -> T {
        serde_json::from_value::<Lenient<T>>(body).unwrap().0
    }

    #[test]
    fn a_legacy_body_takes_numbers_as_text_and_blank_names_as_missing() {
        let b: LegacyTokenRequest = read(json!({"roomName": " r ", "participantName": 42}));
        assert_eq!(b.room_name.as_deref(), Some("r"));
        assert_eq!(b.participant_name.as_deref(), Some("42"));
        assert_eq!(b.metadata, "");
        let b: LegacyTokenRequest = read(json!({"roomName": "r", "participantName": "  "}));
        assert_eq!(b.participant_name, None);
        // Any other body has no fields: the handler's 400 names both.
        let b: LegacyTokenRequest = read(json!(["r", "p"]));
        assert_eq!((b.room_name, b.participant_name), (None, None));
    }

    #[test]
    fn legacy_metadata_may_be_an_object() {
        let b: LegacyTokenRequest = read(json!({"metadata": {"lang": "en"}}));
        assert_eq!(b.metadata, r#"{"lang":"en"}"#);
        let b: LegacyTokenRequest = read(json!({"metadata": "plain"}));
        assert_eq!(b.metadata, "plain");
    }

    #[test]
    fn a_service_token_room_comes_from_room_then_room_name() {
        let b: ServiceTokenRequest =
            read(json!({"service_identity": 7, "room": "a", "roomName": "b"}));
        assert_eq!(
            (b.service_identity.as_deref(), b.room().as_deref()),
            (Some("7"), Some("a"))
        );
        let b: ServiceTokenRequest = read(json!({"room": " ", "roomName": "b"}));
        assert_eq!(b.room().as_deref(), Some("b"));
        let b: ServiceTokenRequest = read(json!({"roomName": null}));
        assert_eq!(b.room(), None);
    }

    #[test]
    fn a_legacy_body_may_name_room_and_identity_and_the_v3_keys_win() {
        // LiveKitApp @3c520ed
        let b: LegacyTokenRequest = read(json!({"room": "r", "identity": "user-12"}));
        assert_eq!(
            (b.room().as_deref(), b.identity().as_deref()),
            (Some("r"), Some("user-12"))
        );
        let b: LegacyTokenRequest = read(json!({
            "roomName": "a", "room": "b", "participantName": "p", "identity": "q"
        }));
        assert_eq!(
            (b.room().as_deref(), b.identity().as_deref()),
            (Some("a"), Some("p"))
        );
        let b: LegacyTokenRequest =
            read(json!({"roomName": " ", "room": 7, "participantName": "", "identity": " q "}));
        assert_eq!(
            (b.room().as_deref(), b.identity().as_deref()),
            (Some("7"), Some("q"))
        );
        let b: LegacyTokenRequest = read(json!({"roomName": "r"}));
        assert_eq!(b.identity(), None);
    }

    #[test]
    fn a_legacy_body_keeps_a_service_identity_for_the_handler() {
        // june-tts @a868a65 posts only this to /livekit/token.
        let b: LegacyTokenRequest = read(json!({"service_identity": "june-tts"}));
        assert_eq!(b.service_identity.as_deref(), Some("june-tts"));
        assert_eq!((b.room(), b.identity()), (None, None));
        let b: LegacyTokenRequest = read(json!({"service_identity": " "}));
        assert_eq!(b.service_identity, None);
    }

    #[test]
    fn a_service_identity_may_come_as_participant_name_or_identity() {
        // june-tts @449986b posts {roomName, participantName} to /api/livekit/token.
        let b: ServiceTokenRequest =
            read(json!({"roomName": "ozzu-main", "participantName": "cosyvoice2-tts"}));
        assert_eq!(
            (b.identity().as_deref(), b.room().as_deref()),
            (Some("cosyvoice2-tts"), Some("ozzu-main"))
        );
        let b: ServiceTokenRequest = read(json!({"identity": 5}));
        assert_eq!(b.identity().as_deref(), Some("5"));
        let b: ServiceTokenRequest = read(json!({
            "service_identity": "a", "participantName": "b", "identity": "c"
        }));
        assert_eq!(b.identity().as_deref(), Some("a"));
        let b: ServiceTokenRequest = read(json!({"service_identity": "", "identity": "c"}));
        assert_eq!(b.identity().as_deref(), Some("c"));
        let b: ServiceTokenRequest = read(json!({"room": "r"}));
        assert_eq!(b.identity(), None);
    }

    #[test]
    fn a_token_source_body_keeps_room_config_for_the_handler_to_judge() {
        let b: TokenSourceRequest = read(json!({
            "room_name": 12,
            "participant_identity": " zoe ",
            "participant_metadata": {"a": 1},
            "room_config": "not an object",
        }));
        assert_eq!(b.room_name.as_deref(), Some("12"));
        assert_eq!(b.participant_identity.as_deref(), Some("zoe"));
        assert_eq!(b.participant_metadata, r#"{"a":1}"#);
        assert_eq!(b.room_config, Some(json!("not an object")));
        let b: TokenSourceRequest =
            read(json!({"room_config": null, "participant_metadata": null}));
        assert_eq!(
            (b.room_config, b.participant_metadata),
            (None, String::new())
        );
    }
}
