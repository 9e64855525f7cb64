//! The committed spec is what the code produces, and it covers every public route: who may
//! call each operation, every answer it can give, the rules of its inputs, and the links that
//! chain a new session to the operations that use it.

use june_http_api::Access;
use serde_json::{Value, json};

#[test]
fn the_committed_openapi_json_is_up_to_date() {
    let committed = include_str!("../../../openapi/openapi.json");
    let generated = june_http_api::openapi::json();
    assert!(
        committed.trim() == generated.trim(),
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    );
}

#[test]
fn every_public_route_is_in_the_spec() {
    let spec = spec();
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/sessions", "post"),
        ("/api/sessions", "get"),
        ("/api/sessions/{id}", "get"),
        ("/api/sessions/{id}", "delete"),
        ("/api/sessions/{id}/participants", "get"),
        ("/api/sessions/{id}/participants/{identity}", "delete"),
        ("/api/sessions/{id}/guest-token", "post"),
        ("/api/sessions/{id}/history", "get"),
        ("/api/sessions/{id}/history", "delete"),
        ("/api/sessions/{id}/events", "get"),
        ("/api/livekit-webhooks", "post"),
        ("/token", "post"),
        ("/api/livekit/token", "post"),
        ("/rooms/list", "post"),
        ("/api/ai/chat", "post"),
        ("/api/tts/publish", "post"),
        ("/api/webhooks/stt", "post"),
        ("/api/webhooks/voice_onset", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is missing"
        );
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
}

fn spec() -> Value {
    serde_json::from_str(&june_http_api::openapi::json()).unwrap()
}

/// Every operation of the route table with its access: `(method, path, operation, access)`.
fn operations(spec: &Value) -> Vec<(&'static str, &'static str, &Value, Access)> {
    june_http_api::ROUTES
        .iter()
        .flat_map(|route| {
            route.methods.iter().map(move |method| {
                let op = &spec["paths"][route.path][*method];
                assert!(op.is_object(), "{method} {} is not in the spec", route.path);
                (*method, route.path, op, route.access)
            })
        })
        .collect()
}

/// The error answer an operation documents for `status`, its `$ref`s resolved.
fn answer<'a>(spec: &'a Value, op: &'a Value, status: &str) -> &'a Value {
    let answer = &op["responses"][status];
    match answer["$ref"].as_str() {
        Some(r) => {
            &spec["components"]["responses"][r.trim_start_matches("#/components/responses/")]
        }
        None => answer,
    }
}

#[test]
fn every_operation_documents_the_shared_answers_it_can_give_with_the_error_body() {
    let spec = spec();
    for (method, path, op, access) in operations(&spec) {
        let mut statuses = vec!["500"];
        if op["requestBody"].is_object() {
            // Unreadable JSON, a stalled body, an oversized one.
            statuses.extend(["400", "408", "413"]);
        }
        if matches!(access, Access::Bearer | Access::Stt | Access::Signed) {
            statuses.extend(["401", "503"]);
        }
        // Probes and LiveKit's webhooks are exempt from the per-address budget.
        if matches!(access, Access::Public | Access::Bearer | Access::Stt) {
            statuses.push("429");
        } else {
            assert!(
                op["responses"]["429"].is_null(),
                "{method} {path} lists 429"
            );
        }
        for status in statuses {
            let schema = &answer(&spec, op, status)["content"]["application/json"]["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/ErrorBody",
                "{method} {path} does not document {status} with the error body"
            );
        }
    }
    // Declared once, used by reference.
    let shared = spec["components"]["responses"].as_object().unwrap();
    for name in [
        "BadBody",
        "Unauthorized",
        "BodyTimeout",
        "PayloadTooLarge",
        "RateLimited",
    ] {
        assert!(shared.contains_key(name), "{name} is not a shared response");
    }
    let create = &spec["paths"]["/api/sessions"]["post"]["responses"];
    assert_eq!(create["400"]["$ref"], "#/components/responses/BadBody");
    assert_eq!(create["401"]["$ref"], "#/components/responses/Unauthorized");
    assert!(
        answer(&spec, &spec["paths"]["/api/sessions"]["post"], "429")["headers"]["retry-after"]
            .is_object()
    );
}

#[test]
fn public_routes_need_no_credentials_and_the_others_name_their_scheme() {
    let spec = spec();
    let mut public = Vec::new();
    for (method, path, op, access) in operations(&spec) {
        let expected = match access {
            Access::Public | Access::Probe => {
                public.push(path);
                json!([])
            }
            // The document's global requirement.
            Access::Bearer => Value::Null,
            Access::Stt => json!([{"stt_bearer": []}]),
            Access::Signed => json!([{"livekit_signature": []}]),
        };
        assert_eq!(op["security"], expected, "{method} {path}");
    }
    public.sort_unstable();
    assert_eq!(
        public,
        ["/", "/healthz", "/metrics", "/openapi.json", "/readyz"]
    );
    assert_eq!(spec["security"], json!([{"bearer": []}]));
    let schemes = &spec["components"]["securitySchemes"];
    for scheme in ["bearer", "stt_bearer", "livekit_signature"] {
        assert!(schemes[scheme]["description"].is_string(), "{scheme}");
    }
    // How the schemes depend on AUTH_MODE is said where readers look first.
    let about = spec["info"]["description"].as_str().unwrap();
    assert!(
        about.contains("AUTH_MODE") && about.contains("security: []"),
        "{about}"
    );
}

#[test]
fn a_new_session_links_to_every_operation_that_takes_its_id_room_or_owner() {
    let spec = spec();
    let links = spec["paths"]["/api/sessions"]["post"]["responses"]["200"]["links"]
        .as_object()
        .expect("POST /api/sessions has links");
    let ids: Vec<&str> = operations(&spec)
        .iter()
        .filter_map(|(_, _, op, _)| op["operationId"].as_str())
        .collect();
    for (name, link) in links {
        let target = link["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {link}"));
        assert!(
            ids.contains(&target),
            "{name} links to {target}, no such operation"
        );
        assert!(link.get("operation_id").is_none() && link.get("request_body").is_none());
    }
    for (method, path, op, _) in operations(&spec) {
        if !path.starts_with("/api/sessions/{id}") {
            continue;
        }
        let id = op["operationId"].as_str().unwrap();
        assert_eq!(
            links[id]["parameters"],
            json!({"id": "$response.body#/session_id"}),
            "{method} {path}"
        );
    }
    assert_eq!(
        links["chat"]["requestBody"],
        json!({"session_id": "$response.body#/session_id"})
    );
    assert_eq!(
        links["participant_token"]["requestBody"],
        json!({"roomName": "$response.body#/room_name", "participantName": "$response.body#/user_id"})
    );
    for id in [
        "tts_publish",
        "token_source",
        "service_token",
        "stt_transcript",
        "voice_onset",
    ] {
        assert!(links[id]["requestBody"].is_object(), "{id}");
    }
}

#[test]
fn the_specs_limits_are_the_domains() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    let create = &schemas["CreateSessionRequest"]["properties"];
    assert_eq!(create["ttl_seconds"]["minimum"], 1);
    assert_eq!(
        create["ttl_seconds"]["maximum"],
        june_domain::MAX_TTL_SECONDS
    );
    assert_eq!(
        schemas["GuestTokenRequest"]["properties"]["ttl_seconds"]["maximum"],
        june_domain::MAX_TTL_SECONDS
    );
    assert_eq!(
        create["room_name"]["maxLength"],
        june_domain::MAX_ROOM_NAME_LEN
    );
    for (schema, field) in [
        ("CreateSessionRequest", "user_id"),
        ("GuestTokenRequest", "guest_name"),
        ("LegacyTokenRequest", "participantName"),
        ("ServiceTokenRequest", "service_identity"),
        ("TokenSourceRequest", "participant_identity"),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(
            property["maxLength"],
            june_domain::MAX_IDENTITY_LEN,
            "{schema}.{field}"
        );
        assert_eq!(property["minLength"], 1, "{schema}.{field}");
        assert!(property["pattern"].is_string(), "{schema}.{field}");
    }
    assert_eq!(
        schemas["ChatRequestDto"]["properties"]["text"]["maxLength"],
        june_domain::MAX_USER_TEXT
    );
    for path in ["/api/sessions", "/api/sessions/{id}/events"] {
        let limit = spec["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(limit["schema"]["minimum"], 1, "{path}");
        assert_eq!(limit["schema"]["maximum"], june_domain::MAX_PAGE, "{path}");
    }
    let key = spec["paths"]["/api/sessions"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(
        key["schema"]["maxLength"],
        june_domain::idempotency::MAX_KEY_LEN
    );
}

#[test]
fn the_spec_lists_exactly_the_operations_the_route_table_registers() {
    use std::collections::BTreeSet;

    let spec = spec();
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let registered: BTreeSet<(String, String)> = june_http_api::OPERATIONS
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(
        documented, registered,
        "an annotation's path or method differs from its line in the route table (lib.rs)"
    );
    assert_eq!(
        registered.len(),
        june_http_api::OPERATIONS.len(),
        "a route is declared twice"
    );
    // Aliases are served, and left out of the spec on purpose (docs/compat.md).
    for (alias, path) in june_http_api::ALIASES {
        assert!(
            spec["paths"][path].is_object(),
            "{alias} aliases {path}, which is not documented"
        );
        assert!(spec["paths"][alias].is_null(), "{alias} is in the spec");
    }
}
