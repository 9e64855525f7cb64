//! Who is calling, and what they may touch. Verifying credentials is an adapter's job
//! (API keys, OIDC) behind the [`Authenticator`](crate::ports::Authenticator) port;
//! deciding what a principal may do is the domain's.

/// How a principal was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// No authentication configured (`auth.mode = none`): the v3.0 behaviour, all access.
    Anonymous,
    /// A person (an OIDC token, or an API key with a user role).
    User,
    /// A service (an API key with the `service` role): may act for any user.
    Service,
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Identity: a user id, or a service name.
    pub id: String,
    /// Roles (`admin`, `service`, …).
    pub roles: Vec<String>,
    /// How it was established.
    pub kind: PrincipalKind,
}

impl Principal {
    /// The caller when authentication is off.
    pub fn anonymous() -> Self {
        Principal {
            id: String::new(),
            roles: Vec::new(),
            kind: PrincipalKind::Anonymous,
        }
    }

    /// Sees and changes every session.
    pub fn is_admin(&self) -> bool {
        self.kind != PrincipalKind::User || self.roles.iter().any(|r| r == "admin")
    }

    /// May act for `user_id` (own sessions, or everyone's for admins and services).
    pub fn may_act_as(&self, user_id: &str) -> bool {
        self.is_admin() || self.id == user_id
    }

    /// Whether a real identity stands behind the request.
    pub fn is_authenticated(&self) -> bool {
        self.kind != PrincipalKind::Anonymous
    }
}

/// The identity of the API key at `position` (1-based) in `API_KEYS`. API keys own the
/// `key-<n>` namespace: no other source may produce such an identity, or a token could read
/// a key user's sessions (see [`is_api_key_identity`]).
pub fn api_key_identity(position: usize) -> String {
    format!("key-{position}")
}

/// Whether `id` lies in the namespace reserved for API keys (`key-` and digits only), which
/// other authenticators must refuse.
pub fn is_api_key_identity(id: &str) -> bool {
    id.strip_prefix("key-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The owner of every room session (see [`SessionKind::Room`](crate::SessionKind::Room)): a
/// service principal, not a person. Only admins (and services) may act for it, because no
/// authenticator may produce an identity in the `service:` namespace (see
/// [`is_reserved_identity`]).
pub const ROOM_SESSION_OWNER: &str = "service:rooms";

/// Whether `id` lies in the namespace of the server's own principals (`service:` and
/// anything after it), which no caller may take.
pub fn is_service_identity(id: &str) -> bool {
    id.starts_with("service:")
}

/// Whether `id` is a name no authenticator may give a caller, and no client may give a
/// session's owner: the API keys' `key-<n>` and the server's `service:…`.
pub fn is_reserved_identity(id: &str) -> bool {
    is_api_key_identity(id) || is_service_identity(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, roles: &[&str]) -> Principal {
        Principal {
            id: id.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            kind: PrincipalKind::User,
        }
    }

    #[test]
    fn users_act_only_for_themselves_admins_and_services_for_anyone() {
        assert!(user("alice", &[]).may_act_as("alice"));
        assert!(!user("alice", &[]).may_act_as("bob"));
        assert!(user("root", &["admin"]).may_act_as("bob"));
        let svc = Principal {
            id: "stt".into(),
            roles: vec!["service".into()],
            kind: PrincipalKind::Service,
        };
        assert!(svc.may_act_as("bob"));
        assert!(Principal::anonymous().may_act_as("anyone"));
        assert!(!Principal::anonymous().is_authenticated());
    }

    #[test]
    fn only_key_and_digits_is_the_api_key_namespace() {
        assert!(is_api_key_identity(&api_key_identity(3)));
        assert!(is_api_key_identity("key-01"));
        for other in [
            "key-", "key-1a", "keys-1", "Key-1", "key-1 ", "alice", "key-١",
        ] {
            assert!(!is_api_key_identity(other), "{other:?}");
        }
    }

    #[test]
    fn the_room_sessions_owner_is_reserved_and_only_admins_act_for_it() {
        assert!(is_reserved_identity(ROOM_SESSION_OWNER));
        assert!(is_reserved_identity("service:anything"));
        assert!(is_reserved_identity("key-2"));
        for free in [
            "alice",
            "service",
            "services:rooms",
            "Service:rooms",
            "rooms",
        ] {
            assert!(!is_reserved_identity(free), "{free:?}");
        }
        assert!(!user("alice", &[]).may_act_as(ROOM_SESSION_OWNER));
        assert!(user("root", &["admin"]).may_act_as(ROOM_SESSION_OWNER));
    }
}
