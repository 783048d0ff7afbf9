//! `/admin/v1/instances…`: instances, their settings and apps (keys, origins, contracts,
//! domains, branding).

use super::*;
use crate::branding::Brand;
use axum::extract::State;
use axum::routing::put;
use onramp_core::model::{Contract, ContractField, Instance, InstanceSummary};

pub fn routes() -> Router<AppState> {
    let app = "/admin/v1/instances/{instance}/apps/{app_id}";
    Router::new()
        .route("/admin/v1/instances", get(list).post(create))
        .route("/admin/v1/instances/{instance}", get(show).patch(update).delete(remove))
        .route("/admin/v1/instances/{instance}/retry", post(retry))
        .route("/admin/v1/instances/{instance}/apps", get(apps))
        .route(app, get(app_detail).patch(update_app))
        .route(&format!("{app}/keys"), get(keys).post(create_key))
        .route(&format!("{app}/keys/{{key_id}}"), delete(revoke_key))
        .route(&format!("{app}/contracts"), get(contracts))
        .route(&format!("{app}/contracts/{{contract_id}}"), put(put_contract))
        .route(&format!("{app}/domains"), get(domains))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceBody {
    pub name: String,
    /// `provisioning`, `provisioning_failed`, `active` or `disabled`.
    pub status: String,
    /// Why provisioning failed.
    pub status_detail: Option<String>,
    pub created_at: String,
    pub apps: i64,
    pub users: i64,
    /// The FastTrack owner's address.
    pub owner_email: Option<String>,
}

impl From<InstanceSummary> for InstanceBody {
    fn from(s: InstanceSummary) -> Self {
        Self {
            name: s.name,
            status: s.status.as_str().into(),
            status_detail: s.status_detail,
            created_at: rfc3339(s.created_at),
            apps: s.apps,
            users: s.users,
            owner_email: s.owner_email,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct InstancePath {
    pub instance: String,
}

#[derive(Debug, Deserialize)]
pub struct AppPath {
    pub instance: String,
    pub app_id: String,
}

/// The instance `name` for a change by `by`.
async fn writable(state: &AppState, by: &AdminPrincipal, name: &str) -> Result<Instance, AdminError> {
    let summary = state.onramp.admin().instance(by, name).await?;
    by.may_write(Some(summary.id))?;
    Ok(Instance { id: summary.id, name: summary.name })
}

async fn readable(state: &AppState, by: &AdminPrincipal, name: &str) -> Result<Instance, AdminError> {
    let summary = state.onramp.admin().instance(by, name).await?;
    Ok(Instance { id: summary.id, name: summary.name })
}

/// The instances the token reaches.
#[utoipa::path(get, path = "/admin/v1/instances", operation_id = "admin_instances", tag = "admin",
    security(("admin_token" = [])), responses((status = 200, body = Vec<InstanceBody>)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(by): Caller,
) -> Result<Json<Vec<InstanceBody>>, AdminError> {
    let all = state.onramp.admin().instances(&by).await?;
    Ok(Json(all.into_iter().map(InstanceBody::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstanceRequest {
    /// Lower-case letters, digits and inner `-`, at most 63; not a reserved name.
    pub name: String,
}

/// Create an instance (a global read-write token only): its signing key, roles, default app
/// and own database, then the provisioning webhooks.
#[utoipa::path(post, path = "/admin/v1/instances", operation_id = "admin_create_instance", tag = "admin",
    security(("admin_token" = [])), request_body = CreateInstanceRequest,
    responses((status = 201, body = InstanceBody), (status = 409, body = AdminErrorBody), (status = 422, body = AdminErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminJson(body): AdminJson<CreateInstanceRequest>,
) -> Result<(StatusCode, Json<InstanceBody>), AdminError> {
    let name = body.name.trim();
    let admin = state.onramp.admin();
    match admin.create_instance(&by, name).await {
        Ok(_) | Err(CoreError::ProvisioningFailed) => {
            let summary = admin.instance(&by, name).await?;
            Ok((StatusCode::CREATED, Json(summary.into())))
        }
        Err(CoreError::InstanceNameUnavailable) => {
            Err(AdminError::new(StatusCode::CONFLICT, "instance_exists", "An instance of that name exists."))
        }
        Err(e) => Err(e.into()),
    }
}

/// One instance, with its user-service settings.
#[utoipa::path(get, path = "/admin/v1/instances/{instance}", operation_id = "admin_instance", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name")),
    responses((status = 200, body = InstanceDetail)))]
pub async fn show(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
) -> Result<Json<InstanceDetail>, AdminError> {
    let summary = state.onramp.admin().instance(&by, &instance).await?;
    let settings = state.onramp.catalog().instance_settings(summary.id).await?;
    Ok(Json(InstanceDetail { settings: SettingsBody::from(settings), instance: summary.into() }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceDetail {
    #[serde(flatten)]
    pub instance: InstanceBody,
    pub settings: SettingsBody,
}

/// DreamFactory's user-service settings of an instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsBody {
    pub open_registration: bool,
    pub open_reg_role: Option<String>,
    pub open_reg_email_service: Option<String>,
    pub open_reg_email_template: Option<String>,
    pub allow_keyless_registration: bool,
    pub default_language: Option<String>,
}

impl From<onramp_core::model::UserServiceSettings> for SettingsBody {
    fn from(s: onramp_core::model::UserServiceSettings) -> Self {
        Self {
            open_registration: s.open_registration,
            open_reg_role: s.open_reg_role,
            open_reg_email_service: s.open_reg_email_service,
            open_reg_email_template: s.open_reg_email_template,
            allow_keyless_registration: s.allow_keyless,
            default_language: s.default_language,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstanceRequest {
    /// `active` or `disabled`: a disabled instance answers no request.
    pub status: Option<String>,
    pub open_registration: Option<bool>,
    /// The role self-registered users get (created if missing); `""` clears it.
    pub open_reg_role: Option<String>,
    pub allow_keyless_registration: Option<bool>,
}

/// Enable or disable an instance, or change its user-service settings.
#[utoipa::path(patch, path = "/admin/v1/instances/{instance}", operation_id = "admin_update_instance", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name")),
    request_body = UpdateInstanceRequest,
    responses((status = 200, body = InstanceDetail), (status = 409, body = AdminErrorBody), (status = 422, body = AdminErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
    AdminJson(body): AdminJson<UpdateInstanceRequest>,
) -> Result<Json<InstanceDetail>, AdminError> {
    let target = writable(&state, &by, &instance).await?;
    if let Some(status) = body.status.as_deref() {
        let active = match status {
            "active" => true,
            "disabled" => false,
            _ => {
                return Err(CoreError::field("status", "invalid_status", "must be active or disabled").into());
            }
        };
        if !state.onramp.operator().set_instance_active(&by, &instance, active).await? {
            return Err(CoreError::WrongState(
                "An instance being provisioned can be neither enabled nor disabled.",
            )
            .into());
        }
    }
    if body.open_registration.is_some()
        || body.open_reg_role.is_some()
        || body.allow_keyless_registration.is_some()
    {
        state
            .onramp
            .operator()
            .update_instance_settings(&by, target.id, |s| {
                if let Some(v) = body.open_registration {
                    s.open_registration = v;
                }
                if let Some(role) = &body.open_reg_role {
                    s.open_reg_role = Some(role.trim().to_owned()).filter(|r| !r.is_empty());
                }
                if let Some(v) = body.allow_keyless_registration {
                    s.allow_keyless = v;
                }
                Ok(())
            })
            .await?;
    }
    show(State(state), Caller(by), AdminPath(InstancePath { instance })).await
}

/// Delete a disabled instance (or one whose provisioning failed) with every user and row it
/// has, and its own database; its audit entries stay. A global read-write token only; an
/// instance declared in the configuration file is removed there.
#[utoipa::path(delete, path = "/admin/v1/instances/{instance}", operation_id = "admin_delete_instance", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name")),
    responses((status = 204, description = "Deleted"), (status = 409, body = AdminErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
) -> Result<StatusCode, AdminError> {
    by.may_write(None)?;
    let declared = state.config.instances.iter().any(|i| i.name == instance);
    let reserved = [onramp_core::model::DEFAULT_INSTANCE, onramp_core::model::PLATFORM_INSTANCE]
        .contains(&instance.as_str());
    if declared || reserved {
        // Still visible to a scoped token only if it is its own.
        state.onramp.admin().instance(&by, &instance).await?;
        return Err(AdminError::new(
            StatusCode::CONFLICT,
            "instance_declared",
            "The instance is declared in the configuration file (or is onramp's own); remove it there.",
        ));
    }
    state.onramp.admin().delete_instance(&by, &instance).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Complete an instance whose provisioning failed.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/retry", operation_id = "admin_retry_instance", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name")),
    responses((status = 200, body = InstanceBody), (status = 409, body = AdminErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
) -> Result<Json<InstanceBody>, AdminError> {
    let admin = state.onramp.admin();
    match admin.retry_instance(&by, &instance).await {
        Ok(_) | Err(CoreError::ProvisioningFailed) => {}
        Err(CoreError::Validation(_)) => {
            return Err(CoreError::WrongState("The instance is not waiting to be provisioned.").into());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Json(admin.instance(&by, &instance).await?.into()))
}

// --- apps -------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AppBody {
    pub id: String,
    pub name: String,
    pub signup_url: String,
    /// Web origins whose pages may call the instance for this app (CORS).
    pub allowed_origins: Vec<String>,
    /// Whether those origins may call the partner and contract surfaces too.
    pub partner_calls_from_browsers: bool,
    /// The app's branding as its pages and mail show it (from the configuration).
    pub branding: BrandBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandBody {
    pub product_name: String,
    pub logo_url: Option<String>,
    pub accent_color: String,
}

async fn app_body(state: &AppState, instance: &Instance, app_id: &str) -> Result<AppBody, AdminError> {
    let app = state.onramp.catalog().app(instance, app_id).await?.ok_or(CoreError::AppNotFound)?;
    let origins = state.origins.app(instance.id, app_id).await?;
    let brand = Brand::resolve(&state.config, &instance.name, Some((&app.id, &app.name)));
    Ok(AppBody {
        id: app.id,
        name: app.name,
        signup_url: app.signup_url,
        allowed_origins: origins.allowed_origins,
        partner_calls_from_browsers: origins.browser_partner_calls,
        branding: BrandBody {
            product_name: brand.name,
            logo_url: brand.logo_url,
            accent_color: brand.accent,
        },
    })
}

/// An instance's apps.
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/apps", operation_id = "admin_apps", tag = "admin",
    security(("admin_token" = [])), params(("instance" = String, Path, description = "The instance's name")),
    responses((status = 200, body = Vec<AppBody>)))]
pub async fn apps(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(InstancePath { instance }): AdminPath<InstancePath>,
) -> Result<Json<Vec<AppBody>>, AdminError> {
    let instance = readable(&state, &by, &instance).await?;
    let mut out = Vec::new();
    for access in state.origins.for_instance_apps(instance.id).await? {
        out.push(app_body(&state, &instance, &access).await?);
    }
    Ok(Json(out))
}

/// One app.
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/apps/{app_id}", operation_id = "admin_app", tag = "admin",
    security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("app_id" = String, Path, description = "The app's id")),
    responses((status = 200, body = AppBody)))]
pub async fn app_detail(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(AppPath { instance, app_id }): AdminPath<AppPath>,
) -> Result<Json<AppBody>, AdminError> {
    let instance = readable(&state, &by, &instance).await?;
    Ok(Json(app_body(&state, &instance, &app_id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAppRequest {
    /// Replaces the allowed origins, e.g. `["https://app.example.com", "https://*.example.com"]`.
    pub allowed_origins: Option<Vec<String>>,
    pub partner_calls_from_browsers: Option<bool>,
}

/// Change an app's browser access (a value in the configuration file wins at the next start).
#[utoipa::path(patch, path = "/admin/v1/instances/{instance}/apps/{app_id}", operation_id = "admin_update_app",
    tag = "admin", security(("admin_token" = [])), request_body = UpdateAppRequest,
    params(("instance" = String, Path, description = "The instance's name"), ("app_id" = String, Path, description = "The app's id")),
    responses((status = 200, body = AppBody), (status = 422, body = AdminErrorBody)))]
pub async fn update_app(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(AppPath { instance, app_id }): AdminPath<AppPath>,
    AdminJson(body): AdminJson<UpdateAppRequest>,
) -> Result<Json<AppBody>, AdminError> {
    let instance = writable(&state, &by, &instance).await?;
    let current = state.origins.app(instance.id, &app_id).await?;
    let origins = body.allowed_origins.unwrap_or(current.allowed_origins);
    state.origins.set(&by, instance.id, &app_id, &origins, body.partner_calls_from_browsers).await.map_err(
        |e| match e {
            onramp_core::origin::SetOriginsError::Core(e) => AdminError::from(e),
            invalid => CoreError::field("allowed_origins", "invalid_origin", &invalid.to_string()).into(),
        },
    )?;
    Ok(Json(app_body(&state, &instance, &app_id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyBody {
    pub id: String,
    pub app_id: String,
    /// The key's first characters.
    pub prefix: String,
    pub label: String,
    /// `config` (from the configuration file) or `cli`/`admin`.
    pub source: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// An app's API keys (never the keys themselves).
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/apps/{app_id}/keys", operation_id = "admin_keys", tag = "admin",
    security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("app_id" = String, Path, description = "The app's id")),
    responses((status = 200, body = Vec<KeyBody>)))]
pub async fn keys(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(AppPath { instance, app_id }): AdminPath<AppPath>,
) -> Result<Json<Vec<KeyBody>>, AdminError> {
    let instance = readable(&state, &by, &instance).await?;
    state.onramp.catalog().app(&instance, &app_id).await?.ok_or(CoreError::AppNotFound)?;
    let keys = state.onramp.operator().api_keys(instance.id).await?;
    Ok(Json(
        keys.into_iter()
            .filter(|k| k.app_id == app_id)
            .map(|k| KeyBody {
                id: k.id,
                app_id: k.app_id,
                prefix: k.prefix,
                label: k.label,
                source: k.source,
                created_at: rfc3339(k.created_at),
                revoked_at: k.revoked_at.map(rfc3339),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key: shown only now, stored only as a hash.
    pub key: String,
    pub id: String,
}

/// Create an API key for an app; several may be live at once, for rotation.
#[utoipa::path(post, path = "/admin/v1/instances/{instance}/apps/{app_id}/keys", operation_id = "admin_create_key",
    tag = "admin", security(("admin_token" = [])), request_body = CreateKeyRequest,
    params(("instance" = String, Path, description = "The instance's name"), ("app_id" = String, Path, description = "The app's id")),
    responses((status = 201, body = CreatedKey)))]
pub async fn create_key(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(AppPath { instance, app_id }): AdminPath<AppPath>,
    AdminJson(body): AdminJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), AdminError> {
    let instance = writable(&state, &by, &instance).await?;
    let (record, key) = state.onramp.api_keys().create(&by, &instance, &app_id, &body.label).await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, id: record.id })))
}

#[derive(Debug, Deserialize)]
pub struct KeyPath {
    pub instance: String,
    pub app_id: String,
    pub key_id: String,
}

/// Revoke an API key; requests with it are refused at once.
#[utoipa::path(delete, path = "/admin/v1/instances/{instance}/apps/{app_id}/keys/{key_id}", operation_id = "admin_revoke_key",
    tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("app_id" = String, Path, description = "The app's id"),
           ("key_id" = String, Path, description = "The key's id (`key_…`)")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(KeyPath { instance, app_id, key_id }): AdminPath<KeyPath>,
) -> Result<StatusCode, AdminError> {
    let instance = writable(&state, &by, &instance).await?;
    state.onramp.operator().revoke_app_key(&by, instance.id, &app_id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractBody {
    pub id: String,
    /// Whether `POST /user` (no contract named) uses it.
    pub default: bool,
    #[schema(value_type = Vec<Object>)]
    pub fields: Vec<ContractField>,
}

/// An app's dialogportal contracts.
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/apps/{app_id}/contracts", operation_id = "admin_contracts",
    tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("app_id" = String, Path, description = "The app's id")),
    responses((status = 200, body = Vec<ContractBody>)))]
pub async fn contracts(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(AppPath { instance, app_id }): AdminPath<AppPath>,
) -> Result<Json<Vec<ContractBody>>, AdminError> {
    let instance = readable(&state, &by, &instance).await?;
    let (contracts, default) = state.onramp.operator().contracts(instance.id, &app_id).await?;
    Ok(Json(
        contracts
            .into_iter()
            .map(|c| ContractBody {
                default: default.as_deref() == Some(c.id.as_str()),
                id: c.id,
                fields: c.fields,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutContractRequest {
    /// `[{"name": "email", "type": "email", "required": true, "unique": true}, …]`.
    #[schema(value_type = Vec<Object>)]
    pub fields: Vec<ContractField>,
    /// Make it the app's default contract.
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Deserialize)]
pub struct ContractPath {
    pub instance: String,
    pub app_id: String,
    pub contract_id: String,
}

/// Create or replace a contract.
#[utoipa::path(put, path = "/admin/v1/instances/{instance}/apps/{app_id}/contracts/{contract_id}",
    operation_id = "admin_put_contract", tag = "admin", security(("admin_token" = [])), request_body = PutContractRequest,
    params(("instance" = String, Path, description = "The instance's name"), ("app_id" = String, Path, description = "The app's id"),
           ("contract_id" = String, Path, description = "The contract's id")),
    responses((status = 200, body = ContractBody), (status = 422, body = AdminErrorBody)))]
pub async fn put_contract(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(ContractPath { instance, app_id, contract_id }): AdminPath<ContractPath>,
    AdminJson(body): AdminJson<PutContractRequest>,
) -> Result<Json<ContractBody>, AdminError> {
    let instance = writable(&state, &by, &instance).await?;
    let problems = crate::config::contract_problems(&app_id, &contract_id, &body.fields);
    if !problems.is_empty() {
        return Err(CoreError::field("fields", "invalid_contract", &problems.join("; ")).into());
    }
    let contract = Contract { id: contract_id.clone(), fields: body.fields };
    state.onramp.operator().put_contract(&by, instance.id, &app_id, &contract, body.default).await?;
    let (all, default) = state.onramp.operator().contracts(instance.id, &app_id).await?;
    let saved = all.into_iter().find(|c| c.id == contract_id).ok_or(CoreError::ContractNotFound)?;
    Ok(Json(ContractBody {
        default: default.as_deref() == Some(saved.id.as_str()),
        id: saved.id,
        fields: saved.fields,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainBody {
    pub id: String,
    pub title: String,
    pub description: String,
    pub allow_signup: bool,
}

/// An app's signup domains (from the configuration).
#[utoipa::path(get, path = "/admin/v1/instances/{instance}/apps/{app_id}/domains", operation_id = "admin_domains",
    tag = "admin", security(("admin_token" = [])),
    params(("instance" = String, Path, description = "The instance's name"), ("app_id" = String, Path, description = "The app's id")),
    responses((status = 200, body = Vec<DomainBody>)))]
pub async fn domains(
    State(state): State<AppState>,
    Caller(by): Caller,
    AdminPath(AppPath { instance, app_id }): AdminPath<AppPath>,
) -> Result<Json<Vec<DomainBody>>, AdminError> {
    let instance = readable(&state, &by, &instance).await?;
    let (_, domains) = state.onramp.catalog().app_schema(&instance, &app_id).await?;
    Ok(Json(
        domains
            .into_iter()
            .map(|d| DomainBody {
                id: d.id,
                title: d.title,
                description: d.description,
                allow_signup: d.allow_signup,
            })
            .collect(),
    ))
}
