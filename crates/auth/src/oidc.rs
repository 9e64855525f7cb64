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
    /// Claim holding the identity (dotted path); `sub` when absent from the token.
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
        let id = claim(&claims, &self.config.identity_claim)
            .or_else(|| claims.get("sub"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::Invalid("the token carries no identity".into()))?
            .to_owned();
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
