//! The DreamFactory user API inside any instance (seed 001 and its neighbours):
//! `POST /api/v2/user/register?login=` (PUT and PATCH too), `POST /api/v2/user/password`
//! (confirm with a code, `?reset=true` to ask for one), and `/api/v2/user/session`
//! (`POST` log in, `GET` show, `DELETE` log out). Errors are DreamFactory's
//! `{"error": {"code", "message", "context"}}` with the real status.
//!
//! Every call names its application with `X-DreamFactory-API-Key` or, as DreamFactory also
//! allows, `?api_key=` (so that a plain HTML form or a link can call it); a missing key is
//! refused unless the instance allows key-less registration, a wrong one always.

use crate::http::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use onramp_core::CoreError;
use onramp_core::login::{LoggedIn, LoginInput};
use onramp_core::model::{Instance, UserServiceSettings, UserView};
use onramp_core::registration::{CodeInput, RegisterInput, Registered};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/user/register", post(register).put(register).patch(register).fallback(wrong_method))
        .route("/api/v2/user/password", post(password).fallback(wrong_method))
        .route("/api/v2/user/session", post(login).get(current).delete(logout).fallback(wrong_method))
        .layer(super::no_store())
        .route("/api/v2/{*rest}", any(not_found))
}

/// `{"error": {"code", "message", "context"}}`
#[derive(Debug)]
pub struct DfError {
    status: StatusCode,
    message: String,
    context: Value,
    retry_after: Option<u64>,
}

impl DfError {
    pub(crate) fn new(status: StatusCode, message: &str) -> Self {
        Self { status, message: message.into(), context: Value::Null, retry_after: None }
    }
}

impl From<CoreError> for DfError {
    fn from(e: CoreError) -> Self {
        let (status, message) = match &e {
            CoreError::Validation(_) => (StatusCode::BAD_REQUEST, "Validation failed.".to_owned()),
            CoreError::OpenRegistrationDisabled => (StatusCode::FORBIDDEN, e.public_message()),
            CoreError::EmailTaken => {
                (StatusCode::CONFLICT, "A user with this email address already exists.".into())
            }
            CoreError::UsernameTaken => (StatusCode::CONFLICT, "That username is taken.".into()),
            CoreError::InvalidCredentials => {
                (StatusCode::UNAUTHORIZED, "Invalid credentials supplied.".into())
            }
            CoreError::NotActivated => {
                (StatusCode::UNAUTHORIZED, "Login registration has not been confirmed.".into())
            }
            CoreError::AccountDisabled => (StatusCode::FORBIDDEN, "The account is disabled.".into()),
            CoreError::SessionInvalid => (StatusCode::UNAUTHORIZED, "The session token is not valid.".into()),
            CoreError::TokenNotFound => (StatusCode::NOT_FOUND, "The email and code do not match.".into()),
            CoreError::TokenUsed => (StatusCode::BAD_REQUEST, "Invalid confirmation code.".into()),
            CoreError::TokenExpired => (StatusCode::BAD_REQUEST, "Confirmation code expired.".into()),
            CoreError::InstanceNotFound | CoreError::AppNotFound => {
                (StatusCode::NOT_FOUND, e.public_message())
            }
            CoreError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, e.public_message()),
            CoreError::Busy { .. } | CoreError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, e.public_message())
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, e.public_message()),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, code = e.code(), "dreamfactory request failed");
        }
        let context = match &e {
            CoreError::Validation(fields) => {
                let mut map = serde_json::Map::new();
                for f in fields {
                    let entry = map.entry(f.field.clone()).or_insert_with(|| json!([]));
                    if let Value::Array(list) = entry {
                        list.push(json!(format!("The {} {}.", f.field.replace('_', " "), f.message)));
                    }
                }
                Value::Object(map)
            }
            _ => Value::Null,
        };
        let retry_after = e.retry_after();
        Self { status, message, context, retry_after }
    }
}

impl IntoResponse for DfError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.status.as_u16(), "message": self.message, "context": self.context } });
        crate::http::with_retry_after((self.status, axum::Json(body)).into_response(), self.retry_after)
    }
}

async fn wrong_method() -> DfError {
    DfError::new(StatusCode::METHOD_NOT_ALLOWED, "This resource does not take that method.")
}

async fn not_found() -> DfError {
    DfError::new(StatusCode::NOT_FOUND, "No such resource.")
}

/// What every call resolves first: the instance, its settings, the calling app.
struct Call {
    instance: Instance,
    settings: UserServiceSettings,
    app_name: String,
    client: Option<String>,
    query: Vec<(String, String)>,
}

impl Call {
    fn flag(&self, name: &str) -> Result<bool, DfError> {
        match self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v.is_empty() || v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(_) => Err(DfError::new(
                StatusCode::BAD_REQUEST,
                &format!("The {name} parameter must be true or false."),
            )),
        }
    }
}

async fn resolve(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    query: Option<String>,
) -> Result<Call, DfError> {
    let name = super::instance_name(headers, &state.config.base_domain);
    let instance = state.onramp.instance(&name).await?;
    let settings = state.onramp.instance_settings(instance.id).await?;
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let key = headers
        .get("x-dreamfactory-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.iter().find(|(k, _)| k == "api_key").map(|(_, v)| v.clone()))
        .filter(|k| !k.is_empty());
    let app_name = match key {
        Some(key) => match state.onramp.app_for_key(&instance, &key).await? {
            Some(app) => app.name,
            None => return Err(DfError::new(StatusCode::UNAUTHORIZED, "Invalid API key.")),
        },
        // No app named: the product's name as its pages show it (not `default`).
        None if settings.allow_keyless => {
            crate::branding::Brand::resolve(&state.config, &instance.name, None).name
        }
        None => return Err(DfError::new(StatusCode::UNAUTHORIZED, "No API key provided.")),
    };
    let client =
        super::client_addr(extensions, headers, &state.config.trusted_proxies).map(|c| c.to_string());
    Ok(Call { instance, settings, app_name, client, query })
}

fn body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, DfError> {
    let bytes = super::body_bytes(body).map_err(|p| DfError::new(p.status(), &p.message()))?;
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { Bytes::from_static(b"{}") } else { bytes };
    serde_json::from_slice(&bytes).map_err(|e| {
        let message = if e.is_data() {
            format!("Invalid request: {e}.")
        } else {
            "The body must be a JSON object.".to_owned()
        };
        DfError::new(StatusCode::BAD_REQUEST, &message)
    })
}

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
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, DfError> {
    let call = resolve(&state, &headers, &extensions, query).await?;
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
        client: call.client.clone(),
    };
    let answer = match state.onramp.open_register(&call.instance, &call.settings, input).await? {
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
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, DfError> {
    let call = resolve(&state, &headers, &extensions, query).await?;
    let (reset, login) = (call.flag("reset")?, call.flag("login")?);
    let b: PasswordBody = body(raw)?;
    let email = b.email.unwrap_or_default();
    if reset {
        // The same answer whether or not the address is known.
        state
            .onramp
            .request_password_reset(
                &call.instance,
                &call.settings,
                (&email, &call.app_name),
                call.client.clone(),
            )
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
    let answer = match state.onramp.redeem_email_code(&call.instance, input).await? {
        Some(session) => json!({ "success": true, "session_token": session.token }),
        None => json!({ "success": true }),
    };
    Ok(axum::Json(answer).into_response())
}

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
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, DfError> {
    let call = resolve(&state, &headers, &extensions, query).await?;
    let b: SessionBody = body(raw)?;
    let input = LoginInput {
        identifier: b.email.unwrap_or_default(),
        password: b.password.unwrap_or_default(),
        client: call.client.clone(),
    };
    let LoggedIn { token, session } =
        state.onramp.login(&call.instance, input).await.map_err(|e| match e {
            // DreamFactory asks for both fields by these names.
            CoreError::Validation(_) => {
                DfError::new(StatusCode::BAD_REQUEST, "Login request is missing required fields.")
            }
            other => other.into(),
        })?;
    state.metrics.logins.inc();
    let user = state.onramp.user(&call.instance, session.user_key).await?;
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
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
) -> Result<Response, DfError> {
    let call = resolve(&state, &headers, &extensions, query).await?;
    let token = session_token(&headers)?;
    let session = state.onramp.authenticate(&call.instance, &token).await?;
    let user = state.onramp.user(&call.instance, session.user_key).await?;
    Ok(axum::Json(session_json(&state, &call, &token, &user, session.expires_at)).into_response())
}

/// Log out.
#[utoipa::path(delete, path = "/api/v2/user/session", operation_id = "df_logout", tag = "dreamfactory",
    security(("df_api_key" = [], "df_session" = []), ("df_api_key_query" = [], "df_session" = [])),
    responses((status = 200, description = "`{success: true}`"), (status = 401, body = crate::http::openapi::DfErrorBody, description = "no valid session")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
) -> Result<Response, DfError> {
    let call = resolve(&state, &headers, &extensions, query).await?;
    let token = session_token(&headers)?;
    state.onramp.logout(&call.instance, &token).await?;
    Ok(axum::Json(json!({ "success": true })).into_response())
}
