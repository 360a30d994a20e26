//! `impl Store for SqliteStore`.

use super::readers::{self, read_error, snapshot};
use super::{read_rows, rows, SqliteStore, BACKEND};
use crate::codec::{
    int, limit_offset, not_discardable, stale_config, still_owns_apps, stored, to_json, uint,
};
use crate::error::{db_error, violation, with_retries, AppendFailure, Violation};
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
use sqlx::SqliteConnection;
use uuid::Uuid;

fn err(error: sqlx::Error) -> Error {
    db_error(BACKEND, error)
}

fn conflict(error: sqlx::Error) -> AppendFailure {
    AppendFailure::from_sqlx(BACKEND, error)
}

/// UUIDs are stored as hyphenated text.
fn id(uuid: Uuid) -> String {
    uuid.hyphenated().to_string()
}

impl SqliteStore {
    async fn app_exists(&self, app: &str) -> Result<bool> {
        let row = sqlx::query(sql::APP_EXISTS)
            .bind(app)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        Ok(row.is_some())
    }

    /// `NotFound(App)` unless the app exists.
    async fn require_app(&self, app: &str) -> Result<()> {
        if self.app_exists(app).await? {
            Ok(())
        } else {
            Err(Error::not_found(Kind::App, app))
        }
    }

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

    /// One attempt at appending a release, in one write transaction.
    async fn try_append(&self, request: &NewRelease) -> Result<Release, AppendFailure> {
        let app = request.app.as_str();
        let mut tx = self.write().await.map_err(AppendFailure::Fatal)?;
        let latest = sqlx::query(sql::LATEST_RELEASE)
            .bind(app)
            .fetch_optional(&mut *tx)
            .await
            .map_err(conflict)?;
        let Some(latest) = latest else {
            drop(tx);
            self.require_app(app).await?;
            return Err(Error::not_found(Kind::Release, format!("{app} latest")).into());
        };
        let latest = rows::release(&latest)?;

        let build = match &request.build {
            BuildChoice::Current => latest.build,
            BuildChoice::Existing(uuid) => {
                let known = sqlx::query(sql::BUILD_EXISTS)
                    .bind(app)
                    .bind(id(*uuid))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(conflict)?;
                if known.is_none() {
                    return Err(Error::not_found(Kind::Build, uuid.to_string()).into());
                }
                Some(*uuid)
            }
            BuildChoice::New(build) => Some(build.uuid),
        };
        let config = match &request.config {
            ConfigChoice::Current => latest.config,
            ConfigChoice::Existing(uuid) => {
                let known = sqlx::query(sql::CONFIG_EXISTS)
                    .bind(app)
                    .bind(id(*uuid))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(conflict)?;
                if known.is_none() {
                    return Err(Error::not_found(Kind::Config, uuid.to_string()).into());
                }
                *uuid
            }
            ConfigChoice::New {
                config,
                expected_revision,
            } => {
                let current: i64 = sqlx::query_scalar(sql::CONFIG_REVISION)
                    .bind(id(latest.config))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict)?;
                let current = uint(current);
                if current != *expected_revision {
                    return Err(Error::precondition(stale_config(
                        app,
                        current,
                        *expected_revision,
                    ))
                    .into());
                }
                let newest: i64 = sqlx::query_scalar(sql::MAX_CONFIG_REVISION)
                    .bind(app)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict)?;
                insert_config(&mut tx, app, config, newest + 1).await?;
                config.uuid
            }
        };
        if let BuildChoice::New(new) = &request.build {
            insert_build(&mut tx, app, new).await?;
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
        insert_release(&mut tx, &release).await.map_err(conflict)?;
        tx.commit().await.map_err(conflict)?;
        Ok(release)
    }
}

/// `NotFound(App)` unless the app exists (on a read connection).
fn require_app(connection: &Connection, app: &str) -> Result<()> {
    if readers::exists(connection, sql::APP_EXISTS, [app])? {
        Ok(())
    } else {
        Err(Error::not_found(Kind::App, app))
    }
}

async fn insert_config(
    tx: &mut SqliteConnection,
    app: &str,
    config: &Config,
    revision: i64,
) -> Result<(), AppendFailure> {
    sqlx::query(sql::INSERT_CONFIG)
        .bind(id(config.uuid))
        .bind(app)
        .bind(&config.owner)
        .bind(revision)
        .bind(to_json(&config.values))
        .bind(to_json(&config.memory))
        .bind(to_json(&config.cpu))
        .bind(to_json(&config.tags))
        .bind(config.created.as_micros())
        .bind(config.updated.as_micros())
        .execute(tx)
        .await
        .map_err(|e| match violation(&e) {
            // Another writer took the revision: try again.
            Some(Violation::Unique(what)) if what.contains("revision") => {
                AppendFailure::Conflict(e)
            }
            Some(Violation::Unique(_)) => {
                AppendFailure::Fatal(Error::already_exists(Kind::Config, config.uuid.to_string()))
            }
            _ => conflict(e),
        })?;
    Ok(())
}

async fn insert_build(
    tx: &mut SqliteConnection,
    app: &str,
    build: &Build,
) -> Result<(), AppendFailure> {
    sqlx::query(sql::INSERT_BUILD)
        .bind(id(build.uuid))
        .bind(app)
        .bind(&build.owner)
        .bind(&build.image)
        .bind(&build.sha)
        .bind(to_json(&build.procfile))
        .bind(&build.dockerfile)
        .bind(build.created.as_micros())
        .bind(build.updated.as_micros())
        .execute(tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique(_)) => {
                AppendFailure::Fatal(Error::already_exists(Kind::Build, build.uuid.to_string()))
            }
            _ => conflict(e),
        })?;
    Ok(())
}

async fn insert_release(tx: &mut SqliteConnection, release: &Release) -> sqlx::Result<()> {
    sqlx::query(sql::INSERT_RELEASE)
        .bind(id(release.uuid))
        .bind(&release.app)
        .bind(int(release.version))
        .bind(&release.owner)
        .bind(&release.summary)
        .bind(id(release.config))
        .bind(release.build.map(id))
        .bind(release.created.as_micros())
        .bind(release.updated.as_micros())
        .execute(tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create_user(&self, new: NewUser) -> Result<User> {
        // The write lock makes "no user exists yet" exact: racing registrations take turns.
        let mut tx = self.write().await?;
        let row = sqlx::query(sql::INSERT_USER)
            .bind(&new.username)
            .bind(&new.email)
            .bind(&new.first_name)
            .bind(&new.last_name)
            .bind(&new.password_hash)
            .bind(new.superuser)
            .bind(Timestamp::now().as_micros())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::Unique(_)) => Error::already_exists(Kind::User, &new.username),
                _ => err(e),
            })?;
        let user = rows::user(&row)?;
        tx.commit().await.map_err(err)?;
        Ok(user)
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
        let done = sqlx::query(sql::SET_PASSWORD_HASH)
            .bind(username)
            .bind(password_hash)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Kind::User, username));
        }
        Ok(())
    }

    async fn set_superuser(&self, username: &str, superuser: bool) -> Result<()> {
        let done = sqlx::query(sql::SET_SUPERUSER)
            .bind(username)
            .bind(superuser)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Kind::User, username));
        }
        Ok(())
    }

    async fn touch_last_login(&self, username: &str) -> Result<()> {
        let done = sqlx::query(sql::TOUCH_LAST_LOGIN)
            .bind(username)
            .bind(Timestamp::now().as_micros())
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Kind::User, username));
        }
        Ok(())
    }

    async fn delete_user(&self, username: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let exists = sqlx::query(sql::USER_EXISTS)
            .bind(username)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        if exists.is_none() {
            return Err(Error::not_found(Kind::User, username));
        }
        let owned: i64 = sqlx::query_scalar(sql::COUNT_OWNED_APPS)
            .bind(username)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        if owned > 0 {
            return Err(Error::precondition(still_owns_apps(username, uint(owned))));
        }
        sqlx::query(sql::DELETE_USER)
            .bind(username)
            .execute(&mut *tx)
            .await
            .map_err(|e| match violation(&e) {
                // An app was given to them meanwhile.
                Some(Violation::ForeignKey) => Error::precondition(still_owns_apps(username, 1)),
                _ => err(e),
            })?;
        tx.commit().await.map_err(err)
    }

    async fn set_token(&self, username: &str, token: &TokenHash) -> Result<()> {
        sqlx::query(sql::SET_TOKEN)
            .bind(username)
            .bind(&token.0)
            .bind(Timestamp::now().as_micros())
            .execute(&self.pool)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => Error::not_found(Kind::User, username),
                // Never put the hash in an error.
                Some(Violation::Unique(_)) => Error::already_exists(Kind::Token, "(hidden)"),
                None => err(e),
            })?;
        Ok(())
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
        sqlx::query(sql::INSERT_KEY)
            .bind(id(key.uuid))
            .bind(&key.owner)
            .bind(&key.id)
            .bind(&key.public)
            .bind(&key.fingerprint)
            .bind(key.created.as_micros())
            .bind(key.updated.as_micros())
            .execute(&self.pool)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => Error::not_found(Kind::User, &key.owner),
                Some(Violation::Unique(what)) if what.contains("public_key") => {
                    Error::already_exists(Kind::Key, &key.fingerprint)
                }
                Some(Violation::Unique(_)) => Error::already_exists(Kind::Key, &key.id),
                None => err(e),
            })?;
        Ok(Key {
            created: stored(key.created),
            updated: stored(key.updated),
            ..key
        })
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
        let done = sqlx::query(sql::DELETE_KEY)
            .bind(owner)
            .bind(key_id)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Kind::Key, key_id));
        }
        Ok(())
    }

    async fn create_app(&self, app: App) -> Result<App> {
        let app = App {
            url: String::new(),
            created: stored(app.created),
            updated: stored(app.updated),
            ..app
        };
        let mut tx = self.write().await?;
        sqlx::query(sql::INSERT_APP)
            .bind(&app.id)
            .bind(id(app.uuid))
            .bind(&app.owner)
            .bind(to_json(&app.structure))
            .bind(app.created.as_micros())
            .bind(app.updated.as_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => Error::not_found(Kind::User, &app.owner),
                Some(Violation::Unique(_)) => Error::already_exists(Kind::App, &app.id),
                None => err(e),
            })?;
        let config = Config::initial(&app.id, &app.owner);
        insert_config(&mut tx, &app.id, &config, 1)
            .await
            .map_err(|failure| failure.into_error(BACKEND))?;
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
        insert_release(&mut tx, &release).await.map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(app)
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
        let row = sqlx::query(sql::SET_OWNER)
            .bind(app)
            .bind(owner)
            .bind(Timestamp::now().as_micros())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => Error::not_found(Kind::User, owner),
                _ => err(e),
            })?
            .ok_or_else(|| Error::not_found(Kind::App, app))?;
        rows::app(&row)
    }

    async fn set_formation(&self, app: &str, formation: &Formation) -> Result<App> {
        let row = sqlx::query(sql::SET_FORMATION)
            .bind(app)
            .bind(to_json(formation))
            .bind(Timestamp::now().as_micros())
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::not_found(Kind::App, app))?;
        rows::app(&row)
    }

    async fn delete_app(&self, app: &str) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(sql::DELETE_APP_RELEASES)
            .bind(app)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let done = sqlx::query(sql::DELETE_APP)
            .bind(app)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Kind::App, app));
        }
        tx.commit().await.map_err(err)
    }

    async fn grant(&self, app: &str, username: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let exists = sqlx::query(sql::APP_EXISTS)
            .bind(app)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        if exists.is_none() {
            return Err(Error::not_found(Kind::App, app));
        }
        let exists = sqlx::query(sql::USER_EXISTS)
            .bind(username)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        if exists.is_none() {
            return Err(Error::not_found(Kind::User, username));
        }
        sqlx::query(sql::INSERT_GRANT)
            .bind(app)
            .bind(username)
            .execute(&mut *tx)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::Unique(_)) => {
                    Error::already_exists(Kind::Permission, format!("{username} on {app}"))
                }
                Some(Violation::ForeignKey) => Error::not_found(Kind::App, app),
                None => err(e),
            })?;
        tx.commit().await.map_err(err)
    }

    async fn revoke(&self, app: &str, username: &str) -> Result<()> {
        let done = sqlx::query(sql::DELETE_GRANT)
            .bind(app)
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            self.require_app(app).await?;
            return Err(Error::not_found(
                Kind::Permission,
                format!("{username} on {app}"),
            ));
        }
        Ok(())
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
        with_retries(BACKEND, &request.app, || self.try_append(&request)).await
    }

    async fn discard_release(&self, app: &str, version: u64) -> Result<()> {
        let mut tx = self.write().await?;
        let latest = sqlx::query(sql::LATEST_RELEASE)
            .bind(app)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        let Some(latest) = latest else {
            drop(tx);
            self.require_app(app).await?;
            return Err(Error::not_found(Kind::Release, format!("{app} latest")));
        };
        let latest = rows::release(&latest)?;
        if latest.version != version || version <= 1 {
            return Err(Error::precondition(not_discardable(app, latest.version)));
        }
        sqlx::query(sql::DELETE_RELEASE)
            .bind(id(latest.uuid))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let config_used = sqlx::query(sql::CONFIG_IN_USE)
            .bind(id(latest.config))
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        if config_used.is_none() {
            sqlx::query(sql::DELETE_CONFIG)
                .bind(id(latest.config))
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        if let Some(build) = latest.build {
            let build_used = sqlx::query(sql::BUILD_IN_USE)
                .bind(id(build))
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?;
            if build_used.is_none() {
                sqlx::query(sql::DELETE_BUILD)
                    .bind(id(build))
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
        }
        tx.commit().await.map_err(err)
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
        sqlx::query(sql::INSERT_DOMAIN)
            .bind(id(domain.uuid))
            .bind(&domain.app)
            .bind(&domain.owner)
            .bind(&domain.domain)
            .bind(domain.created.as_micros())
            .bind(domain.updated.as_micros())
            .execute(&self.pool)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => Error::not_found(Kind::App, &domain.app),
                Some(Violation::Unique(_)) => Error::already_exists(Kind::Domain, &domain.domain),
                None => err(e),
            })?;
        Ok(Domain {
            created: stored(domain.created),
            updated: stored(domain.updated),
            ..domain
        })
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
        let done = sqlx::query(sql::DELETE_DOMAIN)
            .bind(app)
            .bind(domain)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            self.require_app(app).await?;
            return Err(Error::not_found(Kind::Domain, domain));
        }
        Ok(())
    }

    async fn add_certificate(&self, certificate: Certificate) -> Result<Certificate> {
        sqlx::query(sql::INSERT_CERTIFICATE)
            .bind(id(certificate.uuid))
            .bind(&certificate.owner)
            .bind(&certificate.common_name)
            .bind(certificate.expires.as_micros())
            .bind(&certificate.certificate)
            .bind(&certificate.key)
            .bind(certificate.created.as_micros())
            .bind(certificate.updated.as_micros())
            .execute(&self.pool)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => Error::not_found(Kind::User, &certificate.owner),
                Some(Violation::Unique(_)) => {
                    Error::already_exists(Kind::Certificate, &certificate.common_name)
                }
                None => err(e),
            })?;
        Ok(Certificate {
            expires: stored(certificate.expires),
            created: stored(certificate.created),
            updated: stored(certificate.updated),
            ..certificate
        })
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
        let done = sqlx::query(sql::DELETE_CERTIFICATE)
            .bind(common_name)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Kind::Certificate, common_name));
        }
        Ok(())
    }

    async fn record_push(&self, push: Push) -> Result<Push> {
        sqlx::query(sql::INSERT_PUSH)
            .bind(id(push.uuid))
            .bind(&push.app)
            .bind(&push.owner)
            .bind(&push.sha)
            .bind(&push.fingerprint)
            .bind(&push.receive_user)
            .bind(&push.receive_repo)
            .bind(&push.ssh_connection)
            .bind(&push.ssh_original_command)
            .bind(push.created.as_micros())
            .bind(push.updated.as_micros())
            .execute(&self.pool)
            .await
            .map_err(|e| match violation(&e) {
                Some(Violation::ForeignKey) => Error::not_found(Kind::App, &push.app),
                _ => err(e),
            })?;
        Ok(Push {
            created: stored(push.created),
            updated: stored(push.updated),
            ..push
        })
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
