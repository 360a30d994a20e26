//! Snapshots of the success and the error body of every endpoint, with ids, times and
//! tokens redacted. Review changes with `cargo insta review`; CI runs with
//! `INSTA_UPDATE=no`.

use crate::common::*;
use deis_api::http::routes::ROUTES;
use serde_json::{json, Value};

/// What a snapshot keeps of a response.
fn shot(r: &Resp) -> Value {
    let body = if r.body.is_null() {
        if r.text.is_empty() {
            Value::Null
        } else {
            json!(r.text)
        }
    } else {
        redact(&r.body)
    };
    let mut out = json!({"status": r.status.as_u16(), "body": body});
    if let Some(release) = r.header("deis-release") {
        out["deis_release"] = json!(release);
    }
    out
}

struct World {
    h: Harness,
    alice: String,
    bob: String,
    carol: String,
    dave: String,
    erin: String,
    frank: Option<String>,
    build: String,
}

async fn world() -> World {
    let (h, c) = Harness::cast().await;
    let erin = h.user("erin").await;
    h.deploy(&c.bob, "go").await;
    let r = h
        .post(
            "/v1/apps/go/config/",
            &c.bob,
            json!({"values": {"FOO": "bar"}}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201);
    h.app(&c.bob, "doomed").await;
    for domain in ["www.example.com", "old.example.com"] {
        h.post("/v1/apps/go/domains/", &c.bob, json!({"domain": domain}))
            .await;
    }
    h.post(
        "/v1/keys/",
        &c.bob,
        json!({"id": "bob@desk", "public": SSH_KEY_BOB}),
    )
    .await;
    let build = h.get("/v1/apps/go/builds/", &c.bob).await.body["results"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    World {
        h,
        alice: c.alice,
        bob: c.bob,
        carol: c.carol,
        dave: c.dave,
        erin,
        frank: None,
        build,
    }
}

/// The success and the error exchange of one operation.
async fn exchange(w: &mut World, operation: &str) -> (Resp, Resp) {
    let h = &w.h;
    let (alice, bob, carol, dave) = (&w.alice, &w.bob, &w.carol, &w.dave);
    match operation {
        "healthz" => (h.raw("GET", "/healthz", &[], vec![]).await, h.raw("POST", "/healthz", &[], vec![]).await),
        "root" => (h.get("/v1/", bob).await, h.call("GET", "/v1/", None, None).await),
        "openapi" => {
            let mut ok = h.raw("GET", "/v1/openapi.json", &[], vec![]).await;
            // The document itself is checked by the openapi tests; keep its outline.
            ok.body = json!({
                "openapi": ok.body["openapi"],
                "info": ok.body["info"],
                "paths": ok.body["paths"].as_object().map(|p| p.keys().cloned().collect::<Vec<_>>()),
            });
            (ok, h.raw("DELETE", "/v1/openapi.json", &[], vec![]).await)
        }
        "register" => {
            let body = json!({"username": "frank", "password": "frank-password", "email": "frank@example.test", "first_name": "Frank"});
            (
                h.call("POST", "/v1/auth/register/", None, Some(body.clone())).await,
                h.call("POST", "/v1/auth/register/", None, Some(body)).await,
            )
        }
        "login" => {
            let ok = h.call("POST", "/v1/auth/login/", None, Some(json!({"username": "frank", "password": "frank-password"}))).await;
            w.frank = ok.body["token"].as_str().map(str::to_string);
            (ok, h.call("POST", "/v1/auth/login/", None, Some(json!({"username": "frank", "password": "wrong"}))).await)
        }
        "cancel" => (
            h.call("DELETE", "/v1/auth/cancel/", Some(&w.erin), None).await,
            h.call("DELETE", "/v1/auth/cancel/", Some(bob), None).await,
        ),
        "passwd" => (
            h.post("/v1/auth/passwd/", dave, json!({"password": "dave-password", "new_password": "dave-new-password"})).await,
            h.post("/v1/auth/passwd/", dave, json!({"password": "wrong", "new_password": "x-new-password"})).await,
        ),
        "regenerate_token" => {
            let frank = w.frank.clone().unwrap();
            let ok = h.post("/v1/auth/tokens/", &frank, json!({})).await;
            w.frank = ok.body["token"].as_str().map(str::to_string);
            let frank = w.frank.clone().unwrap();
            (ok, h.post("/v1/auth/tokens/", &frank, json!({"all": true})).await)
        }
        "list_users" => (h.get("/v1/users/?page_size=2", alice).await, h.get("/v1/users/", bob).await),
        "list_admins" => (h.get("/v1/admin/perms/", alice).await, h.get("/v1/admin/perms/", bob).await),
        "grant_admin" => (
            h.post("/v1/admin/perms/", alice, json!({"username": "frank"})).await,
            h.post("/v1/admin/perms/", alice, json!({"username": "nobody"})).await,
        ),
        "revoke_admin" => (h.delete("/v1/admin/perms/frank/", alice).await, h.delete("/v1/admin/perms/frank/", bob).await),
        "list_apps" => (h.get("/v1/apps/?page_size=1", bob).await, h.call("GET", "/v1/apps/", None, None).await),
        "create_app" => (
            h.post("/v1/apps/", bob, json!({"id": "snap"})).await,
            h.post("/v1/apps/", bob, json!({"id": "Bad!"})).await,
        ),
        "get_app" => (h.get("/v1/apps/go/", bob).await, h.get("/v1/apps/go/", dave).await),
        "transfer_app" => (
            h.post("/v1/apps/snap/", bob, json!({"owner": "carol"})).await,
            h.post("/v1/apps/go/", carol, json!({"owner": "carol"})).await,
        ),
        "destroy_app" => (h.delete("/v1/apps/doomed/", bob).await, h.delete("/v1/apps/go/", carol).await),
        "scale" => (
            h.post("/v1/apps/go/scale/", bob, json!({"web": 2, "worker": 1})).await,
            h.post("/v1/apps/go/scale/", bob, json!({"clock": 1})).await,
        ),
        "logs" => {
            h.logs.push("go", "2014-01-01T00:00:00UTC go[web.1]: listening on 5000");
            (h.get("/v1/apps/go/logs/", bob).await, h.get("/v1/apps/go/logs/?log_lines=lots", bob).await)
        }
        "run" => (
            h.post("/v1/apps/go/run/", carol, json!({"command": "echo hi"})).await,
            h.post("/v1/apps/go/run/", carol, json!({"command": ""})).await,
        ),
        "get_config" => (h.get("/v1/apps/go/config/", bob).await, h.get("/v1/apps/missing/config/", bob).await),
        "set_config" => (
            h.post("/v1/apps/go/config/", carol, json!({"values": {"NEW": "1", "FOO": null}, "memory": {"web": "512M"}, "tags": {"env": "prod"}})).await,
            h.post("/v1/apps/go/config/", carol, json!({"values": {"1BAD": "x"}})).await,
        ),
        "list_builds" => (h.get("/v1/apps/go/builds/", bob).await, h.get("/v1/apps/missing/builds/", bob).await),
        "create_build" => (
            h.post("/v1/apps/go/builds/", bob, json!({"image": "deis/example-go:v2", "procfile": {"web": "./server", "worker": "./worker"}})).await,
            h.post("/v1/apps/go/builds/", bob, json!({"image": ""})).await,
        ),
        "get_build" => (
            h.get(&format!("/v1/apps/go/builds/{}/", w.build), bob).await,
            h.get("/v1/apps/go/builds/8c3e8f4e-1f2a-4c55-9a0b-3f0e6f1d2c3b/", bob).await,
        ),
        "list_releases" => (h.get("/v1/apps/go/releases/", bob).await, h.get("/v1/apps/go/releases/", dave).await),
        "get_release" => (h.get("/v1/apps/go/releases/v2/", bob).await, h.get("/v1/apps/go/releases/v99/", bob).await),
        "rollback" => (
            h.post("/v1/apps/go/releases/rollback/", bob, json!({"version": 2})).await,
            h.post("/v1/apps/go/releases/rollback/", bob, json!({"version": 99})).await,
        ),
        "list_containers" => (h.get("/v1/apps/go/containers/", bob).await, h.get("/v1/apps/missing/containers/", bob).await),
        "list_containers_of_type" => (h.get("/v1/apps/go/containers/web/", bob).await, h.get("/v1/apps/go/containers/web/", dave).await),
        "get_container" => (h.get("/v1/apps/go/containers/web/1/", bob).await, h.get("/v1/apps/go/containers/web/99/", bob).await),
        "restart_all" => (
            h.post("/v1/apps/go/containers/restart/", bob, json!({})).await,
            h.post("/v1/apps/go/containers/restart/", dave, json!({})).await,
        ),
        "restart_type" => (
            h.post("/v1/apps/go/containers/web/restart/", bob, json!({})).await,
            h.post("/v1/apps/missing/containers/web/restart/", bob, json!({})).await,
        ),
        "restart_one" => (
            h.post("/v1/apps/go/containers/web/1/restart/", bob, json!({})).await,
            h.post("/v1/apps/go/containers/web/abc/restart/", bob, json!({})).await,
        ),
        "list_domains" => (h.get("/v1/apps/go/domains/", bob).await, h.get("/v1/apps/go/domains/", dave).await),
        "add_domain" => (
            h.post("/v1/apps/go/domains/", carol, json!({"domain": "new.example.com"})).await,
            h.post("/v1/apps/go/domains/", carol, json!({"domain": "*.example.com"})).await,
        ),
        "remove_domain" => (
            h.delete("/v1/apps/go/domains/old.example.com/", bob).await,
            h.delete("/v1/apps/go/domains/www.example.com/", carol).await,
        ),
        "list_perms" => (h.get("/v1/apps/go/perms/", bob).await, h.get("/v1/apps/go/perms/", dave).await),
        "grant_perm" => (
            h.post("/v1/apps/go/perms/", bob, json!({"username": "dave"})).await,
            h.post("/v1/apps/go/perms/", bob, json!({"username": "nobody"})).await,
        ),
        "revoke_perm" => (h.delete("/v1/apps/go/perms/dave/", bob).await, h.delete("/v1/apps/go/perms/carol/", dave).await),
        "list_keys" => (h.get("/v1/keys/", bob).await, h.call("GET", "/v1/keys/", None, None).await),
        "add_key" => (
            h.post("/v1/keys/", alice, json!({"id": "alice@laptop", "public": SSH_KEY_ALICE})).await,
            h.post("/v1/keys/", dave, json!({"id": "mine", "public": SSH_KEY_ALICE})).await,
        ),
        "get_key" => (h.get("/v1/keys/bob@desk/", bob).await, h.get("/v1/keys/nope/", bob).await),
        "remove_key" => (h.delete("/v1/keys/bob@desk/", bob).await, h.delete("/v1/keys/bob@desk/", bob).await),
        "list_certs" => {
            h.post("/v1/certs/", bob, json!({"certificate": CERT, "key": CERT_KEY, "common_name": "api.example.test"})).await;
            (h.get("/v1/certs/", bob).await, h.call("GET", "/v1/certs/", None, None).await)
        }
        "add_cert" => (
            h.post("/v1/certs/", bob, json!({"certificate": CERT, "key": CERT_KEY})).await,
            h.post("/v1/certs/", bob, json!({"certificate": WILDCARD_CERT, "key": WILDCARD_KEY})).await,
        ),
        "get_cert" => (h.get("/v1/certs/www.example.test/", bob).await, h.get("/v1/certs/www.example.test/", dave).await),
        "remove_cert" => (h.delete("/v1/certs/www.example.test/", bob).await, h.delete("/v1/certs/www.example.test/", bob).await),
        "hook_push" => {
            let body = json!({"receive_user": "bob", "receive_repo": "go", "sha": "abc12345", "fingerprint": "3d:2f", "ssh_connection": "127.0.0.1 50000 127.0.0.1 2222", "ssh_original_command": "git-receive-pack 'go.git'"});
            let bytes = serde_json::to_vec(&body).unwrap();
            (h.hook("/v1/hooks/push/", body).await, h.raw("POST", "/v1/hooks/push/", &[], bytes).await)
        }
        "hook_build" => (
            h.hook("/v1/hooks/build/", json!({"receive_user": "bob", "receive_repo": "go", "image": "go", "sha": "abc12345", "procfile": {"web": "./server"}, "dockerfile": ""})).await,
            h.hook("/v1/hooks/build/", json!({"receive_user": "dave", "receive_repo": "go", "image": "go"})).await,
        ),
        "hook_config" => (
            h.hook("/v1/hooks/config/", json!({"receive_user": "bob", "receive_repo": "go"})).await,
            h.hook("/v1/hooks/config/", json!({"receive_user": "bob", "receive_repo": "missing"})).await,
        ),
        "hook_key" => {
            let key = h.post("/v1/keys/", bob, json!({"id": "bob@hook", "public": SSH_KEY_BOB})).await;
            let fingerprint = key.body["fingerprint"].as_str().expect("a fingerprint").to_string();
            let builder = [("x-deis-builder-auth", BUILDER_KEY)];
            (
                h.raw("GET", &format!("/v1/hooks/key/{fingerprint}/"), &builder, Vec::new()).await,
                h.raw("GET", "/v1/hooks/key/00:11:22/", &builder, Vec::new()).await,
            )
        }
        "hook_auth" => (
            h.hook("/v1/hooks/auth/", json!({"receive_user": "bob", "receive_repo": "go", "token": bob})).await,
            h.hook("/v1/hooks/auth/", json!({"receive_user": "bob", "receive_repo": "go", "token": "not-a-token"})).await,
        ),
        "hook_access" => (
            h.hook("/v1/hooks/access/", json!({"receive_user": "bob", "receive_repo": "go"})).await,
            h.hook("/v1/hooks/access/", json!({"receive_user": "bob", "receive_repo": "missing"})).await,
        ),
        "hook_apps" => (
            h.raw("GET", "/v1/hooks/apps/", &[("x-deis-builder-auth", BUILDER_KEY)], Vec::new()).await,
            h.raw("GET", "/v1/hooks/apps/", &[("x-deis-builder-auth", "wrong")], Vec::new()).await,
        ),
        other => panic!("no snapshot scenario for operation {other}: add one"),
    }
}

#[tokio::test]
async fn every_endpoint_success_and_error() {
    let mut w = world().await;
    for route in ROUTES {
        let (ok, err) = exchange(&mut w, route.operation).await;
        assert_eq!(
            ok.status.as_u16(),
            route.status,
            "{}: {}",
            route.operation,
            ok.text
        );
        assert!(
            err.status.is_client_error(),
            "{}: {} {}",
            route.operation,
            err.status,
            err.text
        );
        assert!(
            err.body.is_object(),
            "{}: error body {}",
            route.operation,
            err.text
        );
        let value = json!({
            "request": format!("{} {}", route.verb.as_str(), route.path),
            "success": shot(&ok),
            "error": shot(&err),
        });
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_json_snapshot!(route.operation, value);
        });
    }
}

/// `deis pull` on a platform whose scheduler runs local processes: 400 naming the problem
/// before any release is made, and the app keeps its release.
#[tokio::test]
async fn an_image_build_on_a_slugs_only_scheduler_is_refused() {
    let (h, c) = Harness::cast().await;
    h.deploy(&c.bob, "go").await;
    h.scheduler
        .slugs_only
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let before = h.get("/v1/apps/go/releases/", &c.bob).await.body["count"].clone();
    let applied = h.scheduler.applied.lock().unwrap().len();
    let r = h
        .post(
            "/v1/apps/go/builds/",
            &c.bob,
            json!({"image": "deis/example-go:v2"}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    let after = h.get("/v1/apps/go/releases/", &c.bob).await.body["count"].clone();
    assert_eq!(before, after, "no release was made");
    assert_eq!(h.scheduler.applied.lock().unwrap().len(), applied);
    insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_json_snapshot!("create_build_slugs_only_scheduler", shot(&r));
    });
    // A slug build (the git push path) still goes through.
    let r = h
        .hook(
            "/v1/hooks/build/",
            json!({"receive_user": "bob", "receive_repo": "go", "image": "blob:slugs/go/abc1234-1.tgz", "sha": "abc1234", "procfile": {"web": "./server"}, "dockerfile": ""}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
}
