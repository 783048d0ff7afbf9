//! `GET /v1/apps/{app_id}/schema`: the app schema object with its signup domains.

use super::V1Instance;
use super::error::{V1Error, V1ErrorBody};
use crate::http::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct AppSchema {
    pub app_id: String,
    pub name: String,
    /// The schema version (`ver_…`), returned again by signup activation.
    pub version_id: String,
    pub signup_url: String,
    /// Signup domains keyed by id.
    pub domains: BTreeMap<String, DomainSchema>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainSchema {
    pub allow_signup: bool,
    pub title: String,
    pub description: String,
    pub help: String,
}

/// The app schema object (seed 004): `domains` keyed by id.
#[utoipa::path(get, path = "/v1/apps/{app_id}/schema", operation_id = "v1_app_schema", tag = "v1",
    params(("app_id" = String, Path, description = "The app's id")),
    responses((status = 200, body = AppSchema), (status = 404, body = V1ErrorBody)))]
pub async fn app_schema(
    State(state): State<AppState>,
    V1Instance { instance, .. }: V1Instance,
    Path(app_id): Path<String>,
) -> Result<Json<AppSchema>, V1Error> {
    let (app, domains) = state.onramp.catalog().app_schema(&instance, &app_id).await?;
    Ok(Json(AppSchema {
        app_id: app.id,
        name: app.name,
        version_id: app.schema_version,
        signup_url: app.signup_url,
        domains: domains
            .into_iter()
            .map(|d| {
                (
                    d.id,
                    DomainSchema {
                        allow_signup: d.allow_signup,
                        title: d.title,
                        description: d.description,
                        help: d.help,
                    },
                )
            })
            .collect(),
    }))
}
