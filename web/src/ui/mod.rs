//! The web UI's hook. The pages are built on top of this server by the UI work of issue 10; until
//! then `/` is a placeholder that says where the API is.
//!
//! - [`routes`]: pages and page data behind the token (merged with the API's routes).
//! - [`public_routes`]: what a browser must load before it has a token to send (the page that
//!   asks for it, static assets holding no data); no token needed. Empty for now.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// Pages behind the token.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(placeholder))
}

/// Routes served without a token.
pub fn public_routes() -> Router<AppState> {
    Router::new()
}

/// PLACEHOLDER until the UI lands.
async fn placeholder() -> Html<&'static str> {
    Html(
        "<!doctype html><title>podperf</title><h1>podperf-web</h1>\
         <p>The HTTP API is under <code>/api/v2/</code> (<code>/api/v2/openapi.json</code>).</p>",
    )
}
