//! Settings, in layers: built-in defaults (`defaults.toml`) → optional TOML file
//! (`JUNE_CONFIG`) → the environment names of v3.0 (`LIVEKIT_API_KEY`, `PORT`, …) →
//! `JUNE__SECTION__KEY`. This is the only module that reads the environment; the loader is
//! pure (it takes the variables as a map) so tests need no process-wide `set_var`.

use std::collections::HashMap;
use std::path::Path;

use june_http_api::client_addr::{ForwardedHeader, ProxyRules};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("defaults.toml");

/// `JUNE_COMPAT=v3`: a drop-in for the June stack that runs v3.x today (design §8.1). Its
/// bots share the room `ozzu-main`, post transcripts without credentials, and use rooms no
/// session created. The secure defaults stay the defaults.
pub const COMPAT_V3: &str = r#"
[livekit]
default_bot_room = "ozzu-main"
[stt]
auth = "none"
[voice]
adopt_rooms = true
"#;

/// The v3.0 environment names, and the short names of the replica setup (design §8.2), and
/// the setting each one fills.
pub const LEGACY_ENV: &[(&str, &str)] = &[
    ("LIVEKIT_API_KEY", "livekit.api_key"),
    ("LIVEKIT_API_SECRET", "livekit.api_secret"),
    ("LIVEKIT_WS_URL", "livekit.ws_url"),
    ("LIVEKIT_API_URL", "livekit.api_url"),
    ("PORT", "server.port"),
    ("HOST", "server.host"),
    ("CORS_ALLOW_ORIGINS", "server.cors_allow_origins"),
    ("LOG_LEVEL", "log.level"),
    ("LOG_FORMAT", "log.format"),
    ("DATABASE_URL", "database.url"),
    ("JUNE_PROFILE", "profile"),
    ("GEMINI_API_KEY", "ai.gemini_api_key"),
    ("GEMINI_BASE_URL", "ai.base_url"),
    ("AI_MODEL", "ai.model"),
    ("TTS_SERVICE_URL", "tts.url"),
    ("SERVICE_AUTH_TOKEN", "tts.service_token"),
    ("STT_SERVICE_URL", "stt.url"),
    ("STT_WEBHOOK_AUTH", "stt.auth"),
    ("STT_SERVICE_TOKEN", "voice.stt_token"),
    ("STT_AGENT_NAME", "voice.stt_agent_name"),
    ("TTS_AGENT_NAME", "voice.tts_agent_name"),
    ("ORCHESTRATOR_PUBLIC_URL", "voice.public_url"),
    ("AUTH_MODE", "auth.mode"),
    ("API_KEYS", "auth.api_keys"),
    ("OIDC_ISSUER", "auth.oidc_issuer"),
    ("OIDC_AUDIENCE", "auth.oidc_audience"),
    ("TRUSTED_PROXIES", "server.trusted_proxies"),
    ("RATE_LIMIT_REDIS_URL", "rate_limit.redis_url"),
];

/// Secrets that may also come from a file named by `<NAME>_FILE` (Kubernetes secrets).
const FILE_SECRETS: &[&str] = &[
    "LIVEKIT_API_SECRET",
    "LIVEKIT_API_KEY",
    "GEMINI_API_KEY",
    "SERVICE_AUTH_TOKEN",
    "STT_SERVICE_TOKEN",
    "API_KEYS",
    "RATE_LIMIT_REDIS_URL",
];

/// Everything the binary is configured with.
#[derive(Debug, Deserialize)]
pub struct Settings {
    /// `dev` accepts LiveKit's dev key pair; other profiles refuse it.
    pub profile: String,
    /// HTTP server.
    pub server: ServerSettings,
    /// LiveKit connection.
    pub livekit: LiveKitSettings,
    /// Session policy.
    pub sessions: SessionSettings,
    /// Persistence.
    pub database: DatabaseSettings,
    /// Logging.
    pub log: LogSettings,
    /// The background reaper.
    pub reaper: ReaperSettings,
    /// The language model.
    pub ai: AiSettings,
    /// The TTS service.
    pub tts: TtsSettings,
    /// The STT service.
    pub stt: SttSettings,
    /// The voice loop.
    pub voice: VoiceSettings,
    /// Who may call the API.
    pub auth: AuthSettings,
    /// Request budgets.
    pub rate_limit: RateLimitSettings,
    /// Live captions in the room.
    pub captions: CaptionSettings,
    /// The live event stream.
    pub live: LiveSettings,
    /// The compatibility profile in force (`JUNE_COMPAT`), for the start-up log.
    #[serde(skip)]
    pub compat: Option<&'static str>,
}

/// Authentication settings.
#[derive(Debug, Deserialize)]
pub struct AuthSettings {
    /// `none`, `api_key`, `oidc`, comma-combinable.
    pub mode: String,
    /// `key:role,…`.
    pub api_keys: SecretString,
    /// OIDC issuer URL.
    pub oidc_issuer: String,
    /// Required audience.
    pub oidc_audience: String,
    /// Claim with the identity.
    pub identity_claim: String,
    /// Claim with the roles.
    pub roles_claim: String,
    /// Clock skew allowed.
    pub leeway_secs: u64,
    /// Shortest time between two fetches of the identity provider's keys (tokens naming an
    /// unknown key id ask for one, and anyone can mint those).
    pub jwks_refresh_floor_secs: u64,
}

impl AuthSettings {
    /// The modes named in `mode`.
    pub fn modes(&self) -> Vec<String> {
        self.mode
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty())
            .collect()
    }
}

/// Rate limit settings.
#[derive(Debug, Deserialize)]
pub struct RateLimitSettings {
    /// Per principal, per second.
    pub per_second: u32,
    /// Per principal, burst.
    pub burst: u32,
    /// Per client address, per second.
    pub ip_per_second: u32,
    /// Per client address, burst.
    pub ip_burst: u32,
    /// Redis of the limits shared by every replica (`RATE_LIMIT_REDIS_URL`, `redis://…`);
    /// empty: each replica counts its own. May carry a password, so never logged.
    pub redis_url: SecretString,
    /// Deadline of each Redis call; a request whose call misses it is decided locally.
    pub redis_timeout_ms: u64,
    /// While Redis is away, how often it is tried again.
    pub redis_retry_ms: u64,
    /// Prefix of the Redis keys (several deployments may share one Redis).
    pub redis_key_prefix: String,
}

/// Longest `rate_limit.redis_key_prefix`, so every key stays small.
const MAX_KEY_PREFIX: usize = 64;

/// Voice loop settings.
#[derive(Debug, Deserialize)]
pub struct VoiceSettings {
    /// Agent name of the STT bot.
    pub stt_agent_name: String,
    /// Agent name of the TTS bot.
    pub tts_agent_name: String,
    /// What the bots call back.
    pub public_url: String,
    /// Bearer token of the STT bot.
    pub stt_token: SecretString,
    /// Adopt rooms that LiveKit has and no session owns (room sessions).
    pub adopt_rooms: bool,
    /// Finals below this confidence are skipped.
    pub min_confidence: f32,
    /// A repeated final within this window is skipped.
    pub duplicate_window_ms: i64,
    /// Longest piece sent to TTS.
    pub max_sentence_chars: usize,
    /// Voice turns running at once on this replica; a final beyond it is refused (503).
    pub max_concurrent_turns: usize,
    /// Bot dispatch orders waiting for a job; a full queue refuses new ones (claim given back).
    pub dispatch_queue: usize,
    /// Bot dispatch jobs running at once.
    pub dispatch_concurrency: usize,
    /// Attempts per bot dispatch order (1: no retry).
    pub dispatch_attempts: u32,
    /// Longest single attempt (both agents).
    pub dispatch_attempt_timeout_ms: u64,
    /// Wait before the second attempt, doubled before each later one.
    pub dispatch_backoff_ms: u64,
}

/// Language model settings.
#[derive(Debug, Deserialize)]
pub struct AiSettings {
    /// Gemini API key; empty means not configured.
    pub gemini_api_key: SecretString,
    /// Gemini REST base URL.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Sampling temperature, if any.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Output token cap.
    pub max_output_tokens: u32,
    /// Time to headers and between stream chunks.
    pub timeout_ms: u64,
    /// Retries on 429/5xx.
    pub max_retries: u32,
    /// First backoff step.
    pub backoff_ms: u64,
    /// How the assistant behaves.
    pub system_instruction: String,
    /// Turns of history sent to the model.
    pub history_max_turns: u32,
    /// Characters of history sent to the model.
    pub history_max_chars: usize,
}

/// TTS settings.
#[derive(Debug, Deserialize)]
pub struct TtsSettings {
    /// Base URL; empty means not configured.
    pub url: String,
    /// Default voice.
    pub voice_id: String,
    /// Default speaking rate.
    pub speed: f32,
    /// Per-call timeout.
    pub timeout_ms: u64,
    /// Bearer token sent to TTS.
    pub service_token: SecretString,
}

/// STT settings.
#[derive(Debug, Deserialize)]
pub struct SttSettings {
    /// Base URL; empty means not configured.
    pub url: String,
    /// `bearer` or `none`: how transcripts are authenticated.
    pub auth: String,
}

/// Live captions (design.md §8.3).
#[derive(Debug, Deserialize)]
pub struct CaptionSettings {
    /// Send captions to the room at all.
    pub enabled: bool,
    /// Longest one `SendData` may take.
    pub send_timeout_ms: u64,
    /// Events waiting per queue (captions, the stream's feed).
    pub queue: usize,
}

/// `GET /api/sessions/{id}/stream` (design.md §8.3).
#[derive(Debug, Deserialize)]
pub struct LiveSettings {
    /// Streams open at once on this replica.
    pub max_streams: usize,
    /// Events waiting for one client.
    pub client_buffer: usize,
    /// Interval of `: ping` on an idle stream.
    pub ping_ms: u64,
    /// Most stored turns a resume replays.
    pub max_replay: u32,
}

/// Reaper settings.
#[derive(Debug, Deserialize)]
pub struct ReaperSettings {
    /// Run it at all (several replicas may all run it; it is safe).
    pub enabled: bool,
    /// Time between passes.
    pub interval_ms: u64,
    /// Live sessions younger than this are not ended for a missing room.
    pub grace_secs: i64,
}

/// HTTP server settings.
#[derive(Debug, Deserialize)]
pub struct ServerSettings {
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// Comma-separated allowed origins, or `*`.
    pub cors_allow_origins: String,
    /// Largest request body.
    pub body_limit_bytes: usize,
    /// Longest time to receive a request body (then 408 and the connection is closed).
    pub body_timeout_ms: u64,
    /// After SIGTERM: how long the replica keeps serving while `/readyz` says `draining`,
    /// before it stops accepting (for the load balancers to take it out of rotation).
    pub drain_seconds: u64,
    /// After the drain: how long in-flight requests, then voice turns and bot dispatches,
    /// get to finish (one budget for both).
    pub shutdown_timeout_secs: u64,
    /// Reverse proxies whose forwarding headers are believed (`TRUSTED_PROXIES`: CIDRs or
    /// addresses, comma-separated); none by default, and then the TCP peer is the client.
    #[serde(deserialize_with = "proxy_list")]
    pub trusted_proxies: ProxyRules,
    /// The header those proxies write: `auto` (`Forwarded` if present, else
    /// `X-Forwarded-For`), `forwarded` or `x-forwarded-for`.
    pub forwarded_header: ForwardedHeader,
}

/// Parses `server.trusted_proxies`; a bad entry fails the load naming the setting.
fn proxy_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ProxyRules, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// LiveKit settings.
#[derive(Debug, Deserialize)]
pub struct LiveKitSettings {
    /// What clients connect to.
    pub ws_url: String,
    /// Twirp API base; derived from `ws_url` when empty.
    pub api_url: String,
    /// API key (`iss` of our tokens).
    pub api_key: String,
    /// API secret; never printed.
    pub api_secret: SecretString,
    /// Per-call timeout.
    pub request_timeout_ms: u64,
    /// `/readyz` timeout.
    pub readiness_timeout_ms: u64,
    /// Default room of bot tokens.
    pub default_bot_room: String,
    /// Comma-separated identities that get bot grants besides the agent names.
    pub bot_identities: String,
}

/// Session policy settings.
#[derive(Debug, Deserialize)]
pub struct SessionSettings {
    /// Session lifetime when none is asked for.
    pub default_ttl_secs: i64,
    /// Longest session lifetime.
    pub max_ttl_secs: i64,
    /// Join-token lifetime.
    pub token_ttl_secs: i64,
    /// LiveKit `empty_timeout`.
    pub empty_timeout_secs: u32,
    /// LiveKit `departure_timeout`.
    pub departure_timeout_secs: u32,
    /// LiveKit `max_participants` (0 = unlimited).
    pub max_participants: u32,
    /// Language when none is given.
    pub default_language: String,
}

/// Persistence settings.
#[derive(Debug, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; may carry a password, so never logged.
    pub url: SecretString,
    /// Pool size.
    pub max_connections: u32,
    /// Wait for a connection before giving up.
    pub connect_timeout_ms: u64,
    /// Longest statement.
    pub statement_timeout_ms: u64,
    /// Longest store call, kept by the client (see `june_store::StoreOptions::call_timeout`).
    pub call_timeout_ms: u64,
    /// Prepared statements cached per connection.
    pub statement_cache_capacity: usize,
    /// SQLite page cache per connection, KiB.
    pub sqlite_cache_kib: u32,
    /// SQLite WAL size past which a checkpoint is forced.
    pub sqlite_wal_limit_bytes: u64,
    /// How often the SQLite checkpointer runs; 0: SQLite's automatic checkpoint instead.
    pub sqlite_checkpoint_ms: u64,
}

/// Logging settings.
#[derive(Debug, Deserialize)]
pub struct LogSettings {
    /// An `EnvFilter` directive (`info`, `june=debug,info`…).
    pub level: String,
    /// `pretty` or `json`.
    pub format: String,
}

/// Why the configuration was refused. Each message is one line naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or a layer could not be read.
    #[error("configuration: {0}")]
    Load(String),
    /// A value is not of the right type.
    #[error("configuration: invalid value for {setting} ({sources}): {reason}")]
    Invalid {
        /// Dotted setting name.
        setting: String,
        /// The variables that set it.
        sources: String,
        /// What is wrong.
        reason: String,
    },
}

/// The environment names that fill `setting`, for error messages.
fn sources_of(setting: &str) -> String {
    let june = format!("JUNE__{}", setting.replace('.', "__").to_uppercase());
    LEGACY_ENV
        .iter()
        .filter(|(_, key)| *key == setting)
        .map(|(name, _)| (*name).to_owned())
        .chain(std::iter::once(june))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn invalid(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        sources: sources_of(setting),
        reason: reason.into(),
    }
}

impl Settings {
    /// Loads the layers from `env` (the process environment, as a map) and the optional file.
    pub fn load(env: &HashMap<String, String>, file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut legacy = HashMap::new();
        for (name, key) in LEGACY_ENV {
            let file_var = format!("{name}_FILE");
            let value = match (env.get(*name), env.get(&file_var)) {
                (Some(_), Some(_)) if FILE_SECRETS.contains(name) => {
                    return Err(ConfigError::Load(format!(
                        "both {name} and {file_var} are set; keep one"
                    )));
                }
                (_, Some(path)) if FILE_SECRETS.contains(name) => std::fs::read_to_string(path)
                    .map(|s| s.trim().to_owned())
                    .map_err(|e| {
                        ConfigError::Load(format!("cannot read {file_var}={path}: {e}"))
                    })?,
                (Some(v), _) => v.clone(),
                (None, _) => continue,
            };
            // Fed to an Environment source keyed SECTION__KEY, so it sits below JUNE__ overrides.
            legacy.insert(key.replace('.', "__").to_uppercase(), value);
        }
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        // A compatibility profile sits right above the defaults: every setting it turns on
        // is still overridden by the file and the environment.
        match env
            .get("JUNE_COMPAT")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => {}
            Some(v) if v.is_empty() || v == "none" => {}
            Some(v) if v == "v3" => {
                builder =
                    builder.add_source(config::File::from_str(COMPAT_V3, config::FileFormat::Toml));
            }
            Some(other) => {
                return Err(invalid(
                    "JUNE_COMPAT",
                    format!("{other:?} is not a compatibility profile (expected v3)"),
                ));
            }
        }
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let built = builder
            .add_source(
                config::Environment::default()
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(legacy.into_iter().collect())),
            )
            .add_source(
                config::Environment::with_prefix("JUNE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env.clone().into_iter().collect())),
            )
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let compat = match env
            .get("JUNE_COMPAT")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            Some(v) if v == "v3" => Some("v3"),
            _ => None,
        };
        let mut settings: Settings = serde_path_to_error::deserialize(built).map_err(|e| {
            let setting = e.path().to_string();
            let reason = e.into_inner().to_string();
            invalid(&setting, reason)
        })?;
        settings.compat = compat;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types cannot: URLs, schemes, the dev key pair outside `dev`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ws = url::Url::parse(&self.livekit.ws_url).map_err(|e| {
            invalid(
                "livekit.ws_url",
                format!("{:?} is not a URL: {e}", self.livekit.ws_url),
            )
        })?;
        if !matches!(ws.scheme(), "ws" | "wss" | "http" | "https") {
            return Err(invalid(
                "livekit.ws_url",
                "must start with ws://, wss://, http:// or https://",
            ));
        }
        if !self.livekit.api_url.is_empty() {
            let api = url::Url::parse(&self.livekit.api_url).map_err(|e| {
                invalid(
                    "livekit.api_url",
                    format!("{:?} is not a URL: {e}", self.livekit.api_url),
                )
            })?;
            if !matches!(api.scheme(), "http" | "https" | "ws" | "wss") {
                return Err(invalid(
                    "livekit.api_url",
                    "must start with http:// or https://",
                ));
            }
        }
        if self.livekit.api_key.is_empty() {
            return Err(invalid("livekit.api_key", "must not be empty"));
        }
        if self.livekit.api_secret.expose_secret().is_empty() {
            return Err(invalid("livekit.api_secret", "must not be empty"));
        }
        if self.profile != "dev"
            && (self.livekit.api_key == "devkey"
                || self.livekit.api_secret.expose_secret() == "secret")
        {
            return Err(invalid(
                "livekit.api_secret",
                format!(
                    "profile {:?} needs a real LiveKit key and secret, not the dev pair",
                    self.profile
                ),
            ));
        }
        if !matches!(self.stt.auth.as_str(), "bearer" | "none") {
            return Err(invalid(
                "stt.auth",
                "must be \"bearer\" or \"none\" (STT_WEBHOOK_AUTH)",
            ));
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(invalid("log.format", "must be \"pretty\" or \"json\""));
        }
        let db = self.database.url.expose_secret();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite: or postgres:// (e.g. sqlite://data/june.db)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be positive"));
        }
        if self.database.call_timeout_ms == 0 {
            return Err(invalid("database.call_timeout_ms", "must be positive"));
        }
        let s = &self.sessions;
        if s.default_ttl_secs <= 0 || s.max_ttl_secs <= 0 || s.token_ttl_secs <= 0 {
            return Err(invalid("sessions", "lifetimes must be positive"));
        }
        for (setting, value) in [
            ("ai.base_url", &self.ai.base_url),
            ("tts.url", &self.tts.url),
            ("stt.url", &self.stt.url),
        ] {
            if !value.is_empty() {
                let parsed = url::Url::parse(value)
                    .map_err(|e| invalid(setting, format!("{value:?} is not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(setting, "must start with http:// or https://"));
                }
            }
        }
        if self.ai.timeout_ms == 0 || self.tts.timeout_ms == 0 {
            return Err(invalid("ai.timeout_ms", "timeouts must be positive"));
        }
        let modes = self.auth.modes();
        if modes.is_empty() {
            return Err(invalid("auth.mode", "must name none, api_key or oidc"));
        }
        for mode in &modes {
            match mode.as_str() {
                "none" if modes.len() > 1 => {
                    return Err(invalid("auth.mode", "\"none\" cannot be combined"));
                }
                "none" => {}
                "api_key" if self.auth.api_keys.expose_secret().trim().is_empty() => {
                    return Err(invalid("auth.api_keys", "mode api_key needs API_KEYS"));
                }
                "oidc"
                    if self.auth.oidc_issuer.is_empty() || self.auth.oidc_audience.is_empty() =>
                {
                    return Err(invalid(
                        "auth.oidc_issuer",
                        "mode oidc needs OIDC_ISSUER and OIDC_AUDIENCE",
                    ));
                }
                "api_key" | "oidc" => {}
                other => return Err(invalid("auth.mode", format!("unknown mode {other:?}"))),
            }
        }
        if self.reaper.interval_ms == 0 {
            return Err(invalid("reaper.interval_ms", "must be positive"));
        }
        if self.livekit.request_timeout_ms == 0 {
            return Err(invalid("livekit.request_timeout_ms", "must be positive"));
        }
        let v = &self.voice;
        for (setting, value) in [
            ("voice.max_concurrent_turns", v.max_concurrent_turns as u64),
            ("voice.dispatch_queue", v.dispatch_queue as u64),
            ("voice.dispatch_concurrency", v.dispatch_concurrency as u64),
            ("voice.dispatch_attempts", u64::from(v.dispatch_attempts)),
            (
                "voice.dispatch_attempt_timeout_ms",
                v.dispatch_attempt_timeout_ms,
            ),
            ("captions.send_timeout_ms", self.captions.send_timeout_ms),
            ("captions.queue", self.captions.queue as u64),
            ("live.max_streams", self.live.max_streams as u64),
            ("live.client_buffer", self.live.client_buffer as u64),
            ("live.ping_ms", self.live.ping_ms),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be positive"));
            }
        }
        self.validate_rate_limit()
    }

    /// The shared limiter's settings. The URL may hold a password: no message repeats it.
    fn validate_rate_limit(&self) -> Result<(), ConfigError> {
        let r = &self.rate_limit;
        let url = r.redis_url.expose_secret();
        if !url.is_empty() {
            let scheme = url::Url::parse(url)
                .map_err(|e| invalid("rate_limit.redis_url", format!("not a URL ({e})")))?
                .scheme()
                .to_owned();
            if scheme != "redis" {
                return Err(invalid(
                    "rate_limit.redis_url",
                    format!(
                        "must start with redis:// (got {scheme}://; TLS to Redis is not built in)"
                    ),
                ));
            }
        }
        if r.redis_timeout_ms == 0 || r.redis_retry_ms == 0 {
            return Err(invalid(
                "rate_limit.redis_timeout_ms",
                "redis_timeout_ms and redis_retry_ms must be positive",
            ));
        }
        if r.redis_key_prefix.len() > MAX_KEY_PREFIX {
            return Err(invalid(
                "rate_limit.redis_key_prefix",
                format!("at most {MAX_KEY_PREFIX} bytes"),
            ));
        }
        Ok(())
    }

    /// The Twirp API base URL.
    pub fn livekit_api_url(&self) -> String {
        if self.livekit.api_url.is_empty() {
            june_livekit_adapter::api_url_from_ws(&self.livekit.ws_url)
        } else {
            june_livekit_adapter::api_url_from_ws(&self.livekit.api_url)
        }
    }

    /// Who the client of a request is: the trusted proxies and the header they write.
    pub fn proxy_rules(&self) -> ProxyRules {
        self.server
            .trusted_proxies
            .clone()
            .with_header(self.server.forwarded_header)
    }

    /// CORS origins as a list.
    pub fn cors_origins(&self) -> Vec<String> {
        self.server
            .cors_allow_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The start-up line of a compatibility profile: what `JUNE_COMPAT` turns on, with the
    /// values in force after the file and the environment (each may override it). `None`
    /// without a profile.
    pub fn compat_summary(&self) -> Option<String> {
        let profile = self.compat?;
        let room = &self.livekit.default_bot_room;
        Some(format!(
            "JUNE_COMPAT={profile}: livekit.default_bot_room={}, stt.auth={}, voice.adopt_rooms={}",
            if room.is_empty() {
                "(none)".to_owned()
            } else {
                format!("{room:?}")
            },
            self.stt.auth,
            self.voice.adopt_rooms,
        ))
    }

    /// Logs the drop-in settings at start-up: the compatibility profile, and a warning for
    /// each setting that opens something the secure defaults keep shut.
    pub fn log_drop_in(&self) {
        if let Some(line) = self.compat_summary() {
            tracing::info!("{line}");
        }
        if self.stt.auth == "none" {
            tracing::warn!(
                "stt.auth=none (STT_WEBHOOK_AUTH): /api/webhooks/stt and /api/webhooks/voice_onset \
                 accept requests without credentials; anyone who can reach them can start and \
                 interrupt turns"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_defaults_match_livekit_dev_mode() {
        let s = Settings::load(&env(&[]), None).unwrap();
        assert_eq!(s.livekit.ws_url, "ws://localhost:7880");
        assert_eq!(s.livekit.api_key, "devkey");
        assert_eq!(s.livekit.api_secret.expose_secret(), "secret");
        assert_eq!(s.livekit_api_url(), "http://localhost:7880");
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.database.url.expose_secret(), "sqlite://data/june.db");
    }

    #[test]
    fn the_secure_defaults_stay_without_a_compat_profile() {
        let s = Settings::load(&env(&[]), None).unwrap();
        assert_eq!(s.stt.auth, "bearer");
        assert!(!s.voice.adopt_rooms);
        assert_eq!(s.livekit.default_bot_room, "");
        assert_eq!(s.compat, None);
    }

    #[test]
    fn june_compat_v3_turns_on_the_drop_in_settings_each_still_overridable() {
        let s = Settings::load(&env(&[("JUNE_COMPAT", "v3")]), None).unwrap();
        assert_eq!(s.compat, Some("v3"));
        assert_eq!(s.livekit.default_bot_room, "ozzu-main");
        assert_eq!(s.stt.auth, "none");
        assert!(s.voice.adopt_rooms);
        let s = Settings::load(
            &env(&[
                ("JUNE_COMPAT", "v3"),
                ("STT_WEBHOOK_AUTH", "bearer"),
                ("JUNE__VOICE__ADOPT_ROOMS", "false"),
                ("JUNE__LIVEKIT__DEFAULT_BOT_ROOM", "lobby"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.stt.auth, "bearer");
        assert!(!s.voice.adopt_rooms);
        assert_eq!(s.livekit.default_bot_room, "lobby");
    }

    #[test]
    fn the_compat_line_names_what_it_turned_on_with_the_values_in_force() {
        let s = Settings::load(&env(&[]), None).unwrap();
        assert_eq!(s.compat_summary(), None);
        let s = Settings::load(&env(&[("JUNE_COMPAT", "v3")]), None).unwrap();
        assert_eq!(
            s.compat_summary().unwrap(),
            r#"JUNE_COMPAT=v3: livekit.default_bot_room="ozzu-main", stt.auth=none, voice.adopt_rooms=true"#
        );
        let s = Settings::load(
            &env(&[
                ("JUNE_COMPAT", "V3"),
                ("STT_WEBHOOK_AUTH", "bearer"),
                ("JUNE__LIVEKIT__DEFAULT_BOT_ROOM", ""),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            s.compat_summary().unwrap(),
            "JUNE_COMPAT=v3: livekit.default_bot_room=(none), stt.auth=bearer, voice.adopt_rooms=true"
        );
    }

    #[test]
    fn an_unknown_compat_profile_or_stt_auth_stops_start_up_naming_it() {
        let err = Settings::load(&env(&[("JUNE_COMPAT", "v2")]), None).unwrap_err();
        assert!(err.to_string().contains("JUNE_COMPAT"), "{err}");
        let err = Settings::load(&env(&[("STT_WEBHOOK_AUTH", "basic")]), None).unwrap_err();
        assert!(err.to_string().contains("stt.auth"), "{err}");
    }

    #[test]
    fn v3_names_override_the_file_and_june_names_override_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("june.toml");
        std::fs::write(
            &file,
            "[server]\nport = 9000\nhost = \"127.0.0.1\"\n[log]\nlevel = \"debug\"\n",
        )
        .unwrap();

        let s = Settings::load(&env(&[]), Some(&file)).unwrap();
        assert_eq!((s.server.port, s.server.host.as_str()), (9000, "127.0.0.1"));

        let s = Settings::load(&env(&[("PORT", "9100")]), Some(&file)).unwrap();
        assert_eq!(s.server.port, 9100);
        assert_eq!(s.log.level, "debug");

        let s = Settings::load(
            &env(&[
                ("PORT", "9100"),
                ("JUNE__SERVER__PORT", "9200"),
                ("LOG_LEVEL", "warn"),
            ]),
            Some(&file),
        )
        .unwrap();
        assert_eq!(s.server.port, 9200);
        assert_eq!(s.log.level, "warn");
    }

    #[test]
    fn the_api_url_is_derived_from_the_ws_url_unless_set() {
        let s = Settings::load(&env(&[("LIVEKIT_WS_URL", "wss://lk.example.com")]), None).unwrap();
        assert_eq!(s.livekit_api_url(), "https://lk.example.com");
        let s = Settings::load(
            &env(&[
                ("LIVEKIT_WS_URL", "wss://lk.example.com"),
                ("LIVEKIT_API_URL", "http://livekit:7880"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.livekit_api_url(), "http://livekit:7880");
        assert_eq!(s.livekit.ws_url, "wss://lk.example.com");
    }

    #[test]
    fn a_bad_port_is_one_line_naming_the_variable() {
        let err = Settings::load(&env(&[("PORT", "eighty")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.port") && err.contains("PORT"), "{err}");
        assert!(!err.contains('\n'));
        let err = Settings::load(&env(&[("PORT", "70000")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PORT"), "{err}");
    }

    #[test]
    fn a_bad_url_is_refused_naming_the_variable() {
        let err = Settings::load(&env(&[("LIVEKIT_WS_URL", "not a url")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("LIVEKIT_WS_URL"), "{err}");
        let err = Settings::load(&env(&[("LIVEKIT_WS_URL", "ftp://x")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("LIVEKIT_WS_URL"), "{err}");
    }

    #[test]
    fn a_non_dev_profile_refuses_the_dev_key_pair() {
        let err = Settings::load(&env(&[("JUNE_PROFILE", "prod")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("LIVEKIT_API_SECRET"), "{err}");
        let ok = Settings::load(
            &env(&[
                ("JUNE_PROFILE", "prod"),
                ("LIVEKIT_API_KEY", "APIxyz"),
                ("LIVEKIT_API_SECRET", "a-real-secret-0123456789abcdef012345"),
            ]),
            None,
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn secrets_can_come_from_files_but_not_from_both() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "from-file-secret\n").unwrap();
        let path = secret.to_str().unwrap();
        let s = Settings::load(&env(&[("LIVEKIT_API_SECRET_FILE", path)]), None).unwrap();
        assert_eq!(s.livekit.api_secret.expose_secret(), "from-file-secret");
        assert!(
            Settings::load(
                &env(&[
                    ("LIVEKIT_API_SECRET_FILE", path),
                    ("LIVEKIT_API_SECRET", "x")
                ]),
                None
            )
            .is_err()
        );
    }

    #[test]
    fn ai_settings_take_the_v3_names_and_default_to_a_live_model() {
        let s = Settings::load(&env(&[]), None).unwrap();
        assert_eq!(s.ai.model, "gemini-3.5-flash-lite");
        assert!(s.ai.gemini_api_key.expose_secret().is_empty());
        assert_eq!(s.ai.temperature, None);
        let s = Settings::load(
            &env(&[
                ("GEMINI_API_KEY", "g-key"),
                ("AI_MODEL", "gemini-x"),
                ("GEMINI_BASE_URL", "http://fake:1"),
                ("TTS_SERVICE_URL", "http://tts:8000"),
                ("SERVICE_AUTH_TOKEN", "svc"),
                ("JUNE__AI__TEMPERATURE", "0.2"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.ai.gemini_api_key.expose_secret(), "g-key");
        assert_eq!(
            (s.ai.model.as_str(), s.ai.base_url.as_str()),
            ("gemini-x", "http://fake:1")
        );
        assert_eq!(s.tts.url, "http://tts:8000");
        assert_eq!(s.tts.service_token.expose_secret(), "svc");
        assert_eq!(s.ai.temperature, Some(0.2));
        let err = Settings::load(&env(&[("TTS_SERVICE_URL", "tts:8000")]), None).unwrap_err();
        assert!(err.to_string().contains("TTS_SERVICE_URL"), "{err}");
    }

    #[test]
    fn the_drain_and_the_background_bounds_have_defaults_and_refuse_zero() {
        let s = Settings::load(&env(&[]), None).unwrap();
        assert_eq!(
            (s.server.drain_seconds, s.server.shutdown_timeout_secs),
            (5, 10)
        );
        assert_eq!(
            (s.voice.dispatch_queue, s.voice.dispatch_concurrency),
            (256, 8)
        );
        assert_eq!(s.voice.dispatch_attempts, 3);
        let s = Settings::load(&env(&[("JUNE__SERVER__DRAIN_SECONDS", "0")]), None).unwrap();
        assert_eq!(s.server.drain_seconds, 0, "no drain is a valid choice");
        for setting in [
            "max_concurrent_turns",
            "dispatch_queue",
            "dispatch_concurrency",
            "dispatch_attempts",
            "dispatch_attempt_timeout_ms",
        ] {
            let var = format!("JUNE__VOICE__{}", setting.to_uppercase());
            let err = Settings::load(&env(&[(var.as_str(), "0")]), None).unwrap_err();
            assert!(
                err.to_string().contains(&format!("voice.{setting}")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_numeric_looking_api_key_stays_a_string() {
        let s = Settings::load(&env(&[("LIVEKIT_API_KEY", "12345")]), None).unwrap();
        assert_eq!(s.livekit.api_key, "12345");
    }

    #[test]
    fn trusted_proxies_come_from_trusted_proxies_and_a_bad_entry_is_named() {
        let s = Settings::load(&env(&[]), None).unwrap();
        assert!(s.proxy_rules().is_empty(), "none by default");
        assert_eq!(s.server.forwarded_header, ForwardedHeader::XForwardedFor);
        let s = Settings::load(
            &env(&[
                ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
                ("JUNE__SERVER__FORWARDED_HEADER", "auto"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            s.proxy_rules(),
            "10.0.0.0/8,127.0.0.1"
                .parse::<ProxyRules>()
                .unwrap()
                .with_header(ForwardedHeader::Auto)
        );
        let err = Settings::load(&env(&[("TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.0/40")]), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.trusted_proxies")
                && err.contains("TRUSTED_PROXIES")
                && err.contains("10.0.0.0/40"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        let err = Settings::load(
            &env(&[("JUNE__SERVER__FORWARDED_HEADER", "x-real-ip")]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("server.forwarded_header"), "{err}");
    }

    #[test]
    fn the_shared_limiter_is_off_by_default_and_its_url_is_checked_without_echoing_it() {
        let s = Settings::load(&env(&[]), None).unwrap();
        let r = &s.rate_limit;
        assert!(r.redis_url.expose_secret().is_empty());
        assert_eq!((r.redis_timeout_ms, r.redis_retry_ms), (50, 1000));
        assert_eq!(r.redis_key_prefix, "june:rl:");
        let s = Settings::load(
            &env(&[("RATE_LIMIT_REDIS_URL", "redis://:pw@redis:6379/0")]),
            None,
        )
        .unwrap();
        assert_eq!(
            s.rate_limit.redis_url.expose_secret(),
            "redis://:pw@redis:6379/0"
        );
        assert!(!format!("{s:?}").contains("pw@"));
        for bad in [
            "rediss://:hunter2@redis:6380",
            "http://:hunter2@redis",
            "hunter2",
        ] {
            let err = Settings::load(&env(&[("RATE_LIMIT_REDIS_URL", bad)]), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("RATE_LIMIT_REDIS_URL"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let err =
            Settings::load(&env(&[("JUNE__RATE_LIMIT__REDIS_TIMEOUT_MS", "0")]), None).unwrap_err();
        assert!(err.to_string().contains("redis_timeout_ms"), "{err}");
        let long = "p".repeat(65);
        let err = Settings::load(
            &env(&[("JUNE__RATE_LIMIT__REDIS_KEY_PREFIX", long.as_str())]),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("redis_key_prefix"), "{err}");
    }

    #[test]
    fn the_debug_print_never_shows_the_secret() {
        let s = Settings::load(
            &env(&[("LIVEKIT_API_SECRET", "super-secret-value-0123456789abcdef")]),
            None,
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("super-secret-value"));
    }
}
