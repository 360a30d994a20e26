//! `impl Store for SqliteStore`.

use super::{rows, SqliteStore, BACKEND};
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
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqliteConnection};
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

/// The rows of one page and the total across pages (`None` when the page is empty and
/// the total must be counted separately).
fn page_of<T>(
    rows: &[SqliteRow],
    decode: fn(&SqliteRow) -> Result<T>,
) -> Result<(Option<u64>, Vec<T>)> {
    let total = rows.first().map(rows::total).transpose()?;
    let items = rows.iter().map(decode).collect::<Result<Vec<T>>>()?;
    Ok((total, items))
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

    /// Counts with `sql` bound to `arg` (if any).
    async fn count(&self, sql: &'static str, arg: Option<&str>) -> Result<u64> {
        let mut query = sqlx::query_scalar::<Sqlite, i64>(sql);
        if let Some(arg) = arg {
            query = query.bind(arg);
        }
        Ok(uint(query.fetch_one(&self.pool).await.map_err(err)?))
    }

    /// The total of an app-scoped list whose page came back empty; `NotFound(App)` if the
    /// app does not exist.
    async fn app_total(
        &self,
        total: Option<u64>,
        count_sql: &'static str,
        app: &str,
    ) -> Result<u64> {
        if let Some(total) = total {
            return Ok(total);
        }
        let total = self.count(count_sql, Some(app)).await?;
        if total == 0 {
            self.require_app(app).await?;
        }
        Ok(total)
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
        let row = sqlx::query(sql::GET_USER)
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::not_found(Kind::User, username))?;
        rows::user(&row)
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let (limit, offset) = limit_offset(page);
        let rows = sqlx::query(sql::LIST_USERS)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        let (total, items) = page_of(&rows, rows::user)?;
        let total = match total {
            Some(total) => total,
            None => self.count(sql::COUNT_USERS, None).await?,
        };
        Ok(Page { total, items })
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
        let row = sqlx::query(sql::USER_BY_TOKEN)
            .bind(&token.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::not_found(Kind::Token, "(hidden)"))?;
        rows::user(&row)
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
        let row = sqlx::query(sql::GET_KEY)
            .bind(owner)
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::not_found(Kind::Key, key_id))?;
        rows::key(&row)
    }

    async fn list_keys(&self, owner: &str, page: PageRequest) -> Result<Page<Key>> {
        let (limit, offset) = limit_offset(page);
        let rows = sqlx::query(sql::LIST_KEYS)
            .bind(owner)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        let (total, items) = page_of(&rows, rows::key)?;
        let total = match total {
            Some(total) => total,
            None => self.count(sql::COUNT_KEYS, Some(owner)).await?,
        };
        Ok(Page { total, items })
    }

    async fn key_by_fingerprint(&self, fingerprint: &str) -> Result<Key> {
        let row = sqlx::query(sql::KEY_BY_FINGERPRINT)
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::not_found(Kind::Key, fingerprint))?;
        rows::key(&row)
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
        let row = sqlx::query(sql::GET_APP)
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::not_found(Kind::App, app_id))?;
        rows::app(&row)
    }

    async fn list_apps(&self, filter: AppFilter, page: PageRequest) -> Result<Page<App>> {
        let (limit, offset) = limit_offset(page);
        let (rows, count_sql, user) = match &filter {
            AppFilter::All => (
                sqlx::query(sql::LIST_APPS)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await,
                sql::COUNT_APPS,
                None,
            ),
            AppFilter::VisibleTo(user) => (
                sqlx::query(sql::LIST_APPS_VISIBLE_TO)
                    .bind(user)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await,
                sql::COUNT_APPS_VISIBLE_TO,
                Some(user.as_str()),
            ),
        };
        let rows = rows.map_err(err)?;
        let (total, items) = page_of(&rows, rows::app)?;
        let total = match total {
            Some(total) => total,
            None => self.count(count_sql, user).await?,
        };
        Ok(Page { total, items })
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
        let users: Vec<String> = sqlx::query_scalar(sql::LIST_COLLABORATORS)
            .bind(app)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        if users.is_empty() {
            self.require_app(app).await?;
        }
        Ok(users)
    }

    async fn get_build(&self, app: &str, uuid: Uuid) -> Result<Build> {
        let row = sqlx::query(sql::GET_BUILD)
            .bind(app)
            .bind(id(uuid))
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        match row {
            Some(row) => rows::build(&row),
            None => {
                self.require_app(app).await?;
                Err(Error::not_found(Kind::Build, uuid.to_string()))
            }
        }
    }

    async fn list_builds(&self, app: &str, page: PageRequest) -> Result<Page<Build>> {
        let (limit, offset) = limit_offset(page);
        let rows = sqlx::query(sql::LIST_BUILDS)
            .bind(app)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        let (total, items) = page_of(&rows, rows::build)?;
        let total = self.app_total(total, sql::COUNT_BUILDS, app).await?;
        Ok(Page { total, items })
    }

    async fn current_config(&self, app: &str) -> Result<Config> {
        let row = sqlx::query(sql::CURRENT_CONFIG)
            .bind(app)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        match row {
            Some(row) => rows::config(&row),
            None => {
                self.require_app(app).await?;
                Err(Error::not_found(Kind::Release, format!("{app} latest")))
            }
        }
    }

    async fn get_config(&self, app: &str, uuid: Uuid) -> Result<Config> {
        let row = sqlx::query(sql::GET_CONFIG)
            .bind(app)
            .bind(id(uuid))
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        match row {
            Some(row) => rows::config(&row),
            None => {
                self.require_app(app).await?;
                Err(Error::not_found(Kind::Config, uuid.to_string()))
            }
        }
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
        let row = sqlx::query(sql::GET_RELEASE)
            .bind(app)
            .bind(int(version))
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        match row {
            Some(row) => rows::release(&row),
            None => {
                self.require_app(app).await?;
                Err(Error::not_found(Kind::Release, format!("{app} v{version}")))
            }
        }
    }

    async fn latest_release(&self, app: &str) -> Result<Release> {
        let row = sqlx::query(sql::LATEST_RELEASE)
            .bind(app)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        match row {
            Some(row) => rows::release(&row),
            None => {
                self.require_app(app).await?;
                Err(Error::not_found(Kind::Release, format!("{app} latest")))
            }
        }
    }

    async fn list_releases(&self, app: &str, page: PageRequest) -> Result<Page<Release>> {
        let (limit, offset) = limit_offset(page);
        let rows = sqlx::query(sql::LIST_RELEASES)
            .bind(app)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        let (total, items) = page_of(&rows, rows::release)?;
        let total = self.app_total(total, sql::COUNT_RELEASES, app).await?;
        Ok(Page { total, items })
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
        let row = sqlx::query(sql::GET_DOMAIN)
            .bind(domain)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::not_found(Kind::Domain, domain))?;
        rows::domain(&row)
    }

    async fn list_domains(&self, app: &str, page: PageRequest) -> Result<Page<Domain>> {
        let (limit, offset) = limit_offset(page);
        let rows = sqlx::query(sql::LIST_DOMAINS)
            .bind(app)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        let (total, items) = page_of(&rows, rows::domain)?;
        let total = self.app_total(total, sql::COUNT_DOMAINS, app).await?;
        Ok(Page { total, items })
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
        let row = sqlx::query(sql::GET_CERTIFICATE)
            .bind(common_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?
            .ok_or_else(|| Error::not_found(Kind::Certificate, common_name))?;
        rows::certificate(&row)
    }

    async fn list_certificates(
        &self,
        owner: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Certificate>> {
        let (limit, offset) = limit_offset(page);
        let (rows, count_sql) = match owner {
            None => (
                sqlx::query(sql::LIST_CERTIFICATES)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await,
                sql::COUNT_CERTIFICATES,
            ),
            Some(owner) => (
                sqlx::query(sql::LIST_CERTIFICATES_OF)
                    .bind(owner)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await,
                sql::COUNT_CERTIFICATES_OF,
            ),
        };
        let rows = rows.map_err(err)?;
        let (total, items) = page_of(&rows, rows::certificate)?;
        let total = match total {
            Some(total) => total,
            None => self.count(count_sql, owner).await?,
        };
        Ok(Page { total, items })
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
        let (limit, offset) = limit_offset(page);
        let rows = sqlx::query(sql::LIST_PUSHES)
            .bind(app)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        let (total, items) = page_of(&rows, rows::push)?;
        let total = self.app_total(total, sql::COUNT_PUSHES, app).await?;
        Ok(Page { total, items })
    }
}
