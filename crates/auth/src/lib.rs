//! # june-auth
//!
//! The domain's [`Authenticator`](june_domain::Authenticator) port for the auth modes of the
//! orchestrator: [`ApiKeys`] (static keys, each with a role) and [`Oidc`] (bearer JWTs of an
//! identity provider such as Keycloak, verified against its JWKS), combined by [`Chain`].
//!
//! May depend on the domain, `jsonwebtoken` and an HTTP client; never on the web framework.

mod api_keys;
mod oidc;

pub use api_keys::ApiKeys;
pub use oidc::{Oidc, OidcConfig};

use std::sync::Arc;

use async_trait::async_trait;
use june_domain::{AuthError, Authenticator, Principal};

/// Installs jsonwebtoken's full crypto provider (RSA, EC, HMAC) process-wide. Must run before
/// any LiveKit token is minted: `livekit-token` installs an HMAC-only provider on first use,
/// and the first provider installed wins. Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

/// Tries each authenticator in turn (API keys for services, OIDC for people).
pub struct Chain(pub Vec<Arc<dyn Authenticator>>);

#[async_trait]
impl Authenticator for Chain {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let mut last = AuthError::Missing;
        for auth in &self.0 {
            match auth.authenticate(bearer).await {
                Ok(p) => return Ok(p),
                // An unreachable provider outranks "not mine" from the others.
                Err(e @ AuthError::Unavailable(_)) => last = e,
                Err(e) if !matches!(last, AuthError::Unavailable(_)) => last = e,
                Err(_) => {}
            }
        }
        Err(last)
    }
}
