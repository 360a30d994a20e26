//! The permission matrix: every route of the route table, for every role.

use crate::common::*;
use axum::http::StatusCode;
use deis_api::http::routes::{Auth, Route, Verb, ROUTES};
use serde_json::{json, Value};

/// Routes only administrators may call.
const ADMIN_ONLY: &[&str] = &["list_users", "list_admins", "grant_admin", "revoke_admin"];

/// App routes only the owner and administrators may call (besides every DELETE).
const OWNER_ONLY: &[&str] = &["transfer_app", "grant_perm"];

fn path_for(route: &Route, app: &str) -> String {
    route
        .path
        .replace("{id}", app)
        .replace("{type}", "web")
        .replace("{num}", "1")
        .replace("{uuid}", "8c3e8f4e-1f2a-4c55-9a0b-3f0e6f1d2c3b")
        .replace("{version}", "v1")
        .replace("{domain}", "www.example.com")
        .replace("{username}", "carol")
        .replace("{common_name}", "www.example.test")
}

/// A valid body for the route, so that only permissions decide.
fn body_for(route: &Route, app: &str, hook_user: &str) -> Option<Value> {
    let body = match route.operation {
        "transfer_app" => json!({"owner": "dave"}),
        "scale" => json!({"web": 1}),
        "run" => json!({"command": "ls"}),
        "set_config" => json!({"values": {"A": "1"}}),
        "create_build" => json!({"image": "example:1"}),
        "rollback" => json!({}),
        "add_domain" => json!({"domain": "www.example.com"}),
        "grant_perm" | "grant_admin" => json!({"username": "dave"}),
        "create_app" => json!({"id": "fresh"}),
        "passwd" => json!({"password": "x", "new_password": "new-password"}),
        "add_key" => json!({"id": "k", "public": SSH_KEY_ALICE}),
        "add_cert" => json!({"certificate": CERT, "key": CERT_KEY}),
        "hook_push" | "hook_config" | "hook_access" => {
            json!({"receive_user": hook_user, "receive_repo": app})
        }
        "hook_build" => {
            json!({"receive_user": hook_user, "receive_repo": app, "image": "example:1"})
        }
        _ if route.verb == Verb::Get => return None,
        _ => json!({}),
    };
    Some(body)
}

fn method(route: &Route) -> &'static str {
    route.verb.as_str()
}

fn is_app_route(route: &Route) -> bool {
    route.path.starts_with("/v1/apps/{id}/")
        || (route.auth == Auth::Builder && !matches!(route.operation, "hook_key" | "hook_apps"))
}

async fn send(h: &Harness, route: &Route, token: Option<&str>, app: &str, hook_user: &str) -> Resp {
    let body = match route.operation {
        // The git client's credentials: the caller's own token.
        "hook_auth" => Some(
            json!({"receive_user": hook_user, "receive_repo": app, "token": token.unwrap_or_default()}),
        ),
        _ => body_for(route, app, hook_user),
    };
    if route.auth == Auth::Builder {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let headers: Vec<(&str, &str)> = match token {
            Some(_) => vec![("x-deis-builder-auth", BUILDER_KEY)],
            None => vec![],
        };
        let mut path = path_for(route, app);
        if route.operation == "hook_key" {
            // The key of the caller (registered on first use) for an allowed call.
            let added = h
                .call(
                    "POST",
                    "/v1/keys/",
                    token,
                    Some(json!({"id": "hook-key", "public": SSH_KEY_ALICE})),
                )
                .await;
            let listed = h.call("GET", "/v1/keys/hook-key/", token, None).await;
            let fingerprint = listed.body["fingerprint"]
                .as_str()
                .or(added.body["fingerprint"].as_str())
                .unwrap_or("aa:bb")
                .to_string();
            path = path.replace("{fingerprint}", &fingerprint);
        }
        return h.raw(method(route), &path, &headers, bytes).await;
    }
    h.call(method(route), &path_for(route, app), token, body)
        .await
}

fn assert_allowed(r: &Resp, what: &str) {
    assert!(
        r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN,
        "{what}: expected access, got {} {}",
        r.status,
        r.text
    );
    assert!(
        !r.status.is_server_error(),
        "{what}: {} {}",
        r.status,
        r.text
    );
}

fn assert_status(r: &Resp, status: StatusCode, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    if r.status != StatusCode::NO_CONTENT {
        assert!(
            r.body.is_object(),
            "{what}: a JSON error body, got {}",
            r.text
        );
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let mut checked = 0;
    for route in ROUTES.iter().filter(|r| r.auth != Auth::Public) {
        let what = format!("{} {}", method(route), route.path);
        let (h, c) = Harness::cast().await;
        h.deploy(&c.bob, "go").await;
        // No credentials: 401.
        let r = send(&h, route, None, "go", "bob").await;
        assert_status(
            &r,
            StatusCode::UNAUTHORIZED,
            &format!("{what} without credentials"),
        );
        if is_app_route(route) {
            // An outsider on someone else's app: 403.
            let r = send(&h, route, Some(&c.dave), "go", "dave").await;
            assert_status(&r, StatusCode::FORBIDDEN, &format!("{what} as an outsider"));
            // A missing app: 404, for the owner of other apps and for an admin.
            let r = send(&h, route, Some(&c.bob), "missing", "bob").await;
            assert_status(
                &r,
                StatusCode::NOT_FOUND,
                &format!("{what} on a missing app"),
            );
            let r = send(&h, route, Some(&c.alice), "missing", "alice").await;
            assert_status(
                &r,
                StatusCode::NOT_FOUND,
                &format!("{what} on a missing app as admin"),
            );
            // A collaborator: every non-DELETE call but transfer and grant; may remove themselves.
            let collaborator_allowed = (route.verb != Verb::Delete
                && !OWNER_ONLY.contains(&route.operation))
                || route.operation == "revoke_perm";
            let r = send(&h, route, Some(&c.carol), "go", "carol").await;
            if collaborator_allowed {
                assert_allowed(&r, &format!("{what} as a collaborator"));
            } else {
                assert_status(
                    &r,
                    StatusCode::FORBIDDEN,
                    &format!("{what} as a collaborator"),
                );
            }
            // The owner, then (on a fresh platform) an admin.
            let r = send(&h, route, Some(&c.bob), "go", "bob").await;
            assert_allowed(&r, &format!("{what} as the owner"));
            let (h, c) = Harness::cast().await;
            h.deploy(&c.bob, "go").await;
            let r = send(&h, route, Some(&c.alice), "go", "alice").await;
            assert_allowed(&r, &format!("{what} as an admin"));
        } else if ADMIN_ONLY.contains(&route.operation) {
            for (who, token) in [
                ("owner", &c.bob),
                ("collaborator", &c.carol),
                ("outsider", &c.dave),
            ] {
                let r = send(&h, route, Some(token), "go", who).await;
                assert_status(&r, StatusCode::FORBIDDEN, &format!("{what} as {who}"));
            }
            let r = send(&h, route, Some(&c.alice), "go", "alice").await;
            assert_allowed(&r, &format!("{what} as an admin"));
        } else {
            // Account routes: every logged-in user.
            let r = send(&h, route, Some(&c.dave), "go", "dave").await;
            assert_allowed(&r, &format!("{what} as a user"));
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        ROUTES.iter().filter(|r| r.auth != Auth::Public).count()
    );
    assert!(checked >= 45, "only {checked} routes checked");
}

#[tokio::test]
async fn public_routes_need_no_token() {
    let h = Harness::new().await;
    for route in ROUTES.iter().filter(|r| r.auth == Auth::Public) {
        let body = match route.operation {
            "register" => Some(
                json!({"username": "zed", "password": "zed-password", "email": "z@example.test"}),
            ),
            "login" => Some(json!({"username": "zed", "password": "zed-password"})),
            _ => None,
        };
        let r = h.call(method(route), route.path, None, body).await;
        assert!(
            r.status.is_success(),
            "{} {}: {} {}",
            method(route),
            route.path,
            r.status,
            r.text
        );
    }
}
