//! `POST /v1/auth/signup` and `POST /v1/auth/signup-activation`.

use super::error::{V1Error, V1ErrorBody};
use super::{ClientAddr, V1Instance, V1Json};
use crate::http::AppState;
use axum::Json;
use axum::extract::State;
use onramp_core::model::ActivatedSignup;
use onramp_core::signup::register::SignupInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// A signup domain of the app (see the app schema); must allow signup.
    #[serde(default)]
    pub domain_id: String,
    #[serde(default)]
    pub account_title: String,
    #[serde(default)]
    pub name: String,
    /// At least 8 characters, not the password; generated from `name` when empty.
    pub username: Option<String>,
    /// At least 8 characters, not the username; generated when empty.
    pub password: Option<String>,
    #[serde(default)]
    pub email: String,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country_id: String,
    /// The CAPTCHA provider's token, when the app asks for one (or `X-Captcha-Token`).
    pub captcha_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignupResponse {
    /// The token the activation email carries (or an opaque reference when the app sets
    /// `activation_token_in_response = false`).
    pub token: String,
}

/// Create the account and its first user; email the activation link.
#[utoipa::path(post, path = "/v1/auth/signup", operation_id = "v1_signup", tag = "v1", request_body = SignupRequest,
    responses((status = 200, body = SignupResponse), (status = 400, body = V1ErrorBody), (status = 413, body = V1ErrorBody),
              (status = 409, body = V1ErrorBody), (status = 422, body = V1ErrorBody), (status = 429, body = V1ErrorBody),
              (status = 503, body = V1ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    V1Instance { instance, .. }: V1Instance,
    ClientAddr(client): ClientAddr,
    headers: axum::http::HeaderMap,
    V1Json(body): V1Json<SignupRequest>,
) -> Result<Json<SignupResponse>, V1Error> {
    let input = SignupInput {
        domain_id: body.domain_id,
        account_title: body.account_title,
        name: body.name,
        username: body.username,
        password: body.password,
        email: body.email,
        country_id: body.country_id,
        client: client.map(|c| c.to_string()),
        captcha_token: body.captcha_token.or_else(|| crate::http::extract::captcha_header(&headers)),
    };
    let accepted = state.onramp.signup().register(&instance, input).await?;
    state.metrics.signups.inc();
    Ok(Json(SignupResponse { token: accepted.token }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest {
    #[serde(default)]
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationResponse {
    pub account_id: String,
    pub user_id: String,
    pub domain_id: String,
    pub version_id: String,
}

/// Redeem the emailed token; the user can log in afterwards.
#[utoipa::path(post, path = "/v1/auth/signup-activation", operation_id = "v1_activate", tag = "v1", request_body = ActivationRequest,
    responses((status = 200, body = ActivationResponse), (status = 404, body = V1ErrorBody, description = "unknown token"),
              (status = 409, body = V1ErrorBody, description = "token already used"), (status = 410, body = V1ErrorBody, description = "token expired"),
              (status = 422, body = V1ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    V1Instance { instance, .. }: V1Instance,
    V1Json(body): V1Json<ActivationRequest>,
) -> Result<Json<ActivationResponse>, V1Error> {
    let ActivatedSignup { account_id, user_id, domain_id, version_id } =
        state.onramp.signup().activate(&instance, &body.token).await?;
    state.metrics.activations.inc();
    Ok(Json(ActivationResponse { account_id, user_id, domain_id, version_id }))
}
