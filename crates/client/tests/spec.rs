//! The client's own wire types against the committed openapi/openapi.json: each type reads the
//! smallest and the fullest body its schema allows, has exactly the schema's properties, and
//! each method calls an operation the spec has, with the body and answer schemas it names.
//! (The server's tests keep the spec equal to the code, so this ties the client to the server.)

use june_client::{
    ChatReply, ChatRequest, CreateSession, ErrorBody, GuestToken, GuestTokenRequest, History,
    HistoryEntry, Participant, Session, SessionDeleted, SessionKind, SessionList, SessionState,
    SessionSummary, Track, TurnSummary,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

fn spec() -> Value {
    serde_json::from_str(include_str!("../../../openapi/openapi.json")).unwrap()
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    let s = &spec["components"]["schemas"][name];
    assert!(s.is_object(), "the spec has no schema {name}");
    s
}

fn resolve<'a>(spec: &'a Value, s: &'a Value) -> &'a Value {
    match s["$ref"].as_str() {
        Some(r) => schema(spec, r.trim_start_matches("#/components/schemas/")),
        None => s,
    }
}

/// The schema's types, whether written `"type": "x"` or `"type": ["x", "null"]`.
fn types(s: &Value) -> Vec<&str> {
    match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// A value the schema accepts: only the required properties (`full == false`) or all of
/// them, never null where something else is allowed.
fn instance(spec: &Value, s: &Value, full: bool) -> Value {
    let s = resolve(spec, s);
    if let Some(first) = s["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = types(s)
        .into_iter()
        .find(|t| *t != "null")
        .unwrap_or("null");
    match kind {
        "object" => {
            let required: BTreeSet<&str> = s["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = Map::new();
            for (name, prop) in s["properties"].as_object().into_iter().flatten() {
                if full || required.contains(name.as_str()) {
                    out.insert(name.clone(), instance(spec, prop, full));
                }
            }
            Value::Object(out)
        }
        "array" => json!([instance(spec, &s["items"], full)]),
        "string" if s["format"] == "uuid" => json!("0b9f3c2e-6a57-4f4e-9d7c-1f0a3c5e7b21"),
        "string" => json!("x"),
        "integer" => json!(7),
        "number" => json!(1.5),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn properties(s: &Value) -> BTreeSet<String> {
    keys(&s["properties"])
}

/// An answer type: reads the minimal, the full and the all-nulls-where-allowed bodies, and
/// writes back exactly the schema's properties.
fn check_answer<T: DeserializeOwned + Serialize>(spec: &Value, name: &str) {
    let s = schema(spec, name);
    let minimal = instance(spec, s, false);
    serde_json::from_value::<T>(minimal.clone())
        .unwrap_or_else(|e| panic!("{name}: the smallest body {minimal} does not read: {e}"));
    let full = instance(spec, s, true);
    let read: T = serde_json::from_value(full.clone())
        .unwrap_or_else(|e| panic!("{name}: the fullest body {full} does not read: {e}"));
    assert_eq!(
        keys(&serde_json::to_value(&read).unwrap()),
        properties(s),
        "{name}: the client's fields are not the schema's properties"
    );
    let mut nulls = full;
    for (prop, p) in s["properties"].as_object().unwrap() {
        if types(p).contains(&"null") {
            nulls[prop] = Value::Null;
        }
    }
    serde_json::from_value::<T>(nulls.clone())
        .unwrap_or_else(|e| panic!("{name}: {nulls} (nulls where allowed) does not read: {e}"));
}

/// A request type: `everything` (every field set) writes only the schema's properties and all
/// of them; the smallest body the schema allows reads and writes back only the required ones.
fn check_request<T: DeserializeOwned + Serialize>(spec: &Value, name: &str, everything: T) {
    let s = schema(spec, name);
    assert_eq!(
        keys(&serde_json::to_value(&everything).unwrap()),
        properties(s),
        "{name}: the client's fields are not the schema's properties"
    );
    let minimal = instance(spec, s, false);
    let read: T = serde_json::from_value(minimal.clone())
        .unwrap_or_else(|e| panic!("{name}: the smallest body {minimal} does not read: {e}"));
    assert_eq!(serde_json::to_value(&read).unwrap(), minimal, "{name}");
}

#[test]
fn every_answer_type_matches_its_schema() {
    let spec = spec();
    check_answer::<Session>(&spec, "SessionResponse");
    check_answer::<TurnSummary>(&spec, "TurnSummaryDto");
    check_answer::<SessionSummary>(&spec, "SessionSummary");
    check_answer::<SessionList>(&spec, "SessionList");
    check_answer::<SessionDeleted>(&spec, "SessionDeleted");
    check_answer::<GuestToken>(&spec, "GuestTokenResponse");
    check_answer::<Participant>(&spec, "ParticipantDto");
    check_answer::<Track>(&spec, "TrackDto");
    check_answer::<History>(&spec, "HistoryResponse");
    check_answer::<HistoryEntry>(&spec, "HistoryEntryDto");
    check_answer::<ChatReply>(&spec, "ChatResponse");
    check_answer::<ErrorBody>(&spec, "ErrorBody");
}

#[test]
fn every_request_type_matches_its_schema() {
    let spec = spec();
    // Struct literals, not `..Default::default()`: a new field must be added here, where its
    // name is checked against the spec.
    check_request(
        &spec,
        "CreateSessionRequest",
        CreateSession {
            user_id: Some("alice".into()),
            room_name: Some("standup".into()),
            language: Some("en".into()),
            ttl_seconds: Some(60),
            voice: Some(true),
            metadata: Some(Map::new()),
        },
    );
    check_request(
        &spec,
        "GuestTokenRequest",
        GuestTokenRequest {
            guest_name: "Sam".into(),
            can_publish: Some(false),
            ttl_seconds: Some(60),
        },
    );
    check_request(
        &spec,
        "ChatRequestDto",
        ChatRequest {
            session_id: "0b9f3c2e-6a57-4f4e-9d7c-1f0a3c5e7b21".into(),
            text: "hi".into(),
            language: Some("en".into()),
            speak: Some(false),
        },
    );
}

#[test]
fn the_enums_have_the_specs_values() {
    let spec = spec();
    let kinds: Vec<SessionKind> =
        serde_json::from_value(schema(&spec, "SessionKindDto")["enum"].clone()).unwrap();
    assert!(!kinds.contains(&SessionKind::Unknown), "{kinds:?}");
    assert_eq!(kinds.len(), 2);
    let filter = spec["paths"]["/api/sessions"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "status")
        .unwrap();
    let states: Vec<SessionState> =
        serde_json::from_value(filter["schema"]["enum"].clone()).unwrap();
    assert_eq!(states.len(), 4);
    for state in states {
        assert!(
            filter["schema"]["enum"]
                .as_array()
                .unwrap()
                .contains(&json!(state.as_str()))
        );
    }
}

#[test]
fn every_method_calls_an_operation_of_the_spec_with_its_schemas() {
    let spec = spec();
    // (method, path, request body schema, 200 answer schema) as the client calls them.
    let calls: [(&str, &str, Option<&str>, Value); 8] = [
        (
            "post",
            "/api/sessions",
            Some("CreateSessionRequest"),
            json!({"$ref": "#/components/schemas/SessionResponse"}),
        ),
        (
            "get",
            "/api/sessions/{id}",
            None,
            json!({"$ref": "#/components/schemas/SessionResponse"}),
        ),
        (
            "get",
            "/api/sessions",
            None,
            json!({"$ref": "#/components/schemas/SessionList"}),
        ),
        (
            "delete",
            "/api/sessions/{id}",
            None,
            json!({"$ref": "#/components/schemas/SessionDeleted"}),
        ),
        (
            "post",
            "/api/sessions/{id}/guest-token",
            Some("GuestTokenRequest"),
            json!({"$ref": "#/components/schemas/GuestTokenResponse"}),
        ),
        (
            "get",
            "/api/sessions/{id}/participants",
            None,
            json!({"type": "array", "items": {"$ref": "#/components/schemas/ParticipantDto"}}),
        ),
        (
            "get",
            "/api/sessions/{id}/history",
            None,
            json!({"$ref": "#/components/schemas/HistoryResponse"}),
        ),
        (
            "post",
            "/api/ai/chat",
            Some("ChatRequestDto"),
            json!({"$ref": "#/components/schemas/ChatResponse"}),
        ),
    ];
    for (method, path, request, answer) in calls {
        let op = &spec["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not in the spec");
        let body = &op["requestBody"]["content"]["application/json"]["schema"]["$ref"];
        match request {
            Some(name) => assert_eq!(
                body,
                &json!(format!("#/components/schemas/{name}")),
                "{method} {path}"
            ),
            None => assert!(body.is_null(), "{method} {path} takes a body"),
        }
        let ok = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(ok, &answer, "{method} {path}");
        // Every error the client turns into `Error::Api` is the error body.
        for (status, resp) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let resp = match resp["$ref"].as_str() {
                    Some(r) => {
                        &spec["components"]["responses"]
                            [r.trim_start_matches("#/components/responses/")]
                    }
                    None => resp,
                };
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
}
