-- Deis platform state, schema version 1 (SQLite).
-- Timestamps are microseconds since the Unix epoch; maps are JSON text.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    first_name    TEXT    NOT NULL DEFAULT '',
    last_name     TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    is_superuser  INTEGER NOT NULL DEFAULT 0,
    is_active     INTEGER NOT NULL DEFAULT 1,
    last_login    INTEGER,
    date_joined   INTEGER NOT NULL,
    CONSTRAINT users_username_unique UNIQUE (username)
);

-- One API token per user, kept only as its hash; looked up through the unique index.
CREATE TABLE tokens (
    username   TEXT    NOT NULL PRIMARY KEY REFERENCES users (username) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL,
    created    INTEGER NOT NULL,
    CONSTRAINT tokens_hash_unique UNIQUE (token_hash)
);

CREATE TABLE keys (
    uuid        TEXT    NOT NULL PRIMARY KEY,
    owner       TEXT    NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    public_key  TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    CONSTRAINT keys_owner_name_unique UNIQUE (owner, name),
    CONSTRAINT keys_public_key_unique UNIQUE (public_key)
);
CREATE INDEX keys_by_fingerprint ON keys (fingerprint);

CREATE TABLE apps (
    id        TEXT    NOT NULL PRIMARY KEY,
    uuid      TEXT    NOT NULL,
    owner     TEXT    NOT NULL REFERENCES users (username),
    structure TEXT    NOT NULL,
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL,
    CONSTRAINT apps_uuid_unique UNIQUE (uuid)
);
CREATE INDEX apps_by_owner ON apps (owner, id);

CREATE TABLE collaborators (
    app      TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    PRIMARY KEY (app, username)
);
CREATE INDEX collaborators_by_user ON collaborators (username, app);

-- seq orders an app's builds newest first.
CREATE TABLE builds (
    seq        INTEGER PRIMARY KEY,
    uuid       TEXT    NOT NULL,
    app        TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    owner      TEXT    NOT NULL,
    image      TEXT    NOT NULL,
    sha        TEXT    NOT NULL,
    procfile   TEXT    NOT NULL,
    dockerfile TEXT    NOT NULL,
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    CONSTRAINT builds_uuid_unique UNIQUE (uuid)
);
CREATE INDEX builds_by_app ON builds (app, seq);

CREATE TABLE configs (
    uuid     TEXT    NOT NULL PRIMARY KEY,
    app      TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    owner    TEXT    NOT NULL,
    revision INTEGER NOT NULL,
    env      TEXT    NOT NULL,
    memory   TEXT    NOT NULL,
    cpu      TEXT    NOT NULL,
    tags     TEXT    NOT NULL,
    created  INTEGER NOT NULL,
    updated  INTEGER NOT NULL,
    CONSTRAINT configs_app_revision_unique UNIQUE (app, revision)
);

-- UNIQUE (app, version) is the last line of defence behind the write transaction.
CREATE TABLE releases (
    uuid    TEXT    NOT NULL PRIMARY KEY,
    app     TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    owner   TEXT    NOT NULL,
    summary TEXT    NOT NULL,
    config  TEXT    NOT NULL REFERENCES configs (uuid),
    build   TEXT    REFERENCES builds (uuid),
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    CONSTRAINT releases_app_version_unique UNIQUE (app, version)
);
CREATE INDEX releases_by_config ON releases (config);
CREATE INDEX releases_by_build ON releases (build);

CREATE TABLE domains (
    domain  TEXT    NOT NULL PRIMARY KEY,
    uuid    TEXT    NOT NULL,
    app     TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    owner   TEXT    NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX domains_by_app ON domains (app, domain);

CREATE TABLE certificates (
    common_name TEXT    NOT NULL PRIMARY KEY,
    uuid        TEXT    NOT NULL,
    owner       TEXT    NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    expires     INTEGER NOT NULL,
    certificate TEXT    NOT NULL,
    private_key TEXT    NOT NULL,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);
CREATE INDEX certificates_by_owner ON certificates (owner, common_name);

-- seq orders an app's pushes newest first.
CREATE TABLE pushes (
    seq                  INTEGER PRIMARY KEY,
    uuid                 TEXT    NOT NULL,
    app                  TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    owner                TEXT    NOT NULL,
    sha                  TEXT    NOT NULL,
    fingerprint          TEXT    NOT NULL,
    receive_user         TEXT    NOT NULL,
    receive_repo         TEXT    NOT NULL,
    ssh_connection       TEXT    NOT NULL,
    ssh_original_command TEXT    NOT NULL,
    created              INTEGER NOT NULL,
    updated              INTEGER NOT NULL
);
CREATE INDEX pushes_by_app ON pushes (app, seq);
