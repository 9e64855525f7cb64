//! OIDC bearer tokens: RS/ES/PS-signed JWTs verified against the issuer's JWKS, which is found
//! through `{issuer}/.well-known/openid-configuration`, cached, and refreshed when a token
//! names a key id we do not know (key rotation) — at most once per `refresh_floor`.
//!
//! The fetch runs outside the cache lock and one at a time: a cached key is answered without
//! waiting on any fetch, unknown-kid requests that arrive during a fetch share its outcome,
//! and the floor counts failed attempts too, so tokens with made-up key ids (anyone can mint
//! them) cannot stall valid users or hammer a failing identity provider.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use june_domain::{AuthError, Authenticator, Principal, PrincipalKind};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

/// What to trust and where to find identities.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The `iss` to require, e.g. `https://keycloak.example.com/realms/june`.
    pub issuer: String,
    /// The `aud` to require.
    pub audience: String,
    /// Claim holding the identity (dotted path). A token without it is refused: falling back
    /// to `sub` would let one user's `sub` name another user's `preferred_username`.
    pub identity_claim: String,
    /// Claim holding the roles (dotted path to an array), e.g. `realm_access.roles`.
    pub roles_claim: String,
    /// Clock skew allowed on `exp`/`nbf`.
    pub leeway: Duration,
    /// Shortest time between two JWKS fetch attempts (failed ones included).
    pub refresh_floor: Duration,
}

/// The outcome of the last JWKS fetch.
struct Attempt {
    /// When it finished: requests that were waiting before then share it.
    at: Instant,
    /// Why it failed, returned to the requests that share it.
    failure: Option<AuthError>,
}

/// [`Authenticator`] for OIDC access tokens.
pub struct Oidc {
    client: reqwest::Client,
    config: OidcConfig,
    /// The cached key set; only ever locked briefly, never across a fetch.
    keys: RwLock<Option<JwkSet>>,
    /// Held for the whole of a fetch, so at most one is in flight.
    attempt: Mutex<Option<Attempt>>,
}

/// Asymmetric algorithms only: a shared-secret (HS*) token signed with the public key, or an
/// unsigned one, must never pass.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

/// The owner name the token carries in `name`. Refused: a missing, empty or non-string claim
/// (no fallback to `sub`), control characters, the `key-<n>` names of API-key users, which
/// a token must not take over when both auth modes are on, and the `service:…` names of the
/// server's own principals (the owner of room sessions).
fn identity(claims: &Value, name: &str) -> Result<String, AuthError> {
    let id = claim(claims, name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AuthError::Invalid(format!("the token has no {name:?} claim to name its user"))
        })?;
    if id.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "the identity contains control characters".into(),
        ));
    }
    if june_domain::is_api_key_identity(id) {
        return Err(AuthError::Invalid(format!(
            "identity {id:?} is reserved for API keys"
        )));
    }
    if june_domain::is_service_identity(id) {
        return Err(AuthError::Invalid(format!(
            "identity {id:?} is reserved for the server's own principals"
        )));
    }
    Ok(id.to_owned())
}

impl Oidc {
    /// An authenticator for `config`; keys are fetched on first use.
    pub fn new(client: reqwest::Client, config: OidcConfig) -> Self {
        crate::install_crypto_provider();
        Oidc {
            client,
            config,
            keys: RwLock::new(None),
            attempt: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let unavailable = |e: reqwest::Error| AuthError::Unavailable(e.without_url().to_string());
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let meta: Value = self
            .client
            .get(&discovery)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let uri = meta["jwks_uri"]
            .as_str()
            .ok_or_else(|| AuthError::Unavailable("the issuer publishes no jwks_uri".into()))?;
        self.client
            .get(uri)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }

    /// The cached key for `kid`, if any.
    async fn cached(&self, kid: &str) -> Option<Result<DecodingKey, AuthError>> {
        let keys = self.keys.read().await;
        let jwk = keys.as_ref()?.find(kid)?;
        Some(DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Invalid(e.to_string())))
    }

    /// The key for `kid`, refreshing the cached set if it is unknown: once per
    /// `refresh_floor`, by one request at a time, the others sharing its outcome.
    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.cached(kid).await {
            return key;
        }
        let arrived = Instant::now();
        let mut last = self.attempt.lock().await;
        let settled = last
            .as_ref()
            .is_some_and(|a| a.at >= arrived || a.at.elapsed() < self.config.refresh_floor);
        if !settled {
            tracing::info!(kid, "fetching the identity provider's keys");
            let failure = match self.fetch().await {
                Ok(set) => {
                    *self.keys.write().await = Some(set);
                    None
                }
                Err(e) => Some(e),
            };
            *last = Some(Attempt {
                at: Instant::now(),
                failure,
            });
        }
        let failure = last.as_ref().and_then(|a| a.failure.clone());
        drop(last);
        match (self.cached(kid).await, failure) {
            (Some(key), _) => key,
            (None, Some(unavailable)) => Err(unavailable),
            (None, None) => Err(AuthError::Invalid(format!("unknown key id {kid:?}"))),
        }
    }
}

#[async_trait]
impl Authenticator for Oidc {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(bearer)
            .map_err(|e| AuthError::Invalid(format!("not a JWT: {e}")))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the token names no key id".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway.as_secs();
        let claims = jsonwebtoken::decode::<Value>(bearer, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        let id = identity(&claims, &self.config.identity_claim)?;
        let roles = claim(&claims, &self.config.roles_claim)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Principal {
            id,
            roles,
            kind: PrincipalKind::User,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn invalid(r: Result<String, AuthError>) -> String {
        match r {
            Err(AuthError::Invalid(why)) => why,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn the_identity_comes_from_the_configured_claim_only() {
        let claims = json!({"sub": "uuid-1", "preferred_username": "alice",
            "user": {"name": "bob"}});
        assert_eq!(identity(&claims, "preferred_username").unwrap(), "alice");
        assert_eq!(identity(&claims, "user.name").unwrap(), "bob");
        assert_eq!(identity(&claims, "sub").unwrap(), "uuid-1");
    }

    /// A `sub` fallback would let one user's `sub` equal another user's name.
    #[test]
    fn a_token_without_the_identity_claim_is_refused_not_named_by_sub() {
        for claims in [
            json!({"sub": "alice"}),
            json!({"sub": "alice", "preferred_username": ""}),
            json!({"sub": "alice", "preferred_username": 7}),
            json!({"sub": "alice", "preferred_username": null}),
        ] {
            let why = invalid(identity(&claims, "preferred_username"));
            assert!(why.contains("preferred_username"), "{why}");
        }
    }

    #[test]
    fn api_key_names_and_control_characters_are_refused() {
        for name in ["key-1", "key-3", "key-007"] {
            let why = invalid(identity(
                &json!({ "preferred_username": name }),
                "preferred_username",
            ));
            assert!(why.contains("reserved for API keys"), "{why}");
        }
        for name in [june_domain::ROOM_SESSION_OWNER, "service:admin"] {
            let why = invalid(identity(
                &json!({ "preferred_username": name }),
                "preferred_username",
            ));
            assert!(why.contains("server's own principals"), "{why}");
        }
        for name in ["alice\n", "a\u{0}b", "\u{1b}[31mroot"] {
            invalid(identity(
                &json!({ "preferred_username": name }),
                "preferred_username",
            ));
        }
        for name in ["key-alice", "keyring-1", "monkey-1"] {
            assert_eq!(
                identity(&json!({ "preferred_username": name }), "preferred_username").unwrap(),
                name
            );
        }
    }
}
