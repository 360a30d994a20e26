//! The one table of routes: the router is built from it and so is the OpenAPI document,
//! so neither can drift from the other.

use super::{account, apps, auth, hooks, releases, AppState};
use axum::routing::{delete, get, post, MethodRouter};

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET.
    Get,
    /// POST.
    Post,
    /// DELETE.
    Delete,
}

impl Verb {
    /// The method's name, e.g. `GET`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }
}

/// How a route authenticates its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Nobody needs to be logged in.
    Public,
    /// `Authorization: token <key>`.
    Token,
    /// `X-Deis-Builder-Auth: <builder key>`.
    Builder,
}

/// A body in the OpenAPI document, by component schema name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// One object of a component schema.
    One(&'static str),
    /// A paginated list of a component schema.
    Page(&'static str),
    /// A plain JSON array of a component schema.
    List(&'static str),
    /// `text/plain`.
    Text,
    /// Any JSON value (config patches, scale bodies, the run result).
    Json,
}

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The method.
    pub verb: Verb,
    /// The canonical path, with a trailing slash under `/v1/`; `{name}` marks parameters.
    pub path: &'static str,
    /// A unique operation id.
    pub operation: &'static str,
    /// One line for people.
    pub summary: &'static str,
    /// The group in the document.
    pub tag: &'static str,
    /// How the caller authenticates.
    pub auth: Auth,
    /// The request body.
    pub request: Body,
    /// The success status.
    pub status: u16,
    /// The success body.
    pub response: Body,
    /// Whether a success adds `Deis-Release` headers.
    pub creates_release: bool,
    /// The handler.
    pub handler: fn() -> MethodRouter<AppState>,
}

macro_rules! route {
    ($verb:ident $path:literal, $op:literal, $summary:literal, $tag:literal, $auth:ident,
     $req:expr => $status:literal $resp:expr, $release:literal, $handler:expr) => {
        Route {
            verb: Verb::$verb,
            path: $path,
            operation: $op,
            summary: $summary,
            tag: $tag,
            auth: Auth::$auth,
            request: $req,
            status: $status,
            response: $resp,
            creates_release: $release,
            handler: || $handler,
        }
    };
}

use Body::{Empty, Json, List, One, Page, Text};

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    route!(Get "/healthz", "healthz", "Liveness check: answers OK", "meta", Public, Empty => 200 Text, false, get(auth::healthz)),
    route!(Get "/v1/", "root", "401 without a token (the CLI's login check)", "meta", Token, Empty => 200 Json, false, get(auth::root)),
    route!(Get "/v1/openapi.json", "openapi", "This OpenAPI document", "meta", Public, Empty => 200 Json, false, get(super::openapi_json)),
    route!(Post "/v1/auth/register/", "register", "Register a user (the first becomes admin)", "auth", Public, One("RegisterRequest") => 201 One("User"), false, post(auth::register)),
    route!(Post "/v1/auth/login/", "login", "Log in: a fresh token", "auth", Public, One("LoginRequest") => 200 One("TokenResponse"), false, post(auth::login)),
    route!(Delete "/v1/auth/cancel/", "cancel", "Delete yourself, or a user (admin)", "auth", Token, One("CancelRequest") => 204 Empty, false, delete(auth::cancel)),
    route!(Post "/v1/auth/passwd/", "passwd", "Change a password", "auth", Token, One("PasswdRequest") => 200 One("StatusResponse"), false, post(auth::passwd)),
    route!(Post "/v1/auth/tokens/", "regenerate_token", "Regenerate a token", "auth", Token, One("TokensRequest") => 200 One("TokenResponse"), false, post(auth::tokens)),
    route!(Get "/v1/users/", "list_users", "List users (admin)", "users", Token, Empty => 200 Page("User"), false, get(auth::list_users)),
    route!(Get "/v1/admin/perms/", "list_admins", "List administrators (admin)", "users", Token, Empty => 200 Page("AdminPerm"), false, get(auth::list_admins)),
    route!(Post "/v1/admin/perms/", "grant_admin", "Make a user an administrator (admin)", "users", Token, One("UsernameRequest") => 201 Empty, false, post(auth::grant_admin)),
    route!(Delete "/v1/admin/perms/{username}/", "revoke_admin", "Revoke administrator rights (admin)", "users", Token, Empty => 204 Empty, false, delete(auth::revoke_admin)),
    route!(Get "/v1/apps/", "list_apps", "List your apps", "apps", Token, Empty => 200 Page("App"), false, get(apps::list)),
    route!(Post "/v1/apps/", "create_app", "Create an app", "apps", Token, One("CreateAppRequest") => 201 One("App"), false, post(apps::create)),
    route!(Get "/v1/apps/{id}/", "get_app", "Show an app", "apps", Token, Empty => 200 One("App"), false, get(apps::show)),
    route!(Post "/v1/apps/{id}/", "transfer_app", "Transfer an app to another user", "apps", Token, One("TransferRequest") => 200 One("App"), false, post(apps::transfer)),
    route!(Delete "/v1/apps/{id}/", "destroy_app", "Destroy an app", "apps", Token, Empty => 204 Empty, false, delete(apps::destroy)),
    route!(Post "/v1/apps/{id}/scale/", "scale", "Scale process types", "apps", Token, Json => 204 Empty, false, post(apps::scale)),
    route!(Get "/v1/apps/{id}/logs/", "logs", "The app's recent log lines", "apps", Token, Empty => 200 Text, false, get(apps::logs)),
    route!(Post "/v1/apps/{id}/run/", "run", "Run a one-off command", "apps", Token, One("RunCommandRequest") => 200 Json, false, post(apps::run)),
    route!(Get "/v1/apps/{id}/config/", "get_config", "The latest config", "config", Token, Empty => 200 One("Config"), false, get(releases::get_config)),
    route!(Post "/v1/apps/{id}/config/", "set_config", "Change config values, limits and tags", "config", Token, Json => 201 One("Config"), true, post(releases::set_config)),
    route!(Get "/v1/apps/{id}/builds/", "list_builds", "List builds", "releases", Token, Empty => 200 Page("Build"), false, get(releases::list_builds)),
    route!(Post "/v1/apps/{id}/builds/", "create_build", "Deploy an image", "releases", Token, One("BuildRequest") => 201 One("Build"), true, post(releases::create_build)),
    route!(Get "/v1/apps/{id}/builds/{uuid}/", "get_build", "Show a build", "releases", Token, Empty => 200 One("Build"), false, get(releases::get_build)),
    route!(Get "/v1/apps/{id}/releases/", "list_releases", "List releases", "releases", Token, Empty => 200 Page("Release"), false, get(releases::list_releases)),
    route!(Get "/v1/apps/{id}/releases/{version}/", "get_release", "Show a release (v<N>)", "releases", Token, Empty => 200 One("Release"), false, get(releases::get_release)),
    route!(Post "/v1/apps/{id}/releases/rollback/", "rollback", "Roll back to an earlier release", "releases", Token, One("RollbackRequest") => 201 One("VersionResponse"), true, post(releases::rollback)),
    route!(Get "/v1/apps/{id}/containers/", "list_containers", "List containers", "containers", Token, Empty => 200 Page("Container"), false, get(apps::containers)),
    route!(Get "/v1/apps/{id}/containers/{type}/", "list_containers_of_type", "List containers of a type", "containers", Token, Empty => 200 Page("Container"), false, get(apps::containers_of_type)),
    route!(Get "/v1/apps/{id}/containers/{type}/{num}/", "get_container", "Show a container", "containers", Token, Empty => 200 One("Container"), false, get(apps::container)),
    route!(Post "/v1/apps/{id}/containers/restart/", "restart_all", "Restart every container", "containers", Token, Empty => 200 List("Container"), false, post(apps::restart_all)),
    route!(Post "/v1/apps/{id}/containers/{type}/restart/", "restart_type", "Restart the containers of a type", "containers", Token, Empty => 200 List("Container"), false, post(apps::restart_type)),
    route!(Post "/v1/apps/{id}/containers/{type}/{num}/restart/", "restart_one", "Restart one container", "containers", Token, Empty => 200 List("Container"), false, post(apps::restart_one)),
    route!(Get "/v1/apps/{id}/domains/", "list_domains", "List custom domains", "domains", Token, Empty => 200 Page("Domain"), false, get(apps::list_domains)),
    route!(Post "/v1/apps/{id}/domains/", "add_domain", "Add a custom domain", "domains", Token, One("DomainRequest") => 201 One("Domain"), false, post(apps::add_domain)),
    route!(Delete "/v1/apps/{id}/domains/{domain}/", "remove_domain", "Remove a custom domain", "domains", Token, Empty => 204 Empty, false, delete(apps::remove_domain)),
    route!(Get "/v1/apps/{id}/perms/", "list_perms", "List collaborators", "perms", Token, Empty => 200 One("PermsResponse"), false, get(apps::list_perms)),
    route!(Post "/v1/apps/{id}/perms/", "grant_perm", "Add a collaborator", "perms", Token, One("UsernameRequest") => 201 Empty, false, post(apps::grant_perm)),
    route!(Delete "/v1/apps/{id}/perms/{username}/", "revoke_perm", "Remove a collaborator", "perms", Token, Empty => 204 Empty, false, delete(apps::revoke_perm)),
    route!(Get "/v1/keys/", "list_keys", "List your SSH keys", "keys", Token, Empty => 200 Page("Key"), false, get(account::list_keys)),
    route!(Post "/v1/keys/", "add_key", "Add an SSH key", "keys", Token, One("KeyRequest") => 201 One("Key"), false, post(account::add_key)),
    route!(Get "/v1/keys/{id}/", "get_key", "Show an SSH key", "keys", Token, Empty => 200 One("Key"), false, get(account::get_key)),
    route!(Delete "/v1/keys/{id}/", "remove_key", "Remove an SSH key", "keys", Token, Empty => 204 Empty, false, delete(account::remove_key)),
    route!(Get "/v1/certs/", "list_certs", "List certificates", "certs", Token, Empty => 200 Page("Certificate"), false, get(account::list_certs)),
    route!(Post "/v1/certs/", "add_cert", "Add a certificate", "certs", Token, One("CertificateRequest") => 201 One("Certificate"), false, post(account::add_cert)),
    route!(Get "/v1/certs/{common_name}/", "get_cert", "Show a certificate", "certs", Token, Empty => 200 One("Certificate"), false, get(account::get_cert)),
    route!(Delete "/v1/certs/{common_name}/", "remove_cert", "Remove a certificate", "certs", Token, Empty => 204 Empty, false, delete(account::remove_cert)),
    route!(Post "/v1/hooks/push/", "hook_push", "Builder: record a push", "hooks", Builder, One("PushHookRequest") => 201 One("Push"), false, post(hooks::push)),
    route!(Post "/v1/hooks/build/", "hook_build", "Builder: record a build and deploy it", "hooks", Builder, One("BuildHookRequest") => 200 One("BuildHookResponse"), true, post(hooks::build)),
    route!(Post "/v1/hooks/config/", "hook_config", "Builder: the app's config", "hooks", Builder, One("ConfigHookRequest") => 200 One("Config"), false, post(hooks::config)),
    route!(Get "/v1/hooks/key/{fingerprint}/", "hook_key", "Builder: the owner of an SSH key", "hooks", Builder, Empty => 200 One("KeyHookResponse"), false, get(hooks::key)),
    route!(Post "/v1/hooks/auth/", "hook_auth", "Builder: check git HTTP credentials (user name, API token) for an app", "hooks", Builder, One("AuthHookRequest") => 200 One("AuthHookResponse"), false, post(hooks::auth)),
    route!(Post "/v1/hooks/access/", "hook_access", "Builder: may this user push to (or fetch) the app over SSH; the app's uuid", "hooks", Builder, One("ConfigHookRequest") => 200 One("AuthHookResponse"), false, post(hooks::access)),
    route!(Get "/v1/hooks/apps/", "hook_apps", "Builder: every app id (to delete what destroyed apps left)", "hooks", Builder, Empty => 200 One("AppsHookResponse"), false, get(hooks::apps)),
];
