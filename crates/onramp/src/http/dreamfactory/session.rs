//! `/api/v2/user/session` (seed 001): log in, show the session, log out.

use super::{Call, DfError, body, resolve};
use crate::http::AppState;
use crate::http::extract::HostInstance;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onramp_core::CoreError;
use onramp_core::login::{LoggedIn, LoginInput};
use onramp_core::model::UserView;
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

/// `POST /api/v2/user/session`: log in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    #[schema(required = true)]
    email: Option<String>,
    #[schema(required = true)]
    password: Option<String>,
    /// Accepted for compatibility; the session lifetime is onramp's.
    #[allow(dead_code)]
    remember_me: Option<bool>,
}

/// DreamFactory's session response.
fn session_json(
    state: &AppState,
    call: &Call,
    token: &str,
    user: &UserView,
    expires: time::OffsetDateTime,
) -> Value {
    let host = onramp_core::login::instance_url(&state.onramp.settings().public_url, &call.instance.name);
    json!({
        "session_token": token,
        "session_id": token,
        "id": user.key,
        "name": user.name,
        "first_name": user.profile.first_name,
        "last_name": user.profile.last_name,
        "display_name": user.profile.display_name,
        "email": user.email,
        "phone": user.profile.phone,
        "is_sys_admin": false,
        "role": user.roles.first(),
        "host": host,
        "last_login_date": state.onramp.now().format(&Rfc3339).unwrap_or_default(),
        "token_expiry_date": expires.format(&Rfc3339).unwrap_or_default(),
    })
}

/// Log in: DreamFactory's session response.
#[utoipa::path(post, path = "/api/v2/user/session", operation_id = "df_login", tag = "dreamfactory", request_body = SessionBody,
    security(("df_api_key" = []), ("df_api_key_query" = [])),
    responses((status = 200, description = "`session_token`, `id`, `name`, `first_name`, `last_name`, `email`, `role`, …"),
              (status = 400, body = crate::http::openapi::DfErrorBody, description = "missing fields"), (status = 401, body = crate::http::openapi::DfErrorBody, description = "wrong credentials or not confirmed")))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    HostInstance { instance, .. }: HostInstance<DfError>,
    client: crate::http::extract::ClientAddr,
    RawQuery(query): RawQuery,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, DfError> {
    let call = resolve(&state, instance, &headers, client, query).await?;
    let b: SessionBody = body(raw)?;
    let input = LoginInput {
        identifier: b.email.unwrap_or_default(),
        password: b.password.unwrap_or_default(),
        client: call.client.clone(),
    };
    let LoggedIn { token, session } =
        state.onramp.logins().login(&call.instance, input).await.map_err(|e| match e {
            // DreamFactory asks for both fields by these names.
            CoreError::Validation(_) => {
                DfError::new(StatusCode::BAD_REQUEST, "Login request is missing required fields.")
            }
            other => other.into(),
        })?;
    state.metrics.logins.inc();
    let user = state.onramp.open_registration().user(&call.instance, session.user_key).await?;
    Ok(axum::Json(session_json(&state, &call, &token, &user, session.expires_at)).into_response())
}

/// The session token as DreamFactory clients send it.
fn session_token(headers: &HeaderMap) -> Result<String, DfError> {
    headers
        .get("x-dreamfactory-session-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
        })
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| DfError::new(StatusCode::UNAUTHORIZED, "No session token provided."))
}

/// The session of `X-DreamFactory-Session-Token` (or `Authorization: Bearer`).
#[utoipa::path(get, path = "/api/v2/user/session", operation_id = "df_session", tag = "dreamfactory",
    security(("df_api_key" = [], "df_session" = []), ("df_api_key_query" = [], "df_session" = [])),
    responses((status = 200, description = "the session"), (status = 401, body = crate::http::openapi::DfErrorBody, description = "no valid session")))]
pub async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
    HostInstance { instance, .. }: HostInstance<DfError>,
    client: crate::http::extract::ClientAddr,
    RawQuery(query): RawQuery,
) -> Result<Response, DfError> {
    let call = resolve(&state, instance, &headers, client, query).await?;
    let token = session_token(&headers)?;
    let session = state.onramp.logins().authenticate(&call.instance, &token).await?;
    let user = state.onramp.open_registration().user(&call.instance, session.user_key).await?;
    Ok(axum::Json(session_json(&state, &call, &token, &user, session.expires_at)).into_response())
}

/// Log out.
#[utoipa::path(delete, path = "/api/v2/user/session", operation_id = "df_logout", tag = "dreamfactory",
    security(("df_api_key" = [], "df_session" = []), ("df_api_key_query" = [], "df_session" = [])),
    responses((status = 200, description = "`{success: true}`"), (status = 401, body = crate::http::openapi::DfErrorBody, description = "no valid session")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    HostInstance { instance, .. }: HostInstance<DfError>,
    client: crate::http::extract::ClientAddr,
    RawQuery(query): RawQuery,
) -> Result<Response, DfError> {
    let call = resolve(&state, instance, &headers, client, query).await?;
    let token = session_token(&headers)?;
    state.onramp.logins().logout(&call.instance, &token).await?;
    Ok(axum::Json(json!({ "success": true })).into_response())
}
