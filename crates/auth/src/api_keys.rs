//! Static API keys (`API_KEYS=key:role,…`), compared in constant time.

use async_trait::async_trait;
use june_domain::{AuthError, Authenticator, Principal, PrincipalKind};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Keys and their roles. A `service` key acts for any user; any other role is a user whose
/// identity is the key's name (`key-<n>`, a namespace OIDC identities may not take), with
/// that role.
pub struct ApiKeys {
    keys: Vec<(SecretString, String)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field(
                "roles",
                &self.keys.iter().map(|(_, r)| r).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ApiKeys {
    /// Parses `key:role,key:role` (a key without a role is a `service` key).
    pub fn parse(spec: &SecretString) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, item) in spec.expose_secret().split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let (key, role) = item.rsplit_once(':').unwrap_or((item, "service"));
            if key.len() < 16 {
                return Err(format!("API key #{} is shorter than 16 characters", i + 1));
            }
            keys.push((SecretString::from(key.to_owned()), role.trim().to_owned()));
        }
        Ok(ApiKeys { keys })
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[async_trait]
impl Authenticator for ApiKeys {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        // Compare with every key so the time does not tell which one nearly matched.
        let mut found = None;
        for (i, (key, role)) in self.keys.iter().enumerate() {
            if bool::from(key.expose_secret().as_bytes().ct_eq(bearer.as_bytes())) {
                found = Some((i, role));
            }
        }
        let (i, role) = found.ok_or_else(|| AuthError::Invalid("unknown API key".into()))?;
        Ok(Principal {
            id: june_domain::api_key_identity(i + 1),
            roles: vec![role.clone()],
            kind: if role == "service" {
                PrincipalKind::Service
            } else {
                PrincipalKind::User
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_map_to_roles_and_unknown_keys_are_refused() {
        let keys = ApiKeys::parse(&SecretString::from(
            "svc-0123456789abcdef:service, adm-0123456789abcdef:admin",
        ))
        .unwrap();
        let svc = keys.authenticate("svc-0123456789abcdef").await.unwrap();
        assert_eq!(svc.kind, PrincipalKind::Service);
        let admin = keys.authenticate("adm-0123456789abcdef").await.unwrap();
        assert!(admin.is_admin() && admin.kind == PrincipalKind::User);
        assert!(keys.authenticate("nope").await.is_err());
        assert!(!format!("{keys:?}").contains("0123456789"));
        assert!(ApiKeys::parse(&SecretString::from("short:admin")).is_err());
    }
}
