//! OIDC bearer tokens: RS/ES/PS-signed JWTs verified against the issuer's JWKS, which is found
//! through `{issuer}/.well-known/openid-configuration`, cached, and refreshed when a token
//! names a key id we do not know (key rotation) — at most once per `refresh_floor`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use june_domain::{AuthError, Authenticator, Principal, PrincipalKind};
use serde_json::Value;
use tokio::sync::RwLock;

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
    /// Shortest time between two JWKS fetches triggered by unknown key ids.
    pub refresh_floor: Duration,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// [`Authenticator`] for OIDC access tokens.
pub struct Oidc {
    client: reqwest::Client,
    config: OidcConfig,
    keys: RwLock<Option<Keys>>,
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

    /// The key for `kid`, refreshing the cached set once if it is unknown.
    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let cached = self.keys.read().await;
            if let Some(k) = cached.as_ref().and_then(|k| k.set.find(kid)) {
                return DecodingKey::from_jwk(k).map_err(|e| AuthError::Invalid(e.to_string()));
            }
        }
        let mut cached = self.keys.write().await;
        let stale = cached
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() >= self.config.refresh_floor);
        if stale && cached.as_ref().and_then(|k| k.set.find(kid)).is_none() {
            tracing::info!(kid, "fetching the identity provider's keys");
            *cached = Some(Keys {
                set: self.fetch().await?,
                fetched: Instant::now(),
            });
        }
        let jwk = cached
            .as_ref()
            .and_then(|k| k.set.find(kid))
            .ok_or_else(|| AuthError::Invalid(format!("unknown key id {kid:?}")))?;
        DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Invalid(e.to_string()))
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
