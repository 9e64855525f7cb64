//! Access tokens (design §3.2) signed with the API secret.

use june_domain::ports::{TokenError, TokenIssuer};
use june_domain::{Grants, IssuedToken, TokenRequest};
use livekit_api::access_token::{AccessToken, Claims, VideoGrants};
use secrecy::{ExposeSecret, SecretString};

/// Signs LiveKit join tokens with the API key and secret.
pub struct LiveKitTokenIssuer {
    api_key: String,
    api_secret: SecretString,
}

impl std::fmt::Debug for LiveKitTokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKitTokenIssuer")
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl LiveKitTokenIssuer {
    /// An issuer for this key pair.
    pub fn new(api_key: impl Into<String>, api_secret: SecretString) -> Self {
        LiveKitTokenIssuer {
            api_key: api_key.into(),
            api_secret,
        }
    }
}

/// The domain's grants as LiveKit's `video` claim. Publish grants are always written out,
/// so a token reads the same to every SDK whatever its defaults.
pub(crate) fn video_grants(g: &Grants) -> VideoGrants {
    VideoGrants {
        room_join: g.room_join,
        room: g.room.clone(),
        can_publish: Some(g.can_publish),
        can_subscribe: Some(g.can_subscribe),
        can_publish_data: Some(g.can_publish_data),
        hidden: g.hidden,
        agent: g.agent,
        ..Default::default()
    }
}

impl TokenIssuer for LiveKitTokenIssuer {
    fn issue(&self, r: &TokenRequest) -> Result<IssuedToken, TokenError> {
        if r.grants.room_join && (r.identity.is_empty() || r.grants.room.is_empty()) {
            return Err(TokenError::Invalid(
                "a join token needs an identity and a room".into(),
            ));
        }
        let ttl = r
            .ttl
            .to_std()
            .map_err(|_| TokenError::Invalid("the token lifetime must be positive".into()))?;
        let mut token = AccessToken::with_api_key(&self.api_key, self.api_secret.expose_secret())
            .with_identity(&r.identity)
            .with_name(&r.name)
            .with_ttl(ttl)
            .with_grants(video_grants(&r.grants));
        if !r.metadata.is_empty() {
            token = token.with_metadata(&r.metadata);
        }
        if r.grants.agent {
            token = token.with_kind("agent");
        }
        let jwt = token
            .to_jwt()
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        // Read the expiry back from what was signed, so what we report is exactly the claim.
        let exp = Claims::from_unverified(&jwt)
            .map_err(|e| TokenError::Signing(e.to_string()))?
            .exp;
        let expires_at = chrono::DateTime::from_timestamp(exp as i64, 0)
            .ok_or_else(|| TokenError::Signing("token expiry out of range".into()))?;
        Ok(IssuedToken { jwt, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_api::access_token::TokenVerifier;

    const KEY: &str = "unit-key";
    const SECRET: &str = "unit-secret-0123456789abcdef0123456789";

    fn issuer() -> LiveKitTokenIssuer {
        LiveKitTokenIssuer::new(KEY, SecretString::from(SECRET))
    }

    #[test]
    fn an_owner_token_verifies_with_the_secret_and_carries_the_grants() {
        let t = issuer()
            .issue(&TokenRequest {
                identity: "alice".into(),
                name: "Alice".into(),
                metadata: String::new(),
                grants: Grants::owner("room-1"),
                ttl: chrono::Duration::minutes(10),
            })
            .unwrap();
        let c = TokenVerifier::with_api_key(KEY, SECRET)
            .verify(&t.jwt)
            .unwrap();
        assert_eq!(c.iss, KEY);
        assert_eq!(c.sub, "alice");
        assert_eq!(c.name, "Alice");
        assert!(c.video.room_join);
        assert_eq!(c.video.room, "room-1");
        assert_eq!(c.video.can_publish_data, Some(true));
        assert_eq!(c.exp - c.nbf, 600);
        assert_eq!(t.expires_at.timestamp() as usize, c.exp);
    }

    #[test]
    fn a_bot_token_is_a_hidden_agent() {
        let t = issuer()
            .issue(&TokenRequest {
                identity: "june-stt".into(),
                name: "june-stt".into(),
                metadata: String::new(),
                grants: Grants::bot("room-1"),
                ttl: chrono::Duration::hours(1),
            })
            .unwrap();
        let c = TokenVerifier::with_api_key(KEY, SECRET)
            .verify(&t.jwt)
            .unwrap();
        assert!(c.video.hidden && c.video.agent);
        assert_eq!(c.kind, "agent");
    }

    #[test]
    fn a_token_signed_with_another_secret_does_not_verify() {
        let t = issuer()
            .issue(&TokenRequest {
                identity: "alice".into(),
                name: "alice".into(),
                metadata: String::new(),
                grants: Grants::owner("r"),
                ttl: chrono::Duration::minutes(1),
            })
            .unwrap();
        assert!(
            TokenVerifier::with_api_key(KEY, "another-secret-0123456789abcdef012345")
                .verify(&t.jwt)
                .is_err()
        );
    }

    #[test]
    fn a_join_token_without_identity_is_refused() {
        let err = issuer().issue(&TokenRequest {
            identity: String::new(),
            name: String::new(),
            metadata: String::new(),
            grants: Grants::owner("r"),
            ttl: chrono::Duration::minutes(1),
        });
        assert!(matches!(err, Err(TokenError::Invalid(_))));
    }

    #[test]
    fn the_issuer_debug_print_hides_the_secret() {
        assert!(!format!("{:?}", issuer()).contains(SECRET));
    }
}
