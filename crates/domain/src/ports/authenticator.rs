use async_trait::async_trait;

use crate::auth::Principal;

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials were sent.
    #[error("authentication required")]
    Missing,
    /// The credentials are wrong, expired, or not for us.
    #[error("invalid credentials: {0}")]
    Invalid(String),
    /// The identity provider could not be reached to check them.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

/// Turns a bearer credential into a principal (API keys, OIDC; see june-auth).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Verifies `bearer` (the part after `Bearer `).
    ///
    /// Errors: `Invalid` for credentials that are wrong, expired or not ours (a token
    /// naming an identity in the API-key namespace included); `Unavailable` when the
    /// identity provider cannot be asked. `Missing` is the caller's, for no credentials.
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError>;
}
