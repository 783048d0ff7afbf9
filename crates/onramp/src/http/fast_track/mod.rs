//! DreamFactory FastTrack (seed 000): `POST /fast-track` creates a dashboard user, an instance
//! named from the email, the instance's database and its admin, and logs the admin in: with
//! `redirect: true` a `302` to the instance's welcome page carrying a one-time
//! `fastTrackGuid`, otherwise the console envelope. Errors are the error envelope with the
//! real HTTP status (the vendor answered 200 for everything) and the same code inside.

pub mod envelope;
mod form;

use crate::http::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use envelope::{Envelope, RequestInfo};
use onramp_core::CoreError;
use onramp_core::provision::{FastTrackInput, FastTracked};
use serde::{Deserialize, Serialize};
use time::format_description::FormatItem;
use time::macros::format_description;

pub fn routes() -> Router<AppState> {
    Router::new().route("/fast-track", post(fast_track).fallback(wrong_method))
}

/// The seed's payload; every field but `redirect`, `nickname`, `company` and `phone` is required.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FastTrackRequest {
    /// `true`: answer with a 302 to the new instance instead of the envelope.
    #[serde(default)]
    redirect: bool,
    #[schema(required = true)]
    email: Option<String>,
    #[serde(rename = "first-name")]
    #[schema(required = true)]
    first_name: Option<String>,
    #[serde(rename = "last-name")]
    #[schema(required = true)]
    last_name: Option<String>,
    #[schema(required = true)]
    password: Option<String>,
    nickname: Option<String>,
    company: Option<String>,
    phone: Option<String>,
    /// The CAPTCHA provider's token, when the platform asks for one (or `X-Captcha-Token`).
    captcha_token: Option<String>,
}

#[derive(Debug, Serialize)]
struct IdOnly {
    id: i64,
}

#[derive(Debug, Serialize)]
struct RedirectPayload {
    #[serde(rename = "fastTrackGuid")]
    fast_track_guid: String,
}

#[derive(Debug, Serialize)]
struct RedirectInfo {
    location: String,
    #[serde(rename = "status-code")]
    status_code: u16,
    payload: RedirectPayload,
}

#[derive(Debug, Serialize)]
struct FastTrackResponse {
    user: IdOnly,
    #[serde(rename = "instance-id")]
    instance_id: String,
    instance: IdOnly,
    #[serde(rename = "instance-initialized")]
    instance_initialized: bool,
    #[serde(rename = "instance-admin")]
    instance_admin: bool,
    redirect: RedirectInfo,
}

/// `2016-02-25T16:32:08-05:00`
const START_FORMAT: &[FormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);

/// What every envelope of one request shares.
struct Call {
    started: std::time::Instant,
    start: String,
    host: String,
    client: String,
    uri: String,
    verb: String,
    /// Makes `request.id` unique per request.
    nonce: String,
}

impl Call {
    fn begin(
        state: &AppState,
        uri: &axum::http::Uri,
        verb: &str,
        headers: &HeaderMap,
        client: Option<String>,
    ) -> Self {
        Self {
            started: std::time::Instant::now(),
            start: state.onramp.now().format(START_FORMAT).unwrap_or_default(),
            host: headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned(),
            client: client.unwrap_or_default(),
            nonce: state.onramp.uuid().simple().to_string(),
            uri: uri.path().to_owned(),
            verb: verb.to_owned(),
        }
    }

    fn request(&self) -> RequestInfo {
        let id = envelope::request_id(&self.start, &self.host, &self.client, &self.nonce);
        RequestInfo::new(id, &self.uri, &self.verb, &self.start, self.started.elapsed().as_secs_f64())
    }

    fn error(&self, status: StatusCode, message: &str, retry_after: Option<u64>) -> Response {
        let body = Envelope::<()>::error(status.as_u16(), message, self.request());
        crate::http::with_retry_after((status, axum::Json(body)).into_response(), retry_after)
    }

    fn core_error(&self, e: CoreError) -> Response {
        let status = match &e {
            CoreError::Validation(_) => StatusCode::BAD_REQUEST,
            CoreError::EmailTaken | CoreError::InstanceNameUnavailable => StatusCode::CONFLICT,
            CoreError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            CoreError::Busy { .. } | CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::InstanceNotFound | CoreError::AppNotFound => StatusCode::NOT_FOUND,
            CoreError::AccountDisabled | CoreError::SignupDenied { .. } | CoreError::InvitationRequired => {
                StatusCode::FORBIDDEN
            }
            // Not answers of FastTrack: a bug if they reach here. A failed provisioning is a 500.
            CoreError::ContractNotFound
            | CoreError::AccountNotFound
            | CoreError::UsernameTaken
            | CoreError::OpenRegistrationDisabled
            | CoreError::ProvisioningFailed
            | CoreError::TokenNotFound
            | CoreError::TokenExpired
            | CoreError::TokenUsed
            | CoreError::InvalidCredentials
            | CoreError::NotActivated
            | CoreError::SessionInvalid
            | CoreError::AdminUnauthorized
            | CoreError::AdminForbidden
            | CoreError::UserNotFound
            | CoreError::NotFound { .. }
            | CoreError::WrongState(_)
            | CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, code = e.code(), "fast-track failed");
        }
        let message = match &e {
            CoreError::Validation(fields) => {
                let each: Vec<String> = fields.iter().map(|f| format!("{} {}", f.field, f.message)).collect();
                format!("Invalid request: {}.", each.join("; "))
            }
            other => other.public_message(),
        };
        let retry_after = e.retry_after();
        self.error(status, &message, retry_after)
    }

    fn success(&self, done: FastTracked, redirect: bool) -> Response {
        let body = Envelope::ok(
            200,
            FastTrackResponse {
                user: IdOnly { id: done.owner_key },
                instance_id: done.instance.name.clone(),
                instance: IdOnly { id: done.instance.id.0 },
                instance_initialized: true,
                instance_admin: true,
                redirect: RedirectInfo {
                    location: done.login_url.clone(),
                    status_code: 302,
                    payload: RedirectPayload { fast_track_guid: done.guid },
                },
            },
            self.request(),
        );
        if !redirect {
            return axum::Json(body).into_response();
        }
        let mut response = (StatusCode::FOUND, axum::Json(body)).into_response();
        if let Ok(location) = HeaderValue::from_str(&done.login_url) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

/// Provision a dashboard user, an instance, its database and its admin in one call (seed 000).
#[utoipa::path(post, path = "/fast-track", operation_id = "fast_track", tag = "dreamfactory", request_body = FastTrackRequest,
    responses(
        (status = 200, description = "console envelope: `response{user{id}, instance-id, instance{id}, instance-initialized, instance-admin, redirect{location, status-code, payload{fastTrackGuid}}}`, `request{…}`"),
        (status = 302, description = "`redirect: true`: to the instance's welcome page with the guid"),
        (status = 400, body = crate::http::openapi::FastTrackErrorBody, description = "error envelope: invalid payload"),
        (status = 404, body = crate::http::openapi::FastTrackErrorBody, description = "error envelope: FastTrack is off"),
        (status = 409, body = crate::http::openapi::FastTrackErrorBody, description = "error envelope: the email owns a dashboard account"),
        (status = 429, body = crate::http::openapi::FastTrackErrorBody, description = "error envelope: rate limited"),
        (status = 500, body = crate::http::openapi::FastTrackErrorBody, description = "error envelope: provisioning failed and was undone"),
        (status = 503, body = crate::http::openapi::FastTrackErrorBody, description = "error envelope: busy or database unavailable")))]
pub async fn fast_track(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    client: super::extract::ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let client = client.key();
    if is_form(&headers) {
        return form::answer(&state, &headers, client, body).await;
    }
    let call = Call::begin(&state, &uri, "POST", &headers, client.clone());
    let language = super::pages::language(&headers);
    let captcha = super::extract::captcha_header(&headers);
    let mut response = answer(&state, &call, (client, language, captcha), body).await;
    // The answer may carry a login secret: never cache it.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Is the body an HTML form (`application/x-www-form-urlencoded`)?
fn is_form(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// An error envelope for a request refused before its handler ran (CORS, content type).
pub(crate) fn refused(
    state: &AppState,
    parts: &axum::http::request::Parts,
    status: StatusCode,
    message: &str,
) -> Response {
    let client = super::client_addr(&parts.extensions, &parts.headers, &state.config.trusted_proxies)
        .map(|ip| ip.to_string());
    let call = Call::begin(state, &parts.uri, parts.method.as_str(), &parts.headers, client);
    let mut response = call.error(status, message, None);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Any method but `POST`: the error envelope, like every other FastTrack error.
async fn wrong_method(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    method: axum::http::Method,
    headers: HeaderMap,
    client: super::extract::ClientAddr,
) -> Response {
    let client = client.key();
    let call = Call::begin(&state, &uri, method.as_str(), &headers, client);
    let mut response = call.error(StatusCode::METHOD_NOT_ALLOWED, "FastTrack takes POST only.", None);
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn answer(
    state: &AppState,
    call: &Call,
    (client, language, captcha): (Option<String>, &str, Option<String>),
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !state.config.fast_track.enabled {
        return call.error(StatusCode::NOT_FOUND, "FastTrack is not enabled on this installation.", None);
    }
    let body = match super::body_bytes(body) {
        Ok(b) => b,
        Err(problem) => return call.error(problem.status(), &problem.message(), None),
    };
    let request: FastTrackRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let message = if e.is_data() {
                format!("Invalid request: {e}.")
            } else {
                "Invalid request: the body must be a JSON object.".to_owned()
            };
            return call.error(StatusCode::BAD_REQUEST, &message, None);
        }
    };
    let redirect = request.redirect;
    let input = FastTrackInput {
        email: request.email.unwrap_or_default(),
        first_name: request.first_name.unwrap_or_default(),
        last_name: request.last_name.unwrap_or_default(),
        password: request.password.unwrap_or_default(),
        nickname: request.nickname,
        company: request.company,
        phone: request.phone,
        client,
        language: Some(language.to_owned()),
        captcha_token: request.captcha_token.or(captcha),
    };
    match state.onramp.provisioner().fast_track(input).await {
        Ok(done) => {
            state.metrics.fast_tracks.inc();
            call.success(done, redirect)
        }
        Err(e) => call.core_error(e),
    }
}
