//! Who is calling: the `Caller` extractor (bearer credentials → a principal, when auth is on)
//! and the per-principal rate limit it applies (the limits themselves are in `limits`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use june_domain::{AuthError, Authenticator, Principal};

use crate::AppState;
use crate::error::ApiError;
pub use crate::limits::{Rate, RateLimits};

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
                state.rate_limits.check_principal(&principal.id).await?;
            }
            Ok(Caller(principal))
        })
    }
}
