//! Domains, certificates, SSH keys, permissions and the builder hooks.

use crate::common::*;
use axum::http::StatusCode;
use deis_core::discovery::keys;
use deis_core::Discovery;
use serde_json::json;

#[tokio::test]
async fn domains_reach_discovery() {
    let (h, c) = Harness::cast().await;
    let r = h
        .post(
            "/v1/apps/go/domains/",
            &c.carol,
            json!({"domain": "WWW.Example.com."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["domain"], "www.example.com");
    assert_eq!(
        h.discovery
            .get(&keys::domain("www.example.com"))
            .await
            .unwrap()
            .unwrap()
            .value,
        "go"
    );
    h.app(&c.dave, "other").await;
    let r = h
        .post(
            "/v1/apps/other/domains/",
            &c.dave,
            json!({"domain": "www.example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .post(
            "/v1/apps/go/domains/",
            &c.bob,
            json!({"domain": "*.example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["domain"].is_array());
    // A collaborator may not delete; the owner may.
    let r = h
        .delete("/v1/apps/go/domains/www.example.com/", &c.carol)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .delete("/v1/apps/go/domains/www.example.com", &c.bob)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(h
        .discovery
        .get(&keys::domain("www.example.com"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn certificates_are_parsed_and_published() {
    let (h, c) = Harness::cast().await;
    let r = h
        .post(
            "/v1/certs/",
            &c.bob,
            json!({"certificate": CERT, "key": CERT_KEY}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["common_name"], "www.example.test");
    assert_eq!(r.body["expires"], "2126-11-02T22:47:42UTC");
    assert!(r.body.get("key").is_none() && r.body.get("certificate").is_none());
    let stored = h
        .discovery
        .get(&keys::certificate("www.example.test"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value, CERT);
    assert!(h
        .discovery
        .get(&keys::certificate_key("www.example.test"))
        .await
        .unwrap()
        .is_some());
    // A SAN may be named as the common name.
    let r = h
        .post(
            "/v1/certs/",
            &c.bob,
            json!({"certificate": CERT, "key": CERT_KEY, "common_name": "api.example.test"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = h
        .post(
            "/v1/certs/",
            &c.bob,
            json!({"certificate": CERT, "key": CERT_KEY, "common_name": "other.example.test"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .post(
            "/v1/certs/",
            &c.bob,
            json!({"certificate": WILDCARD_CERT, "key": WILDCARD_KEY}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["common_name"].is_array(), "{}", r.text);
    let r = h.post("/v1/certs/", &c.bob, json!({"certificate": "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n", "key": CERT_KEY})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["certificate"].is_array());
    // Lists: your own; admins all.
    assert_eq!(h.get("/v1/certs/", &c.bob).await.body["count"], 2);
    assert_eq!(h.get("/v1/certs/", &c.dave).await.body["count"], 0);
    assert_eq!(h.get("/v1/certs/", &c.alice).await.body["count"], 2);
    assert_eq!(
        h.get("/v1/certs/www.example.test/", &c.dave).await.status,
        StatusCode::FORBIDDEN
    );
    let r = h.delete("/v1/certs/www.example.test/", &c.bob).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(h
        .discovery
        .get(&keys::certificate("www.example.test"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn keys_are_unique() {
    let (h, c) = Harness::cast().await;
    let r = h
        .post(
            "/v1/keys/",
            &c.bob,
            json!({"id": "bob@desk", "public": SSH_KEY_BOB}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let fingerprint = r.body["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fingerprint.split(':').count(), 16);
    let published = h
        .discovery
        .get(&format!("/deis/builder/users/bob/{fingerprint}"))
        .await
        .unwrap();
    assert_eq!(published.unwrap().value, SSH_KEY_BOB);
    let r = h
        .post(
            "/v1/keys/",
            &c.dave,
            json!({"id": "stolen", "public": SSH_KEY_BOB}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["public"].is_array());
    let r = h
        .post(
            "/v1/keys/",
            &c.bob,
            json!({"id": "bob@desk", "public": SSH_KEY_ALICE}),
        )
        .await;
    assert!(r.body["id"].is_array(), "{}", r.text);
    let r = h
        .post(
            "/v1/keys/",
            &c.bob,
            json!({"id": "bad", "public": "ssh-rsa notbase64!"}),
        )
        .await;
    assert!(r.body["public"].is_array());
    assert_eq!(h.get("/v1/keys/", &c.dave).await.body["count"], 0);
    assert_eq!(
        h.get("/v1/keys/bob@desk/", &c.dave).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get("/v1/keys/bob@desk/", &c.bob).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.delete("/v1/keys/bob@desk/", &c.bob).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(h
        .discovery
        .get(&format!("/deis/builder/users/bob/{fingerprint}"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn perms_transfer_and_destroy() {
    let (h, c) = Harness::cast().await;
    assert_eq!(
        h.get("/v1/apps/go/perms/", &c.carol).await.body,
        json!({"users": ["carol"]})
    );
    // A collaborator may not grant, transfer or destroy.
    assert_eq!(
        h.post("/v1/apps/go/perms/", &c.carol, json!({"username": "dave"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.post("/v1/apps/go/", &c.carol, json!({"owner": "carol"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.delete("/v1/apps/go/", &c.carol).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.post("/v1/apps/go/perms/", &c.bob, json!({"username": "nobody"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A collaborator may remove themselves, but not others.
    h.post("/v1/apps/go/perms/", &c.bob, json!({"username": "dave"}))
        .await;
    assert_eq!(
        h.delete("/v1/apps/go/perms/dave/", &c.carol).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.delete("/v1/apps/go/perms/carol/", &c.carol).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("/v1/apps/go/", &c.carol).await.status,
        StatusCode::FORBIDDEN
    );
    // Transfer.
    let r = h
        .post("/v1/apps/go/", &c.bob, json!({"owner": "dave"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["owner"], "dave");
    // Destroy removes discovery state and scheduler instances.
    h.deploy(&c.dave, "go").await;
    h.post(
        "/v1/apps/go/domains/",
        &c.dave,
        json!({"domain": "go.example.com"}),
    )
    .await;
    assert_eq!(
        h.delete("/v1/apps/go/", &c.dave).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(h
        .discovery
        .get(&keys::domain("go.example.com"))
        .await
        .unwrap()
        .is_none());
    assert!(h
        .controller
        .scheduler()
        .instances("go")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        h.get("/v1/apps/go/", &c.alice).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn builder_hooks() {
    let (h, c) = Harness::cast().await;
    let push = json!({"receive_user": "carol", "receive_repo": "go", "sha": "abc1234", "fingerprint": "aa:bb", "ssh_connection": "127.0.0.1 5000 127.0.0.1 2222", "ssh_original_command": "git-receive-pack 'go.git'"});
    let r = h
        .call("POST", "/v1/hooks/push/", Some(&c.bob), Some(push.clone()))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h.hook("/v1/hooks/push/", push).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["owner"], "carol");
    let r = h
        .hook(
            "/v1/hooks/push/",
            json!({"receive_user": "dave", "receive_repo": "go"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .hook("/v1/hooks/build/", json!({"receive_user": "carol", "receive_repo": "go", "image": "go", "sha": "abc12345", "procfile": {"web": "./go"}, "dockerfile": ""}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"release": {"version": 2}, "domains": ["go.example.test"]})
    );
    assert_eq!(r.header("Deis-Release"), Some("2"));
    h.post(
        "/v1/apps/go/config/",
        &c.bob,
        json!({"values": {"BUILDPACK_URL": "https://example.test/bp.git"}}),
    )
    .await;
    let r = h
        .hook(
            "/v1/hooks/config/",
            json!({"receive_user": "bob", "receive_repo": "go"}),
        )
        .await;
    assert_eq!(
        r.body["values"]["BUILDPACK_URL"],
        "https://example.test/bp.git"
    );
    let r = h
        .raw(
            "POST",
            "/v1/hooks/config/",
            &[("x-deis-builder-auth", "wrong")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
