//! Operations endpoints: liveness, readiness, Prometheus metrics, the JWKS, the OpenAPI document.

use super::v1::error::V1Error;
use crate::http::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(openapi))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "ops", responses((status = 200, description = "ready"), (status = 503, description = "database unreachable")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.onramp.operator().ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" }))).into_response()
        }
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "ops", security((), ("bearer" = [])),
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain"),
              (status = 401, body = crate::http::v1::error::V1ErrorBody, description = "`[metrics] token` is set and the bearer token is not it"),
              (status = 404, body = crate::http::v1::error::V1ErrorBody, description = "`/metrics` is served on `[metrics] listen` instead")))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // Served on its own listener instead: not here.
    if state.config.metrics.listen.is_some() {
        return V1Error::new(StatusCode::NOT_FOUND, "not_found", "Not found.").into_response();
    }
    metrics_guarded(&state, &headers).await
}

/// `/metrics` alone, for `[metrics] listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>, headers: HeaderMap| async move {
                metrics_guarded(&state, &headers).await
            }),
        )
        .with_state(state)
}

/// With `[metrics] token`, only a scraper sending it as a bearer token reads the metrics.
async fn metrics_guarded(state: &AppState, headers: &HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics.token {
        use subtle::ConstantTimeEq;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(token.0.as_bytes())) {
            let mut r =
                V1Error::new(StatusCode::UNAUTHORIZED, "unauthorized", "A metrics token is required.")
                    .into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    encode_metrics(state).await
}

async fn encode_metrics(state: &AppState) -> Response {
    let m = &state.metrics;
    if let Ok(counts) = state.onramp.operator().outbox_counts().await {
        m.outbox_pending.set(i64::try_from(counts.pending).unwrap_or(i64::MAX));
        m.outbox_dead.set(i64::try_from(counts.dead).unwrap_or(i64::MAX));
    }
    m.hash_queue_depth.set(i64::try_from(state.onramp.hasher().queue_depth()).unwrap_or(i64::MAX));
    match m.encode() {
        Ok(body) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The signing keys of the addressed instance, as a JWKS.
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "jwks", tag = "ops", responses((status = 200, description = "JSON Web Key Set")))]
pub async fn jwks(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, V1Error> {
    let name = super::instance_name(&headers, &state.config.base_domain);
    let instance = state.onramp.instance(&name).await?;
    let ring = state.onramp.logins().key_ring(&instance).await?;
    Ok(Json(json!({ "keys": ring.jwks() })))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "ops", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::document()).into_response()
}
