//! Who gets which LiveKit grants, for how long, and how rooms and guests are named.

use chrono::{DateTime, Duration, Utc};

/// The LiveKit permissions a token carries (design §3.2). Adapters turn this into the
/// `video` claim; the domain decides the values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grants {
    /// May join `room`.
    pub room_join: bool,
    /// The room this token is for.
    pub room: String,
    /// May publish audio/video.
    pub can_publish: bool,
    /// May subscribe to others' tracks.
    pub can_subscribe: bool,
    /// May send data packets.
    pub can_publish_data: bool,
    /// Not shown to other participants (bots).
    pub hidden: bool,
    /// Marks an agent, which does not keep a room alive.
    pub agent: bool,
}

impl Grants {
    /// The session owner: full media and data.
    pub fn owner(room: &str) -> Self {
        Grants {
            room_join: true,
            room: room.to_owned(),
            can_publish: true,
            can_subscribe: true,
            can_publish_data: true,
            ..Default::default()
        }
    }

    /// A guest: media as asked, never data (a guest must not drive the bots).
    pub fn guest(room: &str, can_publish: bool) -> Self {
        Grants {
            room_join: true,
            room: room.to_owned(),
            can_publish,
            can_subscribe: true,
            can_publish_data: false,
            ..Default::default()
        }
    }

    /// An STT/TTS bot: hidden agent that publishes and subscribes.
    pub fn bot(room: &str) -> Self {
        Grants {
            room_join: true,
            room: room.to_owned(),
            can_publish: true,
            can_subscribe: true,
            can_publish_data: true,
            hidden: true,
            agent: true,
        }
    }
}

/// What to mint a join token for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `sub` of the token.
    pub identity: String,
    /// Display name.
    pub name: String,
    /// Participant metadata (often empty).
    pub metadata: String,
    /// Permissions.
    pub grants: Grants,
    /// Lifetime from now.
    pub ttl: Duration,
}

/// A minted token. Never stored: tokens are minted fresh on every read.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The signed JWT.
    pub jwt: String,
    /// When it stops being accepted for joining.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedToken {
    // A token is a credential: keep it out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("jwt", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The numbers that shape a session; the binary fills them from configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPolicy {
    /// Session lifetime when the client asks for none.
    pub default_session_ttl: Duration,
    /// Upper bound on any asked-for session lifetime.
    pub max_session_ttl: Duration,
    /// Join-token lifetime (LiveKit's own default is 6 h); capped by the session's expiry.
    pub token_ttl: Duration,
    /// See [`crate::RoomSpec::empty_timeout_secs`].
    pub empty_timeout_secs: u32,
    /// See [`crate::RoomSpec::departure_timeout_secs`].
    pub departure_timeout_secs: u32,
    /// See [`crate::RoomSpec::max_participants`].
    pub max_participants: u32,
    /// Language when the client gives none.
    pub default_language: String,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            default_session_ttl: Duration::hours(24),
            max_session_ttl: Duration::days(7),
            token_ttl: Duration::hours(6),
            empty_timeout_secs: 300,
            departure_timeout_secs: 20,
            max_participants: 0,
            default_language: "en".to_owned(),
        }
    }
}

impl SessionPolicy {
    /// The lifetime a new session gets: the asked one (at least a minute), at most the maximum.
    pub fn session_ttl(&self, asked_secs: Option<i64>) -> Duration {
        match asked_secs {
            None => self.default_session_ttl.min(self.max_session_ttl),
            Some(s) => seconds(s.max(60)).min(self.max_session_ttl),
        }
    }

    /// A token's lifetime: the asked one or the default, never past the session's expiry
    /// (a token that outlives its session would let people join a dead room).
    pub fn token_ttl(
        &self,
        asked_secs: Option<i64>,
        now: DateTime<Utc>,
        session_expires_at: DateTime<Utc>,
    ) -> Duration {
        let wanted = asked_secs
            .map(|s| seconds(s.max(1)))
            .unwrap_or(self.token_ttl)
            .min(self.token_ttl);
        let left = session_expires_at - now;
        wanted.min(left).max(Duration::seconds(1))
    }
}

/// Largest lifetime, in seconds, a client may ask for (ten years); the policy caps it further.
/// Checked before any duration is built, so no number a client sends can overflow one.
pub const MAX_TTL_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// `secs` as a duration, saturating instead of panicking past chrono's range.
pub fn seconds(secs: i64) -> Duration {
    Duration::try_seconds(secs).unwrap_or(if secs < 0 {
        Duration::MIN
    } else {
        Duration::MAX
    })
}

/// Longest room name we accept (LiveKit allows 256; ours stay readable in logs).
pub const MAX_ROOM_NAME_LEN: usize = 128;
/// Longest identity we accept (LiveKit's limit).
pub const MAX_IDENTITY_LEN: usize = 256;

/// Keeps `[A-Za-z0-9_-]`, replaces anything else with `_`, and cuts to `max` characters.
pub fn sanitise(input: &str, max: usize) -> String {
    input
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// A generated room name: `room-{user_id sanitised, max 32}-{8 hex}` (the v3.0 format).
pub fn generated_room_name(user_id: &str, random_hex: &str) -> String {
    let user = sanitise(user_id, 32);
    let user = if user.is_empty() {
        "user".to_owned()
    } else {
        user
    };
    format!("room-{user}-{}", &random_hex[..random_hex.len().min(8)])
}

/// A guest identity: `guest-{slug}-{4 hex}`, so two guests of one name do not kick each other
/// (LiveKit disconnects the first holder of a duplicate identity).
pub fn guest_identity(guest_name: &str, random_hex: &str) -> String {
    let slug: String = sanitise(&guest_name.to_lowercase(), 24)
        .trim_matches(|c| c == '_' || c == '-')
        .to_owned();
    let slug = if slug.is_empty() {
        "guest".to_owned()
    } else {
        slug
    };
    format!("guest-{slug}-{}", &random_hex[..random_hex.len().min(4)])
}

/// Why a client-chosen room name is refused, or `None` if it is fine.
pub fn room_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("room_name must not be empty")
    } else if name.len() > MAX_ROOM_NAME_LEN {
        Some("room_name is longer than 128 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        Some("room_name may only contain A-Z, a-z, 0-9, '_', '-' and '.'")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_room_names_keep_only_safe_characters_and_cut_the_user_to_32() {
        let name = generated_room_name("alice@example.com/../x", "0123456789abcdef");
        assert_eq!(name, "room-alice_example_com____x-01234567");
        let long = "u".repeat(100);
        let name = generated_room_name(&long, "deadbeef");
        assert_eq!(name, format!("room-{}-deadbeef", "u".repeat(32)));
    }

    #[test]
    fn an_empty_or_all_unicode_user_still_gets_a_valid_room_name() {
        assert_eq!(generated_room_name("", "abcd1234"), "room-user-abcd1234");
        let name = generated_room_name("日本", "abcd1234");
        assert_eq!(name, "room-__-abcd1234");
        assert_eq!(room_name_problem(&name), None);
    }

    #[test]
    fn guest_identities_are_slugged_and_suffixed() {
        assert_eq!(
            guest_identity("Bob Smith!", "a1b2c3"),
            "guest-bob_smith-a1b2"
        );
        assert_eq!(guest_identity("  ", "ffff"), "guest-guest-ffff");
    }

    #[test]
    fn room_names_with_unsafe_characters_are_refused() {
        assert!(room_name_problem("a b").is_some());
        assert!(room_name_problem("").is_some());
        assert!(room_name_problem(&"x".repeat(129)).is_some());
        assert!(room_name_problem("team.standup-1_a").is_none());
    }

    #[test]
    fn session_ttl_is_capped_by_the_maximum_and_floored_at_a_minute() {
        let p = SessionPolicy::default();
        assert_eq!(p.session_ttl(None), Duration::hours(24));
        assert_eq!(p.session_ttl(Some(10)), Duration::seconds(60));
        assert_eq!(p.session_ttl(Some(3600)), Duration::hours(1));
        assert_eq!(p.session_ttl(Some(i64::MAX / 2_000_000)), Duration::days(7));
    }

    #[test]
    fn lifetimes_past_chronos_range_saturate_instead_of_panicking() {
        let p = SessionPolicy::default();
        let now = Utc::now();
        assert_eq!(p.session_ttl(Some(i64::MAX)), Duration::days(7));
        assert_eq!(
            p.token_ttl(Some(i64::MAX), now, now + Duration::days(2)),
            Duration::hours(6)
        );
        assert_eq!(seconds(i64::MIN), Duration::MIN);
    }

    #[test]
    fn token_ttl_never_outlives_the_session() {
        let p = SessionPolicy::default();
        let now = Utc::now();
        // Default 6 h, but the session ends in 30 min.
        assert_eq!(
            p.token_ttl(None, now, now + Duration::minutes(30)),
            Duration::minutes(30)
        );
        // Asked for more than the default: capped at the default.
        assert_eq!(
            p.token_ttl(Some(100_000), now, now + Duration::days(2)),
            Duration::hours(6)
        );
        // Asked for less: honoured.
        assert_eq!(
            p.token_ttl(Some(600), now, now + Duration::days(2)),
            Duration::minutes(10)
        );
    }

    #[test]
    fn guests_never_get_data_and_bots_are_hidden_agents() {
        let g = Grants::guest("r", true);
        assert!(g.room_join && g.can_publish && !g.can_publish_data);
        let b = Grants::bot("r");
        assert!(b.hidden && b.agent);
        let o = Grants::owner("r");
        assert!(o.can_publish_data && !o.hidden);
    }

    #[test]
    fn issued_tokens_do_not_show_the_jwt_in_debug() {
        let t = IssuedToken {
            jwt: "secret.jwt.value".into(),
            expires_at: Utc::now(),
        };
        assert!(!format!("{t:?}").contains("secret.jwt.value"));
    }
}
