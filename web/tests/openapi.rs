//! The OpenAPI document: generated from the code, compared with the committed `web/openapi.json`
//! (a change of the API shows as a diff to review), served at `/api/v2/openapi.json`, and every
//! path it lists is routed.

mod common;

use std::time::Duration;

use podperf_testkit::NatsServer;
use serde_json::Value;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_document_matches_the_committed_snapshot() {
    let now = podperf_web::openapi::document() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(SNAPSHOT, &now).unwrap();
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == now,
        "the OpenAPI document differs from {SNAPSHOT}: if the API change is meant, update it with \
         `UPDATE_OPENAPI=1 cargo test -p podperf-web --test openapi` and commit the file"
    );
}

/// Served behind the token, and each documented path and method is routed (with no dispatcher
/// behind, an API call answers 503 `no_dispatcher`, never the router's 404 or 405).
#[tokio::test]
async fn served_and_every_documented_path_is_routed() {
    let nats = NatsServer::start();
    let client = podperf_client::Client::new(
        async_nats::connect(nats.url()).await.unwrap(),
        Duration::from_secs(1),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(podperf_web::run(
        listener,
        client,
        common::config(),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{base}/api/v2/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = http
        .get(format!("{base}/api/v2/openapi.json"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["info"]["title"], "podperf-web");

    let id = uuid::Uuid::new_v4().to_string();
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, 23, "{}", doc["paths"]);
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = format!("{base}{}", path.replace("{id}", &id).replace("{name}", "x"));
            let req = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url).body("{}"),
                "delete" => http.delete(&url),
                other => panic!("{path}: unexpected method {other}"),
            };
            let res = req.bearer_auth(common::TOKEN).send().await.unwrap();
            let status = res.status().as_u16();
            if path == "/api/v2/events" {
                assert_eq!(status, 200, "an event stream opens");
                continue; // and never ends
            }
            let body = res.text().await.unwrap();
            assert!(
                !body.contains("no such endpoint") && status != 405,
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
}
