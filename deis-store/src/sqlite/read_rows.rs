//! Reading rusqlite rows (the read path) into model records: the same columns and encodings
//! as [`super::rows`] (UUIDs as hyphenated TEXT, timestamps INTEGER microseconds, maps JSON
//! TEXT).

use super::readers::read_error;
use super::BACKEND;
use crate::codec::{from_json, uint};
use crate::error::corrupt;
use deis_core::model::{App, Build, Certificate, Config, Domain, Key, Push, Release, User};
use deis_core::{Result, Timestamp};
use rusqlite::types::FromSql;
use rusqlite::Row;
use uuid::Uuid;

fn get<T: FromSql>(row: &Row<'_>, column: &str) -> Result<T> {
    row.get(column).map_err(read_error)
}

fn text(row: &Row<'_>, column: &str) -> Result<String> {
    get(row, column)
}

/// A TEXT column without copying it.
fn with_str<T>(row: &Row<'_>, column: &str, read: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    let value = row.get_ref(column).map_err(read_error)?;
    let text = value
        .as_str()
        .map_err(|_| corrupt(BACKEND, format!("{column} is not text")))?;
    read(text)
}

fn parse_uuid(column: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| corrupt(BACKEND, format!("{column} is not a UUID")))
}

fn uuid(row: &Row<'_>, column: &str) -> Result<Uuid> {
    with_str(row, column, |text| parse_uuid(column, text))
}

fn time(row: &Row<'_>, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_micros(get(row, column)?))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, column: &str) -> Result<T> {
    with_str(row, column, |text| from_json(BACKEND, column, text))
}

/// The `total` column of a list statement.
pub(super) fn total(row: &Row<'_>) -> Result<u64> {
    Ok(uint(get(row, "total")?))
}

pub(super) fn user(row: &Row<'_>) -> Result<User> {
    let superuser: bool = get(row, "is_superuser")?;
    let last_login: Option<i64> = get(row, "last_login")?;
    Ok(User {
        id: uint(get(row, "id")?),
        username: text(row, "username")?,
        email: text(row, "email")?,
        first_name: text(row, "first_name")?,
        last_name: text(row, "last_name")?,
        is_superuser: superuser,
        is_staff: superuser,
        is_active: get(row, "is_active")?,
        last_login: last_login.map(Timestamp::from_micros),
        date_joined: time(row, "date_joined")?,
        password_hash: text(row, "password_hash")?,
    })
}

pub(super) fn key(row: &Row<'_>) -> Result<Key> {
    Ok(Key {
        uuid: uuid(row, "uuid")?,
        id: text(row, "name")?,
        owner: text(row, "owner")?,
        public: text(row, "public_key")?,
        fingerprint: text(row, "fingerprint")?,
        created: time(row, "created")?,
        updated: time(row, "updated")?,
    })
}

pub(super) fn app(row: &Row<'_>) -> Result<App> {
    Ok(App {
        uuid: uuid(row, "uuid")?,
        id: text(row, "id")?,
        owner: text(row, "owner")?,
        url: String::new(),
        structure: json(row, "structure")?,
        created: time(row, "created")?,
        updated: time(row, "updated")?,
    })
}

pub(super) fn build(row: &Row<'_>) -> Result<Build> {
    Ok(Build {
        uuid: uuid(row, "uuid")?,
        app: text(row, "app")?,
        owner: text(row, "owner")?,
        image: text(row, "image")?,
        sha: text(row, "sha")?,
        procfile: json(row, "procfile")?,
        dockerfile: text(row, "dockerfile")?,
        created: time(row, "created")?,
        updated: time(row, "updated")?,
    })
}

pub(super) fn config(row: &Row<'_>) -> Result<Config> {
    Ok(Config {
        uuid: uuid(row, "uuid")?,
        app: text(row, "app")?,
        owner: text(row, "owner")?,
        revision: uint(get(row, "revision")?),
        values: json(row, "env")?,
        memory: json(row, "memory")?,
        cpu: json(row, "cpu")?,
        tags: json(row, "tags")?,
        created: time(row, "created")?,
        updated: time(row, "updated")?,
    })
}

pub(super) fn release(row: &Row<'_>) -> Result<Release> {
    let build: Option<String> = get(row, "build")?;
    let build = build.map(|text| parse_uuid("build", &text)).transpose()?;
    Ok(Release {
        uuid: uuid(row, "uuid")?,
        app: text(row, "app")?,
        owner: text(row, "owner")?,
        version: uint(get(row, "version")?),
        summary: text(row, "summary")?,
        config: uuid(row, "config")?,
        build,
        created: time(row, "created")?,
        updated: time(row, "updated")?,
    })
}

pub(super) fn domain(row: &Row<'_>) -> Result<Domain> {
    Ok(Domain {
        uuid: uuid(row, "uuid")?,
        app: text(row, "app")?,
        owner: text(row, "owner")?,
        domain: text(row, "domain")?,
        created: time(row, "created")?,
        updated: time(row, "updated")?,
    })
}

pub(super) fn certificate(row: &Row<'_>) -> Result<Certificate> {
    Ok(Certificate {
        uuid: uuid(row, "uuid")?,
        owner: text(row, "owner")?,
        common_name: text(row, "common_name")?,
        expires: time(row, "expires")?,
        certificate: text(row, "certificate")?,
        key: text(row, "private_key")?,
        created: time(row, "created")?,
        updated: time(row, "updated")?,
    })
}

pub(super) fn push(row: &Row<'_>) -> Result<Push> {
    Ok(Push {
        uuid: uuid(row, "uuid")?,
        app: text(row, "app")?,
        owner: text(row, "owner")?,
        sha: text(row, "sha")?,
        fingerprint: text(row, "fingerprint")?,
        receive_user: text(row, "receive_user")?,
        receive_repo: text(row, "receive_repo")?,
        ssh_connection: text(row, "ssh_connection")?,
        ssh_original_command: text(row, "ssh_original_command")?,
        created: time(row, "created")?,
        updated: time(row, "updated")?,
    })
}
