//! `POST /api/v2/user/register` (seed 001): open registration.

use super::{DfError, body, resolve};
use crate::http::AppState;
use crate::http::extract::HostInstance;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use onramp_core::open_registration::{RegisterInput, Registered};
use serde::Deserialize;
use serde_json::json;

/// `POST /api/v2/user/register`: who registers. With an email service the password is
/// chosen on the confirm page; without one it is required here.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    #[schema(required = true)]
    email: Option<String>,
    password: Option<String>,
    new_password: Option<String>,
    password_confirmation: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    name: Option<String>,
    display_name: Option<String>,
    username: Option<String>,
    phone: Option<String>,
    /// The CAPTCHA provider's token, when the app asks for one (or `X-Captcha-Token`).
    captcha_token: Option<String>,
}

/// Open registration (seed 001); `login=true` logs the user in when no confirmation is needed.
#[utoipa::path(post, path = "/api/v2/user/register", operation_id = "df_register", tag = "dreamfactory", request_body = RegisterBody,
    params(("login" = Option<String>, Query, description = "`true`: log the user in when no confirmation is needed", pattern = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)?$")),
    security(("df_api_key" = []), ("df_api_key_query" = [])),
    responses((status = 200, description = "`{success}`, `{success, session_token}` or `{success, confirmation_required}`"),
              (status = 400, body = crate::http::openapi::DfErrorBody, description = "`{error{code, message, context}}`: validation"), (status = 401, body = crate::http::openapi::DfErrorBody, description = "API key"),
              (status = 403, body = crate::http::openapi::DfErrorBody, description = "open registration is off"), (status = 409, body = crate::http::openapi::DfErrorBody, description = "address or username taken (no confirmation)")))]
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    HostInstance { instance, .. }: HostInstance<DfError>,
    client: crate::http::extract::ClientAddr,
    RawQuery(query): RawQuery,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, DfError> {
    let call = resolve(&state, instance, &headers, client, query).await?;
    let login = call.flag("login")?;
    let b: RegisterBody = body(raw)?;
    let input = RegisterInput {
        email: b.email,
        password: b.password.or(b.new_password),
        password_confirmation: b.password_confirmation,
        first_name: b.first_name,
        last_name: b.last_name,
        name: b.name,
        display_name: b.display_name,
        username: b.username,
        phone: b.phone,
        login,
        app_name: call.app_name.clone(),
        app_id: call.app_id.clone(),
        client: call.client.clone(),
        captcha_token: b.captcha_token.or_else(|| crate::http::extract::captcha_header(&headers)),
    };
    let answer =
        match state.onramp.open_registration().register(&call.instance, &call.settings, input).await? {
            Registered::Active(Some(session)) => json!({ "success": true, "session_token": session.token }),
            Registered::Active(None) => json!({ "success": true }),
            Registered::ConfirmationRequired if login => {
                json!({ "success": true, "confirmation_required": true })
            }
            Registered::ConfirmationRequired => json!({ "success": true }),
        };
    state.metrics.signups.inc();
    Ok(axum::Json(answer).into_response())
}
