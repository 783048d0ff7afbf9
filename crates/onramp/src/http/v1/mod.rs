//! onramp's native API (seed 004): `/v1/apps/{app_id}/schema`, `/v1/auth/signup`,
//! `/v1/auth/signup-activation`, `/v1/auth/login`, `/v1/auth/logout`, `/v1/auth/session`.

pub mod error;
pub mod invitations;
pub mod schema;
pub mod session;
pub mod signup;

use crate::http::AppState;
pub use crate::http::extract::ClientAddr;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{get, post};
use error::V1Error;
use serde::de::DeserializeOwned;

pub fn routes() -> Router<AppState> {
    // Answers that carry tokens or sessions are never stored by a cache.
    let auth = Router::new()
        .route("/v1/auth/signup", post(signup::signup))
        .route("/v1/auth/signup-activation", post(signup::activate))
        .route("/v1/auth/login", post(session::login))
        .route("/v1/auth/logout", post(session::logout))
        .route("/v1/auth/session", get(session::current))
        .layer(super::no_store());
    let invitations = Router::new()
        .route("/v1/invitations", get(invitations::list).post(invitations::create))
        .route("/v1/invitations/{id}", get(invitations::show).delete(invitations::revoke))
        .route("/v1/invitations/{id}/resend", post(invitations::resend))
        .layer(super::no_store());
    Router::new().route("/v1/apps/{app_id}/schema", get(schema::app_schema)).merge(auth).merge(invitations)
}

/// The addressed instance (from `Host`), or a `/v1` 404.
pub type V1Instance = crate::http::extract::HostInstance<V1Error>;

/// A JSON body whose every rejection is a `/v1` error with a stable code.
pub struct V1Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for V1Json<T> {
    type Rejection = V1Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Query parameters whose every rejection is a `/v1` 400.
pub struct V1Query<T>(pub T);

impl<T: DeserializeOwned> axum::extract::FromRequestParts<AppState> for V1Query<T> {
    type Rejection = V1Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(r) => Err(V1Error::new(StatusCode::BAD_REQUEST, "malformed_request", &r.body_text())),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> V1Error {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => V1Error::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        ),
        JsonRejection::JsonSyntaxError(_) => {
            V1Error::new(StatusCode::BAD_REQUEST, "malformed_json", "The body is not valid JSON.")
        }
        JsonRejection::JsonDataError(e) => {
            V1Error::new(StatusCode::BAD_REQUEST, "malformed_request", &e.body_text())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => V1Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("The body must be at most {} bytes.", super::BODY_LIMIT),
        ),
        other => V1Error::new(StatusCode::BAD_REQUEST, "malformed_request", &other.body_text()),
    }
}
