//! How the client reads answers it cannot take at face value, against wiremock: the API's
//! error body, a proxy's page, a body of the wrong shape or size, a server that never answers;
//! and what it sends: the bearer, the query, JSON.

use std::time::Duration;

use june_client::{Client, Error, ListSessions, MAX_BODY_BYTES, SessionState};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ID: &str = "0b9f3c2e-6a57-4f4e-9d7c-1f0a3c5e7b21";

/// A server whose history route answers `body`.
async fn answering(body: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/api/sessions/{ID}/history")))
        .respond_with(body)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn an_error_status_with_the_error_body_is_a_typed_api_error() {
    let server = answering(
        ResponseTemplate::new(404)
            .set_body_json(json!({"detail": "Session not found", "code": "session_not_found"})),
    )
    .await;
    let err = Client::new(server.uri())
        .unwrap()
        .history(ID)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), Some("session_not_found"));
    assert_eq!(err.body().unwrap().detail, "Session not found");
    assert_eq!(err.to_string(), "404 session_not_found: Session not found");
}

#[tokio::test]
async fn an_error_status_with_another_body_keeps_the_status_and_a_bounded_snippet() {
    let page = format!("<html>{}</html>", "bad gateway ".repeat(200));
    let server = answering(ResponseTemplate::new(502).set_body_string(page.clone())).await;
    let err = Client::new(server.uri())
        .unwrap()
        .history(ID)
        .await
        .unwrap_err();
    match err {
        Error::UnexpectedStatus { status, body } => {
            assert_eq!(status, 502);
            assert!(page.starts_with(&body) && body.len() < page.len(), "{body}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_success_of_the_wrong_shape_is_a_decode_error() {
    let server =
        answering(ResponseTemplate::new(200).set_body_json(json!({"session_id": ID}))).await;
    let err = Client::new(server.uri())
        .unwrap()
        .history(ID)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
}

#[tokio::test]
async fn an_oversized_answer_is_refused_rather_than_buffered() {
    let server =
        answering(ResponseTemplate::new(200).set_body_bytes(vec![b' '; MAX_BODY_BYTES + 1])).await;
    let err = Client::new(server.uri())
        .unwrap()
        .history(ID)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_does_not_answer_in_time_is_a_timeout() {
    let server = answering(
        ResponseTemplate::new(200)
            .set_body_json(json!({"session_id": ID, "history": []}))
            .set_delay(Duration::from_secs(30)),
    )
    .await;
    let err = Client::builder(server.uri())
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .history(ID)
        .await
        .unwrap_err();
    match err {
        Error::Transport(e) => assert!(e.is_timeout(), "{e:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_credential_and_the_list_query_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/june/api/sessions"))
        .and(header("authorization", "Bearer key-0123456789abcdef"))
        .and(header("accept", "application/json"))
        .and(query_param("user_id", "a b&c"))
        .and(query_param("status", "active"))
        .and(query_param("limit", "5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sessions": []})))
        .expect(1)
        .mount(&server)
        .await;
    let june = Client::builder(format!("{}/june", server.uri()))
        .credential("key-0123456789abcdef")
        .build()
        .unwrap();
    let page = june
        .list_sessions(&ListSessions {
            user_id: Some("a b&c".into()),
            status: Some(SessionState::Active),
            limit: Some(5),
            cursor: None,
        })
        .await
        .unwrap();
    assert!(page.sessions.is_empty() && page.next_cursor.is_none());
}
