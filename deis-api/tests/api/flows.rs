//! Behaviour of the endpoints: auth, apps, config, builds, releases, scale, domains,
//! certificates, keys, permissions, hooks and orchestration failures.

use crate::common::*;
use axum::http::StatusCode;
use deis_api::secrets::hash_token;
use deis_core::discovery::keys;
use deis_core::release::ConfigPatch;
use deis_core::scheduler::Artifact;
use deis_core::Discovery;
use serde_json::json;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn first_user_is_admin_and_tokens_are_hashed() {
    let h = Harness::new();
    let alice = h.user("alice").await;
    let bob = h.user("bob").await;
    assert_eq!(alice.len(), 40);
    let store = h.controller.store();
    assert!(store.get_user("alice").await.unwrap().is_superuser);
    assert!(!store.get_user("bob").await.unwrap().is_superuser);
    // Only the hash finds the user.
    assert_eq!(
        store
            .user_by_token(&hash_token(&bob))
            .await
            .unwrap()
            .username,
        "bob"
    );
    assert!(store
        .user_by_token(&deis_core::model::TokenHash(bob.clone()))
        .await
        .is_err());
    // A second login replaces the token.
    let r = h
        .call(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "bob", "password": "bob-password"})),
        )
        .await;
    let fresh = r.body["token"].as_str().unwrap().to_string();
    assert_ne!(fresh, bob);
    assert_eq!(
        h.get("/v1/apps/", &bob).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.get("/v1/apps/", &fresh).await.status, StatusCode::OK);
    // Wrong password.
    let r = h
        .call(
            "POST",
            "/v1/auth/login/",
            None,
            Some(json!({"username": "bob", "password": "nope"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["non_field_errors"].is_array());
    // Duplicate username.
    let r = h
        .call(
            "POST",
            "/v1/auth/register/",
            None,
            Some(json!({"username": "bob", "password": "x-password", "email": "b@example.test"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["username"].is_array());
}

#[tokio::test]
async fn registration_modes() {
    for (mode, anonymous, admin) in [
        (
            deis_api::RegistrationMode::Enabled,
            StatusCode::CREATED,
            StatusCode::CREATED,
        ),
        (
            deis_api::RegistrationMode::AdminOnly,
            StatusCode::UNAUTHORIZED,
            StatusCode::CREATED,
        ),
        (
            deis_api::RegistrationMode::Disabled,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
        ),
    ] {
        let h2 = Harness::with_settings(deis_api::Settings {
            registration_mode: mode,
            ..settings()
        });
        // Nobody exists yet; seed an admin directly through the store.
        let hash = deis_api::secrets::hash_password(
            "pw-admin",
            deis_api::secrets::PasswordCost::MINIMAL_FOR_TESTS,
        )
        .unwrap();
        let store = h2.controller.store();
        store
            .create_user(deis_core::model::NewUser {
                username: "root".into(),
                email: "root@example.test".into(),
                first_name: String::new(),
                last_name: String::new(),
                password_hash: hash,
                superuser: true,
            })
            .await
            .unwrap();
        let token = h2.controller.login("root", "pw-admin").await.unwrap();
        let body =
            json!({"username": "newbie", "password": "newbie-pw", "email": "n@example.test"});
        let r = h2
            .call("POST", "/v1/auth/register/", None, Some(body.clone()))
            .await;
        assert_eq!(r.status, anonymous, "{mode:?} anonymous: {}", r.text);
        let body =
            json!({"username": "newbie2", "password": "newbie-pw", "email": "n@example.test"});
        let r = h2
            .call("POST", "/v1/auth/register/", Some(&token), Some(body))
            .await;
        assert_eq!(r.status, admin, "{mode:?} admin: {}", r.text);
    }
}

#[tokio::test]
async fn passwd_tokens_and_cancel() {
    let (h, c) = Harness::cast().await;
    // Wrong current password.
    let r = h
        .post(
            "/v1/auth/passwd/",
            &c.dave,
            json!({"password": "wrong", "new_password": "another-pw"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .post(
            "/v1/auth/passwd/",
            &c.dave,
            json!({"password": "dave-password", "new_password": "another-pw"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "password set");
    assert!(h.controller.login("dave", "another-pw").await.is_ok());
    // An admin may change someone else's without the current one; others may not.
    let r = h
        .post(
            "/v1/auth/passwd/",
            &c.alice,
            json!({"username": "dave", "new_password": "third-pw"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = h
        .post(
            "/v1/auth/passwd/",
            &c.bob,
            json!({"username": "dave", "new_password": "x-pw-long"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Token regeneration.
    let r = h.post("/v1/auth/tokens/", &c.carol, json!({})).await;
    let carol = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        h.get("/v1/apps/", &c.carol).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.get("/v1/apps/", &carol).await.status, StatusCode::OK);
    let r = h
        .post("/v1/auth/tokens/", &carol, json!({"all": true}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .post("/v1/auth/tokens/", &c.alice, json!({"all": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.is_empty());
    assert_eq!(
        h.get("/v1/apps/", &c.bob).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Cancel: 409 while owning apps.
    let bob = h.controller.login("bob", "bob-password").await.unwrap();
    let r = h.call("DELETE", "/v1/auth/cancel/", Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.body["detail"].is_string());
    let dave = h.controller.login("dave", "third-pw").await.unwrap();
    let r = h
        .call("DELETE", "/v1/auth/cancel/", Some(&dave), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/v1/apps/", &dave).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn apps_are_created_listed_and_shown() {
    let (h, c) = Harness::cast().await;
    let r = h.post("/v1/apps/", &c.dave, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let name = r.body["id"].as_str().unwrap().to_string();
    assert!(name.contains('-'), "{name}");
    assert_eq!(r.body["url"], format!("{name}.{DOMAIN}"));
    let r = h.post("/v1/apps/", &c.dave, json!({"id": "deis"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["id"].is_array());
    let r = h.post("/v1/apps/", &c.dave, json!({"id": "go"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["id"].is_array());
    // Visibility: carol sees go (collaborator), dave only his own, alice (admin) all.
    let ids = |r: &Resp| -> Vec<String> {
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&h.get("/v1/apps/", &c.carol).await), vec!["go"]);
    assert_eq!(ids(&h.get("/v1/apps/", &c.dave).await), vec![name.clone()]);
    assert_eq!(h.get("/v1/apps/", &c.alice).await.body["count"], 2);
    // Trailing slash is optional.
    assert_eq!(h.get("/v1/apps/go", &c.bob).await.status, StatusCode::OK);
    assert_eq!(h.get("/v1/apps", &c.bob).await.status, StatusCode::OK);
    // Every response carries the version headers.
    let r = h.get("/v1/apps/go/", &c.bob).await;
    assert_eq!(r.header("DEIS_API_VERSION"), Some("1.7"));
    assert_eq!(r.header("X_DEIS_API_VERSION"), Some("1.7"));
    assert_eq!(r.header("DEIS_PLATFORM_VERSION"), Some("1.13.4"));
    assert_eq!(r.header("X_DEIS_PLATFORM_VERSION"), Some("1.13.4"));
}

#[tokio::test]
async fn pagination_links_pages() {
    let h = Harness::new();
    let alice = h.user("alice").await;
    for i in 0..5 {
        h.app(&alice, &format!("app-{i}")).await;
    }
    let r = h.get("/v1/apps/?page_size=2", &alice).await;
    assert_eq!(r.body["count"], 5);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["previous"], serde_json::Value::Null);
    assert_eq!(
        r.body["next"],
        "http://deis.example.test/v1/apps/?page=2&page_size=2"
    );
    let r = h.get("/v1/apps/?page=3&page_size=2", &alice).await;
    assert_eq!(r.body["results"][0]["id"], "app-4");
    assert_eq!(r.body["next"], serde_json::Value::Null);
    assert_eq!(
        r.body["previous"],
        "http://deis.example.test/v1/apps/?page=2&page_size=2"
    );
    let r = h.get("/v1/apps/?page=4&page_size=2", &alice).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get("/v1/apps/?page=x", &alice).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["page"].is_array());
}

#[tokio::test]
async fn config_merges_and_makes_releases() {
    let (h, c) = Harness::cast().await;
    let r = h
        .post(
            "/v1/apps/go/config/",
            &c.carol,
            json!({"values": {"FOO": "1", "bar": 2, "DEIS_WHITELIST": "10.0.0.0/8"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.header("Deis-Release"), Some("2"));
    assert_eq!(r.header("X-Deis-Release"), Some("2"));
    assert_eq!(r.body["values"]["FOO"], "1");
    assert_eq!(r.body["values"]["BAR"], "2");
    assert_eq!(r.body["values"]["DEIS_APP"], "go");
    assert_eq!(r.body["values"]["DEIS_RELEASE"], "v2");
    // Only the whitelist reaches discovery.
    let whitelist = h
        .discovery
        .get(&keys::config("go", "DEIS_WHITELIST"))
        .await
        .unwrap();
    assert_eq!(whitelist.unwrap().value, "10.0.0.0/8");
    assert!(h
        .discovery
        .get(&keys::config("go", "FOO"))
        .await
        .unwrap()
        .is_none());
    // Unset one, change another.
    let r = h
        .post("/v1/apps/go/config/", &c.bob, json!({"values": {"FOO": null, "BAR": "3", "DEIS_WHITELIST": null}, "memory": {"web": "512M"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.header("Deis-Release"), Some("3"));
    assert!(r.body["values"].get("FOO").is_none());
    assert!(h
        .discovery
        .get(&keys::config("go", "DEIS_WHITELIST"))
        .await
        .unwrap()
        .is_none());
    let r = h.get("/v1/apps/go/config/", &c.bob).await;
    assert_eq!(r.body["values"], json!({"BAR": "3"}));
    assert_eq!(r.body["memory"], json!({"web": "512M"}));
    let r = h.get("/v1/apps/go/releases/", &c.bob).await;
    assert_eq!(r.body["count"], 3);
    assert_eq!(
        r.body["results"][0]["summary"],
        "bob deleted DEIS_WHITELIST, FOO, changed BAR and bob changed limits for memory".replace(
            "deleted DEIS_WHITELIST, FOO, changed BAR",
            "changed BAR, deleted DEIS_WHITELIST, FOO"
        )
    );
    // A patch that changes nothing makes no release.
    let r = h
        .post(
            "/v1/apps/go/config/",
            &c.bob,
            json!({"values": {"BAR": "3"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("Deis-Release").is_none());
    assert_eq!(
        h.get("/v1/apps/go/releases/", &c.bob).await.body["count"],
        3
    );
}

#[tokio::test]
async fn a_stale_config_revision_is_a_conflict() {
    let (h, _) = Harness::cast().await;
    let bob = h.controller.store().get_user("bob").await.unwrap();
    let base = h.controller.store().current_config("go").await.unwrap();
    let first = ConfigPatch::from_json(&json!({"values": {"A": "1"}})).unwrap();
    let second = ConfigPatch::from_json(&json!({"values": {"B": "2"}})).unwrap();
    h.controller
        .write_config(&bob, "go", &first, base.clone())
        .await
        .unwrap();
    let err = h
        .controller
        .write_config(&bob, "go", &second, base)
        .await
        .unwrap_err();
    assert!(
        matches!(err, deis_api::ServiceError::Conflict(_)),
        "{err:?}"
    );
    let (status, body) = deis_api::http::errors::ApiError::from(err).status_and_body();
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("revision"));
}

#[tokio::test]
async fn builds_deploy_with_the_default_formation() {
    let (h, c) = Harness::cast().await;
    // An image without a procfile runs cmd.
    let r = h
        .post(
            "/v1/apps/go/builds/",
            &c.carol,
            json!({"image": "deis/example-go:latest"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.header("Deis-Release"), Some("2"));
    assert_eq!(
        h.get("/v1/apps/go/", &c.bob).await.body["structure"],
        json!({"cmd": 1})
    );
    let spec = h.scheduler.applied.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        spec.artifact,
        Artifact::Image {
            name: "deis/example-go:latest".into()
        }
    );
    assert_eq!(spec.env["DEIS_RELEASE"], "v2");
    assert_eq!(spec.env["DEIS_APP"], "go");
    let r = h.get("/v1/apps/go/containers/", &c.bob).await;
    assert_eq!(
        r.body["results"],
        json!([{"app": "go", "owner": "bob", "release": "v2", "type": "cmd", "num": 1, "state": "up"}])
    );
    // A slug build is a slug artifact.
    h.app(&c.bob, "slugged").await;
    let r = h
        .post("/v1/apps/slugged/builds/", &c.bob, json!({"image": "/var/lib/deis/slugs/slugged-abc.tgz", "sha": "abc1234def", "procfile": {"web": "bin/web"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let spec = h.scheduler.applied.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        spec.artifact,
        Artifact::Slug {
            location: "/var/lib/deis/slugs/slugged-abc.tgz".into()
        }
    );
    assert_eq!(spec.formation["web"], 1);
    let r = h.get("/v1/apps/slugged/releases/v2/", &c.bob).await;
    assert_eq!(r.body["summary"], "bob deployed abc1234");
    let build = h.get("/v1/apps/slugged/builds/", &c.bob).await.body["results"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let r = h
        .get(&format!("/v1/apps/slugged/builds/{build}/"), &c.bob)
        .await;
    assert_eq!(r.body["procfile"], json!({"web": "bin/web"}));
    // A build without an image is refused.
    let r = h
        .post("/v1/apps/go/builds/", &c.bob, json!({"image": ""}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["image"].is_array());
}

#[tokio::test]
async fn a_failed_rollout_discards_the_release() {
    let (h, c) = Harness::cast().await;
    h.deploy(&c.bob, "go").await;
    h.scheduler.fail_apply.store(true, Ordering::SeqCst);
    let r = h
        .post("/v1/apps/go/config/", &c.bob, json!({"values": {"A": "1"}}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("healthy"));
    assert_eq!(
        h.get("/v1/apps/go/releases/", &c.bob).await.body["count"],
        2
    );
    assert_eq!(
        h.get("/v1/apps/go/config/", &c.bob).await.body["values"],
        json!({})
    );
    let r = h
        .post("/v1/apps/go/builds/", &c.bob, json!({"image": "other:1"}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.get("/v1/apps/go/builds/", &c.bob).await.body["count"], 1);
    // A stalled rollout times out and is discarded too.
    h.scheduler.fail_apply.store(false, Ordering::SeqCst);
    h.scheduler.stall_apply.store(true, Ordering::SeqCst);
    let r = h
        .post("/v1/apps/go/config/", &c.bob, json!({"values": {"A": "1"}}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("did not finish"));
    assert_eq!(
        h.get("/v1/apps/go/releases/", &c.bob).await.body["count"],
        2
    );
    h.scheduler.stall_apply.store(false, Ordering::SeqCst);
    let r = h
        .post("/v1/apps/go/config/", &c.bob, json!({"values": {"A": "1"}}))
        .await;
    assert_eq!(r.header("Deis-Release"), Some("3"));
}

#[tokio::test]
async fn scale_follows_the_procfile() {
    let (h, c) = Harness::cast().await;
    let r = h
        .post("/v1/apps/go/scale/", &c.bob, json!({"web": 1}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    h.deploy(&c.bob, "go").await;
    assert_eq!(
        h.get("/v1/apps/go/", &c.bob).await.body["structure"],
        json!({"web": 1})
    );
    let r = h
        .post(
            "/v1/apps/go/scale/",
            &c.carol,
            json!({"web": 3, "worker": "2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        h.get("/v1/apps/go/", &c.bob).await.body["structure"],
        json!({"web": 3, "worker": 2})
    );
    assert_eq!(
        h.get("/v1/apps/go/containers/", &c.bob).await.body["count"],
        5
    );
    assert_eq!(
        h.get("/v1/apps/go/containers/worker/", &c.bob).await.body["count"],
        2
    );
    let r = h.get("/v1/apps/go/containers/web/3/", &c.bob).await;
    assert_eq!(r.body["num"], 3);
    assert_eq!(
        h.get("/v1/apps/go/containers/web/9/", &c.bob).await.status,
        StatusCode::NOT_FOUND
    );
    let r = h
        .post("/v1/apps/go/scale/", &c.bob, json!({"clock": 1}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .post("/v1/apps/go/scale/", &c.bob, json!({"cmd": 1}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .post("/v1/apps/go/scale/", &c.bob, json!({"web": -1}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["web"].is_array());
    // Scaling is not a release.
    assert_eq!(
        h.get("/v1/apps/go/releases/", &c.bob).await.body["count"],
        2
    );
    // Restart.
    let r = h
        .post("/v1/apps/go/containers/worker/restart/", &c.bob, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = h
        .post("/v1/apps/go/containers/web/2/restart/", &c.bob, json!({}))
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = h
        .post("/v1/apps/go/containers/restart/", &c.bob, json!({}))
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 6);
    // A scale failure leaves the formation alone.
    h.scheduler.fail_apply.store(true, Ordering::SeqCst);
    let r = h
        .post("/v1/apps/go/scale/", &c.bob, json!({"web": 1}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        h.get("/v1/apps/go/", &c.bob).await.body["structure"]["web"],
        3
    );
}

#[tokio::test]
async fn rollback_reuses_build_and_config() {
    let (h, c) = Harness::cast().await;
    let r = h
        .post("/v1/apps/go/releases/rollback/", &c.bob, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.body["version"].is_array());
    h.deploy(&c.bob, "go").await; // v2
    h.post("/v1/apps/go/config/", &c.bob, json!({"values": {"A": "1"}}))
        .await; // v3
    let r = h
        .post("/v1/apps/go/releases/rollback/", &c.carol, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body, json!({"version": 4}));
    assert_eq!(r.header("Deis-Release"), Some("4"));
    assert_eq!(
        h.get("/v1/apps/go/config/", &c.bob).await.body["values"],
        json!({})
    );
    let r = h.get("/v1/apps/go/releases/v4/", &c.bob).await;
    assert_eq!(r.body["summary"], "carol rolled back to v2");
    let r = h
        .post(
            "/v1/apps/go/releases/rollback/",
            &c.bob,
            json!({"version": 9}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .post(
            "/v1/apps/go/releases/rollback/",
            &c.bob,
            json!({"version": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.get("/v1/apps/go/releases/v9/", &c.bob).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn run_and_logs() {
    let (h, c) = Harness::cast().await;
    let r = h
        .post("/v1/apps/go/run/", &c.bob, json!({"command": "ls"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    h.deploy(&c.bob, "go").await;
    let r = h
        .post("/v1/apps/go/run/", &c.carol, json!({"command": "echo hi"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!([0, "go on v2: echo hi\n"]));
    let r = h.get("/v1/apps/go/logs/", &c.bob).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for i in 0..3 {
        h.logs.push("go", format!("line {i}"));
    }
    let r = h.get("/v1/apps/go/logs/?log_lines=2", &c.bob).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, "line 1\nline 2\n");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
}

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
async fn admin_perms_and_users() {
    let (h, c) = Harness::cast().await;
    assert_eq!(
        h.get("/v1/users/", &c.bob).await.status,
        StatusCode::FORBIDDEN
    );
    let r = h.get("/v1/users/", &c.alice).await;
    assert_eq!(r.body["count"], 4);
    assert!(r.body["results"][0].get("password_hash").is_none());
    let r = h.get("/v1/admin/perms/", &c.alice).await;
    assert_eq!(
        r.body["results"],
        json!([{"username": "alice", "is_superuser": true}])
    );
    assert_eq!(
        h.post("/v1/admin/perms/", &c.alice, json!({"username": "bob"}))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(h.get("/v1/users/", &c.bob).await.status, StatusCode::OK);
    assert_eq!(
        h.delete("/v1/admin/perms/bob/", &c.alice).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("/v1/users/", &c.bob).await.status,
        StatusCode::FORBIDDEN
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

#[tokio::test]
async fn meta_endpoints() {
    let h = Harness::new();
    let r = h.raw("GET", "/healthz", &[], vec![]).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "OK"));
    assert_eq!(r.header("DEIS_API_VERSION"), Some("1.7"));
    let r = h.raw("GET", "/v1/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), Some("Token"));
    let token = h.user("alice").await;
    assert_eq!(h.get("/v1/", &token).await.status, StatusCode::OK);
    assert_eq!(h.get("/v1", &token).await.status, StatusCode::OK);
    let r = h.raw("GET", "/v1/nothing/here/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, json!({"detail": "Not found."}));
    let r = h.raw("PUT", "/v1/apps/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body["detail"].is_string());
    let r = h
        .raw("GET", "/v1/apps/", &[("deis_version", "1.6")], vec![])
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body["error"].is_string());
}
