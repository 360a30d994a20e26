//! Bad input: malformed JSON, wrong types, oversize bodies, invalid names and values all
//! give a 4xx JSON body naming the field, never a 500.

use crate::common::*;
use axum::http::StatusCode;
use deis_api::http::routes::{Auth, Verb, ROUTES};
use serde_json::json;

async fn post_raw(h: &Harness, uri: &str, token: &str, body: &[u8]) -> Resp {
    let auth = format!("token {token}");
    h.raw(
        "POST",
        uri,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("x-deis-builder-auth", BUILDER_KEY),
        ],
        body.to_vec(),
    )
    .await
}

#[tokio::test]
async fn malformed_json_is_a_json_400() {
    let (h, c) = Harness::cast().await;
    let r = post_raw(&h, "/v1/apps/", &c.bob, b"{\"id\": ").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error"),
        "{}",
        r.text
    );
    let r = post_raw(&h, "/v1/apps/", &c.bob, b"{\"id\": \"ok\"} trailing").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = post_raw(&h, "/v1/apps/", &c.bob, &[0xff, 0xfe, 0x00]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.is_object());
}

#[tokio::test]
async fn wrong_types_name_the_field() {
    let (h, c) = Harness::cast().await;
    let r = h.post("/v1/apps/", &c.bob, json!({"id": 5})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["id"][0].as_str().unwrap().contains("invalid type"),
        "{}",
        r.text
    );
    let r = h
        .call(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "bob"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    let r = h
        .post("/v1/apps/go/config/", &c.bob, json!({"values": ["A=1"]}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["values"].is_array(), "{}", r.text);
    let r = h
        .post(
            "/v1/apps/go/config/",
            &c.bob,
            json!({"values": {"1BAD": "x"}}),
        )
        .await;
    assert!(r.body["values"].is_array(), "{}", r.text);
    let r = h
        .post(
            "/v1/apps/go/config/",
            &c.bob,
            json!({"memory": {"web": "lots"}}),
        )
        .await;
    assert!(r.body["memory"].is_array(), "{}", r.text);
    let r = h
        .post("/v1/apps/go/config/", &c.bob, json!({"cpu": {"web": 5000}}))
        .await;
    assert!(r.body["cpu"].is_array(), "{}", r.text);
    let r = h
        .post("/v1/apps/go/config/", &c.bob, json!({"colour": {}}))
        .await;
    assert!(r.body["colour"].is_array(), "{}", r.text);
    let r = h
        .post("/v1/apps/go/scale/", &c.bob, json!(["web", 1]))
        .await;
    assert!(r.body["structure"].is_array(), "{}", r.text);
    let r = h
        .post("/v1/apps/go/scale/", &c.bob, json!({"Web!": 1}))
        .await;
    assert!(r.body["structure"].is_array(), "{}", r.text);
    let r = h
        .post(
            "/v1/apps/go/releases/rollback/",
            &c.bob,
            json!({"version": "two"}),
        )
        .await;
    assert!(r.body["version"].is_array(), "{}", r.text);
    let r = h
        .post(
            "/v1/apps/go/builds/",
            &c.bob,
            json!({"image": "x", "procfile": {"web": 1}}),
        )
        .await;
    assert!(r.body["procfile.web"].is_array(), "{}", r.text);
    let r = h
        .post(
            "/v1/apps/go/builds/",
            &c.bob,
            json!({"image": "x", "sha": "not hex"}),
        )
        .await;
    assert!(r.body["sha"].is_array(), "{}", r.text);
}

#[tokio::test]
async fn invalid_names_and_values_name_the_field() {
    let (h, c) = Harness::cast().await;
    for (uri, body, field) in [
        ("/v1/apps/", json!({"id": "Bad_Name"}), "id"),
        ("/v1/apps/", json!({"id": "x".repeat(65)}), "id"),
        ("/v1/apps/go/domains/", json!({"domain": "a..b"}), "domain"),
        ("/v1/apps/go/domains/", json!({"domain": "123"}), "domain"),
        (
            "/v1/keys/",
            json!({"id": "has space", "public": SSH_KEY_BOB}),
            "id",
        ),
        (
            "/v1/keys/",
            json!({"id": "k", "public": "ssh-ed25519"}),
            "public",
        ),
        (
            "/v1/certs/",
            json!({"certificate": "nope", "key": CERT_KEY}),
            "certificate",
        ),
        (
            "/v1/certs/",
            json!({"certificate": CERT, "key": "nope"}),
            "key",
        ),
        ("/v1/apps/go/run/", json!({"command": "  "}), "command"),
        (
            "/v1/auth/passwd/",
            json!({"password": "bob-password", "new_password": ""}),
            "new_password",
        ),
    ] {
        let r = h.post(uri, &c.bob, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text);
        assert!(
            r.body[field].is_array(),
            "{uri}: expected {field} in {}",
            r.text
        );
    }
    for (body, field) in [
        (
            json!({"username": "bad name", "password": "pw-long-enough", "email": "a@example.test"}),
            "username",
        ),
        (
            json!({"username": "erin", "password": "pw-long-enough", "email": "not-an-email"}),
            "email",
        ),
        (
            json!({"username": "erin", "password": "", "email": "e@example.test"}),
            "password",
        ),
    ] {
        let r = h.call("POST", "/v1/auth/register/", None, Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.body[field].is_array(), "expected {field} in {}", r.text);
    }
    let r = h.get("/v1/apps/go/logs/?log_lines=lots", &c.bob).await;
    assert!(r.body["log_lines"].is_array(), "{}", r.text);
    let r = h.get("/v1/apps/?page_size=0", &c.bob).await;
    assert!(r.body["page_size"].is_array(), "{}", r.text);
    let r = h.get("/v1/apps/go/containers/web/abc/", &c.bob).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get("/v1/apps/go/releases/vx/", &c.bob).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get("/v1/apps/go/builds/not-a-uuid/", &c.bob).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let auth = format!("token {}", c.bob);
    let r = h
        .raw(
            "GET",
            "/v1/apps/%ff%fe/",
            &[("authorization", auth.as_str())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    let r = h
        .raw(
            "OPTIONS",
            "/v1/apps/go/",
            &[("authorization", auth.as_str())],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body["detail"].is_string());
    let r = h
        .raw(
            "GET",
            "/v1/apps/",
            &[("authorization", "Bearer abc")],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .raw("GET", "/v1/apps/", &[("authorization", "token ")], vec![])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let (h, c) = Harness::cast().await;
    let big = format!(
        "{{\"values\": {{\"A\": \"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let r = post_raw(&h, "/v1/apps/go/config/", &c.bob, big.as_bytes()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body["detail"].is_string(), "{}", r.text);
    let r = h.call("POST", "/v1/auth/register/", None, Some(json!({"username": "erin", "password": "x".repeat(2 * 1024 * 1024), "email": "e@example.test"}))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// Every route that takes a body answers garbage with a 4xx JSON body, never a 5xx.
#[tokio::test]
async fn every_body_route_survives_garbage() {
    let garbage: &[&[u8]] = &[
        b"[",
        b"null",
        b"42",
        b"\"text\"",
        b"[1,2]",
        b"{\"a\":",
        b"{}",
        b"{\"id\":{}}",
        b"{\"values\":{\"A\":{\"nested\":true}}}",
        b"{\"username\":null,\"password\":[]}",
        &[0xc3, 0x28],
    ];
    let (h, c) = Harness::cast().await;
    h.deploy(&c.bob, "go").await;
    for route in ROUTES.iter().filter(|r| r.verb != Verb::Get) {
        let path = route
            .path
            .replace("{id}", "go")
            .replace("{type}", "web")
            .replace("{num}", "1")
            .replace("{domain}", "www.example.com")
            .replace("{username}", "nobody")
            .replace("{common_name}", "www.example.test");
        for body in garbage {
            // Destructive and public routes may legitimately succeed on `{}`; skip it there.
            if *body == b"{}" && (route.verb == Verb::Delete || route.auth == Auth::Public) {
                continue;
            }
            let r = post_like(&h, route.verb.as_str(), &path, &c.carol, body).await;
            assert!(
                r.status.is_client_error() || r.status.is_success(),
                "{} {path} with {:?}: {} {}",
                route.verb.as_str(),
                String::from_utf8_lossy(body),
                r.status,
                r.text
            );
            if r.status.is_client_error() {
                assert!(r.body.is_object(), "{path}: not JSON: {}", r.text);
            }
        }
    }
}

async fn post_like(h: &Harness, method: &str, uri: &str, token: &str, body: &[u8]) -> Resp {
    let auth = format!("token {token}");
    h.raw(
        method,
        uri,
        &[
            ("authorization", auth.as_str()),
            ("x-deis-builder-auth", BUILDER_KEY),
        ],
        body.to_vec(),
    )
    .await
}
