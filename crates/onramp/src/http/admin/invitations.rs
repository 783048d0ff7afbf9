//! `/admin/v1/instances/{instance}/invitations…`: invite an address to an app, list, resend,
//! revoke.

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
