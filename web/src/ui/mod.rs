//! The web UI: one page and its plain JavaScript modules, CSS and nothing else, embedded in the
//! binary (`include_str!`); no build step, no third-party code.
//!
//! The page (`/ui/`) and the assets hold no data, so they are served without a token
//! ([`public_routes`]): a browser cannot send a header when it navigates. `/` is behind the token
//! like the API and redirects to `/ui/`. The page asks for the token, keeps it in
//! `sessionStorage` (or `localStorage` when the user ticks "remember") and sends it as
//! `Authorization: Bearer` with every API call; the live events come through `fetch` streaming of
//! `/api/v2/events` (an `EventSource` cannot send the header). Every data the page shows is read
//! from the token-protected API.
//!
//! Every UI response carries a Content-Security-Policy that allows scripts from this origin only
//! (no inline script, no `eval`), and the scripts render data with `textContent` and SVG
//! attributes only, never `innerHTML`.
//!
//! # Layout
//! - `assets/index.html` — the shell: navigation, the token form, one `<main>`.
//! - `assets/app.css` — the styles.
//! - `assets/js/*.js` — ES modules: `app.js` (router, token), `api.js` (fetch, event streams),
//!   `dom.js` (element helpers), `chart.js` (SVG charts), `heatmap.js`, `health.js` (the health
//!   panel and the heatmap's marks), `report.js` (the
//!   comparison table), `jobview.js` (one job, live), and one module per page.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::AppError;
use crate::state::AppState;

/// Scripts, styles, images and connections from this origin only; no plugins, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const INDEX: &str = include_str!("../../assets/index.html");
const CSS: &str = include_str!("../../assets/app.css");

/// The modules, by file name.
const SCRIPTS: &[(&str, &str)] = &[
    ("app.js", include_str!("../../assets/js/app.js")),
    ("api.js", include_str!("../../assets/js/api.js")),
    ("dom.js", include_str!("../../assets/js/dom.js")),
    ("chart.js", include_str!("../../assets/js/chart.js")),
    ("heatmap.js", include_str!("../../assets/js/heatmap.js")),
    ("health.js", include_str!("../../assets/js/health.js")),
    ("report.js", include_str!("../../assets/js/report.js")),
    ("jobview.js", include_str!("../../assets/js/jobview.js")),
    ("overview.js", include_str!("../../assets/js/overview.js")),
    ("run.js", include_str!("../../assets/js/run.js")),
    ("matrix.js", include_str!("../../assets/js/matrix.js")),
    ("jobs.js", include_str!("../../assets/js/jobs.js")),
    ("schedules.js", include_str!("../../assets/js/schedules.js")),
    ("status.js", include_str!("../../assets/js/status.js")),
];

/// Behind the token: nothing yet (every page's data comes from the API, which checks the token).
pub fn routes() -> Router<AppState> {
    Router::new()
}

/// The page and its assets, served without a token (they hold no data), with the CSP. `/` sends
/// a browser on to the page (`/ui/`): a browser cannot send the token when it navigates, and the
/// page asks for it.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/app.css", get(css))
        .route("/ui/js/{file}", get(script))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn script(Path(file): Path<String>) -> Response {
    match SCRIPTS.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => asset("text/javascript; charset=utf-8", body),
        None => AppError::not_found("no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module another imports is served: an import of a missing file would break the
    /// page in the browser only.
    #[test]
    fn every_imported_module_is_served() {
        for (name, body) in SCRIPTS {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let file = line
                    .rsplit_once("'./")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(f, _)| f)
                    .unwrap_or_else(|| panic!("{name}: cannot read {line:?}"));
                assert!(
                    SCRIPTS.iter().any(|(n, _)| *n == file),
                    "{name} imports {file}, which is not served"
                );
            }
        }
    }

    /// The scripts never hand data to the HTML parser.
    #[test]
    fn no_script_writes_html() {
        for (name, body) in SCRIPTS.iter().chain([("index.html", INDEX)].iter()) {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!body.contains(banned), "{name} uses {banned}");
            }
        }
        assert!(
            !INDEX.contains("<script>"),
            "index.html has an inline script"
        );
    }
}
