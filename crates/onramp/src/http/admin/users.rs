//! `/admin/v1/instances/{instance}/users…`: find, read, disable, enable, resend, reset, revoke,
//! delete, export.

use super::*;
use axum::extract::State;
use onramp_core::admin::UserQuery;
use onramp_core::model::UserRecord;

pub fn routes() -> Router<AppState> {
    let base = "/admin/v1/instances/{instance}/users";
    Router::new()
        .route(base, get(list))
        .route(&format!("{base}/export"), get(export))
        .route(&format!("{base}/import"), post(import).layer(axum::extract::DefaultBodyLimit::disable()))
        .route(&format!("{base}/{{user_id}}"), get(show).delete(erase))
        .route(&format!("{base}/{{user_id}}/disable"), post(disable))
        .route(&format!("{base}/{{user_id}}/enable"), post(enable))
        .route(&format!("{base}/{{user_id}}/resend-verification"), post(resend_verification))
        .route(&format!("{base}/{{user_id}}/require-password-reset"), post(require_password_reset))
        .route(&format!("{base}/{{user_id}}/revoke-sessions"), post(revoke_sessions))
}

/// A user as the operator sees them: everything but secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    /// The public id (`usr_…`).
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub language: String,
    /// `pending`, `active`, `inactive` (disabled), `unconfirmed` or `deleted` (a tombstone).
    pub status: String,
    /// The app it signed up through, when known.
    pub app_id: Option<String>,
    /// Its account (`/v1` signups).
    pub account_id: Option<String>,
    pub roles: Vec<String>,
    /// A contract account's fields.
    pub fields: Option<Value>,
    /// What an import kept from the system the user came from.
    pub metadata: Option<Value>,
    pub created_at: String,
    pub activated_at: Option<String>,
    /// Live sessions.
    pub sessions: i64,
    /// `false` when no password works (a required reset, a deleted user).
    pub has_password: bool,
}

impl From<UserRecord> for UserBody {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.public_id,
            email: u.email,
            username: u.username,
            name: u.name,
            first_name: u.profile.first_name,
            last_name: u.profile.last_name,
            display_name: u.profile.display_name,
            company: u.profile.company,
            phone: u.profile.phone,
            language: u.language,
            status: u.status.as_str().into(),
            app_id: u.app_id,
            account_id: u.account_id,
            roles: u.roles,
            fields: u.fields.and_then(|f| serde_json::from_str(&f).ok()),
            metadata: u.metadata.and_then(|m| serde_json::from_str(&m).ok()),
            created_at: rfc3339(u.created_at),
            activated_at: u.activated_at.map(rfc3339),
            sessions: u.sessions,
            has_password: u.has_password,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserParams {
    /// A whole address (exact match) or the start of one.
    pub email: Option<String>,
    pub username: Option<String>,
    /// As stored (international form).
    pub phone: Option<String>,
    /// `pending`, `active`, `inactive`, `unconfirmed` or `deleted`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct InstancePath {
    pub instance: String,
}

#[derive(Debug, Deserialize)]
pub struct UserPath {
    pub instance: String,
    pub user_id: String,
}

/// An instance's users, newest first, filtered.
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/users", operation_id = "admin_users", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name"), UserParams),
    responses((status = 200, body = PageBody<UserBody>)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
    AdminQuery(q): AdminQuery<UserParams>,
) -> Result<Json<PageBody<UserBody>>, AdminError> {
    let query = UserQuery {
        email: q.email,
        username: q.username,
        phone: q.phone,
        status: q.status,
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = state.onramp.admin().users(&by, &instance, &query).await?;
    Ok(Json(PageBody::of(page, UserBody::from)))
}

/// One user.
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/users/{user_id}", operation_id = "admin_user", tag = "admin",
    security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("user_id" = String, Path, description = "`usr_…`")),
    responses((status = 200, body = UserBody)))]
pub async fn show(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(UserPath { instance, user_id }): AdminPath<UserPath>,
) -> Result<Json<UserBody>, AdminError> {
    Ok(Json(state.onramp.admin().user(&by, &instance, &user_id).await?.into()))
}

/// Disable a user: no login on any surface, every session ended, live codes and links void.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/users/{user_id}/disable", operation_id = "admin_disable_user",
    tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("user_id" = String, Path, description = "`usr_…`")),
    responses((status = 200, body = UserBody), (status = 409, body = AdminErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(UserPath { instance, user_id }): AdminPath<UserPath>,
) -> Result<Json<UserBody>, AdminError> {
    Ok(Json(state.onramp.admin().set_user_enabled(&by, &instance, &user_id, false).await?.into()))
}

/// Enable a disabled user: active again, or pending when they never activated.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/users/{user_id}/enable", operation_id = "admin_enable_user",
    tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("user_id" = String, Path, description = "`usr_…`")),
    responses((status = 200, body = UserBody), (status = 409, body = AdminErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(UserPath { instance, user_id }): AdminPath<UserPath>,
) -> Result<Json<UserBody>, AdminError> {
    Ok(Json(state.onramp.admin().set_user_enabled(&by, &instance, &user_id, true).await?.into()))
}

/// Send a pending user's verification again, the way they signed up (activation link,
/// confirmation code or texted code); earlier ones stop working.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/users/{user_id}/resend-verification",
    operation_id = "admin_resend_verification", tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("user_id" = String, Path, description = "`usr_…`")),
    responses((status = 202, description = "Queued for delivery"), (status = 409, body = AdminErrorBody)))]
pub async fn resend_verification(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(UserPath { instance, user_id }): AdminPath<UserPath>,
) -> Result<StatusCode, AdminError> {
    state.onramp.admin().resend_verification(&by, &instance, &user_id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Make a user choose a new password: the current one stops working, every session ends, and
/// a reset code is mailed.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/users/{user_id}/require-password-reset",
    operation_id = "admin_require_password_reset", tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("user_id" = String, Path, description = "`usr_…`")),
    responses((status = 202, description = "The password is void; the reset mail is queued"), (status = 409, body = AdminErrorBody)))]
pub async fn require_password_reset(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(UserPath { instance, user_id }): AdminPath<UserPath>,
) -> Result<StatusCode, AdminError> {
    state.onramp.admin().require_password_reset(&by, &instance, &user_id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// How many live sessions were ended.
    pub revoked: u64,
}

/// End every live session of a user.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/users/{user_id}/revoke-sessions",
    operation_id = "admin_revoke_sessions", tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("user_id" = String, Path, description = "`usr_…`")),
    responses((status = 200, body = Revoked), (status = 409, body = AdminErrorBody)))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(UserPath { instance, user_id }): AdminPath<UserPath>,
) -> Result<Json<Revoked>, AdminError> {
    let revoked = state.onramp.admin().revoke_sessions(&by, &instance, &user_id).await?;
    Ok(Json(Revoked { revoked }))
}

/// Delete a user: their personal data is erased; an anonymous tombstone (the id) stays for
/// the audit log. The address is free for a new signup.
#[utoipa::path(delete, path = "/admin/v1/instances/{instance}/users/{user_id}", operation_id = "admin_delete_user",
    tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("user_id" = String, Path, description = "`usr_…`")),
    responses((status = 204, description = "Erased"), (status = 409, body = AdminErrorBody)))]
pub async fn erase(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(UserPath { instance, user_id }): AdminPath<UserPath>,
) -> Result<StatusCode, AdminError> {
    state.onramp.admin().delete_user(&by, &instance, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Users read per round trip of an export.
const EXPORT_BATCH: u32 = 500;

/// Every user of an instance (deleted ones left out), oldest first, as JSON Lines: one
/// `UserBody` per line, no secrets. Streamed: memory stays flat however many there are.
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/users/export", operation_id = "admin_export_users",
    tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name")),
    responses((status = 200, description = "One user per line", content_type = "application/x-ndjson", body = String)))]
pub async fn export(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
) -> Result<Response, AdminError> {
    let instance = state.onramp.admin().instance(&by, &instance).await?;
    let admin = state.onramp.clone();
    let lines = futures_util::stream::unfold(Some(0i64), move |after| {
        let (admin, by, instance) = (admin.clone(), by.clone(), instance.clone());
        async move {
            let after = after?;
            match admin.admin().export_page(&by, &instance, after, EXPORT_BATCH).await {
                Ok(users) if users.is_empty() => None,
                Ok(users) => {
                    let next = users.last().map(|u| u.key);
                    let mut chunk = Vec::new();
                    for user in users {
                        if serde_json::to_writer(&mut chunk, &UserBody::from(user)).is_ok() {
                            chunk.push(b'\n');
                        }
                    }
                    Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk)), next))
                }
                Err(e) => {
                    tracing::error!(error = %e, "export stopped");
                    Some((Err(std::io::Error::other("export stopped")), None))
                }
            }
        }
    });
    let body = axum::body::Body::from_stream(lines);
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// `application/x-ndjson`, `application/jsonl` or `application/x-jsonlines`.
pub fn is_json_lines(essence: &str) -> bool {
    matches!(
        essence,
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" | "application/json-seq"
    )
}

/// One row of an import, as the body gives it (every field optional but `email`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ImportRowBody {
    /// Required.
    email: String,
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    username: Option<String>,
    /// International form.
    phone: Option<String>,
    /// `active` (default), `pending` or `inactive`.
    status: Option<String>,
    language: Option<String>,
    /// Kept with the user.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// The old system's hash: PHC (`$argon2id$`, `$argon2i$`, `$argon2d$`, `$scrypt$`,
    /// `$pbkdf2-sha256$`), bcrypt (`$2a$`, `$2b$`, `$2y$`), Django (`pbkdf2_sha256$…`), or an
    /// object `{hash, salt, salt_separator, signer_key, rounds, mem_cost}` for Firebase scrypt.
    /// None: the user sets a password by reset.
    #[schema(value_type = Option<Object>)]
    password_hash: Option<String>,
}

/// The import's answer: one line per row, then a summary line.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportLine {
    /// The row's number, from 1.
    pub row: usize,
    /// `created`, `skipped` (the address is a user already) or `error`.
    pub result: &'static str,
    /// The new user's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ImportSummary {
    pub created: u64,
    pub skipped: u64,
    pub errors: u64,
    /// Set when the body could not be read on (an unclosed JSON array): rows after it were
    /// not imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl ImportSummary {
    fn count(&mut self, result: &onramp_core::import::RowResult) {
        use onramp_core::import::RowResult;
        match result {
            RowResult::Created { .. } => self.created += 1,
            RowResult::Duplicate => self.skipped += 1,
            RowResult::Refused { .. } => self.errors += 1,
        }
    }
}

pub fn import_line(row: usize, result: onramp_core::import::RowResult) -> ImportLine {
    use onramp_core::import::RowResult;
    match result {
        RowResult::Created { id } => {
            ImportLine { row, result: "created", id: Some(id), code: None, reason: None }
        }
        RowResult::Duplicate => ImportLine {
            row,
            result: "skipped",
            id: None,
            code: Some("duplicate"),
            reason: Some("the address is a user already".into()),
        },
        RowResult::Refused { code, reason } => {
            ImportLine { row, result: "error", id: None, code: Some(code), reason: Some(reason) }
        }
    }
}

/// Import users from a JSON array or JSON Lines (`Content-Type: application/x-ndjson`), any
/// number of them: the body is read a batch at a time and the answer streamed, one line per
/// row (`created`, `skipped` as a duplicate, or `error` with a code and reason), then
/// `{"summary": {created, skipped, errors}}`. Safe to run again: rows already imported are
/// skipped. Imported users log in with their old password, rehashed to Argon2id at once.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/users/import", operation_id = "admin_import_users",
    tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name")),
    request_body(content = Vec<ImportRowBody>, description = "A JSON array of rows, or JSON Lines with `Content-Type: application/x-ndjson`"),
    responses((status = 200, description = "One `ImportLine` per row, then `{\"summary\": ImportSummary}`",
               content_type = "application/x-ndjson", body = ImportLine)))]
pub async fn import(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
    body: axum::body::Body,
) -> Result<Response, AdminError> {
    let target = state.onramp.admin().import_target(&by, &instance).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<axum::body::Bytes>(16);
    let onramp = state.onramp.clone();
    tokio::spawn(async move {
        let summary = run_import(&onramp, &by, &target, body.into_data_stream(), &tx).await;
        let mut last = serde_json::to_vec(&serde_json::json!({ "summary": summary })).unwrap_or_default();
        last.push(b'\n');
        let _ = tx.send(last.into()).await;
    });
    let lines =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(Ok::<_, std::io::Error>)));
    let body = axum::body::Body::from_stream(lines);
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// Read `input` a chunk at a time, import each batch, send a line per row; the summary.
pub async fn run_import<S, E>(
    onramp: &onramp_core::Onramp,
    by: &AdminPrincipal,
    target: &onramp_core::model::InstanceSummary,
    mut input: S,
    out: &tokio::sync::mpsc::Sender<axum::body::Bytes>,
) -> ImportSummary
where
    S: futures_util::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures_util::StreamExt;
    use onramp_core::import::{BATCH, RowSplitter};
    let mut splitter = RowSplitter::default();
    let mut rows = Vec::new();
    let mut summary = ImportSummary::default();
    let mut ended = false;
    while !ended {
        match input.next().await {
            Some(Ok(chunk)) => {
                if let Err(why) = splitter.feed(&chunk, &mut rows) {
                    summary.stopped = Some(why);
                    ended = true;
                }
            }
            Some(Err(e)) => {
                summary.stopped = Some(format!("the body could not be read: {e}"));
                ended = true;
            }
            None => {
                if let Err(why) = splitter.finish(&mut rows) {
                    summary.stopped = Some(why);
                }
                ended = true;
            }
        }
        while rows.len() >= BATCH || (ended && !rows.is_empty()) {
            let batch: Vec<_> = rows.drain(..rows.len().min(BATCH)).collect();
            let results = match onramp.admin().import_batch(by, target, batch).await {
                Ok(results) => results,
                Err(e) => {
                    tracing::error!(error = %e, "import stopped");
                    summary.stopped = Some(format!("stopped: {}", e.public_message()));
                    return summary;
                }
            };
            let mut chunk = Vec::new();
            for (row, result) in results {
                summary.count(&result);
                if serde_json::to_writer(&mut chunk, &import_line(row, result)).is_ok() {
                    chunk.push(b'\n');
                }
            }
            if out.send(chunk.into()).await.is_err() {
                // The client went away: what was imported stays, the rest is not read.
                return summary;
            }
        }
    }
    summary
}
