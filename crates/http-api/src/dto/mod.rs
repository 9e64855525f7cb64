//! The JSON shapes of the public API (design.md §2), kept apart from the domain types so the
//! wire contract changes only on purpose.

mod ai;
mod events;
mod lenient;
mod sessions;
mod tokens;
mod turns;
mod voice;

pub use ai::*;
pub use events::*;
pub use lenient::Lenient;
pub use sessions::*;
pub use tokens::*;
pub use turns::*;
pub use voice::*;

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 in UTC with a `Z`, as v3.0 clients parse it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
