//! `POST /v1/auth/login`, `POST /v1/auth/logout`, `GET /v1/auth/session`.

use super::error::{V1Error, V1ErrorBody};
use super::{ClientAddr, V1Instance, V1Json};
use crate::http::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use onramp_core::CoreError;
use onramp_core::login::LoginInput;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// A username or an email address.
    pub username: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// An EdDSA JWT; send it as `Authorization: Bearer …`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    pub user_id: String,
}

/// Log in with a username or email and a password.
#[utoipa::path(post, path = "/v1/auth/login", operation_id = "v1_login", tag = "v1", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = V1ErrorBody), (status = 403, body = V1ErrorBody, description = "not activated, or disabled"),
              (status = 422, body = V1ErrorBody, description = "no identifier or no password"),
              (status = 429, body = V1ErrorBody), (status = 503, body = V1ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    V1Instance { instance, .. }: V1Instance,
    ClientAddr(client): ClientAddr,
    V1Json(body): V1Json<LoginRequest>,
) -> Result<Json<LoginResponse>, V1Error> {
    let identifier = body.username.filter(|u| !u.trim().is_empty()).or(body.email).unwrap_or_default();
    let input = LoginInput { identifier, password: body.password, client: client.map(|c| c.to_string()) };
    let done = state.onramp.logins().login(&instance, input).await?;
    state.metrics.logins.inc();
    Ok(Json(LoginResponse {
        access_token: done.token,
        token_type: "Bearer",
        expires_in: (done.session.expires_at - done.session.issued_at).whole_seconds(),
        user_id: done.session.user_public_id,
    }))
}

fn bearer(headers: &HeaderMap) -> Result<&str, V1Error> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            V1Error::new(StatusCode::UNAUTHORIZED, "missing_token", "Send Authorization: Bearer <token>.")
        })
}

/// Revoke the session; the token is refused everywhere afterwards.
#[utoipa::path(post, path = "/v1/auth/logout", operation_id = "v1_logout", tag = "v1", security(("bearer" = [])),
    responses((status = 204, description = "logged out"), (status = 401, body = V1ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    V1Instance { instance, .. }: V1Instance,
    headers: HeaderMap,
) -> Result<StatusCode, V1Error> {
    state.onramp.logins().logout(&instance, bearer(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    pub session_id: String,
    pub user_id: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// The session the bearer token stands for.
#[utoipa::path(get, path = "/v1/auth/session", operation_id = "v1_session", tag = "v1", security(("bearer" = [])),
    responses((status = 200, body = SessionResponse), (status = 401, body = V1ErrorBody)))]
pub async fn current(
    State(state): State<AppState>,
    V1Instance { instance, .. }: V1Instance,
    headers: HeaderMap,
) -> Result<Json<SessionResponse>, V1Error> {
    let session = state.onramp.logins().authenticate(&instance, bearer(&headers)?).await?;
    Ok(Json(SessionResponse {
        session_id: session.id,
        user_id: session.user_public_id,
        expires_at: session.expires_at.format(&Rfc3339).map_err(|e| CoreError::Internal(e.to_string()))?,
    }))
}
