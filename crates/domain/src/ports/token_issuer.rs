use crate::policy::{IssuedToken, TokenRequest};

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The request cannot make a valid token (e.g. no identity or room).
    #[error("invalid token request: {0}")]
    Invalid(String),
    /// Signing failed.
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// Mints the access tokens clients join rooms with. The domain decides the grants and
/// lifetime; the issuer signs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenIssuer: Send + Sync {
    /// Signs a token for `request`, valid from the signing moment for `request.ttl`.
    fn issue(&self, request: &TokenRequest) -> Result<IssuedToken, TokenError>;
}
