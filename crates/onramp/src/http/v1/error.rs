//! The `/v1` error object (seed 004's `{"error": {...}}`) and the one place that maps core
//! errors to `/v1` statuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use onramp_core::CoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// `{"error": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct V1ErrorBody {
    pub error: V1ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct V1ErrorDetail {
    /// Stable machine code, e.g. `validation_failed`, `token_expired`.
    pub code: String,
    /// Human-readable, safe to show.
    pub message: String,
    /// The HTTP status, repeated for clients that only keep the body.
    pub status: u16,
    /// Per-field problems (validation errors only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<V1FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct V1FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug)]
pub struct V1Error {
    status: StatusCode,
    code: String,
    message: String,
    fields: Vec<V1FieldError>,
    retry_after: Option<u64>,
}

impl V1Error {
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Self { status, code: code.into(), message: message.into(), fields: Vec::new(), retry_after: None }
    }
}

impl From<CoreError> for V1Error {
    fn from(e: CoreError) -> Self {
        let status = match &e {
            CoreError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::InstanceNotFound
            | CoreError::AppNotFound
            | CoreError::ContractNotFound
            | CoreError::AccountNotFound
            | CoreError::UserNotFound
            | CoreError::NotFound { .. }
            | CoreError::TokenNotFound => StatusCode::NOT_FOUND,
            CoreError::UsernameTaken
            | CoreError::EmailTaken
            | CoreError::InstanceNameUnavailable
            | CoreError::TokenUsed => StatusCode::CONFLICT,
            CoreError::TokenExpired => StatusCode::GONE,
            CoreError::InvalidCredentials | CoreError::SessionInvalid | CoreError::AdminUnauthorized => {
                StatusCode::UNAUTHORIZED
            }
            CoreError::NotActivated
            | CoreError::AccountDisabled
            | CoreError::OpenRegistrationDisabled
            | CoreError::SignupDenied { .. }
            | CoreError::InvitationRequired
            | CoreError::AdminForbidden => StatusCode::FORBIDDEN,
            CoreError::WrongState(_) => StatusCode::CONFLICT,
            CoreError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            CoreError::Busy { .. } | CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::Internal(_) | CoreError::ProvisioningFailed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, code = e.code(), "request failed");
        }
        let retry_after = e.retry_after();
        let fields = match &e {
            CoreError::Validation(f) => f
                .iter()
                .map(|f| V1FieldError {
                    field: f.field.clone(),
                    code: f.code.into(),
                    message: f.message.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        // A before-signup hook's denial carries the hook's own code.
        let code = match &e {
            CoreError::SignupDenied { code, .. } => code.clone(),
            other => other.code().into(),
        };
        Self { status, code, message: e.public_message(), fields, retry_after }
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let body = V1ErrorBody {
            error: V1ErrorDetail {
                code: self.code,
                message: self.message,
                status: self.status.as_u16(),
                fields: self.fields,
            },
        };
        crate::http::with_retry_after((self.status, Json(body)).into_response(), self.retry_after)
    }
}

pub async fn not_found() -> V1Error {
    V1Error::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint.")
}

pub async fn method_not_allowed() -> V1Error {
    V1Error::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not take that method.",
    )
}
