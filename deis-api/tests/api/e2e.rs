//! End to end: the server on a loopback socket, driven through the typed client.

use crate::common::*;
use deis_api::client::{Client, ClientError};
use deis_api::wire::{
    BuildHookRequest, BuildRequest, CertificateRequest, PasswdRequest, PushHookRequest,
    RegisterRequest, TokensRequest,
};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

async fn serve(h: &Harness) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = h.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{address}")
}

fn register(name: &str) -> RegisterRequest {
    RegisterRequest {
        username: name.into(),
        password: format!("{name}-password"),
        email: format!("{name}@example.test"),
        ..RegisterRequest::default()
    }
}

fn status(error: ClientError) -> StatusCode {
    error.status().expect("an API error")
}

#[tokio::test]
async fn the_suite_runs_on_the_store_its_binary_names() {
    let h = Harness::new().await;
    let expected = match crate::STORE {
        StoreBackend::Memory => "memory",
        StoreBackend::Sqlite => "sqlite",
    };
    assert_eq!(h.controller.store().backend(), expected);
    assert_eq!(h.data_dir.is_some(), crate::STORE == StoreBackend::Sqlite);
}

#[tokio::test]
async fn the_client_drives_every_endpoint() {
    let h = Harness::new().await;
    let base = serve(&h).await;
    let anonymous = Client::new(&base);
    assert!(anonymous.healthz().await.unwrap());
    assert!(anonymous.openapi().await.unwrap()["paths"].is_object());

    // Users.
    let alice_user = anonymous.register(&register("alice")).await.unwrap();
    assert!(alice_user.is_superuser);
    anonymous.register(&register("bob")).await.unwrap();
    anonymous.register(&register("carol")).await.unwrap();
    let alice = anonymous.login("alice", "alice-password").await.unwrap();
    let bob = anonymous.login("bob", "bob-password").await.unwrap();
    let carol = anonymous.login("carol", "carol-password").await.unwrap();
    let err = anonymous.login("bob", "wrong").await.unwrap_err();
    assert_eq!(status(err), StatusCode::BAD_REQUEST);
    assert_eq!(alice.list_users(None, Some(2)).await.unwrap().count, 3);
    assert!(alice
        .list_users(Some(2), Some(2))
        .await
        .unwrap()
        .previous
        .is_some());
    assert_eq!(
        status(bob.list_users(None, None).await.unwrap_err()),
        StatusCode::FORBIDDEN
    );
    alice.grant_admin("carol").await.unwrap();
    assert_eq!(alice.list_admins().await.unwrap().count, 2);
    alice.revoke_admin("carol").await.unwrap();
    let status_set = bob
        .passwd(&PasswdRequest {
            password: Some("bob-password".into()),
            new_password: "bob-new-password".into(),
            username: None,
        })
        .await
        .unwrap();
    assert_eq!(status_set.status, "password set");
    let bob = bob.clone().with_token(
        bob.regenerate_token(&TokensRequest::default())
            .await
            .unwrap()
            .unwrap(),
    );

    // Apps, builds, config, releases.
    let app = bob.create_app(Some("go")).await.unwrap();
    assert_eq!(app.url, "go.example.test");
    let random = bob.create_app(None).await.unwrap();
    assert_eq!(bob.list_apps(None, None).await.unwrap().count, 2);
    bob.destroy_app(&random.id).await.unwrap();
    let err = bob.get_app(&random.id).await.unwrap_err();
    match &err {
        ClientError::Api {
            status, message, ..
        } => {
            assert_eq!(*status, StatusCode::NOT_FOUND);
            assert!(message.contains(&random.id), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let deployed = bob
        .create_build(
            "go",
            &BuildRequest {
                image: "deis/example-go:latest".into(),
                procfile: BTreeMap::from([
                    ("web".into(), "./web".into()),
                    ("worker".into(), "./w".into()),
                ]),
                ..BuildRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(deployed.release, Some(2));
    let build = bob.list_builds("go").await.unwrap().results.remove(0);
    assert_eq!(
        bob.get_build("go", &build.uuid.to_string()).await.unwrap(),
        build
    );
    let changed = bob
        .set_config("go", &json!({"values": {"FOO": "bar"}}))
        .await
        .unwrap();
    assert_eq!(changed.release, Some(3));
    assert_eq!(changed.body.values["FOO"], "bar");
    assert_eq!(bob.get_config("go").await.unwrap().values["FOO"], "bar");
    let err = bob
        .set_config("go", &json!({"values": {"1x": "y"}}))
        .await
        .unwrap_err();
    match err {
        ClientError::Api {
            status,
            message,
            body,
        } => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(message.starts_with("values: "), "{message}");
            assert!(body.unwrap()["values"].is_array());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bob.list_releases("go").await.unwrap().count, 3);
    assert_eq!(
        bob.get_release("go", 3).await.unwrap().summary,
        "bob added FOO"
    );
    assert_eq!(bob.rollback("go", Some(2)).await.unwrap(), 4);

    // Processes.
    bob.scale(
        "go",
        &BTreeMap::from([("web".into(), 2), ("worker".into(), 1)]),
    )
    .await
    .unwrap();
    assert_eq!(bob.containers("go", None).await.unwrap().count, 3);
    assert_eq!(bob.containers("go", Some("web")).await.unwrap().count, 2);
    assert_eq!(bob.container("go", "web", 2).await.unwrap().release, "v4");
    assert_eq!(
        bob.restart("go", Some("web"), Some(1)).await.unwrap().len(),
        1
    );
    assert_eq!(bob.restart("go", None, None).await.unwrap().len(), 3);
    assert_eq!(
        bob.run("go", "echo hi").await.unwrap(),
        (0, "go on v4: echo hi\n".into())
    );
    assert_eq!(bob.logs("go", None).await.unwrap(), None);
    h.logs.push("go", "hello");
    assert_eq!(
        bob.logs("go", Some(5)).await.unwrap().as_deref(),
        Some("hello\n")
    );

    // Domains and permissions.
    bob.add_domain("go", "www.example.com").await.unwrap();
    assert_eq!(bob.list_domains("go").await.unwrap().count, 1);
    bob.grant_perm("go", "carol").await.unwrap();
    assert_eq!(carol.list_perms("go").await.unwrap().users, vec!["carol"]);
    assert_eq!(
        status(
            carol
                .remove_domain("go", "www.example.com")
                .await
                .unwrap_err()
        ),
        StatusCode::FORBIDDEN
    );
    bob.remove_domain("go", "www.example.com").await.unwrap();
    carol.revoke_perm("go", "carol").await.unwrap();
    assert_eq!(
        status(carol.get_app("go").await.unwrap_err()),
        StatusCode::FORBIDDEN
    );

    // Keys and certificates.
    let key = bob.add_key("bob@desk", SSH_KEY_BOB).await.unwrap();
    assert_eq!(bob.list_keys().await.unwrap().results, vec![key.clone()]);
    assert_eq!(bob.get_key("bob@desk").await.unwrap(), key);
    bob.remove_key("bob@desk").await.unwrap();
    let cert = bob
        .add_cert(&CertificateRequest {
            certificate: CERT.into(),
            key: CERT_KEY.into(),
            common_name: None,
        })
        .await
        .unwrap();
    assert_eq!(bob.get_cert("www.example.test").await.unwrap(), cert);
    assert_eq!(bob.list_certs().await.unwrap().count, 1);
    bob.remove_cert("www.example.test").await.unwrap();

    // Builder hooks.
    let builder = Client::new(&base).with_builder_key(BUILDER_KEY);
    let push = builder
        .hook_push(&PushHookRequest {
            receive_user: "bob".into(),
            receive_repo: "go".into(),
            sha: "abc1234".into(),
            ..PushHookRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(push.app, "go");
    let built = builder
        .hook_build(&BuildHookRequest {
            receive_user: "bob".into(),
            receive_repo: "go".into(),
            image: "go".into(),
            sha: "abc12345".into(),
            procfile: BTreeMap::from([("web".into(), "./web".into())]),
            dockerfile: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(built.release.version, 5);
    // v4 rolled back to v2's config, which had no FOO.
    let config = builder.hook_config("bob", "go").await.unwrap();
    assert!(config.values.is_empty(), "{:?}", config.values);
    assert_eq!(
        status(
            Client::new(&base)
                .hook_config("bob", "go")
                .await
                .unwrap_err()
        ),
        StatusCode::UNAUTHORIZED
    );

    // Transfer, then cancel.
    bob.transfer_app("go", "carol").await.unwrap();
    bob.cancel(None).await.unwrap();
    assert_eq!(
        status(carol.cancel(None).await.unwrap_err()),
        StatusCode::CONFLICT
    );
    assert_eq!(
        alice
            .regenerate_token(&TokensRequest {
                username: None,
                all: true
            })
            .await
            .unwrap(),
        None
    );
}
