//! The OpenAPI 3.1 document, generated from the handlers' annotations.
//!
//! Each operation documents its own successes and the errors particular to it; what every
//! operation of a surface may answer (unstorable input, an unknown instance, a body over the
//! limit or not JSON, a rate limit, a full hash pool) is added here, in that surface's own error
//! format, so no status a client can meet goes undocumented. Schemathesis checks the document
//! against the running server (`tests/api/schemathesis.rs`).

use super::admin::{
    self, instances as admin_instances, invitations as admin_invitations, users as admin_users,
};
use super::{dialogportal, dreamfactory, fast_track, fasteditor, ops, v1};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// `Authorization: Bearer <JWT>` from `/v1/auth/login`.
pub const BEARER: &str = "bearer";
/// DreamFactory's application key: a header, or the `api_key` query parameter.
pub const DF_API_KEY: &str = "df_api_key";
pub const DF_API_KEY_QUERY: &str = "df_api_key_query";
/// DreamFactory's session token, from `POST /api/v2/user/session`.
pub const DF_SESSION: &str = "df_session";
/// The app's API key for FastEditor partner signup and dialogportal contract accounts.
pub const APP_KEY: &str = "app_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "onramp",
        description = "Self-hosted signup service: five wire formats (onramp's `/v1`, DreamFactory \
                       FastTrack and open registration, FastEditor partner signup, dialogportal \
                       contract accounts) over one core. The instance a call addresses is named by \
                       the host: `{instance}.{base_domain}`; any other host means `default`."
    ),
    paths(
        v1::schema::app_schema,
        v1::signup::signup,
        v1::signup::activate,
        v1::session::login,
        v1::session::logout,
        v1::session::current,
        v1::invitations::create,
        v1::invitations::list,
        v1::invitations::show,
        v1::invitations::resend,
        v1::invitations::revoke,
        fast_track::fast_track,
        dreamfactory::register,
        dreamfactory::password,
        dreamfactory::login,
        dreamfactory::current,
        dreamfactory::logout,
        fasteditor::signup,
        dialogportal::create_default,
        dialogportal::create,
        dialogportal::account,
        dialogportal::verify_sms,
        dialogportal::resend_sms,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::jwks,
        ops::openapi,
        admin::list_tokens,
        admin::create_token,
        admin::revoke_token,
        admin::outbox,
        admin::retry_message,
        admin::retry_dead,
        admin::audit,
        admin_instances::list,
        admin_instances::create,
        admin_instances::show,
        admin_instances::update,
        admin_instances::remove,
        admin_instances::retry,
        admin_instances::apps,
        admin_instances::app_detail,
        admin_instances::update_app,
        admin_instances::keys,
        admin_instances::create_key,
        admin_instances::revoke_key,
        admin_instances::contracts,
        admin_instances::put_contract,
        admin_instances::domains,
        admin_users::list,
        admin_users::show,
        admin_users::disable,
        admin_users::enable,
        admin_users::resend_verification,
        admin_users::require_password_reset,
        admin_users::revoke_sessions,
        admin_users::erase,
        admin_users::export,
        admin_users::import,
        admin_invitations::create,
        admin_invitations::list,
        admin_invitations::resend,
        admin_invitations::revoke,
        admin_invitations::webhooks,
    ),
    components(schemas(
        v1::error::V1ErrorBody,
        v1::error::V1ErrorDetail,
        v1::error::V1FieldError,
        DfErrorBody,
        DfErrorDetail,
        FastTrackErrorBody,
        FastTrackErrorDetail,
        PartnerErrorBody,
        ContractErrorBody,
        ContractAccountBody,
        VerifySmsBody,
        admin::AdminErrorBody,
        admin::AdminErrorDetail,
        admin::AdminFieldError,
    )),
    modifiers(&Security, &RegisterMethods, &AccountLinks, &SurfaceErrors),
    tags(
        (name = "v1", description = "onramp's own signup workflow (seed 004)"),
        (name = "dreamfactory", description = "DreamFactory FastTrack (seed 000) and open registration (seed 001)"),
        (name = "fasteditor", description = "FastEditor partner signup (seed 002)"),
        (name = "dialogportal", description = "dialogportal contract accounts (seed 003)"),
        (name = "ops", description = "health, metrics, keys and this document"),
        (name = "admin", description = "the operator's control plane: instances, apps, users, outbox, audit log \
                                        (`Authorization: Bearer <admin token>` from `onramp admin token create`)"),
    )
)]
pub struct ApiDoc;

pub fn document() -> String {
    let Ok(mut doc) = serde_json::to_value(ApiDoc::openapi()) else { return "{}".into() };
    spell_links(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
}

/// utoipa 5.5 writes a Link object's fields in snake case (`operation_id`); OpenAPI spells them
/// in camel case (`operationId`), and validators refuse the other.
fn spell_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else { return };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(snake) {
                link.insert(camel.to_owned(), v);
            }
        }
    }
}

/// DreamFactory's error: `{"error": {"code", "message", "context"}}`.
#[derive(Serialize, ToSchema)]
pub struct DfErrorBody {
    pub error: DfErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct DfErrorDetail {
    /// The HTTP status.
    pub code: u16,
    pub message: String,
    /// Per-field messages on validation errors, else `null`.
    pub context: Option<serde_json::Value>,
}

/// FastTrack's error envelope (the console's), with the real HTTP status.
#[derive(Serialize, ToSchema)]
pub struct FastTrackErrorBody {
    pub success: bool,
    pub status_code: u16,
    pub error: FastTrackErrorDetail,
    /// Always `null` on an error.
    pub response: Option<serde_json::Value>,
    /// `{elapsed, id, request-uri, signature, start, verb, version}`.
    pub request: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct FastTrackErrorDetail {
    pub code: u16,
    pub message: String,
}

/// FastEditor's error: `{"message", "code"}` with a stable upper-case code.
#[derive(Serialize, ToSchema)]
pub struct PartnerErrorBody {
    pub message: String,
    /// `INVALID_REQUEST`, `MISSING_FIELD`, `UNAUTHORIZED`, `USERNAME_TAKEN`, `RATE_LIMITED`, …
    pub code: String,
}

/// dialogportal's error: `{"code", "message", "field"?, "errors"?}`.
#[derive(Serialize, ToSchema)]
pub struct ContractErrorBody {
    /// The status as a string, with a sub-code on validation errors (`"400.3"`).
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub errors: Option<Vec<serde_json::Value>>,
}

/// dialogportal's account body: the fields of the app's contract (its `fields` in the
/// configuration), each a string, number or boolean, so its exact shape is the operator's.
pub struct ContractAccountBody;

impl utoipa::PartialSchema for ContractAccountBody {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
        // A field sent as null (or "") counts as not sent: refused when the contract requires it.
        let text = |what: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .description(Some(what))
                .build()
        };
        ObjectBuilder::new()
            .description(Some(
                "The fields of the contract the account is made under; which are required, unique \
                 or verified by text message is the contract's. The fields below are those of \
                 the usual contracts. A field sent as null or \"\" counts as not sent.",
            ))
            .property("name", text("The account holder's name"))
            .property("email", text("An email address (`type = \"email\"` fields)"))
            .property("password", text("A password (`type = \"password\"` fields); never stored as sent"))
            .property("mobile", text("A phone number in international form (`type = \"phone\"` fields)"))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .into()
    }
}

impl ToSchema for ContractAccountBody {}

/// `POST /user/{id}/verify-sms`.
#[derive(serde::Deserialize, ToSchema)]
pub struct VerifySmsBody {
    /// The six digits texted to the account's phone.
    pub code: String,
}

/// DreamFactory's register answers `PUT` and `PATCH` as it answers `POST` (as DreamFactory
/// does): the same operation under each method, with its own id.
struct RegisterMethods;

impl Modify for RegisterMethods {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(item) = openapi.paths.paths.get_mut("/api/v2/user/register") else { return };
        let Some(post) = item.post.clone() else { return };
        let mut put = post.clone();
        put.operation_id = Some("df_register_put".into());
        put.summary = Some("As `POST`.".into());
        let mut patch = post;
        patch.operation_id = Some("df_register_patch".into());
        patch.summary = Some("As `POST`.".into());
        item.put = Some(put);
        item.patch = Some(patch);
    }
}

/// A created dialogportal account (its `dpKey`) is what `GET /user/{id}`, `verify-sms` and
/// `resend-sms` take: say so as OpenAPI links, so clients and Schemathesis's stateful tests
/// follow them. (`POST /user/{id}` shares the template but takes a contract's id.)
struct AccountLinks;

impl Modify for AccountLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        let targets = [
            ("GetAccount", "dp_account", "The account just created"),
            ("VerifySms", "dp_verify_sms", "Verify its phone with the texted code"),
            ("ResendSms", "dp_resend_sms", "Text a new code"),
        ];
        for path in ["/user", "/user/{id}"] {
            let Some(post) = openapi.paths.paths.get_mut(path).and_then(|item| item.post.as_mut()) else {
                continue;
            };
            let Some(RefOr::T(created)) = post.responses.responses.get_mut("201") else { continue };
            for (name, operation_id, description) in targets {
                let link = LinkBuilder::new()
                    .operation_id(operation_id)
                    .parameter("id", "$response.body#/dpKey")
                    .description(description)
                    .build();
                created.links.insert(name.to_owned(), RefOr::T(link));
            }
        }
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |name: &str, what: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)))
        };
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The `access_token` of `POST /v1/auth/login` (EdDSA)"))
                    .build(),
            ),
        );
        components.add_security_scheme(DF_API_KEY, header("X-DreamFactory-API-Key", "The app's API key"));
        components.add_security_scheme(
            DF_API_KEY_QUERY,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "api_key",
                "The app's API key, where a header cannot be set",
            ))),
        );
        components.add_security_scheme(
            DF_SESSION,
            header("X-DreamFactory-Session-Token", "The `session_token` of `POST /api/v2/user/session`"),
        );
        components.add_security_scheme(APP_KEY, header("X-API-Key", "The app's API key"));
        components.add_security_scheme(
            admin::ADMIN_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An admin token (`oadm_…`) from `onramp admin token create`"))
                    .build(),
            ),
        );
    }
}

/// What one surface may answer to any of its operations.
struct Surface {
    error_schema: &'static str,
    /// The statuses every operation of the surface may meet.
    common: &'static [(u16, &'static str)],
}

const UNSTORABLE: (u16, &str) = (400, "input that cannot be stored (a NUL byte), or a malformed request");
const NO_INSTANCE: (u16, &str) = (404, "no such instance (the host names none), or no such resource");
const TOO_LARGE: (u16, &str) = (413, "the body is over 64 KiB");
const NOT_JSON: (u16, &str) = (415, "the body is not sent as `application/json`");
const LIMITED: (u16, &str) = (429, "rate limited; `Retry-After` says when to try again");
const BUSY: (u16, &str) = (503, "busy or the database is unavailable; `Retry-After` says when to try again");
const ADMIN: [(u16, &str); 6] = [
    UNSTORABLE,
    (401, "no admin token, or not a live one"),
    (403, "outside the admin token's scope (another instance, or a write with a read-only token)"),
    (404, "no such instance, user or resource"),
    (422, "invalid filters or fields; `fields` says which"),
    BUSY,
];

fn surface(path: &str) -> Option<Surface> {
    let instance = &[UNSTORABLE, NO_INSTANCE][..];
    let (error_schema, common) = if path.starts_with("/v1/") {
        ("V1ErrorBody", instance)
    } else if path.starts_with("/api/v2/") {
        ("DfErrorBody", instance)
    } else if path == "/fast-track" {
        ("FastTrackErrorBody", &[UNSTORABLE][..])
    } else if path.starts_with("/partner/") {
        ("PartnerErrorBody", instance)
    } else if path == "/user" || path.starts_with("/user/") {
        ("ContractErrorBody", instance)
    } else if path.starts_with("/admin/v1/") {
        ("AdminErrorBody", &ADMIN[..])
    } else if path == "/.well-known/jwks.json" {
        ("V1ErrorBody", instance)
    } else {
        return None;
    };
    Some(Surface { error_schema, common })
}

/// Operations that hash a password or send a message: rate limited, and shed when busy.
fn is_limited(operation_id: &str) -> bool {
    matches!(
        operation_id,
        "v1_signup"
            | "v1_login"
            | "fast_track"
            | "df_register"
            | "df_register_put"
            | "df_register_patch"
            | "df_password"
            | "df_login"
            | "fasteditor_signup"
            | "dp_create_default"
            | "dp_create"
            | "dp_verify_sms"
            | "dp_resend_sms"
    )
}

struct SurfaceErrors;

impl Modify for SurfaceErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(surface) = surface(path) else { continue };
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let mut statuses = surface.common.to_vec();
                if operation.request_body.is_some() {
                    statuses.extend([TOO_LARGE, NOT_JSON]);
                }
                if is_limited(operation.operation_id.as_deref().unwrap_or_default()) {
                    statuses.extend([LIMITED, BUSY]);
                }
                for (status, description) in statuses {
                    let responses = &mut operation.responses.responses;
                    let key = status.to_string();
                    if responses.contains_key(&key) {
                        continue;
                    }
                    let content = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(surface.error_schema)))
                        .build();
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content("application/json", content)
                        .build();
                    responses.insert(key, RefOr::T(response));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn doc() -> serde_json::Value {
        serde_json::from_str(&document()).unwrap()
    }

    #[test]
    fn operation_ids_are_unique_and_every_operation_has_one() {
        let doc = doc();
        let mut seen = HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no id"));
                assert!(seen.insert(id.to_owned()), "{id} twice");
            }
        }
        assert!(seen.len() >= 23, "{seen:?}");
    }

    #[test]
    fn every_security_requirement_names_a_scheme() {
        let doc = doc();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                for requirement in op["security"].as_array().into_iter().flatten() {
                    for name in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{name} is not a security scheme");
                    }
                }
            }
        }
    }

    #[test]
    fn no_two_paths_are_the_same_template() {
        let doc = doc();
        let mut shapes = HashSet::new();
        for path in doc["paths"].as_object().unwrap().keys() {
            let shape: Vec<&str> =
                path.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect();
            assert!(shapes.insert(shape.join("/")), "{path} repeats another path's template");
        }
    }

    #[test]
    fn request_bodies_have_properties_and_surfaces_their_errors() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(body) = op.get("requestBody") {
                    let schema = &body["content"]["application/json"]["schema"];
                    // An array body (an import's rows): its items are what must be described.
                    let schema = if schema["type"] == "array" { &schema["items"] } else { schema };
                    let schema = match schema["$ref"].as_str() {
                        Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
                        None => schema,
                    };
                    assert!(schema["properties"].is_object(), "{method} {path}: a bare object body");
                    for status in ["413", "415"] {
                        assert!(op["responses"][status].is_object(), "{method} {path} lacks {status}");
                    }
                }
            }
        }
    }
}
