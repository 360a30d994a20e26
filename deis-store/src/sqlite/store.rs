//! `impl Store for SqliteStore`.

use super::readers::{self, read_error, snapshot};
use super::writer::{execute, returning, violation, WriteError};
use super::{read_rows, SqliteStore, BACKEND};
use crate::codec::{
    int, limit_offset, not_discardable, stale_config, still_owns_apps, stored, to_json, uint,
};
use crate::error::Violation;
use crate::sql;
use async_trait::async_trait;
use deis_core::model::{
    App, Build, Certificate, Config, Domain, Formation, Key, NewUser, Page, PageRequest, Push,
    Release, TokenHash, User,
};
use deis_core::release::initial_summary;
use deis_core::store::{AppFilter, BuildChoice, ConfigChoice, NewRelease};
use deis_core::{Error, Kind, Result, Store, Timestamp};
use rusqlite::{params, Connection};
use uuid::Uuid;

/// Maps a database error the call site did not handle.
fn err(error: rusqlite::Error) -> Error {
    read_error(error)
}

/// Maps the failure of a statement with a decoded result.
fn write_err(error: WriteError) -> Error {
    match error {
        WriteError::Database(error) => err(error),
        WriteError::Decoded(error) => error,
    }
}

/// UUIDs are stored as hyphenated text.
fn id(uuid: Uuid) -> String {
    uuid.hyphenated().to_string()
}

/// A single-value `SELECT` (inside a write transaction).
fn scalar(connection: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<i64> {
    let mut statement = connection.prepare_cached(sql).map_err(err)?;
    statement.query_row(params, |row| row.get(0)).map_err(err)
}

impl SqliteStore {
    /// Runs `read`, a list, on a read connection on the blocking pool (see
    /// [`super::readers`]).
    async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.readers.run(read).await
    }

    /// Runs `read`, a lookup of a few rows through an index, on a read connection on this
    /// thread (see [`super::readers`]).
    async fn read_point<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T> + Send + 'static,
    {
        self.readers.run_point(read).await
    }

    /// One page of an app-scoped list: `list_sql` bound to (app, limit, offset), and when
    /// the page is empty `count_sql` bound to the app, all in one snapshot; `NotFound(App)`
    /// if the app does not exist.
    async fn read_page<T: Send + 'static>(
        &self,
        app: &str,
        page: PageRequest,
        list_sql: &'static str,
        count_sql: &'static str,
        decode: fn(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Page<T>> {
        let (limit, offset) = limit_offset(page);
        let app = app.to_owned();
        self.read(move |c| {
            snapshot(c, |c| {
                let (total, items) =
                    readers::page(c, list_sql, params![app, limit, offset], decode)?;
                let total = match total {
                    Some(total) => total,
                    None => {
                        let total = readers::count(c, count_sql, [&app])?;
                        if total == 0 {
                            require_app(c, &app)?;
                        }
                        total
                    }
                };
                Ok(Page { total, items })
            })
        })
        .await
    }
}

/// Appends a release inside a write transaction (which holds the database's write lock,
/// so the version and revision read here are still the newest when the rows go in).
fn append(tx: &Connection, request: &NewRelease) -> Result<Release> {
    let app = request.app.as_str();
    let Some(latest) = readers::one(tx, sql::LATEST_RELEASE, [app], read_rows::release)? else {
        require_app(tx, app)?;
        return Err(Error::not_found(Kind::Release, format!("{app} latest")));
    };
    let build = match &request.build {
        BuildChoice::Current => latest.build,
        BuildChoice::Existing(uuid) => {
            if !readers::exists(tx, sql::BUILD_EXISTS, params![app, id(*uuid)])? {
                return Err(Error::not_found(Kind::Build, uuid.to_string()));
            }
            Some(*uuid)
        }
        BuildChoice::New(build) => Some(build.uuid),
    };
    let config = match &request.config {
        ConfigChoice::Current => latest.config,
        ConfigChoice::Existing(uuid) => {
            if !readers::exists(tx, sql::CONFIG_EXISTS, params![app, id(*uuid)])? {
                return Err(Error::not_found(Kind::Config, uuid.to_string()));
            }
            *uuid
        }
        ConfigChoice::New {
            config,
            expected_revision,
        } => {
            let current = uint(scalar(tx, sql::CONFIG_REVISION, [id(latest.config)])?);
            if current != *expected_revision {
                return Err(Error::precondition(stale_config(
                    app,
                    current,
                    *expected_revision,
                )));
            }
            let newest = scalar(tx, sql::MAX_CONFIG_REVISION, [app])?;
            insert_config(tx, app, config, newest + 1)?;
            config.uuid
        }
    };
    if let BuildChoice::New(new) = &request.build {
        insert_build(tx, app, new)?;
    }
    let now = Timestamp::now();
    let release = Release {
        uuid: Uuid::new_v4(),
        app: app.to_owned(),
        owner: request.owner.clone(),
        version: latest.version + 1,
        summary: request.summary.clone(),
        config,
        build,
        created: now,
        updated: now,
    };
    insert_release(tx, &release)?;
    Ok(release)
}

/// `NotFound(App)` unless the app exists (on a read connection).
fn require_app(connection: &Connection, app: &str) -> Result<()> {
    if readers::exists(connection, sql::APP_EXISTS, [app])? {
        Ok(())
    } else {
        Err(Error::not_found(Kind::App, app))
    }
}

fn insert_config(tx: &Connection, app: &str, config: &Config, revision: i64) -> Result<()> {
    execute(
        tx,
        sql::INSERT_CONFIG,
        &[
            &id(config.uuid),
            &app,
            &config.owner,
            &revision,
            &to_json(&config.values),
            &to_json(&config.memory),
            &to_json(&config.cpu),
            &to_json(&config.tags),
            &config.created.as_micros(),
            &config.updated.as_micros(),
        ],
    )
    .map_err(|e| match violation(&e) {
        // The revision is read under the write lock: only a damaged database collides.
        Some(Violation::Unique(what)) if !what.contains("revision") => {
            Error::already_exists(Kind::Config, config.uuid.to_string())
        }
        _ => err(e),
    })?;
    Ok(())
}

fn insert_build(tx: &Connection, app: &str, build: &Build) -> Result<()> {
    execute(
        tx,
        sql::INSERT_BUILD,
        &[
            &id(build.uuid),
            &app,
            &build.owner,
            &build.image,
            &build.sha,
            &to_json(&build.procfile),
            &build.dockerfile,
            &build.created.as_micros(),
            &build.updated.as_micros(),
        ],
    )
    .map_err(|e| match violation(&e) {
        Some(Violation::Unique(_)) => Error::already_exists(Kind::Build, build.uuid.to_string()),
        _ => err(e),
    })?;
    Ok(())
}

fn insert_release(tx: &Connection, release: &Release) -> Result<()> {
    execute(
        tx,
        sql::INSERT_RELEASE,
        &[
            &id(release.uuid),
            &release.app,
            &int(release.version),
            &release.owner,
            &release.summary,
            &id(release.config),
            &release.build.map(id),
            &release.created.as_micros(),
            &release.updated.as_micros(),
        ],
    )
    .map_err(err)?;
    Ok(())
}

/// `NotFound(kind, name)` when a statement changed no row.
fn changed(rows: usize, kind: Kind, name: &str) -> Result<()> {
    if rows == 0 {
        Err(Error::not_found(kind, name))
    } else {
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create_user(&self, new: NewUser) -> Result<User> {
        // The write lock makes "no user exists yet" exact: racing registrations take turns.
        self.writer
            .run(move |tx| {
                returning(
                    tx,
                    sql::INSERT_USER,
                    &[
                        &new.username,
                        &new.email,
                        &new.first_name,
                        &new.last_name,
                        &new.password_hash,
                        &new.superuser,
                        &Timestamp::now().as_micros(),
                    ],
                    read_rows::user,
                )
                .map_err(|e| match e {
                    WriteError::Database(e) => match violation(&e) {
                        Some(Violation::Unique(_)) => {
                            Error::already_exists(Kind::User, &new.username)
                        }
                        _ => err(e),
                    },
                    WriteError::Decoded(e) => e,
                })?
                .ok_or_else(|| {
                    Error::backend(BACKEND, std::io::Error::other("INSERT returned no row"))
                })
            })
            .await
    }

    async fn get_user(&self, username: &str) -> Result<User> {
        let username = username.to_owned();
        self.read_point(move |c| {
            readers::one(c, sql::GET_USER, [&username], read_rows::user)?
                .ok_or_else(|| Error::not_found(Kind::User, &username))
        })
        .await
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let (limit, offset) = limit_offset(page);
        self.read(move |c| {
            snapshot(c, |c| {
                let (total, items) =
                    readers::page(c, sql::LIST_USERS, [limit, offset], read_rows::user)?;
                let total = match total {
                    Some(total) => total,
                    None => readers::count(c, sql::COUNT_USERS, [])?,
                };
                Ok(Page { total, items })
            })
        })
        .await
    }

    async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<()> {
        let (username, hash) = (username.to_owned(), password_hash.to_owned());
        self.writer
            .run(move |tx| {
                let rows = execute(tx, sql::SET_PASSWORD_HASH, &[&username, &hash]).map_err(err)?;
                changed(rows, Kind::User, &username)
            })
            .await
    }

    async fn set_superuser(&self, username: &str, superuser: bool) -> Result<()> {
        let username = username.to_owned();
        self.writer
            .run(move |tx| {
                let rows =
                    execute(tx, sql::SET_SUPERUSER, &[&username, &superuser]).map_err(err)?;
                changed(rows, Kind::User, &username)
            })
            .await
    }

    async fn touch_last_login(&self, username: &str) -> Result<()> {
        let username = username.to_owned();
        self.writer
            .run(move |tx| {
                let now = Timestamp::now().as_micros();
                let rows = execute(tx, sql::TOUCH_LAST_LOGIN, &[&username, &now]).map_err(err)?;
                changed(rows, Kind::User, &username)
            })
            .await
    }

    async fn delete_user(&self, username: &str) -> Result<()> {
        let username = username.to_owned();
        self.writer
            .run(move |tx| {
                if !readers::exists(tx, sql::USER_EXISTS, [&username])? {
                    return Err(Error::not_found(Kind::User, &username));
                }
                let owned = scalar(tx, sql::COUNT_OWNED_APPS, [&username])?;
                if owned > 0 {
                    return Err(Error::precondition(still_owns_apps(&username, uint(owned))));
                }
                execute(tx, sql::DELETE_USER, &[&username]).map_err(|e| match violation(&e) {
                    Some(Violation::ForeignKey) => {
                        Error::precondition(still_owns_apps(&username, 1))
                    }
                    _ => err(e),
                })?;
                Ok(())
            })
            .await
    }

    async fn set_token(&self, username: &str, token: &TokenHash) -> Result<()> {
        let (username, hash) = (username.to_owned(), token.0.clone());
        self.writer
            .run(move |tx| {
                let now = Timestamp::now().as_micros();
                execute(tx, sql::SET_TOKEN, &[&username, &hash, &now]).map_err(|e| {
                    match violation(&e) {
                        Some(Violation::ForeignKey) => Error::not_found(Kind::User, &username),
                        // Never put the hash in an error.
                        Some(Violation::Unique(_)) => {
                            Error::already_exists(Kind::Token, "(hidden)")
                        }
                        None => err(e),
                    }
                })?;
                Ok(())
            })
            .await
    }

    async fn user_by_token(&self, token: &TokenHash) -> Result<User> {
        let hash = token.0.clone();
        self.read_point(move |c| {
            readers::one(c, sql::USER_BY_TOKEN, [&hash], read_rows::user)?
                // Never put the hash in an error.
                .ok_or_else(|| Error::not_found(Kind::Token, "(hidden)"))
        })
        .await
    }

    async fn add_key(&self, key: Key) -> Result<Key> {
        let key = Key {
            created: stored(key.created),
            updated: stored(key.updated),
            ..key
        };
        self.writer
            .run(move |tx| {
                execute(
                    tx,
                    sql::INSERT_KEY,
                    &[
                        &id(key.uuid),
                        &key.owner,
                        &key.id,
                        &key.public,
                        &key.fingerprint,
                        &key.created.as_micros(),
                        &key.updated.as_micros(),
                    ],
                )
                .map_err(|e| match violation(&e) {
                    Some(Violation::ForeignKey) => Error::not_found(Kind::User, &key.owner),
                    Some(Violation::Unique(what)) if what.contains("public_key") => {
                        Error::already_exists(Kind::Key, &key.fingerprint)
                    }
                    Some(Violation::Unique(_)) => Error::already_exists(Kind::Key, &key.id),
                    None => err(e),
                })?;
                Ok(key)
            })
            .await
    }

    async fn get_key(&self, owner: &str, key_id: &str) -> Result<Key> {
        let (owner, key_id) = (owner.to_owned(), key_id.to_owned());
        self.read_point(move |c| {
            readers::one(c, sql::GET_KEY, [&owner, &key_id], read_rows::key)?
                .ok_or_else(|| Error::not_found(Kind::Key, &key_id))
        })
        .await
    }

    async fn list_keys(&self, owner: &str, page: PageRequest) -> Result<Page<Key>> {
        let (limit, offset) = limit_offset(page);
        let owner = owner.to_owned();
        self.read(move |c| {
            snapshot(c, |c| {
                let (total, items) = readers::page(
                    c,
                    sql::LIST_KEYS,
                    params![owner, limit, offset],
                    read_rows::key,
                )?;
                let total = match total {
                    Some(total) => total,
                    None => readers::count(c, sql::COUNT_KEYS, [&owner])?,
                };
                Ok(Page { total, items })
            })
        })
        .await
    }

    async fn key_by_fingerprint(&self, fingerprint: &str) -> Result<Key> {
        let fingerprint = fingerprint.to_owned();
        self.read_point(move |c| {
            readers::one(c, sql::KEY_BY_FINGERPRINT, [&fingerprint], read_rows::key)?
                .ok_or_else(|| Error::not_found(Kind::Key, &fingerprint))
        })
        .await
    }

    async fn delete_key(&self, owner: &str, key_id: &str) -> Result<()> {
        let (owner, key_id) = (owner.to_owned(), key_id.to_owned());
        self.writer
            .run(move |tx| {
                let rows = execute(tx, sql::DELETE_KEY, &[&owner, &key_id]).map_err(err)?;
                changed(rows, Kind::Key, &key_id)
            })
            .await
    }

    async fn create_app(&self, app: App) -> Result<App> {
        let app = App {
            url: String::new(),
            created: stored(app.created),
            updated: stored(app.updated),
            ..app
        };
        self.writer
            .run(move |tx| {
                execute(
                    tx,
                    sql::INSERT_APP,
                    &[
                        &app.id,
                        &id(app.uuid),
                        &app.owner,
                        &to_json(&app.structure),
                        &app.created.as_micros(),
                        &app.updated.as_micros(),
                    ],
                )
                .map_err(|e| match violation(&e) {
                    Some(Violation::ForeignKey) => Error::not_found(Kind::User, &app.owner),
                    Some(Violation::Unique(_)) => Error::already_exists(Kind::App, &app.id),
                    None => err(e),
                })?;
                let config = Config::initial(&app.id, &app.owner);
                insert_config(tx, &app.id, &config, 1)?;
                let release = Release {
                    uuid: Uuid::new_v4(),
                    app: app.id.clone(),
                    owner: app.owner.clone(),
                    version: 1,
                    summary: initial_summary(&app.owner),
                    config: config.uuid,
                    build: None,
                    created: app.created,
                    updated: app.created,
                };
                insert_release(tx, &release)?;
                Ok(app)
            })
            .await
    }

    async fn get_app(&self, app_id: &str) -> Result<App> {
        let app_id = app_id.to_owned();
        self.read_point(move |c| {
            readers::one(c, sql::GET_APP, [&app_id], read_rows::app)?
                .ok_or_else(|| Error::not_found(Kind::App, &app_id))
        })
        .await
    }

    async fn list_apps(&self, filter: AppFilter, page: PageRequest) -> Result<Page<App>> {
        let (limit, offset) = limit_offset(page);
        self.read(move |c| {
            snapshot(c, |c| {
                let (total, items) = match &filter {
                    AppFilter::All => {
                        readers::page(c, sql::LIST_APPS, [limit, offset], read_rows::app)?
                    }
                    AppFilter::VisibleTo(user) => readers::page(
                        c,
                        sql::LIST_APPS_VISIBLE_TO,
                        params![user, limit, offset],
                        read_rows::app,
                    )?,
                };
                let total = match (total, &filter) {
                    (Some(total), _) => total,
                    (None, AppFilter::All) => readers::count(c, sql::COUNT_APPS, [])?,
                    (None, AppFilter::VisibleTo(user)) => {
                        readers::count(c, sql::COUNT_APPS_VISIBLE_TO, [user])?
                    }
                };
                Ok(Page { total, items })
            })
        })
        .await
    }

    async fn set_owner(&self, app: &str, owner: &str) -> Result<App> {
        let (app, owner) = (app.to_owned(), owner.to_owned());
        self.writer
            .run(move |tx| {
                let now = Timestamp::now().as_micros();
                returning(tx, sql::SET_OWNER, &[&app, &owner, &now], read_rows::app)
                    .map_err(|e| match e {
                        WriteError::Database(e) => match violation(&e) {
                            Some(Violation::ForeignKey) => Error::not_found(Kind::User, &owner),
                            _ => err(e),
                        },
                        WriteError::Decoded(e) => e,
                    })?
                    .ok_or_else(|| Error::not_found(Kind::App, &app))
            })
            .await
    }

    async fn set_formation(&self, app: &str, formation: &Formation) -> Result<App> {
        let (app, formation) = (app.to_owned(), to_json(formation));
        self.writer
            .run(move |tx| {
                let now = Timestamp::now().as_micros();
                returning(
                    tx,
                    sql::SET_FORMATION,
                    &[&app, &formation, &now],
                    read_rows::app,
                )
                .map_err(write_err)?
                .ok_or_else(|| Error::not_found(Kind::App, &app))
            })
            .await
    }

    async fn delete_app(&self, app: &str) -> Result<()> {
        let app = app.to_owned();
        self.writer
            .run(move |tx| {
                execute(tx, sql::DELETE_APP_RELEASES, &[&app]).map_err(err)?;
                let rows = execute(tx, sql::DELETE_APP, &[&app]).map_err(err)?;
                changed(rows, Kind::App, &app)
            })
            .await
    }

    async fn grant(&self, app: &str, username: &str) -> Result<()> {
        let (app, username) = (app.to_owned(), username.to_owned());
        self.writer
            .run(move |tx| {
                require_app(tx, &app)?;
                if !readers::exists(tx, sql::USER_EXISTS, [&username])? {
                    return Err(Error::not_found(Kind::User, &username));
                }
                execute(tx, sql::INSERT_GRANT, &[&app, &username]).map_err(
                    |e| match violation(&e) {
                        Some(Violation::Unique(_)) => {
                            Error::already_exists(Kind::Permission, format!("{username} on {app}"))
                        }
                        Some(Violation::ForeignKey) => Error::not_found(Kind::App, &app),
                        None => err(e),
                    },
                )?;
                Ok(())
            })
            .await
    }

    async fn revoke(&self, app: &str, username: &str) -> Result<()> {
        let (app, username) = (app.to_owned(), username.to_owned());
        self.writer
            .run(move |tx| {
                let rows = execute(tx, sql::DELETE_GRANT, &[&app, &username]).map_err(err)?;
                if rows == 0 {
                    require_app(tx, &app)?;
                    return Err(Error::not_found(
                        Kind::Permission,
                        format!("{username} on {app}"),
                    ));
                }
                Ok(())
            })
            .await
    }

    async fn collaborators(&self, app: &str) -> Result<Vec<String>> {
        let app = app.to_owned();
        self.read_point(move |c| {
            snapshot(c, |c| {
                let users = readers::all(c, sql::LIST_COLLABORATORS, [&app], |row| {
                    row.get(0).map_err(read_error)
                })?;
                if users.is_empty() {
                    require_app(c, &app)?;
                }
                Ok(users)
            })
        })
        .await
    }

    async fn get_build(&self, app: &str, uuid: Uuid) -> Result<Build> {
        let app = app.to_owned();
        self.read_point(move |c| {
            match readers::one(c, sql::GET_BUILD, [&app, &id(uuid)], read_rows::build)? {
                Some(build) => Ok(build),
                None => {
                    require_app(c, &app)?;
                    Err(Error::not_found(Kind::Build, uuid.to_string()))
                }
            }
        })
        .await
    }

    async fn list_builds(&self, app: &str, page: PageRequest) -> Result<Page<Build>> {
        self.read_page(
            app,
            page,
            sql::LIST_BUILDS,
            sql::COUNT_BUILDS,
            read_rows::build,
        )
        .await
    }

    async fn current_config(&self, app: &str) -> Result<Config> {
        let app = app.to_owned();
        self.read_point(move |c| {
            match readers::one(c, sql::CURRENT_CONFIG, [&app], read_rows::config)? {
                Some(config) => Ok(config),
                None => {
                    require_app(c, &app)?;
                    Err(Error::not_found(Kind::Release, format!("{app} latest")))
                }
            }
        })
        .await
    }

    async fn get_config(&self, app: &str, uuid: Uuid) -> Result<Config> {
        let app = app.to_owned();
        self.read_point(move |c| {
            match readers::one(c, sql::GET_CONFIG, [&app, &id(uuid)], read_rows::config)? {
                Some(config) => Ok(config),
                None => {
                    require_app(c, &app)?;
                    Err(Error::not_found(Kind::Config, uuid.to_string()))
                }
            }
        })
        .await
    }

    async fn append_release(&self, request: NewRelease) -> Result<Release> {
        self.writer.run(move |tx| append(tx, &request)).await
    }

    async fn discard_release(&self, app: &str, version: u64) -> Result<()> {
        let app = app.to_owned();
        self.writer
            .run(move |tx| {
                let latest = readers::one(tx, sql::LATEST_RELEASE, [&app], read_rows::release)?;
                let Some(latest) = latest else {
                    require_app(tx, &app)?;
                    return Err(Error::not_found(Kind::Release, format!("{app} latest")));
                };
                if latest.version != version || version <= 1 {
                    return Err(Error::precondition(not_discardable(&app, latest.version)));
                }
                execute(tx, sql::DELETE_RELEASE, &[&id(latest.uuid)]).map_err(err)?;
                if !readers::exists(tx, sql::CONFIG_IN_USE, [id(latest.config)])? {
                    execute(tx, sql::DELETE_CONFIG, &[&id(latest.config)]).map_err(err)?;
                }
                if let Some(build) = latest.build {
                    if !readers::exists(tx, sql::BUILD_IN_USE, [id(build)])? {
                        execute(tx, sql::DELETE_BUILD, &[&id(build)]).map_err(err)?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn get_release(&self, app: &str, version: u64) -> Result<Release> {
        let app = app.to_owned();
        self.read_point(move |c| {
            let found = readers::one(
                c,
                sql::GET_RELEASE,
                params![app, int(version)],
                read_rows::release,
            )?;
            match found {
                Some(release) => Ok(release),
                None => {
                    require_app(c, &app)?;
                    Err(Error::not_found(Kind::Release, format!("{app} v{version}")))
                }
            }
        })
        .await
    }

    async fn latest_release(&self, app: &str) -> Result<Release> {
        let app = app.to_owned();
        self.read_point(move |c| {
            match readers::one(c, sql::LATEST_RELEASE, [&app], read_rows::release)? {
                Some(release) => Ok(release),
                None => {
                    require_app(c, &app)?;
                    Err(Error::not_found(Kind::Release, format!("{app} latest")))
                }
            }
        })
        .await
    }

    async fn list_releases(&self, app: &str, page: PageRequest) -> Result<Page<Release>> {
        self.read_page(
            app,
            page,
            sql::LIST_RELEASES,
            sql::COUNT_RELEASES,
            read_rows::release,
        )
        .await
    }

    async fn add_domain(&self, domain: Domain) -> Result<Domain> {
        let domain = Domain {
            created: stored(domain.created),
            updated: stored(domain.updated),
            ..domain
        };
        self.writer
            .run(move |tx| {
                execute(
                    tx,
                    sql::INSERT_DOMAIN,
                    &[
                        &id(domain.uuid),
                        &domain.app,
                        &domain.owner,
                        &domain.domain,
                        &domain.created.as_micros(),
                        &domain.updated.as_micros(),
                    ],
                )
                .map_err(|e| match violation(&e) {
                    Some(Violation::ForeignKey) => Error::not_found(Kind::App, &domain.app),
                    Some(Violation::Unique(_)) => {
                        Error::already_exists(Kind::Domain, &domain.domain)
                    }
                    None => err(e),
                })?;
                Ok(domain)
            })
            .await
    }

    async fn get_domain(&self, domain: &str) -> Result<Domain> {
        let domain = domain.to_owned();
        self.read_point(move |c| {
            readers::one(c, sql::GET_DOMAIN, [&domain], read_rows::domain)?
                .ok_or_else(|| Error::not_found(Kind::Domain, &domain))
        })
        .await
    }

    async fn list_domains(&self, app: &str, page: PageRequest) -> Result<Page<Domain>> {
        self.read_page(
            app,
            page,
            sql::LIST_DOMAINS,
            sql::COUNT_DOMAINS,
            read_rows::domain,
        )
        .await
    }

    async fn delete_domain(&self, app: &str, domain: &str) -> Result<()> {
        let (app, domain) = (app.to_owned(), domain.to_owned());
        self.writer
            .run(move |tx| {
                let rows = execute(tx, sql::DELETE_DOMAIN, &[&app, &domain]).map_err(err)?;
                if rows == 0 {
                    require_app(tx, &app)?;
                    return Err(Error::not_found(Kind::Domain, &domain));
                }
                Ok(())
            })
            .await
    }

    async fn add_certificate(&self, certificate: Certificate) -> Result<Certificate> {
        let certificate = Certificate {
            expires: stored(certificate.expires),
            created: stored(certificate.created),
            updated: stored(certificate.updated),
            ..certificate
        };
        self.writer
            .run(move |tx| {
                let c = &certificate;
                execute(
                    tx,
                    sql::INSERT_CERTIFICATE,
                    &[
                        &id(c.uuid),
                        &c.owner,
                        &c.common_name,
                        &c.expires.as_micros(),
                        &c.certificate,
                        &c.key,
                        &c.created.as_micros(),
                        &c.updated.as_micros(),
                    ],
                )
                .map_err(|e| match violation(&e) {
                    Some(Violation::ForeignKey) => Error::not_found(Kind::User, &c.owner),
                    Some(Violation::Unique(_)) => {
                        Error::already_exists(Kind::Certificate, &c.common_name)
                    }
                    None => err(e),
                })?;
                Ok(certificate)
            })
            .await
    }

    async fn get_certificate(&self, common_name: &str) -> Result<Certificate> {
        let common_name = common_name.to_owned();
        self.read_point(move |c| {
            readers::one(
                c,
                sql::GET_CERTIFICATE,
                [&common_name],
                read_rows::certificate,
            )?
            .ok_or_else(|| Error::not_found(Kind::Certificate, &common_name))
        })
        .await
    }

    async fn list_certificates(
        &self,
        owner: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Certificate>> {
        let (limit, offset) = limit_offset(page);
        let owner = owner.map(str::to_owned);
        self.read(move |c| {
            snapshot(c, |c| {
                let (total, items) = match &owner {
                    None => readers::page(
                        c,
                        sql::LIST_CERTIFICATES,
                        [limit, offset],
                        read_rows::certificate,
                    )?,
                    Some(owner) => readers::page(
                        c,
                        sql::LIST_CERTIFICATES_OF,
                        params![owner, limit, offset],
                        read_rows::certificate,
                    )?,
                };
                let total = match (total, &owner) {
                    (Some(total), _) => total,
                    (None, None) => readers::count(c, sql::COUNT_CERTIFICATES, [])?,
                    (None, Some(owner)) => readers::count(c, sql::COUNT_CERTIFICATES_OF, [owner])?,
                };
                Ok(Page { total, items })
            })
        })
        .await
    }

    async fn delete_certificate(&self, common_name: &str) -> Result<()> {
        let common_name = common_name.to_owned();
        self.writer
            .run(move |tx| {
                let rows = execute(tx, sql::DELETE_CERTIFICATE, &[&common_name]).map_err(err)?;
                changed(rows, Kind::Certificate, &common_name)
            })
            .await
    }

    async fn record_push(&self, push: Push) -> Result<Push> {
        let push = Push {
            created: stored(push.created),
            updated: stored(push.updated),
            ..push
        };
        self.writer
            .run(move |tx| {
                let p = &push;
                execute(
                    tx,
                    sql::INSERT_PUSH,
                    &[
                        &id(p.uuid),
                        &p.app,
                        &p.owner,
                        &p.sha,
                        &p.fingerprint,
                        &p.receive_user,
                        &p.receive_repo,
                        &p.ssh_connection,
                        &p.ssh_original_command,
                        &p.created.as_micros(),
                        &p.updated.as_micros(),
                    ],
                )
                .map_err(|e| match violation(&e) {
                    Some(Violation::ForeignKey) => Error::not_found(Kind::App, &p.app),
                    _ => err(e),
                })?;
                Ok(push)
            })
            .await
    }

    async fn list_pushes(&self, app: &str, page: PageRequest) -> Result<Page<Push>> {
        self.read_page(
            app,
            page,
            sql::LIST_PUSHES,
            sql::COUNT_PUSHES,
            read_rows::push,
        )
        .await
    }
}
