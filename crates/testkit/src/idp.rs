//! [`FakeIdp`]: an OIDC identity provider on wiremock (discovery document, a JWKS with one
//! RSA test key) that signs tokens with that key, so tests can exercise the real verifier.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The test key (RSA, PEM); its public half is [`PUBLIC_PEM`].
pub const PRIVATE_PEM: &[u8] = include_bytes!("../fixtures/test-rsa.pem");
/// The public half of [`PRIVATE_PEM`] (for key-confusion tests).
pub const PUBLIC_PEM: &[u8] = include_bytes!("../fixtures/test-rsa.pub.pem");
/// The `aud` of the tokens [`FakeIdp::claims`] makes.
pub const AUDIENCE: &str = "june-orchestrator";
/// The key id the JWKS publishes.
pub const KID: &str = "k1";

/// A realm `june` whose JWKS endpoint answers as it was started: [`FakeIdp::start`] at once,
/// [`FakeIdp::slow`] after a delay, [`FakeIdp::failing`] with 500.
pub struct FakeIdp {
    /// The wiremock server, for extra mocks or request counts.
    pub server: MockServer,
}

impl FakeIdp {
    /// A healthy identity provider.
    pub async fn start() -> FakeIdp {
        Self::with_keys(ResponseTemplate::new(200).set_body_json(jwks())).await
    }

    /// One whose JWKS endpoint takes `delay` to answer.
    pub async fn slow(delay: Duration) -> FakeIdp {
        Self::with_keys(
            ResponseTemplate::new(200)
                .set_body_json(jwks())
                .set_delay(delay),
        )
        .await
    }

    /// One whose JWKS endpoint fails with 500.
    pub async fn failing() -> FakeIdp {
        Self::with_keys(ResponseTemplate::new(500)).await
    }

    async fn with_keys(keys: ResponseTemplate) -> FakeIdp {
        // Signing RS256 needs the full provider (livekit-token installs an HMAC-only one).
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        let server = MockServer::start().await;
        Mock::given(path("/realms/june/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": format!("{}/realms/june", server.uri()),
                "jwks_uri": format!("{}/realms/june/certs", server.uri()),
            })))
            .mount(&server)
            .await;
        Mock::given(path("/realms/june/certs"))
            .respond_with(keys)
            .mount(&server)
            .await;
        FakeIdp { server }
    }

    /// The `iss` of its tokens.
    pub fn issuer(&self) -> String {
        format!("{}/realms/june", self.server.uri())
    }

    /// Valid claims for `user` (`preferred_username`; `sub` is `uuid-<user>`) with `roles`.
    pub fn claims(&self, user: &str, roles: &[&str]) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        json!({
            "iss": self.issuer(), "aud": AUDIENCE, "sub": format!("uuid-{user}"),
            "preferred_username": user, "realm_access": {"roles": roles},
            "iat": now, "nbf": now - 5, "exp": now + 300,
        })
    }

    /// `claims` signed with the test key, the header naming `kid`.
    pub fn sign(&self, claims: &Value, kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &encoding_key()).expect("signing a test token")
    }

    /// A valid token for `user` with `roles`.
    pub fn token(&self, user: &str, roles: &[&str]) -> String {
        self.sign(&self.claims(user, roles), KID)
    }

    /// How many times the JWKS was requested.
    pub async fn key_fetches(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().ends_with("/certs"))
            .count()
    }
}

fn encoding_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(PRIVATE_PEM).expect("the test key parses")
}

fn jwks() -> JwkSet {
    let mut jwk =
        Jwk::from_encoding_key(&encoding_key(), Algorithm::RS256).expect("a JWK of the test key");
    jwk.common.key_id = Some(KID.to_owned());
    JwkSet { keys: vec![jwk] }
}
