//! Reading the sqlx rows of the write path (`RETURNING`, reads inside a write transaction)
//! into model records; the read path has its own in [`super::read_rows`]. UUIDs are
//! hyphenated TEXT, timestamps INTEGER microseconds, maps JSON TEXT.

use super::BACKEND;
use crate::codec::{from_json, uint};
use crate::error::{corrupt, db_error};
use deis_core::model::{App, Release, User};
use deis_core::{Result, Timestamp};
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};
use uuid::Uuid;

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column).map_err(|e| db_error(BACKEND, e))
}

fn text(row: &SqliteRow, column: &str) -> Result<String> {
    get(row, column)
}

fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid> {
    let text: &str = get(row, column)?;
    Uuid::parse_str(text).map_err(|_| corrupt(BACKEND, format!("{column} is not a UUID")))
}

fn time(row: &SqliteRow, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_micros(get(row, column)?))
}

fn json<T: serde::de::DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<T> {
    let text: &str = get(row, column)?;
    from_json(BACKEND, column, text)
}

pub(super) fn user(row: &SqliteRow) -> Result<User> {
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

pub(super) fn app(row: &SqliteRow) -> Result<App> {
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

pub(super) fn release(row: &SqliteRow) -> Result<Release> {
    let build: Option<&str> = get(row, "build")?;
    let build = build
        .map(|text| Uuid::parse_str(text).map_err(|_| corrupt(BACKEND, "build is not a UUID")))
        .transpose()?;
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
