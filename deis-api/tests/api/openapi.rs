//! The OpenAPI document covers every route of the router, and its schemas match the JSON
//! the server really writes.

use crate::common::*;
use axum::http::StatusCode;
use deis_api::http::routes::{Verb, ROUTES};
use deis_api::openapi;
use deis_core::model::{App, Build, Certificate, Config, Domain, Key, Push, Release, User};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

#[tokio::test]
async fn every_route_is_documented_and_served() {
    let doc = openapi::document();
    let documented: BTreeSet<(String, &'static str)> = doc
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let mut methods = Vec::new();
            if item.get.is_some() {
                methods.push((path.clone(), "GET"));
            }
            if item.post.is_some() {
                methods.push((path.clone(), "POST"));
            }
            if item.delete.is_some() {
                methods.push((path.clone(), "DELETE"));
            }
            methods
        })
        .collect();
    let routed: BTreeSet<(String, &'static str)> = ROUTES
        .iter()
        .map(|r| (r.path.to_string(), r.verb.as_str()))
        .collect();
    assert_eq!(routed.len(), ROUTES.len(), "a route is listed twice");
    assert_eq!(documented, routed);

    // The router really serves each documented path (with and without the trailing
    // slash): no route answers with the fallback's bare "Not found.".
    let h = Harness::new().await;
    let token = h.user("alice").await;
    for (path, method) in &documented {
        let concrete = path
            .replace("{id}", "nope")
            .replace("{type}", "web")
            .replace("{num}", "1")
            .replace("{uuid}", "8c3e8f4e-1f2a-4c55-9a0b-3f0e6f1d2c3b")
            .replace("{version}", "v1")
            .replace("{domain}", "a.example.com")
            .replace("{username}", "alice")
            .replace("{common_name}", "a.example.com");
        let bare = concrete.trim_end_matches('/').to_string();
        for uri in [concrete.clone(), bare] {
            if uri.is_empty() {
                continue;
            }
            let r = h.call(method, &uri, Some(&token), None).await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert!(
                !(r.status == StatusCode::NOT_FOUND && r.body == json!({"detail": "Not found."})),
                "{method} {uri} is not routed"
            );
        }
    }

    // Served as JSON at /v1/openapi.json, identical to the document.
    let r = h.raw("GET", "/v1/openapi.json", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, serde_json::to_value(&doc).unwrap());
    assert_eq!(
        r.body["openapi"].as_str().map(|v| v.starts_with("3.")),
        Some(true)
    );
}

fn collect_refs(value: &Value, refs: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                refs.insert(r.trim_start_matches("#/components/schemas/").to_string());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = serde_json::to_value(openapi::document()).unwrap();
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in &refs {
        assert!(schemas.contains_key(name), "unresolved $ref {name}");
    }
    assert!(refs.len() >= 25, "{refs:?}");
    for route in ROUTES {
        let op = &doc["paths"][route.path][route.verb.as_str().to_lowercase()];
        assert_eq!(op["operationId"], route.operation);
        assert!(
            op["responses"][route.status.to_string()].is_object(),
            "{}",
            route.path
        );
        if route.verb != Verb::Get && route.creates_release {
            assert!(
                op["responses"][route.status.to_string()]["headers"]["Deis-Release"].is_object()
            );
        }
    }
}

fn properties(name: &str) -> BTreeSet<String> {
    let schemas = openapi::schemas();
    match schemas.get(name) {
        Some(RefOr::T(Schema::Object(object))) => object.properties.keys().cloned().collect(),
        _ => panic!("{name} is not an object schema"),
    }
}

fn keys(value: impl serde::Serialize) -> BTreeSet<String> {
    serde_json::to_value(value)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// The mirrors of the deis-core model types list exactly the fields the types serialize.
#[test]
fn model_schemas_match_the_real_json() {
    let now = deis_core::Timestamp::now();
    let user = User {
        id: 1,
        username: "a".into(),
        email: "a@b.c".into(),
        first_name: String::new(),
        last_name: String::new(),
        is_superuser: true,
        is_staff: true,
        is_active: true,
        last_login: None,
        date_joined: now,
        password_hash: "secret".into(),
    };
    assert_eq!(properties("User"), keys(&user));
    assert_eq!(properties("App"), keys(App::new("go", "a")));
    assert_eq!(properties("Build"), keys(Build::new("go", "a", "img")));
    assert_eq!(properties("Config"), keys(Config::initial("go", "a")));
    let release = Release {
        uuid: uuid::Uuid::new_v4(),
        app: "go".into(),
        owner: "a".into(),
        version: 1,
        summary: String::new(),
        config: uuid::Uuid::new_v4(),
        build: None,
        created: now,
        updated: now,
    };
    assert_eq!(properties("Release"), keys(&release));
    let key = Key {
        uuid: uuid::Uuid::new_v4(),
        id: "k".into(),
        owner: "a".into(),
        public: "p".into(),
        fingerprint: "f".into(),
        created: now,
        updated: now,
    };
    assert_eq!(properties("Key"), keys(&key));
    let domain = Domain {
        uuid: uuid::Uuid::new_v4(),
        app: "go".into(),
        owner: "a".into(),
        domain: "d".into(),
        created: now,
        updated: now,
    };
    assert_eq!(properties("Domain"), keys(&domain));
    let cert = Certificate {
        uuid: uuid::Uuid::new_v4(),
        owner: "a".into(),
        common_name: "c".into(),
        expires: now,
        certificate: "pem".into(),
        key: "pem".into(),
        created: now,
        updated: now,
    };
    assert_eq!(properties("Certificate"), keys(&cert));
    let push = Push {
        uuid: uuid::Uuid::new_v4(),
        app: "go".into(),
        owner: "a".into(),
        sha: String::new(),
        fingerprint: String::new(),
        receive_user: "a".into(),
        receive_repo: "go".into(),
        ssh_connection: String::new(),
        ssh_original_command: String::new(),
        created: now,
        updated: now,
    };
    assert_eq!(properties("Push"), keys(&push));
}
