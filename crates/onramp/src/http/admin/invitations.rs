//! `/admin/v1/instances/{instance}/invitations…`: invite an address to an app, list, resend,
//! revoke; and `…/webhooks`, where the instance's lifecycle events go.

use super::*;
use crate::http::v1::invitations::{InvitationBody, InvitationPage, InvitationParams};
use axum::extract::State;
use onramp_core::invitations::{InvitationQuery, InviteInput};

pub fn routes() -> Router<AppState> {
    let base = "/admin/v1/instances/{instance}/invitations";
    Router::new()
        .route(base, get(list).post(create))
        .route(&format!("{base}/{{invitation_id}}"), delete(revoke))
        .route(&format!("{base}/{{invitation_id}}/resend"), post(resend))
        .route("/admin/v1/instances/{instance}/webhooks", get(webhooks))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminInvitationRequest {
    pub email: String,
    /// The app the invitee joins.
    pub app_id: String,
    pub role: Option<String>,
    /// Seconds the link lives: 3600 to 2592000 (default 604800, 7 days).
    pub expires_in: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct InstancePath {
    pub instance: String,
}

#[derive(Debug, Deserialize)]
pub struct InvitationPath {
    pub instance: String,
    pub invitation_id: String,
}

/// Invite an address: it gets a mail with a single-use link to the hosted page that creates
/// its user (active, with the role).
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/invitations", operation_id = "admin_invite", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name")),
    request_body = AdminInvitationRequest, responses((status = 201, body = InvitationBody)))]
pub async fn create(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
    AdminJson(body): AdminJson<AdminInvitationRequest>,
) -> Result<(StatusCode, Json<InvitationBody>), AdminError> {
    let input =
        InviteInput { email: body.email, app_id: body.app_id, role: body.role, expires_in: body.expires_in };
    let created = state.onramp.admin().invite(&by, &instance, input).await?;
    Ok((StatusCode::CREATED, Json(InvitationBody::of(created, state.onramp.now()))))
}

/// An instance's invitations, newest first.
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/invitations", operation_id = "admin_invitations", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name"), InvitationParams),
    responses((status = 200, body = InvitationPage)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
    AdminQuery(q): AdminQuery<InvitationParams>,
) -> Result<Json<InvitationPage>, AdminError> {
    let query = InvitationQuery { email: q.email, cursor: q.cursor, limit: q.limit };
    let page = state.onramp.admin().invitations(&by, &instance, &query).await?;
    let now = state.onramp.now();
    Ok(Json(InvitationPage {
        items: page.items.into_iter().map(|i| InvitationBody::of(i, now)).collect(),
        next_cursor: page.next.map(cursor_text),
    }))
}

/// A fresh link (the old one stops working) and mail, valid for 7 days again.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/invitations/{invitation_id}/resend", operation_id = "admin_invitation_resend", tag = "admin",
    security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("invitation_id" = String, Path, description = "`inv_…`")),
    responses((status = 200, body = InvitationBody)))]
pub async fn resend(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InvitationPath { instance, invitation_id }): AdminPath<InvitationPath>,
) -> Result<Json<InvitationBody>, AdminError> {
    let renewed = state.onramp.admin().resend_invitation(&by, &instance, &invitation_id).await?;
    Ok(Json(InvitationBody::of(renewed, state.onramp.now())))
}

/// Revoke a pending invitation.
#[utoipa::path(delete, path = "/admin/v1/instances/{instance}/invitations/{invitation_id}", operation_id = "admin_invitation_revoke", tag = "admin",
    security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("invitation_id" = String, Path, description = "`inv_…`")),
    responses((status = 200, body = InvitationBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InvitationPath { instance, invitation_id }): AdminPath<InvitationPath>,
) -> Result<Json<InvitationBody>, AdminError> {
    let revoked = state.onramp.admin().revoke_invitation(&by, &instance, &invitation_id).await?;
    Ok(Json(InvitationBody::of(revoked, state.onramp.now())))
}

/// A lifecycle-event endpoint as the operator sees it (never its secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookBody {
    pub url: String,
    /// `all_instances` (`[[webhooks]]`) or `instance` (`[[instances.webhooks]]`).
    pub scope: String,
    /// The event types it gets; empty: every type.
    pub events: Vec<String>,
    /// While a secret is rotated out: until when the old one signs too.
    pub previous_secret_expires_at: Option<String>,
    pub timeout_secs: u64,
}

/// The endpoints an instance's lifecycle events go to, as the configuration sets them (each
/// change there is applied at the next start).
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/webhooks", operation_id = "admin_webhooks", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name")),
    responses((status = 200, body = Vec<WebhookBody>)))]
pub async fn webhooks(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
) -> Result<Json<Vec<WebhookBody>>, AdminError> {
    let summary = state.onramp.admin().instance(&by, &instance).await?;
    let own =
        state.config.instances.iter().filter(|i| i.name == summary.name).flat_map(|i| i.webhooks.iter());
    let all = state.config.webhooks.iter().map(|w| ("all_instances", w)).chain(own.map(|w| ("instance", w)));
    Ok(Json(
        all.map(|(scope, w)| WebhookBody {
            url: w.url.clone(),
            scope: scope.into(),
            events: w.events.clone(),
            previous_secret_expires_at: w.previous_secret.as_ref().and(w.previous_secret_expires_at.clone()),
            timeout_secs: w.timeout_secs,
        })
        .collect(),
    ))
}
