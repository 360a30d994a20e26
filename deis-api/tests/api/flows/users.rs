//! Users, registration modes, passwords, tokens, administrators and the meta routes.

use crate::common::*;
use axum::http::StatusCode;
use deis_api::secrets::hash_token;
use serde_json::json;

#[tokio::test]
async fn first_user_is_admin_and_tokens_are_hashed() {
    let h = Harness::new().await;
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
        })
        .await;
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
async fn meta_endpoints() {
    let h = Harness::new().await;
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

// Worker threads, so the registrations really race (on SQLite: several connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_registrations_make_exactly_one_admin() {
    let h = Harness::new().await;
    let names: Vec<String> = (0..8).map(|i| format!("racer{i}")).collect();
    let registrations = names.iter().map(|name| {
        let h = &h;
        async move {
            let body = json!({"username": name, "password": format!("{name}-password"), "email": format!("{name}@example.test")});
            h.call("POST", "/v1/auth/register/", None, Some(body)).await
        }
    });
    let responses = futures::future::join_all(registrations).await;
    let mut admins = 0;
    for r in &responses {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        if r.body["is_superuser"] == true {
            admins += 1;
        }
    }
    assert_eq!(admins, 1, "{responses:?}");
    let store = h.controller.store();
    let mut stored_admins = 0;
    for name in &names {
        if store.get_user(name).await.unwrap().is_superuser {
            stored_admins += 1;
        }
    }
    assert_eq!(stored_admins, 1);
}
