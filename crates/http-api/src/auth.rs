//! Who is calling: the `Caller` extractor (bearer credentials → a principal, when auth is on)
//! and the rate limits, per principal and per client address.

use std::future::Future;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use june_domain::{AuthError, Authenticator, Principal};

use crate::AppState;
use crate::error::ApiError;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// Requests allowed per second and in a burst, for one key.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Sustained requests per second (0 disables the limit).
    pub per_second: u32,
    /// Burst on top.
    pub burst: u32,
}

/// The two limiters: per principal (after authentication) and per client address.
pub struct RateLimits {
    by_principal: Option<Keyed<String>>,
    by_ip: Option<Keyed<IpAddr>>,
    seen: AtomicU64,
}

fn limiter<K: Hash + Eq + Clone>(rate: Rate) -> Option<Keyed<K>> {
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst.max(rate.per_second))?;
    Some(RateLimiter::keyed(
        Quota::per_second(per_second).allow_burst(burst),
    ))
}

fn check<K: Hash + Eq + Clone>(limiter: &Keyed<K>, key: &K) -> Result<(), ApiError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::RateLimited {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    })
}

impl RateLimits {
    /// Limits from the configuration.
    pub fn new(per_principal: Rate, per_ip: Rate) -> Self {
        RateLimits {
            by_principal: limiter(per_principal),
            by_ip: limiter(per_ip),
            seen: AtomicU64::new(0),
        }
    }

    /// No limits at all.
    pub fn off() -> Self {
        Self::new(
            Rate {
                per_second: 0,
                burst: 0,
            },
            Rate {
                per_second: 0,
                burst: 0,
            },
        )
    }

    /// Counts a request from `ip`; 429 once its budget is spent.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        // Keyed limiters keep every key they saw: forget idle ones now and then.
        if self
            .seen
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(4096)
        {
            if let Some(l) = &self.by_ip {
                l.retain_recent();
            }
            if let Some(l) = &self.by_principal {
                l.retain_recent();
            }
        }
        self.by_ip.as_ref().map_or(Ok(()), |l| check(l, &ip))
    }

    /// Counts a request of an authenticated principal.
    pub fn check_principal(&self, id: &str) -> Result<(), ApiError> {
        self.by_principal
            .as_ref()
            .map_or(Ok(()), |l| check(l, &id.to_owned()))
    }
}

/// The authenticated caller of a request (anonymous with all access when auth is off).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// 403 unless the caller is an admin or a service.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                detail: "this route is for admins and services".into(),
            })
        }
    }
}

async fn authenticate(
    auth: Option<Arc<dyn Authenticator>>,
    header: Option<String>,
) -> Result<Principal, ApiError> {
    let Some(auth) = auth else {
        return Ok(Principal::anonymous());
    };
    let bearer = header
        .as_deref()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Auth(AuthError::Missing))?;
    auth.authenticate(bearer).await.map_err(ApiError::Auth)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("no application state".into()))?;
            let principal = authenticate(state.auth.clone(), header).await?;
            if principal.is_authenticated() {
                state.rate_limits.check_principal(&principal.id)?;
            }
            Ok(Caller(principal))
        })
    }
}
