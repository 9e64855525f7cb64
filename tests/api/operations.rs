//! §2.5 health, readiness, service info, unknown routes, request ids.

use june_testkit::Failure;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_is_200_and_readyz_follows_livekit() {
    let app = spawn_app().await;
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["store"]["status"], "ok");
    assert_eq!(body["checks"]["livekit"]["status"], "ok");

    app.lk.fail(Failure::Hang);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["livekit"]["status"], "error");
    assert_eq!(body["checks"]["store"]["status"], "ok");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_root_describes_the_service_without_secrets() {
    let app = spawn_app().await;
    let (status, body) = app.get("/").await;
    assert_eq!(status, 200);
    assert_eq!(body["service"], "june-orchestrator");
    assert!(!body.to_string().contains(app.lk.api_secret()));
}

#[tokio::test]
async fn unknown_routes_are_json_404_with_a_request_id() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/api/nothing"))
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers().get("x-request-id").unwrap(), "trace-me-1");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn the_spec_and_swagger_ui_are_served_from_the_binary() {
    let app = spawn_app().await;
    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/api/sessions"]["post"].is_object());
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200, "redirected to the UI page");
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("june_http_requests_total"), "{text}");
    assert!(text.contains("june_store_pool_connections"), "{text}");
    app.create_session("metered").await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("june_livekit_calls_total{method=\"CreateRoom\",outcome=\"ok\"}"),
        "{text}"
    );
}
