//! Apps, config, builds, releases, scaling, runs and logs, and failed rollouts.

use crate::common::*;
use axum::http::StatusCode;
use deis_core::discovery::keys;
use deis_core::release::ConfigPatch;
use deis_core::scheduler::Artifact;
use deis_core::Discovery;
use serde_json::json;
use std::sync::atomic::Ordering;

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
    let h = Harness::new().await;
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
    // Without page_size the links carry only the page, as Django REST Framework wrote them.
    let h2 = Harness::with_settings(deis_api::Settings {
        page_size: 2,
        ..settings()
    })
    .await;
    let token = h2.user("alice").await;
    for i in 0..3 {
        h2.app(&token, &format!("app-{i}")).await;
    }
    let r = h2.get("/v1/apps/", &token).await;
    assert_eq!(r.body["next"], "http://deis.example.test/v1/apps/?page=2");
    let r = h2.get("/v1/apps/?page=2", &token).await;
    assert_eq!(r.body["previous"], "http://deis.example.test/v1/apps/");
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
    // A slug build is a slug artifact; only the app's own slugs in the slug store are
    // accepted, never a host path or another app's slug.
    h.app(&c.bob, "slugged").await;
    for image in [
        "/var/lib/deis/slugs/slugged-abc.tgz",
        "blob:slugs/go/abc.tgz",
        "blob:slugs/slugged/../go/abc.tgz",
    ] {
        let r = h
            .post(
                "/v1/apps/slugged/builds/",
                &c.bob,
                json!({"image": image, "sha": "abc1234def", "procfile": {"web": "bin/web"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{image}: {}", r.body);
        assert!(
            r.body["image"][0].as_str().unwrap().contains("slug store"),
            "{}",
            r.body
        );
    }
    let r = h
        .post("/v1/apps/slugged/builds/", &c.bob, json!({"image": "blob:slugs/slugged/abc1234def-1.tgz", "sha": "abc1234def", "procfile": {"web": "bin/web"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let spec = h.scheduler.applied.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        spec.artifact,
        Artifact::Slug {
            location: "blob:slugs/slugged/abc1234def-1.tgz".into()
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
    let (h, c) = Harness::cast_with(deis_api::Settings {
        apply_timeout: std::time::Duration::from_secs(1),
        ..settings()
    })
    .await;
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

// Worker threads, so the writes really run in parallel (on SQLite: several connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_config_writers_lose_nothing() {
    let (h, c) = Harness::cast().await;
    let writes = (0..10).map(|i| {
        let h = &h;
        let token = if i % 2 == 0 { &c.bob } else { &c.carol };
        async move {
            h.post(
                "/v1/apps/go/config/",
                token,
                json!({"values": {format!("KEY_{i}"): i.to_string()}}),
            )
            .await
        }
    });
    let responses = futures::future::join_all(writes).await;
    for r in &responses {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let mut versions: Vec<&str> = responses
        .iter()
        .map(|r| r.header("Deis-Release").unwrap())
        .collect();
    versions.sort_by_key(|v| v.parse::<u32>().unwrap());
    assert_eq!(
        versions,
        ["2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
    );
    let config = h.get("/v1/apps/go/config/", &c.bob).await;
    assert_eq!(config.body["values"].as_object().unwrap().len(), 10);
}
