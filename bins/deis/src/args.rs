//! The command tree, with Deis v1's names and shortcuts.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "deis",
    about = "Deploy and manage apps on Deis",
    version,
    disable_help_subcommand = false
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `-a/--app`: the app, else the one the `deis` git remote names, else the directory name.
#[derive(Debug, Args, Clone, Default)]
pub struct AppArg {
    /// The app to act on.
    #[arg(short = 'a', long = "app", global = false)]
    pub app: Option<String>,
}

/// Output as JSON instead of a table, for scripts.
#[derive(Debug, Args, Clone, Default)]
pub struct JsonArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AppOnly {
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct AppJson {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The controller URL, e.g. http://127.0.0.1:8000.
    pub controller: String,
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub password: String,
    #[arg(long)]
    pub email: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The controller URL, e.g. http://127.0.0.1:8000.
    pub controller: String,
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub password: String,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The current password (admins may leave it out for another user).
    #[arg(long)]
    pub password: Option<String>,
    #[arg(long = "new-password")]
    pub new_password: String,
    /// Whose password to change (admins only).
    #[arg(long)]
    pub username: Option<String>,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The account to delete; yours when absent.
    #[arg(long)]
    pub username: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RegenerateArgs {
    /// Regenerate another user's token (admins only).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Regenerate every user's token (admins only).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The app's name; a random adjective-noun when absent.
    pub id: Option<String>,
    /// Do not add a git remote.
    #[arg(long = "no-remote")]
    pub no_remote: bool,
    /// A buildpack URL to build with (sets BUILDPACK_URL).
    #[arg(short = 'b', long)]
    pub buildpack: Option<String>,
    /// The name of the git remote.
    #[arg(short = 'r', long, default_value = "deis")]
    pub remote: String,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The app's name again, to confirm.
    #[arg(long)]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The new owner.
    pub username: String,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// How many lines.
    #[arg(short = 'n', long = "lines")]
    pub lines: Option<usize>,
    /// Keep printing new lines as they come (until interrupted).
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The command to run.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RemoteArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The name of the git remote.
    #[arg(short = 'r', long, default_value = "deis")]
    pub remote: String,
}

#[derive(Debug, Args)]
pub struct ConfigListArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// One line of KEY=value pairs.
    #[arg(long)]
    pub oneline: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct PairsArgs {
    /// KEY=value pairs.
    #[arg(required = true)]
    pub pairs: Vec<String>,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Names to unset.
    #[arg(required = true)]
    pub keys: Vec<String>,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct ConfigPullArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Replace an existing .env.
    #[arg(short = 'o', long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct ConfigPushArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The file to read.
    #[arg(short = 'p', long, default_value = ".env")]
    pub path: String,
}

#[derive(Debug, Args)]
pub struct LimitsSetArgs {
    /// type=value pairs, e.g. web=512M (memory) or web=512 (cpu shares).
    #[arg(required = true)]
    pub pairs: Vec<String>,
    /// Set memory limits (the default).
    #[arg(short = 'm', long, conflicts_with = "cpu")]
    pub memory: bool,
    /// Set CPU shares.
    #[arg(short = 'c', long)]
    pub cpu: bool,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct LimitsUnsetArgs {
    /// Process types.
    #[arg(required = true)]
    pub types: Vec<String>,
    #[arg(short = 'm', long, conflicts_with = "cpu")]
    pub memory: bool,
    #[arg(short = 'c', long)]
    pub cpu: bool,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct BuildsCreateArgs {
    /// The image, with its tag.
    pub image: String,
    /// The Procfile as `type: command` lines (else ./Procfile when present).
    #[arg(short = 'p', long)]
    pub procfile: Option<String>,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct ReleaseArg {
    /// The version, e.g. v3.
    pub version: String,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The version to roll back to; the previous one when absent.
    pub version: Option<String>,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// type=count pairs, e.g. web=3.
    #[arg(required = true)]
    pub pairs: Vec<String>,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// `type` or `type.num`; every process when absent.
    pub target: Option<String>,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct DomainArgs {
    /// The domain.
    pub domain: String,
    #[command(flatten)]
    pub app: AppArg,
}

#[derive(Debug, Args)]
pub struct CertsAddArgs {
    /// The PEM certificate file.
    pub cert: String,
    /// The PEM key file.
    pub key: String,
    /// The domain, when not the certificate's common name.
    #[arg(long = "common-name")]
    pub common_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// The name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct KeysAddArgs {
    /// The public key file; the first of ~/.ssh/id_*.pub when absent.
    pub path: Option<String>,
}

#[derive(Debug, Args)]
pub struct PermsListArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// List administrators instead.
    #[arg(long)]
    pub admin: bool,
}

#[derive(Debug, Args)]
pub struct PermsChangeArgs {
    /// The user.
    pub username: String,
    #[command(flatten)]
    pub app: AppArg,
    /// Grant or revoke administrator rights instead.
    #[arg(long)]
    pub admin: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register a new user with a controller (and log in).
    #[command(name = "auth:register", visible_alias = "register")]
    Register(RegisterArgs),
    /// Log in to a controller.
    #[command(name = "auth:login", visible_alias = "login")]
    Login(LoginArgs),
    /// Log out (delete the local profile).
    #[command(name = "auth:logout", visible_alias = "logout")]
    Logout,
    /// Show who you are logged in as.
    #[command(name = "auth:whoami", visible_alias = "whoami")]
    Whoami,
    /// Change a password.
    #[command(name = "auth:passwd", visible_alias = "passwd")]
    Passwd(PasswdArgs),
    /// Delete an account.
    #[command(name = "auth:cancel")]
    Cancel(CancelArgs),
    /// Regenerate an API token.
    #[command(name = "auth:regenerate")]
    Regenerate(RegenerateArgs),
    /// Print the client version.
    #[command(name = "version")]
    Version,
    /// List apps.
    #[command(name = "apps:list", visible_alias = "apps")]
    AppsList(JsonArg),
    /// Create an app.
    #[command(name = "apps:create", visible_alias = "create")]
    AppsCreate(CreateArgs),
    /// Show an app, its processes and domains.
    #[command(name = "apps:info", visible_alias = "info")]
    AppsInfo(AppJson),
    /// Print the app's URL.
    #[command(name = "apps:open", visible_alias = "open")]
    AppsOpen(AppOnly),
    /// Destroy an app.
    #[command(name = "apps:destroy", visible_alias = "destroy")]
    AppsDestroy(DestroyArgs),
    /// Give an app to another user.
    #[command(name = "apps:transfer")]
    AppsTransfer(TransferArgs),
    /// Show an app's logs.
    #[command(name = "apps:logs", visible_alias = "logs")]
    Logs(LogsArgs),
    /// Run a one-off command.
    #[command(name = "apps:run", visible_alias = "run")]
    Run(RunArgs),
    /// Add the git remote of an existing app.
    #[command(name = "git:remote")]
    GitRemote(RemoteArgs),
    /// List config values.
    #[command(name = "config:list", visible_alias = "config")]
    ConfigList(ConfigListArgs),
    /// Set config values (KEY=value…); makes a release.
    #[command(name = "config:set")]
    ConfigSet(PairsArgs),
    /// Unset config values; makes a release.
    #[command(name = "config:unset")]
    ConfigUnset(KeysArgs),
    /// Write the config to .env.
    #[command(name = "config:pull")]
    ConfigPull(ConfigPullArgs),
    /// Set the config from .env.
    #[command(name = "config:push")]
    ConfigPush(ConfigPushArgs),
    /// List resource limits.
    #[command(name = "limits:list", visible_alias = "limits")]
    LimitsList(AppJson),
    /// Set resource limits.
    #[command(name = "limits:set")]
    LimitsSet(LimitsSetArgs),
    /// Unset resource limits.
    #[command(name = "limits:unset")]
    LimitsUnset(LimitsUnsetArgs),
    /// List placement tags.
    #[command(name = "tags:list", visible_alias = "tags")]
    TagsList(AppJson),
    /// Set placement tags.
    #[command(name = "tags:set")]
    TagsSet(PairsArgs),
    /// Unset placement tags.
    #[command(name = "tags:unset")]
    TagsUnset(KeysArgs),
    /// List builds.
    #[command(name = "builds:list", visible_alias = "builds")]
    BuildsList(AppJson),
    /// Deploy an existing image.
    #[command(name = "builds:create", visible_alias = "pull")]
    BuildsCreate(BuildsCreateArgs),
    /// List releases.
    #[command(name = "releases:list", visible_alias = "releases")]
    ReleasesList(AppJson),
    /// Show one release.
    #[command(name = "releases:info")]
    ReleasesInfo(ReleaseArg),
    /// Roll back to an earlier release.
    #[command(name = "releases:rollback", visible_alias = "rollback")]
    Rollback(RollbackArgs),
    /// List processes.
    #[command(name = "ps:list", visible_alias = "ps")]
    PsList(AppJson),
    /// Scale processes (type=count…).
    #[command(name = "ps:scale", visible_alias = "scale")]
    PsScale(ScaleArgs),
    /// Restart processes.
    #[command(name = "ps:restart")]
    PsRestart(RestartArgs),
    /// List custom domains.
    #[command(name = "domains:list", visible_alias = "domains")]
    DomainsList(AppJson),
    /// Add a custom domain.
    #[command(name = "domains:add")]
    DomainsAdd(DomainArgs),
    /// Remove a custom domain.
    #[command(name = "domains:remove")]
    DomainsRemove(DomainArgs),
    /// List certificates.
    #[command(name = "certs:list", visible_alias = "certs")]
    CertsList(JsonArg),
    /// Add a certificate.
    #[command(name = "certs:add")]
    CertsAdd(CertsAddArgs),
    /// Remove a certificate.
    #[command(name = "certs:remove")]
    CertsRemove(NameArg),
    /// List your SSH keys.
    #[command(name = "keys:list", visible_alias = "keys")]
    KeysList(JsonArg),
    /// Add an SSH public key.
    #[command(name = "keys:add")]
    KeysAdd(KeysAddArgs),
    /// Remove an SSH key.
    #[command(name = "keys:remove")]
    KeysRemove(NameArg),
    /// List an app's collaborators (or administrators with --admin).
    #[command(name = "perms:list", visible_aliases = ["perms", "sharing"])]
    PermsList(PermsListArgs),
    /// Let a user collaborate on an app (or make them administrator with --admin).
    #[command(name = "perms:create", visible_alias = "sharing:add")]
    PermsCreate(PermsChangeArgs),
    /// Withdraw a collaborator (or administrator rights with --admin).
    #[command(name = "perms:delete", visible_alias = "sharing:remove")]
    PermsDelete(PermsChangeArgs),
    /// List users (administrators only).
    #[command(name = "users:list", visible_alias = "users")]
    UsersList(JsonArg),
}
