//! OIDC verification against a wiremock identity provider and a test RSA key.

use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use june_auth::{Oidc, OidcConfig};
use june_domain::{AuthError, Authenticator};
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PRIVATE: &[u8] = include_bytes!("fixtures/test-rsa.pem");
const PUBLIC: &[u8] = include_bytes!("fixtures/test-rsa.pub.pem");

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Idp {
    server: MockServer,
}

impl Idp {
    async fn start(kid: &str) -> Idp {
        june_auth::install_crypto_provider();
        let server = MockServer::start().await;
        Mock::given(path("/realms/june/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": format!("{}/realms/june", server.uri()),
                "jwks_uri": format!("{}/realms/june/certs", server.uri()),
            })))
            .mount(&server)
            .await;
        let mut jwk = Jwk::from_encoding_key(
            &EncodingKey::from_rsa_pem(PRIVATE).unwrap(),
            Algorithm::RS256,
        )
        .unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Mock::given(path("/realms/june/certs"))
            .respond_with(ResponseTemplate::new(200).set_body_json(JwkSet { keys: vec![jwk] }))
            .mount(&server)
            .await;
        Idp { server }
    }

    fn issuer(&self) -> String {
        format!("{}/realms/june", self.server.uri())
    }

    fn oidc(&self) -> Oidc {
        Oidc::new(
            june_ai_adapters::http_client(Duration::from_secs(2)).unwrap(),
            OidcConfig {
                issuer: self.issuer(),
                audience: "june-orchestrator".into(),
                identity_claim: "preferred_username".into(),
                roles_claim: "realm_access.roles".into(),
                leeway: Duration::from_secs(30),
                refresh_floor: Duration::from_millis(0),
            },
        )
    }

    fn claims(&self) -> serde_json::Value {
        json!({
            "iss": self.issuer(),
            "aud": "june-orchestrator",
            "sub": "3f2a-uuid",
            "preferred_username": "alice",
            "realm_access": {"roles": ["user", "admin"]},
            "iat": now(),
            "nbf": now() - 5,
            "exp": now() + 300,
        })
    }

    async fn key_fetches(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().ends_with("/certs"))
            .count()
    }
}

fn sign(claims: &serde_json::Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(PRIVATE).unwrap(),
    )
    .unwrap()
}

fn refused(r: Result<june_domain::Principal, AuthError>) {
    assert!(matches!(r, Err(AuthError::Invalid(_))), "{r:?}");
}

#[tokio::test]
async fn a_valid_token_gives_the_identity_and_roles() {
    let idp = Idp::start("k1").await;
    let p = idp
        .oidc()
        .authenticate(&sign(&idp.claims(), "k1"))
        .await
        .unwrap();
    assert_eq!(p.id, "alice");
    assert_eq!(p.roles, ["user", "admin"]);
    assert!(p.is_admin());
}

#[tokio::test]
async fn expired_wrong_audience_and_wrong_issuer_tokens_are_refused() {
    let idp = Idp::start("k1").await;
    let oidc = idp.oidc();
    let mut expired = idp.claims();
    expired["exp"] = json!(now() - 120);
    refused(oidc.authenticate(&sign(&expired, "k1")).await);
    let mut aud = idp.claims();
    aud["aud"] = json!("someone-else");
    refused(oidc.authenticate(&sign(&aud, "k1")).await);
    let mut iss = idp.claims();
    iss["iss"] = json!("https://evil.example.com/realms/june");
    refused(oidc.authenticate(&sign(&iss, "k1")).await);
}

#[tokio::test]
async fn an_unknown_key_id_triggers_one_refresh_then_is_refused() {
    let idp = Idp::start("k1").await;
    let oidc = idp.oidc();
    oidc.authenticate(&sign(&idp.claims(), "k1")).await.unwrap();
    assert_eq!(idp.key_fetches().await, 1, "keys are cached");
    oidc.authenticate(&sign(&idp.claims(), "k1")).await.unwrap();
    assert_eq!(idp.key_fetches().await, 1);
    refused(
        oidc.authenticate(&sign(&idp.claims(), "rotated-away"))
            .await,
    );
    assert_eq!(
        idp.key_fetches().await,
        2,
        "one refresh for the unknown kid"
    );
}

#[tokio::test]
async fn unsigned_and_hmac_with_the_public_key_tokens_are_refused() {
    let idp = Idp::start("k1").await;
    let oidc = idp.oidc();
    let b64 = |v: serde_json::Value| {
        use base64_like::encode;
        encode(v.to_string().as_bytes())
    };
    // alg: none
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
        b64(idp.claims())
    );
    refused(oidc.authenticate(&none).await);
    // HS256 keyed with the public key (the classic confusion attack).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused =
        jsonwebtoken::encode(&header, &idp.claims(), &EncodingKey::from_secret(PUBLIC)).unwrap();
    refused(oidc.authenticate(&confused).await);
    refused(oidc.authenticate("not.a.jwt").await);
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
    let idp = Idp::start("k1").await;
    let token = sign(&idp.claims(), "k1");
    let down = Oidc::new(
        june_ai_adapters::http_client(Duration::from_millis(300)).unwrap(),
        OidcConfig {
            issuer: "http://127.0.0.1:9/realms/june".into(),
            audience: "june-orchestrator".into(),
            identity_claim: "preferred_username".into(),
            roles_claim: "realm_access.roles".into(),
            leeway: Duration::from_secs(30),
            refresh_floor: Duration::ZERO,
        },
    );
    assert!(matches!(
        down.authenticate(&token).await,
        Err(AuthError::Unavailable(_))
    ));
}
