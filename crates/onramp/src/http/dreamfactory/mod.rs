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
use crate::http::extract::ClientAddr;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use onramp_core::CoreError;
use onramp_core::model::{Instance, UserServiceSettings};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

mod password;
mod register;
mod session;

pub use password::*;
pub use register::*;
pub use session::*;

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
            CoreError::SignupDenied { message, .. } => (StatusCode::FORBIDDEN, message.clone()),
            CoreError::InvitationRequired => (StatusCode::FORBIDDEN, e.public_message()),
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
            // Not answers of DreamFactory's use cases: a bug if they reach here.
            CoreError::ContractNotFound
            | CoreError::AccountNotFound
            | CoreError::InstanceNameUnavailable
            | CoreError::ProvisioningFailed
            | CoreError::AdminUnauthorized
            | CoreError::AdminForbidden
            | CoreError::UserNotFound
            | CoreError::NotFound { .. }
            | CoreError::WrongState(_)
            | CoreError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, e.public_message()),
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
    /// The app the API key is of (none: a keyless registration).
    app_id: Option<String>,
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
    instance: Instance,
    headers: &HeaderMap,
    client: ClientAddr,
    query: Option<String>,
) -> Result<Call, DfError> {
    let settings = state.onramp.catalog().instance_settings(instance.id).await?;
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let key = headers
        .get("x-dreamfactory-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.iter().find(|(k, _)| k == "api_key").map(|(_, v)| v.clone()))
        .filter(|k| !k.is_empty());
    let (app_name, app_id) = match key {
        Some(key) => match state.onramp.api_keys().app_for_key(&instance, &key).await? {
            Some(app) => (app.name, Some(app.id)),
            None => return Err(DfError::new(StatusCode::UNAUTHORIZED, "Invalid API key.")),
        },
        // No app named: the product's name as its pages show it (not `default`).
        None if settings.allow_keyless => {
            (crate::branding::Brand::resolve(&state.config, &instance.name, None).name, None)
        }
        None => return Err(DfError::new(StatusCode::UNAUTHORIZED, "No API key provided.")),
    };
    Ok(Call { instance, settings, app_name, app_id, client: client.key(), query })
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
