//! Choosing a backend by URL: [`open_store`].

use deis_core::memory::MemoryStore;
use deis_core::{Error, Store, ValidationError};
use std::sync::Arc;

/// Opens the store a URL names:
///
/// - `sqlite:///abs/path/deis.db`: a `SqliteStore` (feature `sqlite`, on by
///   default); the file and its directories are created if missing. Optional query
///   parameters: `synchronous=normal|full` (see `Synchronous`),
///   `max_readers=N` (read connections).
/// - `postgres://user:password@host:port/db` (or `postgresql://`): a
///   `PostgresStore` (feature `postgres`); the query parameters are PostgreSQL's
///   (`sslmode`, …).
/// - `memory://`: a [`MemoryStore`], lost when dropped.
///
/// Schema migrations run on open. A URL whose backend is not compiled in fails with
/// `Error::Invalid` naming the cargo feature to enable; a malformed URL or an unknown
/// scheme fails with `Error::Invalid` saying what is accepted. Passwords never appear in
/// the messages.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, Error> {
    let url = url.trim();
    let Some((scheme, _)) = url.split_once(':') else {
        return Err(invalid(
            "malformed",
            format!("`{}` is not a store URL; expected {EXPECTED}", redact(url)),
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "memory" => {
            if !matches!(url, "memory://" | "memory:" | "memory:///") {
                return Err(invalid(
                    "malformed",
                    format!("`{url}`: a memory store URL is just `memory://`"),
                ));
            }
            Ok(Arc::new(MemoryStore::new()))
        }
        "sqlite" => open_sqlite(url).await,
        "postgres" | "postgresql" => open_postgres(url).await,
        other => Err(invalid(
            "unknown_scheme",
            format!(
                "unknown store URL scheme `{other}` in `{}`; expected {EXPECTED}",
                redact(url)
            ),
        )),
    }
}

const EXPECTED: &str = "`sqlite:///absolute/path/deis.db`, `postgres://user@host/database` \
                        or `memory://`";

fn invalid(rule: &'static str, message: String) -> Error {
    Error::Invalid(ValidationError::new("store_url", rule, message))
}

/// The URL with any password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    match ::url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparseable: drop everything between "://" and "@", which is where a password
        // would be.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}***{}", &url[..start + 3], &url[at..])
            }
            _ => url.to_owned(),
        },
    }
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str) -> Result<Arc<dyn Store>, Error> {
    use crate::sqlite::{SqliteOptions, SqliteStore, Synchronous};

    let options = sqlite_target(url)?;
    let (path, mut sqlite) = (options.0, SqliteOptions::default());
    for (key, value) in options.1 {
        match (key.as_str(), value.as_str()) {
            ("synchronous", "full" | "FULL") => sqlite.synchronous = Synchronous::Full,
            ("synchronous", "normal" | "NORMAL") => sqlite.synchronous = Synchronous::Normal,
            ("max_readers", n) if n.parse::<u32>().is_ok_and(|n| n > 0) => {
                sqlite.max_readers = n.parse().unwrap_or(4);
            }
            _ => {
                return Err(invalid(
                    "malformed",
                    format!(
                        "`{url}`: unknown or invalid parameter `{key}={value}`; accepted are \
                         `synchronous=full|normal` and `max_readers=N` \
                         (N > 0)"
                    ),
                ))
            }
        }
    }
    Ok(Arc::new(SqliteStore::open_with(path, sqlite).await?))
}

/// The file path and query parameters of a `sqlite:` URL.
#[cfg(feature = "sqlite")]
fn sqlite_target(url: &str) -> Result<(std::path::PathBuf, Vec<(String, String)>), Error> {
    let malformed = || {
        invalid(
            "malformed",
            format!(
                "`{url}` is not a SQLite store URL; expected `sqlite:///absolute/path/deis.db` \
                 (three slashes, then an absolute path)"
            ),
        )
    };
    let parsed = ::url::Url::parse(url).map_err(|_| malformed())?;
    if parsed.host_str().is_some_and(|h| !h.is_empty()) || !url.starts_with("sqlite:///") {
        return Err(malformed());
    }
    let path = parsed.path();
    if path.len() < 2 || path.ends_with('/') {
        return Err(malformed());
    }
    let decoded = percent_decode(path).ok_or_else(malformed)?;
    let params = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok((std::path::PathBuf::from(decoded), params))
}

/// Decodes `%XX` escapes of a URL path.
#[cfg(feature = "sqlite")]
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(url: &str) -> Result<Arc<dyn Store>, Error> {
    Err(invalid(
        "feature_disabled",
        format!(
            "`{url}` needs the SQLite backend, which this build does not include: enable the \
             cargo feature `sqlite` of deis-store"
        ),
    ))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Arc<dyn Store>, Error> {
    if ::url::Url::parse(url).is_err() {
        return Err(invalid(
            "malformed",
            format!(
                "`{}` is not a PostgreSQL URL; expected `postgres://user:password@host:port/database`",
                redact(url)
            ),
        ));
    }
    Ok(Arc::new(
        crate::postgres::PostgresStore::connect(url).await?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &str) -> Result<Arc<dyn Store>, Error> {
    Err(invalid(
        "feature_disabled",
        format!(
            "`{}` needs the PostgreSQL backend, which this build does not include: enable the \
             cargo feature `postgres` of deis-store",
            redact(url)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://deis:s3cret@db.example:5432/deis"),
            "postgres://deis:***@db.example:5432/deis"
        );
        assert_eq!(redact("postgres://db/deis"), "postgres://db/deis");
        assert_eq!(redact("postgres://u:p w@h/d d"), "postgres://u:***@h/d%20d");
        assert!(!redact("postgres://u:sec ret@[bad/d").contains("sec"));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_urls_need_an_absolute_path() {
        let (path, params) = sqlite_target("sqlite:///var/lib/deis/deis.db").unwrap();
        assert_eq!(path, std::path::Path::new("/var/lib/deis/deis.db"));
        assert!(params.is_empty());
        let (path, params) =
            sqlite_target("sqlite:///tmp/my%20dir/d.db?synchronous=normal").unwrap();
        assert_eq!(path, std::path::Path::new("/tmp/my dir/d.db"));
        assert_eq!(params, [("synchronous".to_owned(), "normal".to_owned())]);
        for bad in [
            "sqlite://relative/deis.db",
            "sqlite:relative.db",
            "sqlite:///",
            "sqlite:///tmp/dir/",
            "sqlite://host/tmp/deis.db",
        ] {
            let error = sqlite_target(bad).unwrap_err();
            assert!(
                error.to_string().contains("sqlite:///absolute/path"),
                "{bad}: {error}"
            );
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn percent_decoding_rejects_broken_escapes() {
        assert_eq!(percent_decode("/a%2Fb").as_deref(), Some("/a/b"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/a%zz"), None);
    }
}
