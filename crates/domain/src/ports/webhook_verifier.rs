use crate::events::LiveKitEvent;

/// Why a webhook delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Missing, forged or expired signature, or a body that does not match it.
    #[error("webhook signature rejected: {0}")]
    Unauthorized(String),
    /// Correctly signed, but not a LiveKit event we can read.
    #[error("webhook body is not a LiveKit event: {0}")]
    Malformed(String),
}

/// Checks that a webhook really comes from our LiveKit, then reads it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait WebhookVerifier: Send + Sync {
    /// Verifies `authorization` (LiveKit's raw JWT, no `Bearer`) against the raw `body`
    /// bytes, then parses the event leniently (unknown fields and enum values are kept,
    /// not refused). The signature is always checked before the body is parsed.
    // The named lifetime is what mockall needs to mock an `Option<&str>` argument.
    #[allow(clippy::needless_lifetimes)]
    fn verify<'a>(
        &self,
        body: &[u8],
        authorization: Option<&'a str>,
    ) -> Result<LiveKitEvent, WebhookError>;
}
