//! SQL text that both backends run unchanged: `$1`-style parameters (which SQLite
//! accepts), `RETURNING`, `ON CONFLICT … DO UPDATE`, scalar subqueries. Statements that
//! differ (row locks, table locks) live with their backend.
//!
//! Every value is bound, never formatted into the text, so no statement that a driver
//! logs can carry a secret.
//!
//! List statements return the page's rows plus a `total` column, the count over all pages
//! from an uncorrelated scalar subquery (evaluated once, from an index, in the same
//! snapshot), while the page itself follows an index with `LIMIT`. When a page is empty
//! the `COUNT_*` statement gives the total.

macro_rules! user_columns {
    () => {
        "id, username, email, first_name, last_name, password_hash, is_superuser, is_active, \
         last_login, date_joined"
    };
}
macro_rules! key_columns {
    () => {
        "uuid, owner, name, public_key, fingerprint, created, updated"
    };
}
macro_rules! app_columns {
    () => {
        "id, uuid, owner, structure, created, updated"
    };
}
macro_rules! build_columns {
    () => {
        "uuid, app, owner, image, sha, procfile, dockerfile, created, updated"
    };
}
macro_rules! config_columns {
    () => {
        "uuid, app, owner, revision, env, memory, cpu, tags, created, updated"
    };
}
macro_rules! release_columns {
    () => {
        "uuid, app, version, owner, summary, config, build, created, updated"
    };
}
macro_rules! domain_columns {
    () => {
        "uuid, app, owner, domain, created, updated"
    };
}
macro_rules! certificate_columns {
    () => {
        "uuid, owner, common_name, expires, certificate, private_key, created, updated"
    };
}
macro_rules! push_columns {
    () => {
        "uuid, app, owner, sha, fingerprint, receive_user, receive_repo, ssh_connection, \
         ssh_original_command, created, updated"
    };
}

// Users and tokens.

/// Creates a user; `$6` asks for a superuser, and the first user becomes one anyway. The
/// caller serializes registrations so the `NOT EXISTS` is exact.
pub(crate) const INSERT_USER: &str = concat!(
    "INSERT INTO users (username, email, first_name, last_name, password_hash, is_superuser, \
     is_active, date_joined) \
     VALUES ($1, $2, $3, $4, $5, ($6 OR NOT EXISTS (SELECT 1 FROM users)), TRUE, $7) \
     RETURNING ",
    user_columns!()
);
pub(crate) const GET_USER: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE username = $1"
);
pub(crate) const LIST_USERS: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", (SELECT COUNT(*) FROM users) AS total FROM users ORDER BY username LIMIT $1 OFFSET $2"
);
pub(crate) const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";
pub(crate) const USER_EXISTS: &str = "SELECT 1 FROM users WHERE username = $1";
pub(crate) const SET_PASSWORD_HASH: &str =
    "UPDATE users SET password_hash = $2 WHERE username = $1";
pub(crate) const SET_SUPERUSER: &str = "UPDATE users SET is_superuser = $2 WHERE username = $1";
pub(crate) const TOUCH_LAST_LOGIN: &str = "UPDATE users SET last_login = $2 WHERE username = $1";
pub(crate) const COUNT_OWNED_APPS: &str = "SELECT COUNT(*) FROM apps WHERE owner = $1";
/// Deleting a user cascades to their token, keys, grants and certificates.
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE username = $1";
/// Sets the user's one token, replacing the previous one.
pub(crate) const SET_TOKEN: &str = "INSERT INTO tokens (username, token_hash, created) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (username) DO UPDATE SET token_hash = excluded.token_hash, created = excluded.created";
/// Token lookup, through the unique index on the hash.
pub(crate) const USER_BY_TOKEN: &str = "SELECT u.id, u.username, u.email, u.first_name, \
     u.last_name, u.password_hash, u.is_superuser, u.is_active, u.last_login, u.date_joined \
     FROM tokens t JOIN users u ON u.username = t.username WHERE t.token_hash = $1";

// SSH keys.

pub(crate) const INSERT_KEY: &str = concat!(
    "INSERT INTO keys (",
    key_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
pub(crate) const GET_KEY: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM keys WHERE owner = $1 AND name = $2"
);
pub(crate) const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    ", (SELECT COUNT(*) FROM keys WHERE owner = $1) AS total \
     FROM keys WHERE owner = $1 ORDER BY name LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_KEYS: &str = "SELECT COUNT(*) FROM keys WHERE owner = $1";
pub(crate) const KEY_BY_FINGERPRINT: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM keys WHERE fingerprint = $1 ORDER BY owner, name LIMIT 1"
);
pub(crate) const DELETE_KEY: &str = "DELETE FROM keys WHERE owner = $1 AND name = $2";

// Apps, permissions and formation.

pub(crate) const INSERT_APP: &str = concat!(
    "INSERT INTO apps (",
    app_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
pub(crate) const GET_APP: &str = concat!("SELECT ", app_columns!(), " FROM apps WHERE id = $1");
pub(crate) const APP_EXISTS: &str = "SELECT 1 FROM apps WHERE id = $1";
pub(crate) const LIST_APPS: &str = concat!(
    "SELECT ",
    app_columns!(),
    ", (SELECT COUNT(*) FROM apps) AS total FROM apps ORDER BY id LIMIT $1 OFFSET $2"
);
pub(crate) const COUNT_APPS: &str = "SELECT COUNT(*) FROM apps";
pub(crate) const LIST_APPS_VISIBLE_TO: &str = concat!(
    "SELECT ",
    app_columns!(),
    ", (SELECT COUNT(*) FROM apps \
     WHERE owner = $1 OR id IN (SELECT app FROM collaborators WHERE username = $1)) AS total \
     FROM apps WHERE owner = $1 OR id IN (SELECT app FROM collaborators WHERE username = $1) \
     ORDER BY id LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_APPS_VISIBLE_TO: &str = "SELECT COUNT(*) FROM apps \
     WHERE owner = $1 OR id IN (SELECT app FROM collaborators WHERE username = $1)";
pub(crate) const SET_OWNER: &str = concat!(
    "UPDATE apps SET owner = $2, updated = $3 WHERE id = $1 RETURNING ",
    app_columns!()
);
pub(crate) const SET_FORMATION: &str = concat!(
    "UPDATE apps SET structure = $2, updated = $3 WHERE id = $1 RETURNING ",
    app_columns!()
);
/// Releases go first: they refer to the app's builds and configs.
pub(crate) const DELETE_APP_RELEASES: &str = "DELETE FROM releases WHERE app = $1";
/// Cascades to the app's builds, configs, domains, grants and pushes.
pub(crate) const DELETE_APP: &str = "DELETE FROM apps WHERE id = $1";
pub(crate) const INSERT_GRANT: &str = "INSERT INTO collaborators (app, username) VALUES ($1, $2)";
pub(crate) const DELETE_GRANT: &str = "DELETE FROM collaborators WHERE app = $1 AND username = $2";
pub(crate) const LIST_COLLABORATORS: &str =
    "SELECT username FROM collaborators WHERE app = $1 ORDER BY username";

// Builds, configs and releases.

pub(crate) const INSERT_BUILD: &str = concat!(
    "INSERT INTO builds (",
    build_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
pub(crate) const GET_BUILD: &str = concat!(
    "SELECT ",
    build_columns!(),
    " FROM builds WHERE app = $1 AND uuid = $2"
);
pub(crate) const BUILD_EXISTS: &str = "SELECT 1 FROM builds WHERE app = $1 AND uuid = $2";
pub(crate) const LIST_BUILDS: &str = concat!(
    "SELECT ",
    build_columns!(),
    ", (SELECT COUNT(*) FROM builds WHERE app = $1) AS total \
     FROM builds WHERE app = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_BUILDS: &str = "SELECT COUNT(*) FROM builds WHERE app = $1";
pub(crate) const BUILD_IN_USE: &str = "SELECT 1 FROM releases WHERE build = $1 LIMIT 1";
pub(crate) const DELETE_BUILD: &str = "DELETE FROM builds WHERE uuid = $1";

pub(crate) const INSERT_CONFIG: &str = concat!(
    "INSERT INTO configs (",
    config_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
/// The config of the app's latest release.
pub(crate) const CURRENT_CONFIG: &str = "SELECT c.uuid, c.app, c.owner, c.revision, c.env, \
     c.memory, c.cpu, c.tags, c.created, c.updated \
     FROM releases r JOIN configs c ON c.uuid = r.config \
     WHERE r.app = $1 ORDER BY r.version DESC LIMIT 1";
pub(crate) const GET_CONFIG: &str = concat!(
    "SELECT ",
    config_columns!(),
    " FROM configs WHERE app = $1 AND uuid = $2"
);
pub(crate) const CONFIG_EXISTS: &str = "SELECT 1 FROM configs WHERE app = $1 AND uuid = $2";
pub(crate) const CONFIG_REVISION: &str = "SELECT revision FROM configs WHERE uuid = $1";
pub(crate) const MAX_CONFIG_REVISION: &str =
    "SELECT COALESCE(MAX(revision), 0) FROM configs WHERE app = $1";
pub(crate) const CONFIG_IN_USE: &str = "SELECT 1 FROM releases WHERE config = $1 LIMIT 1";
pub(crate) const DELETE_CONFIG: &str = "DELETE FROM configs WHERE uuid = $1";

pub(crate) const INSERT_RELEASE: &str = concat!(
    "INSERT INTO releases (",
    release_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
pub(crate) const LATEST_RELEASE: &str = concat!(
    "SELECT ",
    release_columns!(),
    " FROM releases WHERE app = $1 ORDER BY version DESC LIMIT 1"
);
pub(crate) const GET_RELEASE: &str = concat!(
    "SELECT ",
    release_columns!(),
    " FROM releases WHERE app = $1 AND version = $2"
);
pub(crate) const LIST_RELEASES: &str = concat!(
    "SELECT ",
    release_columns!(),
    ", (SELECT COUNT(*) FROM releases WHERE app = $1) AS total \
     FROM releases WHERE app = $1 ORDER BY version DESC LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_RELEASES: &str = "SELECT COUNT(*) FROM releases WHERE app = $1";
pub(crate) const DELETE_RELEASE: &str = "DELETE FROM releases WHERE uuid = $1";

// Domains and certificates.

pub(crate) const INSERT_DOMAIN: &str = concat!(
    "INSERT INTO domains (",
    domain_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
pub(crate) const GET_DOMAIN: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM domains WHERE domain = $1"
);
pub(crate) const LIST_DOMAINS: &str = concat!(
    "SELECT ",
    domain_columns!(),
    ", (SELECT COUNT(*) FROM domains WHERE app = $1) AS total \
     FROM domains WHERE app = $1 ORDER BY domain LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_DOMAINS: &str = "SELECT COUNT(*) FROM domains WHERE app = $1";
pub(crate) const DELETE_DOMAIN: &str = "DELETE FROM domains WHERE app = $1 AND domain = $2";

pub(crate) const INSERT_CERTIFICATE: &str = concat!(
    "INSERT INTO certificates (",
    certificate_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);
pub(crate) const GET_CERTIFICATE: &str = concat!(
    "SELECT ",
    certificate_columns!(),
    " FROM certificates WHERE common_name = $1"
);
pub(crate) const LIST_CERTIFICATES: &str = concat!(
    "SELECT ",
    certificate_columns!(),
    ", (SELECT COUNT(*) FROM certificates) AS total \
     FROM certificates ORDER BY common_name LIMIT $1 OFFSET $2"
);
pub(crate) const COUNT_CERTIFICATES: &str = "SELECT COUNT(*) FROM certificates";
pub(crate) const LIST_CERTIFICATES_OF: &str = concat!(
    "SELECT ",
    certificate_columns!(),
    ", (SELECT COUNT(*) FROM certificates WHERE owner = $1) AS total \
     FROM certificates WHERE owner = $1 ORDER BY common_name LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_CERTIFICATES_OF: &str = "SELECT COUNT(*) FROM certificates WHERE owner = $1";
pub(crate) const DELETE_CERTIFICATE: &str = "DELETE FROM certificates WHERE common_name = $1";

// Pushes.

pub(crate) const INSERT_PUSH: &str = concat!(
    "INSERT INTO pushes (",
    push_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);
pub(crate) const LIST_PUSHES: &str = concat!(
    "SELECT ",
    push_columns!(),
    ", (SELECT COUNT(*) FROM pushes WHERE app = $1) AS total \
     FROM pushes WHERE app = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_PUSHES: &str = "SELECT COUNT(*) FROM pushes WHERE app = $1";
