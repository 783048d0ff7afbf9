//! The operator's console, `/admin`: the admin API's use cases as pages, in the hosted pages'
//! design system (no external assets, the same CSP). Sign in with an admin token, kept in an
//! `HttpOnly`, `SameSite=Strict` cookie scoped to `/admin`; every form carries a CSRF token
//! derived from it and must come from this host. Server-rendered: no script at all.

use super::AppState;
use super::pages::{Look, cookie, same_origin_post};
use crate::branding::Brand;
use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Value, context};
use onramp_core::CoreError;
use onramp_core::admin::{AdminPrincipal, AuditQuery, UserQuery, cursor_text};
use onramp_core::invitations::{InvitationQuery, InviteInput};
use onramp_core::model::{AuditEvent, Instance, UserRecord};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

const TOKEN_COOKIE: &str = "onramp_admin";
const PRE_COOKIE: &str = "onramp_admin_pre";
/// How long a console sign-in lasts.
const SIGNED_IN_SECS: i64 = 8 * 3600;

pub fn routes() -> Router<AppState> {
    let user = "/admin/instances/{instance}/users/{user_id}";
    let app = "/admin/instances/{instance}/apps/{app_id}";
    Router::new()
        .route("/admin", get(home))
        .route("/admin/sign-in", get(sign_in_form).post(sign_in))
        .route("/admin/sign-out", post(sign_out))
        .route("/admin/instances/{instance}", get(instance))
        .route(&format!("{app}/keys"), post(create_key))
        .route(&format!("{app}/keys/{{key_id}}/revoke"), post(revoke_key))
        .route(&format!("{app}/origins"), post(set_origins))
        .route("/admin/instances/{instance}/users", get(users))
        .route("/admin/instances/{instance}/invitations", get(invitations).post(invite))
        .route("/admin/instances/{instance}/invitations/{invitation_id}/{action}", post(invitation_action))
        .route(user, get(user_page))
        .route(&format!("{user}/{{action}}"), post(user_action))
        .route("/admin/outbox", get(outbox))
        .route("/admin/outbox/retry-dead", post(retry_dead))
        .route("/admin/outbox/{message_id}/retry", post(retry_message))
        .route("/admin/audit", get(audit))
}

fn look(state: &AppState) -> Look {
    Look {
        lang: "en",
        brand: Brand::resolve(&state.config, onramp_core::model::DEFAULT_INSTANCE, None),
        captcha: None,
    }
}

fn csrf_of(token: &str) -> String {
    let digest = Sha256::digest(format!("onramp-console-csrf:{token}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn secure(state: &AppState) -> &'static str {
    if state.config.public_url.starts_with("https:") { "; Secure" } else { "" }
}

fn set_cookie(response: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A signed-in operator: the principal of the cookie's token, and the CSRF token its forms
/// carry. Without a live token, the request goes to the sign-in page.
pub struct Console {
    by: AdminPrincipal,
    csrf: String,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = cookie(&parts.headers, TOKEN_COOKIE).unwrap_or_default().to_owned();
        let client = super::client_addr(&parts.extensions, &parts.headers, &state.config.trusted_proxies);
        match state.onramp.admin().authenticate(&token, client.map(|c| c.to_string())).await {
            Ok(by) => Ok(Self { by, csrf: csrf_of(&token) }),
            Err(CoreError::AdminUnauthorized) => Err(Redirect::to("/admin/sign-in").into_response()),
            Err(e) => Err(failure(state, None, &e)),
        }
    }
}

impl Console {
    fn writable(&self) -> bool {
        !self.by.scope.read_only
    }

    /// The context every signed-in page has.
    fn context(&self, section: &str, done: Option<&str>) -> Value {
        let scope = match (self.by.scope.instance.is_some(), self.by.scope.read_only) {
            (false, false) => "every instance",
            (false, true) => "every instance, read-only",
            (true, false) => "one instance",
            (true, true) => "one instance, read-only",
        };
        context! { signed_in => true, csrf => self.csrf, section, scope, done => done.map(done_text) }
    }

    /// The refusal of a form that is not from this console with this session's CSRF token.
    fn refused(&self, state: &AppState, headers: &HeaderMap, csrf: &str) -> Option<Response> {
        if same_origin_post(headers) && same(csrf, &self.csrf) {
            None
        } else {
            Some(page(
                state,
                StatusCode::FORBIDDEN,
                "The form was refused",
                "It did not come from this console; reload the page and try again.",
                None,
            ))
        }
    }
}

fn done_text(done: &str) -> &'static str {
    match done {
        "disable" => "The user is disabled: no login on any surface, and every session ended.",
        "enable" => "The user is enabled again.",
        "resend-verification" => "The verification is on its way again.",
        "require-password-reset" => "The password no longer works; a reset code is on its way.",
        "revoke-sessions" => "Every session of the user has ended.",
        "delete" => "The user's personal data is erased.",
        "retried" => "The message is due again.",
        "retried-all" => "Every dead letter is due again.",
        "key-revoked" => "The key is revoked.",
        "origins" => "The allowed origins are saved.",
        "invited" => "The invitation is on its way.",
        "resend" => "The invitation is on its way again, with a new link.",
        "revoke" => "The invitation is revoked: its link works no more.",
        _ => "Done.",
    }
}

fn render(state: &AppState, status: StatusCode, name: &str, ctx: Value) -> Response {
    state.pages.render(&look(state), status, name, ctx)
}

fn page(state: &AppState, status: StatusCode, title: &str, message: &str, by: Option<&Console>) -> Response {
    let base = by.map(|o| o.context("", None)).unwrap_or_else(|| context! {});
    render(state, status, "console/message.html", context! { title, message, ..base })
}

/// A core error as a console page.
fn failure(state: &AppState, by: Option<&Console>, e: &CoreError) -> Response {
    let status = match e {
        CoreError::AdminForbidden => StatusCode::FORBIDDEN,
        CoreError::InstanceNotFound
        | CoreError::UserNotFound
        | CoreError::AppNotFound
        | CoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        CoreError::WrongState(_) => StatusCode::CONFLICT,
        CoreError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        CoreError::Busy { .. } | CoreError::Unavailable(_) | CoreError::RateLimited { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        other => {
            tracing::error!(error = %other, "console page failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let message = match e {
        CoreError::Validation(fields) => {
            fields.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.public_message(),
    };
    let title = if status == StatusCode::FORBIDDEN { "Not allowed" } else { "That did not work" };
    page(state, status, title, &message, by)
}

// --- signing in -------------------------------------------------------------------------------

pub async fn sign_in_form(State(state): State<AppState>) -> Response {
    sign_in_page(&state, StatusCode::OK, None)
}

fn sign_in_page(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let pre = state.onramp.uuid().simple().to_string();
    let mut response = render(state, status, "console/signin.html", context! { pre, error });
    let cookie =
        format!("{PRE_COOKIE}={pre}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=3600{}", secure(state));
    set_cookie(&mut response, cookie);
    response
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let pre = cookie(&headers, PRE_COOKIE).unwrap_or_default();
    if !same_origin_post(&headers) || !same(&form.csrf, pre) {
        return sign_in_page(&state, StatusCode::FORBIDDEN, Some("The form expired; try again."));
    }
    let token = form.token.trim();
    match state.onramp.admin().authenticate(token, None).await {
        Ok(_) => {
            let mut response = Redirect::to("/admin").into_response();
            let cookie = format!(
                "{TOKEN_COOKIE}={token}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={SIGNED_IN_SECS}{}",
                secure(&state)
            );
            set_cookie(&mut response, cookie);
            set_cookie(&mut response, format!("{PRE_COOKIE}=; Path=/admin; Max-Age=0"));
            response
        }
        Err(CoreError::AdminUnauthorized) => {
            sign_in_page(&state, StatusCode::UNAUTHORIZED, Some("That is not a live admin token."))
        }
        Err(e) => failure(&state, None, &e),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    op: Console,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    let mut response = Redirect::to("/admin/sign-in").into_response();
    set_cookie(&mut response, format!("{TOKEN_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"));
    response
}

// --- pages -------------------------------------------------------------------------------------

fn when(t: time::OffsetDateTime) -> String {
    format!("{} {:02}:{:02}", t.date(), t.hour(), t.minute())
}

pub async fn home(State(state): State<AppState>, op: Console) -> Response {
    let admin = state.onramp.admin();
    let instances = match admin.instances(&op.by).await {
        Ok(all) => all,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let counts = match outbox_counts(&state, &op).await {
        Ok(c) => c,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let rows: Vec<Value> = instances
        .into_iter()
        .map(|i| {
            context! { name => i.name, status => i.status.as_str(), status_detail => i.status_detail,
            users => i.users, apps => i.apps, created_at => when(i.created_at) }
        })
        .collect();
    render(
        &state,
        StatusCode::OK,
        "console/home.html",
        context! { instances => rows, counts, ..op.context("instances", None) },
    )
}

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    key: Option<String>,
    app: Option<String>,
}

pub async fn instance(
    State(state): State<AppState>,
    op: Console,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let summary = match state.onramp.admin().instance(&op.by, &name).await {
        Ok(s) => s,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let inst = Instance { id: summary.id, name: summary.name.clone() };
    let loaded = async {
        let settings = state.onramp.catalog().instance_settings(inst.id).await?;
        let keys = state.onramp.operator().api_keys(inst.id).await?;
        let mut apps = Vec::new();
        for id in state.origins.for_instance_apps(inst.id).await? {
            let Some(app) = state.onramp.catalog().app(&inst, &id).await? else { continue };
            let origins = state.origins.app(inst.id, &id).await?;
            let brand = Brand::resolve(&state.config, &inst.name, Some((&app.id, &app.name)));
            let app_keys: Vec<Value> = keys
                .iter()
                .filter(|k| k.app_id == app.id)
                .map(|k| {
                    context! { id => k.id, prefix => k.prefix, label => k.label, source => k.source,
                    created_at => when(k.created_at), revoked_at => k.revoked_at.map(when) }
                })
                .collect();
            apps.push(context! { id => app.id, name => app.name, signup_url => app.signup_url,
            origins => origins.allowed_origins, keys => app_keys, product_name => brand.name,
            accent => brand.accent, logo_url => brand.logo_url });
        }
        Ok::<_, CoreError>((settings, apps))
    };
    let (settings, apps) = match loaded.await {
        Ok(v) => v,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let new_key = done.key.as_ref().map(|k| context! { key => k, app => done.app });
    let ctx = context! {
        instance => context! { name => summary.name, status => summary.status.as_str(), users => summary.users, apps => summary.apps },
        settings => context! { open_registration => settings.open_registration },
        apps, new_key, writable => op.writable() && op.by.may_write(Some(summary.id)).is_ok(),
        ..op.context("instances", done.done.as_deref())
    };
    render(&state, StatusCode::OK, "console/instance.html", ctx)
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

pub async fn create_key(
    State(state): State<AppState>,
    op: Console,
    Path((name, app_id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    let made = async {
        let s = state.onramp.admin().instance(&op.by, &name).await?;
        let inst = Instance { id: s.id, name: s.name };
        state.onramp.api_keys().create(&op.by, &inst, &app_id, &form.label).await
    };
    match made.await {
        // The key is shown once, on the page this answer leads to; it never goes in a link.
        Ok((_, key)) => {
            let mut response = instance(
                State(state.clone()),
                op,
                Path(name),
                Query(Done { done: None, key: Some(key), app: Some(app_id) }),
            )
            .await;
            *response.status_mut() = StatusCode::CREATED;
            response
        }
        Err(e) => failure(&state, Some(&op), &e),
    }
}

pub async fn revoke_key(
    State(state): State<AppState>,
    op: Console,
    Path((name, app_id, key_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    let revoked = async {
        let s = state.onramp.admin().instance(&op.by, &name).await?;
        state.onramp.operator().revoke_app_key(&op.by, s.id, &app_id, &key_id).await
    };
    match revoked.await {
        Ok(()) => Redirect::to(&format!("/admin/instances/{name}?done=key-revoked")).into_response(),
        Err(e) => failure(&state, Some(&op), &e),
    }
}

#[derive(Deserialize)]
pub struct OriginsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    origins: String,
}

pub async fn set_origins(
    State(state): State<AppState>,
    op: Console,
    Path((name, app_id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<OriginsForm>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    let saved = async {
        let s = state.onramp.admin().instance(&op.by, &name).await?;
        op.by.may_write(Some(s.id))?;
        let origins: Vec<String> = form.origins.split_whitespace().map(str::to_owned).collect();
        state.origins.set(&op.by, s.id, &app_id, &origins, None).await.map(|_| ()).map_err(|e| match e {
            onramp_core::origin::SetOriginsError::Core(e) => e,
            invalid => CoreError::field("origins", "invalid_origin", &invalid.to_string()),
        })
    };
    match saved.await {
        Ok(()) => Redirect::to(&format!("/admin/instances/{name}?done=origins")).into_response(),
        Err(e) => failure(&state, Some(&op), &e),
    }
}

/// The whole outbox's counts, for a principal that sees every instance (a scoped one sees
/// only its own messages, listed).
async fn outbox_counts(state: &AppState, op: &Console) -> Result<Option<Value>, CoreError> {
    if op.by.scope.instance.is_some() {
        return Ok(None);
    }
    let c = state.onramp.operator().outbox_counts().await?;
    Ok(Some(context! { pending => c.pending, dead => c.dead, sent => c.sent }))
}

/// The link to the next page of a listing: its filters as they were, and the cursor.
fn next_page(path: &str, q: &HashMap<String, String>, next: i64) -> String {
    let mut params: Vec<(&str, String)> = q
        .iter()
        .filter(|(k, v)| k.as_str() != "cursor" && !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    params.sort();
    params.push(("cursor", cursor_text(next)));
    format!("{path}?{}", url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish())
}

fn user_row(u: &UserRecord) -> Value {
    context! { id => u.public_id, email => u.email, name => u.name, username => u.username,
    status => u.status.as_str(), created_at => when(u.created_at) }
}

pub async fn users(
    State(state): State<AppState>,
    op: Console,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let query = UserQuery {
        email: get("email"),
        username: get("username"),
        phone: get("phone"),
        status: get("status"),
        cursor: get("cursor"),
        limit: Some(50),
    };
    let page = match state.onramp.admin().users(&op.by, &name, &query).await {
        Ok(p) => p,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let next = page.next.map(|n| next_page(&format!("/admin/instances/{name}/users"), &q, n));
    let rows: Vec<Value> = page.items.iter().map(user_row).collect();
    let ctx = context! { instance => name, users => rows, next, q => q, ..op.context("instances", None) };
    render(&state, StatusCode::OK, "console/users.html", ctx)
}

pub async fn invitations(
    State(state): State<AppState>,
    op: Console,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let query = InvitationQuery { email: get("email"), cursor: get("cursor"), limit: Some(50) };
    let loaded = async {
        let summary = state.onramp.admin().instance(&op.by, &name).await?;
        let page = state.onramp.admin().invitations(&op.by, &name, &query).await?;
        let apps = state.origins.for_instance_apps(summary.id).await?;
        Ok::<_, CoreError>((summary, page, apps))
    };
    let (summary, page, apps) = match loaded.await {
        Ok(found) => found,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let now = state.onramp.now();
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|i| {
            context! { id => i.public_id, email => i.email, app_id => i.app_id, role => i.role,
            status => i.status(now).as_str(), invited_by => i.invited_by, expires_at => when(i.expires_at) }
        })
        .collect();
    let next = page.next.map(|n| next_page(&format!("/admin/instances/{name}/invitations"), &q, n));
    let writable = op.writable() && op.by.may_write(Some(summary.id)).is_ok();
    let ctx = context! { instance => name, invitations => rows, apps, next, q => q, writable,
    ..op.context("instances", get("done").as_deref()) };
    render(&state, StatusCode::OK, "console/invitations.html", ctx)
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    role: String,
}

pub async fn invite(
    State(state): State<AppState>,
    op: Console,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<InviteForm>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    let role = Some(form.role).filter(|r| !r.trim().is_empty());
    let input = InviteInput { email: form.email, app_id: form.app_id, role, expires_in: None };
    match state.onramp.admin().invite(&op.by, &name, input).await {
        Ok(_) => Redirect::to(&format!("/admin/instances/{name}/invitations?done=invited")).into_response(),
        Err(e) => failure(&state, Some(&op), &e),
    }
}

pub async fn invitation_action(
    State(state): State<AppState>,
    op: Console,
    Path((name, id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    let admin = state.onramp.admin();
    let done = match action.as_str() {
        "resend" => admin.resend_invitation(&op.by, &name, &id).await,
        "revoke" => admin.revoke_invitation(&op.by, &name, &id).await,
        _ => {
            return page(
                &state,
                StatusCode::NOT_FOUND,
                "No such page",
                "There is no such action.",
                Some(&op),
            );
        }
    };
    match done {
        Ok(_) => Redirect::to(&format!("/admin/instances/{name}/invitations?done={action}")).into_response(),
        Err(e) => failure(&state, Some(&op), &e),
    }
}

fn event_row(e: AuditEvent) -> Value {
    context! { at => when(e.at), instance => e.instance, type => e.kind, actor => e.actor, target => e.target,
    user_id => e.user_id, client => e.client, detail => e.detail.to_string() }
}

pub async fn user_page(
    State(state): State<AppState>,
    op: Console,
    Path((name, user_id)): Path<(String, String)>,
    Query(done): Query<Done>,
) -> Response {
    let admin = state.onramp.admin();
    let loaded = async {
        let user = admin.user(&op.by, &name, &user_id).await?;
        let query = AuditQuery { user: Some(&user_id), limit: Some(100), ..Default::default() };
        let trail = admin.audit(&op.by, Some(&name), query).await?;
        Ok::<_, CoreError>((user, trail))
    };
    let (user, trail) = match loaded.await {
        Ok(v) => v,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let mut actions = Vec::new();
    let action = |action: &str, label: &str, class: &str| context! { action, label, class };
    if user.status == onramp_core::model::UserStatus::Inactive {
        actions.push(action("enable", "Enable", ""));
    } else {
        actions.push(action("disable", "Disable", "danger"));
    }
    if user.status == onramp_core::model::UserStatus::Pending {
        actions.push(action("resend-verification", "Resend verification", "secondary"));
    }
    if user.status != onramp_core::model::UserStatus::Inactive {
        actions.push(action("require-password-reset", "Require a password reset", "secondary"));
    }
    actions.push(action("revoke-sessions", "End every session", "secondary"));
    actions.push(action("delete", "Delete", "danger"));
    let ctx = context! {
        instance => name,
        user => context! { id => user.public_id, email => user.email, name => user.name, username => user.username,
            phone => user.profile.phone, app_id => user.app_id, roles => user.roles, status => user.status.as_str(),
            created_at => when(user.created_at), activated_at => user.activated_at.map(when),
            sessions => user.sessions, has_password => user.has_password, metadata => user.metadata },
        trail => trail.items.into_iter().map(event_row).collect::<Vec<_>>(),
        actions, writable => op.writable(),
        ..op.context("instances", done.done.as_deref())
    };
    render(&state, StatusCode::OK, "console/user.html", ctx)
}

pub async fn user_action(
    State(state): State<AppState>,
    op: Console,
    Path((name, user_id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    let admin = state.onramp.admin();
    let by = &op.by;
    let done = match action.as_str() {
        "disable" => admin.set_user_enabled(by, &name, &user_id, false).await.map(|_| ()),
        "enable" => admin.set_user_enabled(by, &name, &user_id, true).await.map(|_| ()),
        "resend-verification" => admin.resend_verification(by, &name, &user_id).await,
        "require-password-reset" => admin.require_password_reset(by, &name, &user_id).await,
        "revoke-sessions" => admin.revoke_sessions(by, &name, &user_id).await.map(|_| ()),
        "delete" => admin.delete_user(by, &name, &user_id).await,
        _ => {
            return page(
                &state,
                StatusCode::NOT_FOUND,
                "No such action",
                "That is not something the console does.",
                Some(&op),
            );
        }
    };
    match done {
        Ok(()) => {
            Redirect::to(&format!("/admin/instances/{name}/users/{user_id}?done={action}")).into_response()
        }
        Err(e) => failure(&state, Some(&op), &e),
    }
}

pub async fn outbox(
    State(state): State<AppState>,
    op: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let status = q.get("status").cloned().unwrap_or_else(|| "dead".into());
    let cursor = q.get("cursor").map(String::as_str);
    let loaded = async {
        let page = state.onramp.admin().outbox(&op.by, Some(&status), None, cursor, Some(50)).await?;
        let counts = outbox_counts(&state, &op).await?;
        Ok::<_, CoreError>((page, counts))
    };
    let (page, counts) = match loaded.await {
        Ok(v) => v,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let next = page.next.map(|n| format!("/admin/outbox?status={status}&cursor={}", cursor_text(n)));
    let messages: Vec<Value> = page
        .items
        .into_iter()
        .map(|m| context! { id => m.id, instance => m.instance, kind => m.kind,
            recipient => super::admin::mask(&m.recipient), status => m.status, attempts => m.attempts, last_error => m.last_error })
        .collect();
    let done = q.get("done").map(String::as_str);
    let ctx =
        context! { status, messages, counts, next, writable => op.writable(), ..op.context("outbox", done) };
    render(&state, StatusCode::OK, "console/outbox.html", ctx)
}

pub async fn retry_message(
    State(state): State<AppState>,
    op: Console,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    match state.onramp.admin().retry_message(&op.by, id).await {
        Ok(()) => Redirect::to("/admin/outbox?status=pending&done=retried").into_response(),
        Err(e) => failure(&state, Some(&op), &e),
    }
}

pub async fn retry_dead(
    State(state): State<AppState>,
    op: Console,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = op.refused(&state, &headers, &form.csrf) {
        return refused;
    }
    match state.onramp.admin().retry_dead(&op.by, None).await {
        Ok(_) => Redirect::to("/admin/outbox?status=pending&done=retried-all").into_response(),
        Err(e) => failure(&state, Some(&op), &e),
    }
}

pub async fn audit(
    State(state): State<AppState>,
    op: Console,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let query = AuditQuery {
        user: get("user_id"),
        kind: get("type"),
        cursor: get("cursor"),
        limit: Some(100),
        ..Default::default()
    };
    let page = match state.onramp.admin().audit(&op.by, get("instance"), query).await {
        Ok(p) => p,
        Err(e) => return failure(&state, Some(&op), &e),
    };
    let next = page.next.map(|n| next_page("/admin/audit", &q, n));
    let events: Vec<Value> = page.items.into_iter().map(event_row).collect();
    let ctx = context! { events, next, q => q, ..op.context("audit", None) };
    render(&state, StatusCode::OK, "console/audit.html", ctx)
}
