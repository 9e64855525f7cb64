//! The committed spec is what the code produces, and it covers every public route.

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
    let spec: serde_json::Value = serde_json::from_str(&june_http_api::openapi::json()).unwrap();
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
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is missing"
        );
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn every_route_behind_credentials_documents_401_and_429() {
    let spec: serde_json::Value = serde_json::from_str(&june_http_api::openapi::json()).unwrap();
    // No credentials here: operations, and LiveKit's signed webhooks (exempt from budgets).
    let open = ["/", "/healthz", "/readyz", "/api/livekit-webhooks"];
    for (path, item) in spec["paths"].as_object().unwrap() {
        if open.contains(&path.as_str()) {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for status in ["401", "429"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} does not list {status}"
                );
            }
        }
    }
}

#[test]
fn the_spec_lists_exactly_the_operations_the_route_table_registers() {
    use std::collections::BTreeSet;

    let spec: serde_json::Value = serde_json::from_str(&june_http_api::openapi::json()).unwrap();
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
