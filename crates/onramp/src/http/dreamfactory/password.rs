//! `POST /api/v2/user/password` (seed 001): confirm with a code, or ask for a reset code.

use super::{DfError, body, resolve};
use crate::http::AppState;
use crate::http::extract::HostInstance;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use onramp_core::open_registration::CodeInput;
use serde::Deserialize;
use serde_json::json;

/// `POST /api/v2/user/password`: `{email}` with `reset=true` mails a code; `{email, code,
/// new_password}` confirms a registration or completes a reset.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    #[schema(required = true)]
    email: Option<String>,
    code: Option<String>,
    new_password: Option<String>,
    password_confirmation: Option<String>,
}

/// Confirm a registration or complete a reset with `{email, code, new_password}`; `reset=true`
/// with `{email}` mails a code.
#[utoipa::path(post, path = "/api/v2/user/password", operation_id = "df_password", tag = "dreamfactory", request_body = PasswordBody,
    params(("login" = Option<String>, Query, description = "`true`: log in with the new password", pattern = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)?$"),
           ("reset" = Option<String>, Query, description = "`true`: mail a reset code to `email`", pattern = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)?$")),
    security(("df_api_key" = []), ("df_api_key_query" = [])),
    responses((status = 200, description = "`{success}` (+ `session_token`)"),
              (status = 400, body = crate::http::openapi::DfErrorBody, description = "invalid or expired code, validation"), (status = 404, body = crate::http::openapi::DfErrorBody, description = "email and code do not match")))]
pub async fn password(
    State(state): State<AppState>,
    headers: HeaderMap,
    HostInstance { instance, .. }: HostInstance<DfError>,
    client: crate::http::extract::ClientAddr,
    RawQuery(query): RawQuery,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, DfError> {
    let call = resolve(&state, instance, &headers, client, query).await?;
    let (reset, login) = (call.flag("reset")?, call.flag("login")?);
    let b: PasswordBody = body(raw)?;
    let email = b.email.unwrap_or_default();
    if reset {
        // The same answer whether or not the address is known.
        state
            .onramp
            .open_registration()
            .request_reset(&call.instance, &call.settings, (&email, &call.app_name), call.client.clone())
            .await?;
        return Ok(axum::Json(json!({ "success": true })).into_response());
    }
    let input = CodeInput {
        email,
        code: b.code.unwrap_or_default(),
        new_password: b.new_password.unwrap_or_default(),
        password_confirmation: b.password_confirmation,
        login,
        client: call.client.clone(),
    };
    let answer = match state.onramp.open_registration().redeem_code(&call.instance, input).await? {
        Some(session) => json!({ "success": true, "session_token": session.token }),
        None => json!({ "success": true }),
    };
    Ok(axum::Json(answer).into_response())
}
