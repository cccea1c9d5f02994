//! `GET /api/v2/openapi.json`: the OpenAPI document, generated from the handlers' annotations
//! (utoipa). `tests/openapi.rs` compares it with the committed `web/openapi.json`, so the
//! document cannot drift from the code unnoticed. Bodies of the protocol's types are described
//! by name (the same JSON as `podperf … -o json`).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{events, fleet, health, jobs, runs, schedules, status, workers};
use crate::error::{ErrorBody, ErrorDetail};
use crate::v1::{clients, task};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "podperf-web",
        description = "podperf's HTTP API: v2 (the protocol's types as JSON) and the published \
                       design's v1. Every call but /healthz and /readyz needs \
                       `Authorization: Bearer <token>` when the server has tokens."
    ),
    paths(
        workers::list, jobs::submit, jobs::list, jobs::get, jobs::cancel, runs::start, runs::list,
        runs::get, schedules::list, schedules::add, schedules::remove, schedules::pause,
        schedules::resume, events::events, status::status, fleet::latest, fleet::run, health::healthz, health::readyz, clients::list, task::create,
        task::get, openapi_json
    ),
    components(schemas(ErrorBody, ErrorDetail, health::Ready)),
    modifiers(&Bearer),
    security(("bearer" = [])),
    tags(
        (name = "v2", description = "REST API v2"),
        (name = "v1", description = "the published design's v1 API, unchanged for its users"),
        (name = "probes", description = "liveness and readiness, no token")
    )
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as served, pretty-printed (what `web/openapi.json` holds).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = "v2".into(); // not the crate's version: a release must not change it
    doc.to_pretty_json()
        .expect("the OpenAPI document serialises")
}

/// This document.
#[utoipa::path(get, path = "/api/v2/openapi.json", operation_id = "openapi", tag = "v2",
    responses((status = 200, description = "OpenAPI 3.1 document", body = serde_json::Value),
              (status = 401, body = ErrorBody)))]
pub async fn openapi_json() -> Json<serde_json::Value> {
    Json(serde_json::from_str(&document()).expect("the document is JSON"))
}
