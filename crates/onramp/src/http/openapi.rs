//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use super::{dialogportal, dreamfactory, fast_track, fasteditor, ops, v1};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "onramp", description = "Self-hosted signup service"),
    paths(
        v1::schema::app_schema,
        v1::signup::signup,
        v1::signup::activate,
        v1::session::login,
        v1::session::logout,
        v1::session::current,
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
    ),
    components(schemas(v1::error::V1ErrorBody, v1::error::V1ErrorDetail, v1::error::V1FieldError))
)]
pub struct ApiDoc;

pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".into())
}
