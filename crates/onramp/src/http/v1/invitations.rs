//! `/v1/invitations`: an app invites addresses with its API key (`X-API-Key`), lists, resends
//! and revokes its own invitations. Server to server: pages of other origins may call it only
//! when the app allows browser partner calls.

use super::error::{V1Error, V1ErrorBody};
use super::{V1Json, V1Query};
use crate::http::AppState;
use crate::http::extract::{CallerProblem, keyed_app};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use onramp_core::invitations::{InvitationQuery, InviteInput};
use onramp_core::model::{App, Instance, InvitationRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    /// The address to invite.
    #[serde(default)]
    pub email: String,
    /// The calling app's own id (the default); another app's is refused.
    pub app_id: Option<String>,
    /// The role the user gets on accepting.
    pub role: Option<String>,
    /// Seconds the link lives: 3600 to 2592000 (default 604800, 7 days).
    pub expires_in: Option<i64>,
}

/// An invitation (never its link, which only the invitee's mail carries).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationBody {
    /// `inv_…`
    pub id: String,
    pub email: String,
    pub app_id: String,
    pub role: Option<String>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    /// `admin:…`, `cli` or `app:…`.
    pub invited_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub accepted_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The user an accepted invitation made (`usr_…`).
    pub user_id: Option<String>,
}

impl InvitationBody {
    pub fn of(i: InvitationRecord, now: time::OffsetDateTime) -> Self {
        let time = crate::http::admin::rfc3339;
        Self {
            status: i.status(now).as_str().into(),
            id: i.public_id,
            email: i.email,
            app_id: i.app_id,
            role: i.role,
            invited_by: i.invited_by,
            created_at: time(i.created_at),
            expires_at: time(i.expires_at),
            accepted_at: i.accepted_at.map(time),
            revoked_at: i.revoked_at.map(time),
            user_id: i.user_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPage {
    pub items: Vec<InvitationBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationParams {
    /// An exact address.
    pub email: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

/// The instance and the app whose key the request carries, or a `/v1` error.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<(Instance, App), V1Error> {
    match keyed_app(state, headers).await {
        Ok(found) => Ok(found),
        Err(CallerProblem::NoInstance) => {
            Err(V1Error::new(StatusCode::NOT_FOUND, "instance_not_found", "No such instance."))
        }
        Err(CallerProblem::BadKey) => Err(V1Error::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Send a live API key of one of this instance's apps in X-API-Key.",
        )),
        Err(CallerProblem::Core(e)) => Err(e.into()),
    }
}

fn by(app: &App) -> String {
    format!("app:{}", app.id)
}

/// Invite an address to the calling app: it gets a mail with a single-use link to the hosted
/// page that creates its user.
#[utoipa::path(post, path = "/v1/invitations", operation_id = "v1_invite", tag = "v1", request_body = InvitationRequest,
    security(("app_key" = [])),
    responses((status = 201, body = InvitationBody), (status = 400, body = V1ErrorBody), (status = 401, body = V1ErrorBody),
              (status = 404, body = V1ErrorBody), (status = 415, body = V1ErrorBody), (status = 422, body = V1ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    V1Json(body): V1Json<InvitationRequest>,
) -> Result<(StatusCode, Json<InvitationBody>), V1Error> {
    let (instance, app) = caller(&state, &headers).await?;
    if body.app_id.as_deref().is_some_and(|a| a != app.id) {
        return Err(
            onramp_core::CoreError::field("app_id", "not_your_app", "must be the calling app's id").into()
        );
    }
    let input = InviteInput {
        email: body.email,
        app_id: app.id.clone(),
        role: body.role,
        expires_in: body.expires_in,
    };
    let created = state.onramp.invites().create(&instance, &by(&app), input).await?;
    Ok((StatusCode::CREATED, Json(InvitationBody::of(created, state.onramp.now()))))
}

/// The calling app's invitations, newest first.
#[utoipa::path(get, path = "/v1/invitations", operation_id = "v1_invitations", tag = "v1", params(InvitationParams),
    security(("app_key" = [])),
    responses((status = 200, body = InvitationPage), (status = 401, body = V1ErrorBody), (status = 422, body = V1ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    V1Query(q): V1Query<InvitationParams>,
) -> Result<Json<InvitationPage>, V1Error> {
    let (instance, app) = caller(&state, &headers).await?;
    let query = InvitationQuery { email: q.email, cursor: q.cursor, limit: q.limit };
    let page = state.onramp.invites().list(&instance, Some(&app.id), &query).await?;
    let now = state.onramp.now();
    Ok(Json(InvitationPage {
        items: page.items.into_iter().map(|i| InvitationBody::of(i, now)).collect(),
        next_cursor: page.next.map(onramp_core::admin::cursor_text),
    }))
}

#[derive(Debug, Deserialize)]
pub struct InvitationPath {
    pub id: String,
}

/// One of the calling app's invitations.
#[utoipa::path(get, path = "/v1/invitations/{id}", operation_id = "v1_invitation", tag = "v1",
    params(("id" = String, Path, description = "`inv_…`")), security(("app_key" = [])),
    responses((status = 200, body = InvitationBody), (status = 401, body = V1ErrorBody), (status = 404, body = V1ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(InvitationPath { id }): Path<InvitationPath>,
) -> Result<Json<InvitationBody>, V1Error> {
    let (instance, app) = caller(&state, &headers).await?;
    let found = state.onramp.invites().get(&instance, Some(&app.id), &id).await?;
    Ok(Json(InvitationBody::of(found, state.onramp.now())))
}

/// A fresh link (the old one stops working) and mail, valid for 7 days again.
#[utoipa::path(post, path = "/v1/invitations/{id}/resend", operation_id = "v1_invitation_resend", tag = "v1",
    params(("id" = String, Path, description = "`inv_…`")), security(("app_key" = [])),
    responses((status = 200, body = InvitationBody), (status = 401, body = V1ErrorBody), (status = 404, body = V1ErrorBody),
              (status = 409, body = V1ErrorBody)))]
pub async fn resend(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(InvitationPath { id }): Path<InvitationPath>,
) -> Result<Json<InvitationBody>, V1Error> {
    let (instance, app) = caller(&state, &headers).await?;
    let renewed = state.onramp.invites().resend(&instance, Some(&app.id), &id, &by(&app)).await?;
    Ok(Json(InvitationBody::of(renewed, state.onramp.now())))
}

/// Revoke: the link stops working, and an invite-only app no longer takes the address.
#[utoipa::path(delete, path = "/v1/invitations/{id}", operation_id = "v1_invitation_revoke", tag = "v1",
    params(("id" = String, Path, description = "`inv_…`")), security(("app_key" = [])),
    responses((status = 200, body = InvitationBody), (status = 401, body = V1ErrorBody), (status = 404, body = V1ErrorBody),
              (status = 409, body = V1ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(InvitationPath { id }): Path<InvitationPath>,
) -> Result<Json<InvitationBody>, V1Error> {
    let (instance, app) = caller(&state, &headers).await?;
    let revoked = state.onramp.invites().revoke(&instance, Some(&app.id), &id, &by(&app)).await?;
    Ok(Json(InvitationBody::of(revoked, state.onramp.now())))
}
