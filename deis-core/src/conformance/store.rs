//! The `Store` conformance suite. Call [`run_all`] on a fresh, empty store.

use super::expect_err;
use crate::error::Error;
use crate::model::{
    App, Build, Certificate, Domain, Formation, Key, NewUser, PageRequest, Push, TokenHash,
};
use crate::release::ConfigPatch;
use crate::store::{AppFilter, BuildChoice, ConfigChoice, NewRelease, Store};
use crate::time::Timestamp;
use futures::future::join_all;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Runs every check of the suite. The store must be empty: the first check is about the
/// first registered user.
pub async fn run_all(store: &dyn Store) {
    first_user_is_admin_exactly_once(store).await;
    users_and_tokens(store).await;
    keys(store).await;
    apps_and_permissions(store).await;
    releases_builds_and_configs(store).await;
    concurrent_release_appends(store).await;
    stale_config_writes_are_rejected(store).await;
    discarding_a_failed_release(store).await;
    pagination_is_stable(store).await;
    domains_and_certificates(store).await;
    pushes(store).await;
    deleting_an_app_removes_what_it_owns(store).await;
}

/// A new-user request with a placeholder password hash.
pub fn new_user(username: &str) -> NewUser {
    NewUser {
        username: username.into(),
        email: format!("{username}@example.com"),
        first_name: String::new(),
        last_name: String::new(),
        password_hash: format!("$argon2id$v=19$fake${username}"),
        superuser: false,
    }
}

async fn ensure_user(store: &dyn Store, username: &str) {
    match store.create_user(new_user(username)).await {
        Ok(_) | Err(Error::AlreadyExists { .. }) => {}
        Err(error) => panic!("creating user {username}: {error}"),
    }
}

async fn app_for(store: &dyn Store, owner: &str, id: &str) -> App {
    ensure_user(store, owner).await;
    store
        .create_app(App::new(id, owner))
        .await
        .unwrap_or_else(|e| panic!("create_app {id}: {e}"))
}

/// Ten registrations race on an empty store: exactly one becomes the administrator.
pub async fn first_user_is_admin_exactly_once(store: &dyn Store) {
    let results =
        join_all((0..10).map(|i| store.create_user(new_user(&format!("racer{i}"))))).await;
    let admins = results
        .into_iter()
        .map(|r| r.expect("racing registration"))
        .filter(|u| u.is_superuser)
        .count();
    assert_eq!(
        admins, 1,
        "exactly one of the first users must be superuser"
    );
    let later = store.create_user(new_user("latecomer")).await.unwrap();
    assert!(
        !later.is_superuser && !later.is_staff,
        "later users are not admins"
    );
    let mut promoted = new_user("promoted");
    promoted.superuser = true;
    assert!(store.create_user(promoted).await.unwrap().is_superuser);
}

/// Users: uniqueness, reads, updates, tokens stored by hash, deletion rules.
pub async fn users_and_tokens(store: &dyn Store) {
    let alice = store.create_user(new_user("u-alice")).await.unwrap();
    assert_eq!(alice.username, "u-alice");
    assert!(alice.is_active);
    expect_err(
        "duplicate username",
        store.create_user(new_user("u-alice")).await,
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    let read = store.get_user("u-alice").await.unwrap();
    assert_eq!(read.id, alice.id);
    assert_eq!(read.password_hash, alice.password_hash);
    expect_err(
        "missing user",
        store.get_user("u-nobody").await,
        Error::is_not_found,
    );

    store
        .set_password_hash("u-alice", "$argon2id$new")
        .await
        .unwrap();
    assert_eq!(
        store.get_user("u-alice").await.unwrap().password_hash,
        "$argon2id$new"
    );
    store.set_superuser("u-alice", true).await.unwrap();
    let admin = store.get_user("u-alice").await.unwrap();
    assert!(admin.is_superuser && admin.is_staff);
    store.set_superuser("u-alice", false).await.unwrap();
    assert!(!store.get_user("u-alice").await.unwrap().is_superuser);
    assert!(store
        .get_user("u-alice")
        .await
        .unwrap()
        .last_login
        .is_none());
    store.touch_last_login("u-alice").await.unwrap();
    assert!(store
        .get_user("u-alice")
        .await
        .unwrap()
        .last_login
        .is_some());

    let first = TokenHash("hash-one".into());
    let second = TokenHash("hash-two".into());
    store.set_token("u-alice", &first).await.unwrap();
    assert_eq!(
        store.user_by_token(&first).await.unwrap().username,
        "u-alice"
    );
    store.set_token("u-alice", &second).await.unwrap();
    expect_err(
        "replaced token",
        store.user_by_token(&first).await,
        Error::is_not_found,
    );
    assert_eq!(
        store.user_by_token(&second).await.unwrap().username,
        "u-alice"
    );
    expect_err(
        "token of a missing user",
        store.set_token("u-nobody", &first).await,
        Error::is_not_found,
    );

    app_for(store, "u-alice", "u-alice-app").await;
    expect_err(
        "deleting a user who owns apps",
        store.delete_user("u-alice").await,
        |e| matches!(e, Error::Precondition { .. }),
    );
    store.delete_app("u-alice-app").await.unwrap();
    store.delete_user("u-alice").await.unwrap();
    expect_err(
        "deleted user",
        store.get_user("u-alice").await,
        Error::is_not_found,
    );
    expect_err(
        "token of a deleted user",
        store.user_by_token(&second).await,
        Error::is_not_found,
    );
}

fn key(owner: &str, id: &str, public: &str) -> Key {
    let now = Timestamp::now();
    Key {
        uuid: Uuid::new_v4(),
        id: id.into(),
        owner: owner.into(),
        public: public.into(),
        fingerprint: format!("fp:{public}"),
        created: now,
        updated: now,
    }
}

/// SSH keys: unique per owner by name and globally by public key; lookup by fingerprint.
pub async fn keys(store: &dyn Store) {
    ensure_user(store, "k-bob").await;
    ensure_user(store, "k-carol").await;
    store
        .add_key(key("k-bob", "bob@laptop", "ssh-ed25519 AAAA1"))
        .await
        .unwrap();
    store
        .add_key(key("k-bob", "bob@desk", "ssh-ed25519 AAAA2"))
        .await
        .unwrap();
    expect_err(
        "same key name for one owner",
        store
            .add_key(key("k-bob", "bob@laptop", "ssh-ed25519 AAAA3"))
            .await,
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    expect_err(
        "same public key for another user",
        store
            .add_key(key("k-carol", "carol", "ssh-ed25519 AAAA1"))
            .await,
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    let listed = store
        .list_keys("k-bob", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.total, 2);
    let names: Vec<&str> = listed.items.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(names, ["bob@desk", "bob@laptop"], "keys are listed by name");
    assert_eq!(
        store
            .list_keys("k-carol", PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    let found = store
        .key_by_fingerprint("fp:ssh-ed25519 AAAA2")
        .await
        .unwrap();
    assert_eq!(
        (found.owner.as_str(), found.id.as_str()),
        ("k-bob", "bob@desk")
    );
    assert_eq!(
        store.get_key("k-bob", "bob@desk").await.unwrap().public,
        "ssh-ed25519 AAAA2"
    );
    expect_err(
        "another user's key",
        store.get_key("k-carol", "bob@desk").await,
        Error::is_not_found,
    );
    store.delete_key("k-bob", "bob@desk").await.unwrap();
    expect_err(
        "deleted key",
        store.delete_key("k-bob", "bob@desk").await,
        Error::is_not_found,
    );
    expect_err(
        "deleted key by fingerprint",
        store.key_by_fingerprint("fp:ssh-ed25519 AAAA2").await,
        Error::is_not_found,
    );
    expect_err(
        "key of a missing user",
        store.add_key(key("k-nobody", "x", "ssh-rsa AAAA9")).await,
        Error::is_not_found,
    );
}

/// Apps: creation with config revision 1 and release v1, uniqueness, visibility,
/// transfer, formation, collaborators.
pub async fn apps_and_permissions(store: &dyn Store) {
    let app = app_for(store, "a-owner", "a-app").await;
    assert_eq!(app.id, "a-app");
    expect_err(
        "duplicate app id",
        store.create_app(App::new("a-app", "a-owner")).await,
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    expect_err(
        "app of a missing owner",
        store.create_app(App::new("a-orphan", "nobody-x")).await,
        Error::is_not_found,
    );
    let release = store.latest_release("a-app").await.unwrap();
    assert_eq!(release.version, 1);
    assert_eq!(release.build, None);
    assert_eq!(release.summary, "a-owner created initial release");
    let config = store.current_config("a-app").await.unwrap();
    assert_eq!(config.revision, 1);
    assert_eq!(config.uuid, release.config);
    assert!(config.values.is_empty());
    assert_eq!(
        store.get_config("a-app", config.uuid).await.unwrap(),
        config
    );

    ensure_user(store, "a-friend").await;
    ensure_user(store, "a-stranger").await;
    let visible = |user: &str| AppFilter::VisibleTo(user.to_string());
    assert_eq!(
        store
            .list_apps(visible("a-friend"), PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    store.grant("a-app", "a-friend").await.unwrap();
    expect_err(
        "granting twice",
        store.grant("a-app", "a-friend").await,
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    expect_err(
        "granting a missing user",
        store.grant("a-app", "nobody-y").await,
        Error::is_not_found,
    );
    assert_eq!(store.collaborators("a-app").await.unwrap(), ["a-friend"]);
    let shared = store
        .list_apps(visible("a-friend"), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        shared
            .items
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        ["a-app"]
    );
    assert_eq!(
        store
            .list_apps(visible("a-stranger"), PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
    let all = store
        .list_apps(AppFilter::All, PageRequest::ALL)
        .await
        .unwrap();
    assert!(all.items.iter().any(|a| a.id == "a-app"));
    store.revoke("a-app", "a-friend").await.unwrap();
    expect_err(
        "revoking twice",
        store.revoke("a-app", "a-friend").await,
        Error::is_not_found,
    );
    assert!(store.collaborators("a-app").await.unwrap().is_empty());

    let moved = store.set_owner("a-app", "a-friend").await.unwrap();
    assert_eq!(moved.owner, "a-friend");
    assert_eq!(store.get_app("a-app").await.unwrap().owner, "a-friend");
    expect_err(
        "transfer to a missing user",
        store.set_owner("a-app", "nobody-z").await,
        Error::is_not_found,
    );

    let formation = Formation::from([("web".into(), 3), ("worker".into(), 1)]);
    let scaled = store.set_formation("a-app", &formation).await.unwrap();
    assert_eq!(scaled.structure, formation);
    assert_eq!(store.get_app("a-app").await.unwrap().structure, formation);
    assert_eq!(
        store.latest_release("a-app").await.unwrap().version,
        1,
        "scaling is not a release"
    );
    expect_err(
        "missing app",
        store.get_app("a-nothing").await,
        Error::is_not_found,
    );
}

fn build(app: &str, sha: &str) -> Build {
    let mut build = Build::new(app, "r-owner", &format!("{app}:git-{sha}"));
    build.sha = sha.into();
    build.procfile.insert("web".into(), "./server".into());
    build
}

/// Releases: builds and configs recorded with their release, rollbacks to existing ones.
pub async fn releases_builds_and_configs(store: &dyn Store) {
    app_for(store, "r-owner", "r-app").await;
    let first_build = build("r-app", "aaaaaaa");
    let v2 = store
        .append_release(NewRelease {
            app: "r-app".into(),
            owner: "r-owner".into(),
            summary: "r-owner deployed aaaaaaa".into(),
            build: BuildChoice::New(Box::new(first_build.clone())),
            config: ConfigChoice::Current,
        })
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.build, Some(first_build.uuid));
    let stored = store.get_build("r-app", first_build.uuid).await.unwrap();
    assert_eq!(stored.procfile, first_build.procfile);
    assert_eq!(stored.sha, "aaaaaaa");

    let current = store.current_config("r-app").await.unwrap();
    let patch = ConfigPatch::from_json(&serde_json::json!({"values": {"FOO": "bar"}})).unwrap();
    let next = patch.apply(&current, "r-owner").unwrap();
    let v3 = store
        .append_release(NewRelease {
            app: "r-app".into(),
            owner: "r-owner".into(),
            summary: "r-owner added FOO".into(),
            build: BuildChoice::Current,
            config: ConfigChoice::New {
                config: Box::new(next.clone()),
                expected_revision: current.revision,
            },
        })
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(
        v3.build,
        Some(first_build.uuid),
        "a config change keeps the build"
    );
    let after = store.current_config("r-app").await.unwrap();
    assert_eq!(after.revision, current.revision + 1);
    assert_eq!(after.values.get("FOO").map(String::as_str), Some("bar"));
    assert_eq!(after.uuid, v3.config);

    let v4 = store
        .append_release(NewRelease {
            app: "r-app".into(),
            owner: "r-owner".into(),
            summary: "r-owner rolled back to v2".into(),
            build: BuildChoice::Existing(v2.build.unwrap()),
            config: ConfigChoice::Existing(v2.config),
        })
        .await
        .unwrap();
    assert_eq!(v4.version, 4);
    assert_eq!(v4.config, v2.config);
    assert!(
        store
            .current_config("r-app")
            .await
            .unwrap()
            .values
            .is_empty(),
        "rollback restores the old config"
    );
    expect_err(
        "a build of no such id",
        store
            .append_release(NewRelease {
                app: "r-app".into(),
                owner: "r-owner".into(),
                summary: "x".into(),
                build: BuildChoice::Existing(Uuid::new_v4()),
                config: ConfigChoice::Current,
            })
            .await,
        Error::is_not_found,
    );
    assert_eq!(store.get_release("r-app", 3).await.unwrap(), v3);
    expect_err(
        "missing release",
        store.get_release("r-app", 99).await,
        Error::is_not_found,
    );
    let releases = store
        .list_releases("r-app", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(releases.total, 4);
    let versions: Vec<u64> = releases.items.iter().map(|r| r.version).collect();
    assert_eq!(versions, [4, 3, 2, 1], "releases are listed newest first");
    let builds = store
        .list_builds("r-app", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(builds.total, 1);
    expect_err(
        "a release of a missing app",
        store
            .append_release(NewRelease {
                app: "r-nothing".into(),
                owner: "r-owner".into(),
                summary: "x".into(),
                build: BuildChoice::Current,
                config: ConfigChoice::Current,
            })
            .await,
        Error::is_not_found,
    );
}

/// Fifty concurrent appends to one app get versions 2..=51 after v1: no gap, no duplicate.
pub async fn concurrent_release_appends(store: &dyn Store) {
    app_for(store, "c-owner", "c-app").await;
    let appends = (0..50).map(|i| {
        store.append_release(NewRelease {
            app: "c-app".into(),
            owner: "c-owner".into(),
            summary: format!("c-owner deployed {i}"),
            build: BuildChoice::New(Box::new(build("c-app", &format!("{i:07}")))),
            config: ConfigChoice::Current,
        })
    });
    let results = join_all(appends).await;
    let mut versions: Vec<u64> = results
        .into_iter()
        .map(|r| r.expect("concurrent append").version)
        .collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=51).collect::<Vec<u64>>(),
        "versions must have no gap or duplicate"
    );
    let listed = store
        .list_releases("c-app", PageRequest::ALL)
        .await
        .unwrap();
    let all: BTreeSet<u64> = listed.items.iter().map(|r| r.version).collect();
    assert_eq!(all, (1..=51).collect::<BTreeSet<u64>>());
    assert_eq!(
        store
            .list_builds("c-app", PageRequest::ALL)
            .await
            .unwrap()
            .total,
        50
    );
}

/// A config write based on a stale revision fails and changes nothing; of concurrent
/// writers from the same revision exactly one wins.
pub async fn stale_config_writes_are_rejected(store: &dyn Store) {
    app_for(store, "s-owner", "s-app").await;
    let base = store.current_config("s-app").await.unwrap();
    let write = |key: &str| {
        let patch = ConfigPatch::from_json(&serde_json::json!({"values": {key: "1"}})).unwrap();
        let config = patch.apply(&base, "s-owner").unwrap();
        store.append_release(NewRelease {
            app: "s-app".into(),
            owner: "s-owner".into(),
            summary: format!("s-owner added {key}"),
            build: BuildChoice::Current,
            config: ConfigChoice::New {
                config: Box::new(config),
                expected_revision: base.revision,
            },
        })
    };
    let results = join_all(["A", "B", "C", "D", "E"].map(write)).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        winners, 1,
        "exactly one writer from the same revision wins: {results:?}"
    );
    for result in results.into_iter().filter(|r| r.is_err()) {
        expect_err("stale config revision", result, |e| {
            matches!(e, Error::Precondition { .. })
        });
    }
    let after = store.current_config("s-app").await.unwrap();
    assert_eq!(after.revision, base.revision + 1);
    assert_eq!(
        after.values.len(),
        1,
        "the winner's value is kept, nothing else"
    );
    assert_eq!(store.latest_release("s-app").await.unwrap().version, 2);
    expect_err(
        "a write from the old revision again",
        write("F").await,
        |e| matches!(e, Error::Precondition { .. }),
    );
}

/// A failed rollout's release can be discarded, leaving the previous release and config
/// current; only the latest release can be, and never v1.
pub async fn discarding_a_failed_release(store: &dyn Store) {
    app_for(store, "d-owner", "d-app").await;
    let base = store.current_config("d-app").await.unwrap();
    let patch = ConfigPatch::from_json(&serde_json::json!({"values": {"BROKEN": "yes"}})).unwrap();
    let broken = patch.apply(&base, "d-owner").unwrap();
    let v2 = store
        .append_release(NewRelease {
            app: "d-app".into(),
            owner: "d-owner".into(),
            summary: "d-owner added BROKEN".into(),
            build: BuildChoice::New(Box::new(build("d-app", "bbbbbbb"))),
            config: ConfigChoice::New {
                config: Box::new(broken),
                expected_revision: base.revision,
            },
        })
        .await
        .unwrap();
    expect_err(
        "discarding v1",
        store.discard_release("d-app", 1).await,
        |e| matches!(e, Error::Precondition { .. }),
    );
    store.discard_release("d-app", v2.version).await.unwrap();
    assert_eq!(store.latest_release("d-app").await.unwrap().version, 1);
    let config = store.current_config("d-app").await.unwrap();
    assert_eq!(
        config.uuid, base.uuid,
        "the previous config is current again"
    );
    assert_eq!(
        store
            .list_builds("d-app", PageRequest::ALL)
            .await
            .unwrap()
            .total,
        0,
        "the failed build is gone"
    );
    let again = patch.apply(&config, "d-owner").unwrap();
    let retry = store
        .append_release(NewRelease {
            app: "d-app".into(),
            owner: "d-owner".into(),
            summary: "d-owner added BROKEN".into(),
            build: BuildChoice::Current,
            config: ConfigChoice::New {
                config: Box::new(again),
                expected_revision: config.revision,
            },
        })
        .await
        .unwrap();
    assert_eq!(retry.version, 2, "the version is reused after a discard");
    expect_err(
        "discarding a release that is not the latest",
        store.discard_release("d-app", 1).await,
        |e| matches!(e, Error::Precondition { .. }),
    );
}

/// Pages of apps and releases concatenate to the full list with no overlap or gap.
pub async fn pagination_is_stable(store: &dyn Store) {
    ensure_user(store, "p-owner").await;
    for i in (0..23).rev() {
        store
            .create_app(App::new(format!("p-app-{i:02}"), "p-owner"))
            .await
            .unwrap();
    }
    let filter = AppFilter::VisibleTo("p-owner".into());
    let full = store
        .list_apps(filter.clone(), PageRequest::ALL)
        .await
        .unwrap();
    assert_eq!(full.total, 23);
    let ids: Vec<String> = full.items.iter().map(|a| a.id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "apps are listed by id");
    let mut paged = Vec::new();
    for page in 0..4 {
        let part = store
            .list_apps(
                filter.clone(),
                PageRequest {
                    offset: page * 7,
                    limit: 7,
                },
            )
            .await
            .unwrap();
        assert_eq!(part.total, 23, "every page reports the total");
        paged.extend(part.items.into_iter().map(|a| a.id));
    }
    assert_eq!(paged, ids, "pages concatenate to the full list");
    let beyond = store
        .list_apps(
            filter,
            PageRequest {
                offset: 100,
                limit: 7,
            },
        )
        .await
        .unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 23);

    for i in 0..9 {
        store
            .append_release(NewRelease {
                app: "p-app-00".into(),
                owner: "p-owner".into(),
                summary: format!("p-owner deployed {i}"),
                build: BuildChoice::New(Box::new(build("p-app-00", &format!("{i:07}")))),
                config: ConfigChoice::Current,
            })
            .await
            .unwrap();
    }
    let mut versions = Vec::new();
    for page in 0..3 {
        let part = store
            .list_releases(
                "p-app-00",
                PageRequest {
                    offset: page * 4,
                    limit: 4,
                },
            )
            .await
            .unwrap();
        versions.extend(part.items.into_iter().map(|r| r.version));
    }
    assert_eq!(versions, (1..=10).rev().collect::<Vec<u64>>());
    let mut shas = Vec::new();
    for page in 0..3 {
        let part = store
            .list_builds(
                "p-app-00",
                PageRequest {
                    offset: page * 4,
                    limit: 4,
                },
            )
            .await
            .unwrap();
        shas.extend(part.items.into_iter().map(|b| b.sha));
    }
    let expected: Vec<String> = (0..9).rev().map(|i| format!("{i:07}")).collect();
    assert_eq!(shas, expected, "builds are listed newest first");
}

fn certificate(owner: &str, common_name: &str) -> Certificate {
    let now = Timestamp::now();
    Certificate {
        uuid: Uuid::new_v4(),
        owner: owner.into(),
        common_name: common_name.into(),
        expires: now,
        certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        key: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n".into(),
        created: now,
        updated: now,
    }
}

fn domain(app: &str, owner: &str, name: &str) -> Domain {
    let now = Timestamp::now();
    Domain {
        uuid: Uuid::new_v4(),
        app: app.into(),
        owner: owner.into(),
        domain: name.into(),
        created: now,
        updated: now,
    }
}

/// Domains are unique across apps; certificates unique by common name, PEM kept.
pub async fn domains_and_certificates(store: &dyn Store) {
    app_for(store, "dc-owner", "dc-one").await;
    app_for(store, "dc-owner", "dc-two").await;
    store
        .add_domain(domain("dc-one", "dc-owner", "www.one.test"))
        .await
        .unwrap();
    store
        .add_domain(domain("dc-one", "dc-owner", "api.one.test"))
        .await
        .unwrap();
    expect_err(
        "a domain another app has",
        store
            .add_domain(domain("dc-two", "dc-owner", "www.one.test"))
            .await,
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    expect_err(
        "a domain for a missing app",
        store
            .add_domain(domain("dc-none", "dc-owner", "x.test"))
            .await,
        Error::is_not_found,
    );
    let listed = store
        .list_domains("dc-one", PageRequest::default())
        .await
        .unwrap();
    let names: Vec<&str> = listed.items.iter().map(|d| d.domain.as_str()).collect();
    assert_eq!(names, ["api.one.test", "www.one.test"]);
    assert_eq!(
        store.get_domain("www.one.test").await.unwrap().app,
        "dc-one"
    );
    expect_err(
        "deleting another app's domain",
        store.delete_domain("dc-two", "www.one.test").await,
        Error::is_not_found,
    );
    store.delete_domain("dc-one", "www.one.test").await.unwrap();
    expect_err(
        "deleted domain",
        store.get_domain("www.one.test").await,
        Error::is_not_found,
    );
    store
        .add_domain(domain("dc-two", "dc-owner", "www.one.test"))
        .await
        .unwrap();

    ensure_user(store, "dc-other").await;
    let cert = store
        .add_certificate(certificate("dc-owner", "www.one.test"))
        .await
        .unwrap();
    store
        .add_certificate(certificate("dc-other", "api.one.test"))
        .await
        .unwrap();
    expect_err(
        "a taken common name",
        store
            .add_certificate(certificate("dc-other", "www.one.test"))
            .await,
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    let read = store.get_certificate("www.one.test").await.unwrap();
    assert_eq!(read.certificate, cert.certificate, "the PEM chain is kept");
    assert_eq!(read.key, cert.key, "the key is kept");
    let mine = store
        .list_certificates(Some("dc-owner"), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        mine.items
            .iter()
            .map(|c| c.common_name.as_str())
            .collect::<Vec<_>>(),
        ["www.one.test"]
    );
    let all = store
        .list_certificates(None, PageRequest::ALL)
        .await
        .unwrap();
    assert!(all.total >= 2);
    store.delete_certificate("www.one.test").await.unwrap();
    expect_err(
        "deleted certificate",
        store.get_certificate("www.one.test").await,
        Error::is_not_found,
    );
    expect_err(
        "deleting twice",
        store.delete_certificate("www.one.test").await,
        Error::is_not_found,
    );
}

/// Pushes are recorded and listed newest first.
pub async fn pushes(store: &dyn Store) {
    app_for(store, "push-owner", "push-app").await;
    for sha in ["1111111", "2222222"] {
        let now = Timestamp::now();
        store
            .record_push(Push {
                uuid: Uuid::new_v4(),
                app: "push-app".into(),
                owner: "push-owner".into(),
                sha: sha.into(),
                fingerprint: String::new(),
                receive_user: "push-owner".into(),
                receive_repo: "push-app".into(),
                ssh_connection: String::new(),
                ssh_original_command: "git-receive-pack 'push-app.git'".into(),
                created: now,
                updated: now,
            })
            .await
            .unwrap();
    }
    let listed = store
        .list_pushes("push-app", PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.sha.as_str())
            .collect::<Vec<_>>(),
        ["2222222", "1111111"]
    );
}

/// Deleting an app removes its releases, builds, domains and grants, and frees its id.
pub async fn deleting_an_app_removes_what_it_owns(store: &dyn Store) {
    app_for(store, "x-owner", "x-app").await;
    ensure_user(store, "x-friend").await;
    store.grant("x-app", "x-friend").await.unwrap();
    store
        .add_domain(domain("x-app", "x-owner", "x.example.test"))
        .await
        .unwrap();
    store
        .append_release(NewRelease {
            app: "x-app".into(),
            owner: "x-owner".into(),
            summary: "x-owner deployed x".into(),
            build: BuildChoice::New(Box::new(build("x-app", "xxxxxxx"))),
            config: ConfigChoice::Current,
        })
        .await
        .unwrap();
    store.delete_app("x-app").await.unwrap();
    expect_err(
        "deleted app",
        store.get_app("x-app").await,
        Error::is_not_found,
    );
    expect_err(
        "releases of a deleted app",
        store.latest_release("x-app").await,
        Error::is_not_found,
    );
    expect_err(
        "domain of a deleted app",
        store.get_domain("x.example.test").await,
        Error::is_not_found,
    );
    expect_err(
        "deleting twice",
        store.delete_app("x-app").await,
        Error::is_not_found,
    );
    store
        .create_app(App::new("x-app", "x-owner"))
        .await
        .unwrap();
    assert_eq!(
        store.latest_release("x-app").await.unwrap().version,
        1,
        "a re-created app starts again at v1"
    );
    assert!(
        store.collaborators("x-app").await.unwrap().is_empty(),
        "old grants do not come back"
    );
    store.delete_app("x-app").await.unwrap();
}
