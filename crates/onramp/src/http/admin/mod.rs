//! The admin API, `/admin/v1` (issue 13): instances, apps, users, the outbox and the audit log,
//! for operators. Every call carries `Authorization: Bearer <admin token>`; a token is global or
//! scoped to one instance, read-only or read-write. Errors are `{"error": {"code", "message",
//! "fields"?}}` with a stable code: 401 without a live token, 403 outside its scope. Never
//! callable from a page of another origin (no CORS), and never cached.

pub mod instances;
pub mod invitations;
pub mod users;

use crate::http::AppState;
use crate::http::extract::ClientAddr;
use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use onramp_core::CoreError;
use onramp_core::admin::{AdminPrincipal, cursor_text};
use onramp_core::model::{AdminTokenRecord, AuditEvent, OutboxEntry, Page};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

/// The admin token's security scheme in the OpenAPI document.
pub const ADMIN_TOKEN: &str = "admin_token";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/tokens", get(list_tokens).post(create_token))
        .route("/admin/v1/tokens/{token_id}", delete(revoke_token))
        .route("/admin/v1/outbox", get(outbox))
        .route("/admin/v1/outbox/retry-dead", post(retry_dead))
        .route("/admin/v1/outbox/{message_id}/retry", post(retry_message))
        .route("/admin/v1/audit", get(audit))
        .merge(instances::routes())
        .merge(users::routes())
        .merge(invitations::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(crate::http::no_store())
}

// --- errors ---------------------------------------------------------------------------------

/// The admin API's error: `{"error": {"code", "message", "fields"?}}`.
#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub fields: Vec<AdminFieldError>,
    pub retry_after: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminErrorBody {
    pub error: AdminErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminErrorDetail {
    /// Stable: `unauthorized`, `forbidden`, `not_found`, `validation_failed`, `wrong_state`, …
    pub code: String,
    pub message: String,
    /// On `validation_failed`: each field's problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<AdminFieldError>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminFieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl AdminError {
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Self { status, code: code.into(), message: message.into(), fields: Vec::new(), retry_after: None }
    }

    fn bad_request(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }
}

impl From<CoreError> for AdminError {
    fn from(e: CoreError) -> Self {
        let status = match &e {
            CoreError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            CoreError::AdminForbidden => StatusCode::FORBIDDEN,
            CoreError::InstanceNotFound
            | CoreError::AppNotFound
            | CoreError::ContractNotFound
            | CoreError::AccountNotFound
            | CoreError::UserNotFound
            | CoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            CoreError::WrongState(_)
            | CoreError::InstanceNameUnavailable
            | CoreError::EmailTaken
            | CoreError::UsernameTaken => StatusCode::CONFLICT,
            CoreError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            CoreError::Busy { .. } | CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // Not answers of the admin use cases: a bug if they reach here. A failed
            // provisioning is left visible (`provisioning_failed`) and said so.
            CoreError::ProvisioningFailed
            | CoreError::OpenRegistrationDisabled
            | CoreError::TokenNotFound
            | CoreError::TokenExpired
            | CoreError::TokenUsed
            | CoreError::InvalidCredentials
            | CoreError::NotActivated
            | CoreError::AccountDisabled
            | CoreError::SessionInvalid
            | CoreError::SignupDenied { .. }
            | CoreError::InvitationRequired
            | CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, code = e.code(), "admin request failed");
        }
        let fields = match &e {
            CoreError::Validation(f) => f
                .iter()
                .map(|f| AdminFieldError {
                    field: f.field.clone(),
                    code: f.code.into(),
                    message: f.message.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        Self {
            status,
            code: e.code().into(),
            message: e.public_message(),
            fields,
            retry_after: e.retry_after(),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = AdminErrorBody {
            error: AdminErrorDetail {
                code: self.code,
                message: self.message,
                fields: Some(self.fields).filter(|f| !f.is_empty()),
            },
        };
        let mut response =
            crate::http::with_retry_after((self.status, Json(body)).into_response(), self.retry_after);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub async fn not_found() -> AdminError {
    AdminError::new(StatusCode::NOT_FOUND, "not_found", "No such admin endpoint.")
}

pub async fn method_not_allowed() -> AdminError {
    AdminError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not take that method.",
    )
}

// --- extractors -----------------------------------------------------------------------------

/// The caller: the principal its bearer token stands for.
pub struct Caller(pub AdminPrincipal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ClientAddr(client) =
            ClientAddr::from_request_parts(parts, state).await.unwrap_or(ClientAddr(None));
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or_default();
        let principal = state.onramp.admin().authenticate(token, client.map(|c| c.to_string())).await?;
        Ok(Self(principal))
    }
}

/// A JSON body whose every rejection is an admin error.
pub struct AdminJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AdminError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with Content-Type: application/json.",
            )),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AdminError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &format!("The body must be at most {} bytes.", crate::http::BODY_LIMIT),
            )),
            Err(JsonRejection::JsonSyntaxError(_)) => {
                Err(AdminError::new(StatusCode::BAD_REQUEST, "malformed_json", "The body is not valid JSON."))
            }
            Err(r) => Err(AdminError::bad_request(&r.body_text())),
        }
    }
}

/// Query parameters whose every rejection is an admin error.
pub struct AdminQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for AdminQuery<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(r @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                Err(AdminError::bad_request(&r.body_text()))
            }
            Err(r) => Err(AdminError::bad_request(&r.body_text())),
        }
    }
}

/// Path parameters whose every rejection is an admin 404.
pub struct AdminPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for AdminPath<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(_) => Err(AdminError::new(StatusCode::NOT_FOUND, "not_found", "No such resource.")),
        }
    }
}

// --- shapes shared by the endpoints -----------------------------------------------------------

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A page of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageBody<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> PageBody<T> {
    pub fn of<U>(page: Page<U>, each: impl Fn(U) -> T) -> Self {
        Self { items: page.items.into_iter().map(each).collect(), next_cursor: page.next.map(cursor_text) }
    }
}

/// An address with most of it hidden: `j***@example.com`, `+31******78`.
pub fn mask(recipient: &str) -> String {
    if let Some((local, domain)) = recipient.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = recipient.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 5))
}

/// An admin token (never the token itself, which is shown once when created).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenBody {
    pub id: String,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    pub label: String,
    /// The instance it is scoped to; `null`: every instance.
    pub instance: Option<String>,
    pub read_only: bool,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<AdminTokenRecord> for TokenBody {
    fn from(t: AdminTokenRecord) -> Self {
        Self {
            id: t.id,
            prefix: t.prefix,
            label: t.label,
            instance: t.instance_name,
            read_only: t.scope.read_only,
            created_at: rfc3339(t.created_at),
            revoked_at: t.revoked_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Scope the token to this instance; absent: every instance.
    pub instance: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token: shown only now, stored only as a hash.
    pub token: String,
    #[serde(flatten)]
    pub record: TokenBody,
}

/// List admin tokens (a global token only).
#[utoipa::path(get, path = "/admin/v1/tokens", operation_id = "admin_list_tokens", tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, body = Vec<TokenBody>)))]
pub async fn list_tokens(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(by): Caller,
) -> Result<Json<Vec<TokenBody>>, AdminError> {
    let tokens = state.onramp.admin().tokens(&by).await?;
    Ok(Json(tokens.into_iter().map(TokenBody::from).collect()))
}

/// Create an admin token (a global read-write token only); the token is in this answer only.
#[utoipa::path(post, path = "/admin/v1/tokens", operation_id = "admin_create_token", tag = "admin",
    security(("admin_token" = [])), request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken)))]
pub async fn create_token(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(by): Caller,
    AdminJson(body): AdminJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), AdminError> {
    let (record, token) =
        state.onramp.admin().create_token(&by, body.instance.as_deref(), body.read_only, &body.label).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, record: record.into() })))
}

/// Revoke an admin token; calls with it are refused at once.
#[utoipa::path(delete, path = "/admin/v1/tokens/{token_id}", operation_id = "admin_revoke_token", tag = "admin",
    security(("admin_token" = [])), params(("token_id" = String, Path, description = "The token's id (`adm_…`)")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_token(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(by): Caller,
    AdminPath(id): AdminPath<String>,
) -> Result<StatusCode, AdminError> {
    state.onramp.admin().revoke_token(&by, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- outbox -----------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxEntryBody {
    pub id: i64,
    pub instance: String,
    /// `mail:<template>` or `sms:<template>`.
    pub kind: String,
    /// The recipient, mostly hidden.
    pub recipient: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: String,
}

impl From<OutboxEntry> for OutboxEntryBody {
    fn from(e: OutboxEntry) -> Self {
        Self {
            id: e.id,
            instance: e.instance,
            kind: e.kind,
            recipient: mask(&e.recipient),
            status: e.status,
            attempts: e.attempts,
            next_attempt_at: rfc3339(e.next_attempt_at),
            last_error: e.last_error,
            created_at: rfc3339(e.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxParams {
    /// `pending`, `dead` or `delivered`.
    pub status: Option<String>,
    /// An instance's name.
    pub instance: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// Outbox messages, newest first (a scoped token sees its instance's).
#[utoipa::path(get, path = "/admin/v1/outbox", operation_id = "admin_outbox", tag = "admin",
    security(("admin_token" = [])), params(OutboxParams),
    responses((status = 200, body = PageBody<OutboxEntryBody>)))]
pub async fn outbox(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(by): Caller,
    AdminQuery(q): AdminQuery<OutboxParams>,
) -> Result<Json<PageBody<OutboxEntryBody>>, AdminError> {
    let page = state
        .onramp
        .admin()
        .outbox(&by, q.status.as_deref(), q.instance.as_deref(), q.cursor.as_deref(), q.limit)
        .await?;
    Ok(Json(PageBody::of(page, OutboxEntryBody::from)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    /// How many messages are due again.
    pub retried: u64,
}

/// Make one pending or dead message due now, its attempts reset.
#[utoipa::path(post, path = "/admin/v1/outbox/{message_id}/retry", operation_id = "admin_retry_message", tag = "admin",
    security(("admin_token" = [])), params(("message_id" = i64, Path, description = "The message's id")),
    responses((status = 200, body = Retried), (status = 409, body = AdminErrorBody)))]
pub async fn retry_message(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(by): Caller,
    AdminPath(id): AdminPath<i64>,
) -> Result<Json<Retried>, AdminError> {
    state.onramp.admin().retry_message(&by, id).await?;
    Ok(Json(Retried { retried: 1 }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetryDeadParams {
    /// Only this instance's dead letters.
    pub instance: Option<String>,
}

/// Make every dead letter due again (of one instance, or every one the token reaches).
#[utoipa::path(post, path = "/admin/v1/outbox/retry-dead", operation_id = "admin_retry_dead", tag = "admin",
    security(("admin_token" = [])), params(RetryDeadParams),
    responses((status = 200, body = Retried)))]
pub async fn retry_dead(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(by): Caller,
    AdminQuery(q): AdminQuery<RetryDeadParams>,
) -> Result<Json<Retried>, AdminError> {
    let retried = state.onramp.admin().retry_dead(&by, q.instance.as_deref()).await?;
    Ok(Json(Retried { retried }))
}

// --- audit ------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventBody {
    pub id: i64,
    pub instance: Option<String>,
    /// `user.disabled`, `login.failed`, … (the README's catalogue).
    #[serde(rename = "type")]
    pub kind: String,
    /// `admin:<token id>`, `cli`, `user:<user id>`, `anonymous` or `system`.
    pub actor: String,
    pub target: Option<String>,
    pub user_id: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    pub detail: Value,
    pub at: String,
}

impl From<AuditEvent> for AuditEventBody {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            instance: e.instance,
            kind: e.kind,
            actor: e.actor,
            target: e.target,
            user_id: e.user_id,
            client: e.client,
            detail: e.detail,
            at: rfc3339(e.at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// An instance's name.
    pub instance: Option<String>,
    /// A user's id (`usr_…`).
    pub user_id: Option<String>,
    /// An event type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// RFC 3339: only entries at or after this time.
    pub since: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// The audit log, newest first (a scoped token sees its instance's).
#[utoipa::path(get, path = "/admin/v1/audit", operation_id = "admin_audit", tag = "admin",
    security(("admin_token" = [])), params(AuditParams),
    responses((status = 200, body = PageBody<AuditEventBody>)))]
pub async fn audit(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(by): Caller,
    AdminQuery(q): AdminQuery<AuditParams>,
) -> Result<Json<PageBody<AuditEventBody>>, AdminError> {
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(time::OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            CoreError::field("since", "invalid_time", "must be an RFC 3339 time such as 2026-11-24T08:00:00Z")
        })?),
    };
    let query = onramp_core::admin::AuditQuery {
        user: q.user_id.as_deref(),
        kind: q.kind.as_deref(),
        since,
        cursor: q.cursor.as_deref(),
        limit: q.limit,
    };
    let page = state.onramp.admin().audit(&by, q.instance.as_deref(), query).await?;
    Ok(Json(PageBody::of(page, AuditEventBody::from)))
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn recipients_are_masked() {
        assert_eq!(mask("june@example.com"), "j***@example.com");
        assert_eq!(mask("+31612345678"), "+31*******78");
        assert_eq!(mask("12345"), "*****");
    }
}
