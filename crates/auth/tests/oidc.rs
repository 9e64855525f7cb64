//! OIDC verification against a fake identity provider (wiremock) and a test RSA key.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use june_auth::{Oidc, OidcConfig};
use june_domain::{AuthError, Authenticator};
use june_testkit::FakeIdp;
use june_testkit::idp::{KID, PUBLIC_PEM};
use serde_json::json;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn config(issuer: String, refresh_floor: Duration) -> OidcConfig {
    OidcConfig {
        issuer,
        audience: june_testkit::idp::AUDIENCE.into(),
        identity_claim: "preferred_username".into(),
        roles_claim: "realm_access.roles".into(),
        leeway: Duration::from_secs(30),
        refresh_floor,
    }
}

/// A verifier of `idp`'s tokens that may refetch keys every `refresh_floor`.
fn oidc(idp: &FakeIdp, refresh_floor: Duration) -> Oidc {
    Oidc::new(
        june_ai_adapters::http_client(Duration::from_secs(2)).unwrap(),
        config(idp.issuer(), refresh_floor),
    )
}

fn refused(r: Result<june_domain::Principal, AuthError>) {
    assert!(matches!(r, Err(AuthError::Invalid(_))), "{r:?}");
}

/// A token whose header names a key id nobody published (anyone can mint one).
fn random_kid_token(idp: &FakeIdp, n: usize) -> String {
    idp.sign(&idp.claims("mallory", &[]), &format!("made-up-{n}"))
}

#[tokio::test]
async fn a_valid_token_gives_the_identity_and_roles() {
    let idp = FakeIdp::start().await;
    let p = oidc(&idp, Duration::ZERO)
        .authenticate(&idp.token("alice", &["user", "admin"]))
        .await
        .unwrap();
    assert_eq!(p.id, "alice");
    assert_eq!(p.roles, ["user", "admin"]);
    assert!(p.is_admin());
}

#[tokio::test]
async fn expired_wrong_audience_and_wrong_issuer_tokens_are_refused() {
    let idp = FakeIdp::start().await;
    let oidc = oidc(&idp, Duration::ZERO);
    let mut expired = idp.claims("alice", &[]);
    expired["exp"] = json!(now() - 120);
    refused(oidc.authenticate(&idp.sign(&expired, KID)).await);
    let mut aud = idp.claims("alice", &[]);
    aud["aud"] = json!("someone-else");
    refused(oidc.authenticate(&idp.sign(&aud, KID)).await);
    let mut iss = idp.claims("alice", &[]);
    iss["iss"] = json!("https://evil.example.com/realms/june");
    refused(oidc.authenticate(&idp.sign(&iss, KID)).await);
}

#[tokio::test]
async fn an_unknown_key_id_triggers_one_refresh_then_is_refused() {
    let idp = FakeIdp::start().await;
    let oidc = oidc(&idp, Duration::ZERO);
    oidc.authenticate(&idp.token("alice", &[])).await.unwrap();
    assert_eq!(idp.key_fetches().await, 1, "keys are cached");
    oidc.authenticate(&idp.token("alice", &[])).await.unwrap();
    assert_eq!(idp.key_fetches().await, 1);
    refused(
        oidc.authenticate(&idp.sign(&idp.claims("alice", &[]), "rotated-away"))
            .await,
    );
    assert_eq!(
        idp.key_fetches().await,
        2,
        "one refresh for the unknown kid"
    );
}

/// Issue #14 item 7: the fetch for an unknown kid used to hold the cache's write lock, so
/// every valid user waited on the slow identity provider too.
#[tokio::test]
async fn a_cached_key_is_answered_while_an_unknown_kid_waits_on_a_slow_fetch() {
    // Arrange: keys cached, then every fetch takes 3 s.
    let delay = Duration::from_secs(3);
    let idp = FakeIdp::slow(delay).await;
    let oidc = Arc::new(oidc(&idp, Duration::ZERO));
    oidc.authenticate(&idp.token("alice", &[])).await.unwrap();
    let stranger = {
        let (oidc, token) = (oidc.clone(), random_kid_token(&idp, 1));
        tokio::spawn(async move { oidc.authenticate(&token).await })
    };
    while idp.key_fetches().await < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Act: a known kid while the refetch is in flight.
    let known = tokio::time::timeout(
        Duration::from_secs(1),
        oidc.authenticate(&idp.token("alice", &[])),
    )
    .await;

    // Assert: answered well before the fetch could end, which is still running.
    assert_eq!(known.expect("not kept waiting").unwrap().id, "alice");
    assert!(!stranger.is_finished(), "the unknown kid is still waiting");
    refused(stranger.await.unwrap());
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_fetch() {
    // Arrange: an empty cache and a slow provider, so all requests overlap the first fetch.
    let idp = FakeIdp::slow(Duration::from_millis(500)).await;
    let oidc = Arc::new(oidc(&idp, Duration::ZERO));

    // Act
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (oidc, token) = (oidc.clone(), random_kid_token(&idp, n));
            tokio::spawn(async move { oidc.authenticate(&token).await })
        })
        .collect();
    for task in tasks {
        refused(task.await.unwrap());
    }

    // Assert
    assert_eq!(idp.key_fetches().await, 1);
}

#[tokio::test]
async fn a_failing_provider_is_asked_once_per_refresh_floor() {
    // Arrange
    let idp = FakeIdp::failing().await;
    let oidc = oidc(&idp, Duration::from_secs(30));

    // Act: ten tokens in a row, well within the floor.
    for n in 0..10 {
        let r = oidc.authenticate(&random_kid_token(&idp, n)).await;
        // Assert: the provider's failure is reported, not a verdict on the token.
        assert!(matches!(r, Err(AuthError::Unavailable(_))), "{r:?}");
    }
    assert_eq!(idp.key_fetches().await, 1);
}

#[tokio::test]
async fn unsigned_and_hmac_with_the_public_key_tokens_are_refused() {
    let idp = FakeIdp::start().await;
    let oidc = oidc(&idp, Duration::ZERO);
    let claims = idp.claims("alice", &[]);
    let b64 = |v: serde_json::Value| {
        use base64_like::encode;
        encode(v.to_string().as_bytes())
    };
    // alg: none
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": KID})),
        b64(claims.clone())
    );
    refused(oidc.authenticate(&none).await);
    // HS256 keyed with the public key (the classic confusion attack).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.into());
    let confused =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(PUBLIC_PEM)).unwrap();
    refused(oidc.authenticate(&confused).await);
    refused(oidc.authenticate("not.a.jwt").await);
}

/// Issue #14 item 9: identities must not collide across auth sources.
#[tokio::test]
async fn tokens_naming_an_api_key_user_or_lacking_the_identity_claim_are_refused() {
    let idp = FakeIdp::start().await;
    let oidc = oidc(&idp, Duration::ZERO);
    refused(oidc.authenticate(&idp.token("key-1", &[])).await);
    let mut nameless = idp.claims("alice", &[]);
    nameless
        .as_object_mut()
        .unwrap()
        .remove("preferred_username");
    refused(oidc.authenticate(&idp.sign(&nameless, KID)).await);
    assert_eq!(
        oidc.authenticate(&idp.token("key-alice", &[]))
            .await
            .unwrap()
            .id,
        "key-alice"
    );
}

/// Minimal base64url without padding, to hand-craft an unsigned token.
mod base64_like {
    pub fn encode(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}

#[tokio::test]
async fn an_unreachable_identity_provider_is_unavailable_not_invalid() {
    let idp = FakeIdp::start().await;
    let token = idp.token("alice", &[]);
    let down = Oidc::new(
        june_ai_adapters::http_client(Duration::from_millis(300)).unwrap(),
        config("http://127.0.0.1:9/realms/june".into(), Duration::ZERO),
    );
    assert!(matches!(
        down.authenticate(&token).await,
        Err(AuthError::Unavailable(_))
    ));
}
