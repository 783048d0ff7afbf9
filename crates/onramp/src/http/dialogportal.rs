//! dialogportal contract accounts (seed 003, endpoint 1001): `POST /user/{contract-id}` and
//! `POST /user` (the app's default contract), "Get Account Data" `GET /user/{dpKey}`, and SMS
//! verification `POST /user/{dpKey}/verify-sms`, `POST /user/{dpKey}/resend-sms`. Every call
//! is made by an app with its key in `X-Api-Key`.
//!
//! Errors: `{"code": "400.4", "message": "…", "field": "mobile", "errors": [{field, code,
//! message}]}`; `code` is the HTTP status, with dialogportal's sub-code where one applies
//! (`400.3` mobile number not valid, `400.4` it belongs to an active or not yet verified
//! account, `400.5` to an inactive one).

use crate::http::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use onramp_core::CoreError;
use onramp_core::contract_account::{ContractResult, codes};
use onramp_core::model::{App, ContractAccount, Instance};
use serde_json::{Map, Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/user", post(create_default).fallback(wrong_method))
        .route("/user/{id}", post(create).get(account).fallback(wrong_method))
        .route("/user/{id}/verify-sms", post(verify_sms).fallback(wrong_method))
        .route("/user/{id}/resend-sms", post(resend_sms).fallback(wrong_method))
}

pub struct DpError {
    status: StatusCode,
    code: String,
    message: String,
    field: Option<String>,
    errors: Vec<Value>,
    retry_after: Option<u64>,
}

impl DpError {
    pub(crate) fn new(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            code: status.as_u16().to_string(),
            message: message.into(),
            field: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }
}

impl From<CoreError> for DpError {
    fn from(e: CoreError) -> Self {
        if let CoreError::Validation(fields) = &e {
            // The most specific of dialogportal's sub-codes among the problems.
            let sub = |code: &str| match code {
                c if c == codes::PHONE_IN_USE_INACTIVE => 5,
                c if c == codes::PHONE_IN_USE => 4,
                c if c == codes::INVALID_PHONE => 3,
                _ => 0,
            };
            let worst = fields.iter().max_by_key(|f| sub(f.code));
            let code = match worst.map(|f| sub(f.code)) {
                Some(n) if n > 0 => format!("400.{n}"),
                _ => "400".into(),
            };
            let message = match worst.map(|f| sub(f.code)) {
                Some(5) => "The mobile number belongs to an inactive account.".to_owned(),
                Some(4) => "The mobile number belongs to another account.".to_owned(),
                Some(3) => "The mobile number is not valid.".to_owned(),
                _ => "Some fields are invalid.".to_owned(),
            };
            return Self {
                status: StatusCode::BAD_REQUEST,
                code,
                message,
                field: worst.map(|f| f.field.clone()),
                errors: fields
                    .iter()
                    .map(|f| json!({ "field": f.field, "code": f.code, "message": f.message }))
                    .collect(),
                retry_after: None,
            };
        }
        let status = match &e {
            CoreError::InstanceNotFound
            | CoreError::AppNotFound
            | CoreError::ContractNotFound
            | CoreError::AccountNotFound => StatusCode::NOT_FOUND,
            CoreError::TokenExpired => StatusCode::GONE,
            CoreError::TokenUsed => StatusCode::CONFLICT,
            CoreError::AccountDisabled | CoreError::SignupDenied { .. } | CoreError::InvitationRequired => {
                StatusCode::FORBIDDEN
            }
            CoreError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            CoreError::Busy { .. } | CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // Validation is answered above; the rest are not answers of the contract use cases.
            CoreError::Validation(_)
            | CoreError::UsernameTaken
            | CoreError::OpenRegistrationDisabled
            | CoreError::EmailTaken
            | CoreError::InstanceNameUnavailable
            | CoreError::ProvisioningFailed
            | CoreError::TokenNotFound
            | CoreError::InvalidCredentials
            | CoreError::NotActivated
            | CoreError::SessionInvalid
            | CoreError::AdminUnauthorized
            | CoreError::AdminForbidden
            | CoreError::UserNotFound
            | CoreError::NotFound { .. }
            | CoreError::WrongState(_)
            | CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, code = e.code(), "contract request failed");
        }
        let message = match &e {
            CoreError::TokenExpired => "The code has expired; ask for a new one.".to_owned(),
            CoreError::TokenUsed => "No code is waiting for this account.".to_owned(),
            other => other.public_message(),
        };
        let mut error = Self::new(status, &message);
        error.retry_after = e.retry_after();
        error
    }
}

impl IntoResponse for DpError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        crate::http::with_retry_after((self.status, axum::Json(body)).into_response(), self.retry_after)
    }
}

async fn wrong_method() -> DpError {
    DpError::new(StatusCode::METHOD_NOT_ALLOWED, "This resource does not take that method.")
}

/// The instance and the app that calls, by its `X-Api-Key`.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<(Instance, App), DpError> {
    use super::extract::CallerProblem;
    super::extract::keyed_app(state, headers).await.map_err(|p| match p {
        CallerProblem::NoInstance => CoreError::InstanceNotFound.into(),
        CallerProblem::BadKey => DpError::new(StatusCode::UNAUTHORIZED, "A valid X-Api-Key is required."),
        CallerProblem::Core(e) => e.into(),
    })
}

/// The account as the 201 and "Get Account Data" show it: `dpKey`, the external key where the
/// app has one, and the contract fields (never a password).
fn account_body(account: &ContractAccount) -> Value {
    let mut body: Map<String, Value> = account
        .profile
        .as_deref()
        .and_then(|p| serde_json::from_str::<Map<String, Value>>(p).ok())
        .unwrap_or_default();
    body.insert("dpKey".into(), json!(account.dp_key));
    if let Some((key_type, key)) = account.ext_keys.first() {
        body.insert("extKeyType".into(), json!(key_type));
        body.insert("extKey".into(), json!(key));
    }
    Value::Object(body)
}

fn dp_key(id: &str) -> Result<i64, DpError> {
    id.parse().map_err(|_| DpError::new(StatusCode::NOT_FOUND, "No such account."))
}

fn json_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, DpError> {
    let bytes = super::body_bytes(body).map_err(|p| DpError::new(p.status(), &p.message()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| DpError::new(StatusCode::BAD_REQUEST, "The body must be a JSON object."))
}

async fn create_with(
    state: AppState,
    (headers, client): (HeaderMap, super::extract::ClientAddr),
    contract_id: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DpError> {
    let (instance, app) = caller(&state, &headers).await?;
    let contract = state.onramp.contract_accounts().contract(&instance, &app, contract_id.as_deref()).await?;
    let body = json_object(body)?;
    let client = client.key();
    match state
        .onramp
        .contract_accounts()
        .create(
            &instance,
            &app,
            &contract,
            &body,
            client.as_deref(),
            super::extract::captcha_header(&headers).as_deref(),
        )
        .await?
    {
        ContractResult::Created(account) => {
            state.metrics.signups.inc();
            Ok((StatusCode::CREATED, axum::Json(account_body(&account))).into_response())
        }
        ContractResult::ExistsElsewhere => {
            Err(DpError::new(StatusCode::CONFLICT, "An account with these details already exists."))
        }
        ContractResult::Exists { dp_key } => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/user/{dp_key}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
    }
}

/// Create an account with the app's default contract.
#[utoipa::path(post, path = "/user", operation_id = "dp_create_default", tag = "dialogportal", request_body = crate::http::openapi::ContractAccountBody,
    security(("app_key" = [])),
    responses((status = 201, description = "as `POST /user/{id}`"), (status = 303, description = "the account exists: `Location: /user/{dpKey}`"),
              (status = 400, body = crate::http::openapi::ContractErrorBody, description = "`{code: \"400\" | \"400.3\" | \"400.4\" | \"400.5\", message, field, errors}`"),
              (status = 401, body = crate::http::openapi::ContractErrorBody, description = "X-Api-Key"), (status = 404, body = crate::http::openapi::ContractErrorBody, description = "the app has no default contract"),
              (status = 409, body = crate::http::openapi::ContractErrorBody, description = "an account with these details exists, readable by another app only")))]
pub async fn create_default(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: super::extract::ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DpError> {
    create_with(state, (headers, client), None, body).await
}

/// Create an account with the fields of a contract (seed 003, endpoint 1001).
#[utoipa::path(post, path = "/user/{id}", operation_id = "dp_create", tag = "dialogportal", request_body = crate::http::openapi::ContractAccountBody,
    params(("id" = String, Path, description = "The contract's id")), security(("app_key" = [])),
    responses((status = 201, description = "`{dpKey, extKeyType?, extKey?, …fields}`"),
              (status = 303, description = "the account exists: `Location: /user/{dpKey}`"),
              (status = 400, body = crate::http::openapi::ContractErrorBody, description = "`{code: \"400\" | \"400.3\" | \"400.4\" | \"400.5\", message, field, errors}`"),
              (status = 401, body = crate::http::openapi::ContractErrorBody, description = "X-Api-Key"), (status = 404, body = crate::http::openapi::ContractErrorBody, description = "no such contract"),
              (status = 409, body = crate::http::openapi::ContractErrorBody, description = "an account with these details exists, readable by another app only")))]
pub async fn create(
    State(state): State<AppState>,
    Path(contract_id): Path<String>,
    headers: HeaderMap,
    client: super::extract::ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DpError> {
    create_with(state, (headers, client), Some(contract_id), body).await
}

/// Get Account Data.
#[utoipa::path(get, path = "/user/{id}", operation_id = "dp_account", tag = "dialogportal",
    params(("id" = i64, Path, description = "The account's `dpKey`")), security(("app_key" = [])),
    responses((status = 200, description = "the 201's body"), (status = 401, body = crate::http::openapi::ContractErrorBody, description = "X-Api-Key"), (status = 404, body = crate::http::openapi::ContractErrorBody, description = "no such account")))]
pub async fn account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, DpError> {
    let (instance, app) = caller(&state, &headers).await?;
    let account = state.onramp.contract_accounts().account(&instance, &app, dp_key(&id)?).await?;
    Ok(axum::Json(account_body(&account)).into_response())
}

/// Verify the phone with the texted code `{code}`.
#[utoipa::path(post, path = "/user/{id}/verify-sms", operation_id = "dp_verify_sms", tag = "dialogportal", request_body = crate::http::openapi::VerifySmsBody,
    params(("id" = i64, Path, description = "The account's `dpKey`")), security(("app_key" = [])),
    responses((status = 200, description = "the account, now active"), (status = 401, body = crate::http::openapi::ContractErrorBody, description = "X-Api-Key"), (status = 400, body = crate::http::openapi::ContractErrorBody, description = "wrong code"),
              (status = 409, body = crate::http::openapi::ContractErrorBody, description = "no live code"), (status = 410, body = crate::http::openapi::ContractErrorBody, description = "expired")))]
pub async fn verify_sms(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DpError> {
    let (instance, app) = caller(&state, &headers).await?;
    let key = dp_key(&id)?;
    let body = json_object(body)?;
    let code = body.get("code").and_then(Value::as_str).unwrap_or_default();
    let account = state.onramp.contract_accounts().verify_sms(&instance, &app, key, code).await?;
    Ok(axum::Json(account_body(&account)).into_response())
}

/// Text a new code.
#[utoipa::path(post, path = "/user/{id}/resend-sms", operation_id = "dp_resend_sms", tag = "dialogportal",
    params(("id" = i64, Path, description = "The account's `dpKey`")), security(("app_key" = [])),
    responses((status = 202, description = "sent"), (status = 401, body = crate::http::openapi::ContractErrorBody, description = "X-Api-Key"), (status = 409, body = crate::http::openapi::ContractErrorBody, description = "nothing to resend"), (status = 429, body = crate::http::openapi::ContractErrorBody, description = "throttled")))]
pub async fn resend_sms(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, DpError> {
    let (instance, app) = caller(&state, &headers).await?;
    state.onramp.contract_accounts().resend_sms(&instance, &app, dp_key(&id)?).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
