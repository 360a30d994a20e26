//! The `deis` command line as a library, so that its output can be tested: [`run`] parses
//! the arguments, talks to the controller through `deis_api::client::Client`, and writes
//! what a person reads to `out` and errors (one line each) to `err`.
//!
//! Commands and shortcuts follow the Deis v1 client (`apps:create` or `create`,
//! `config:set`, `ps:scale` or `scale`, …). Settings live in `~/.deis/<profile>.json`
//! (`DEIS_PROFILE`, default `client`).

mod apps;
mod args;
mod auth;
mod config;
mod output;
pub mod profile;
mod resources;

use clap::Parser;
use deis_api::client::{Client, ClientError};
use profile::Profile;
use std::io::Write;
use std::path::PathBuf;

/// What the command line reads from its surroundings (only `main` reads the process).
#[derive(Debug, Clone)]
pub struct CliEnv {
    /// The home directory (`~/.deis` lives there).
    pub home: PathBuf,
    /// The profile name (`DEIS_PROFILE`, default `client`).
    pub profile: String,
    /// The working directory (for the app's git remote and `.env`).
    pub cwd: PathBuf,
    /// The builder's SSH port for git remotes (`DEIS_SSH_PORT`, default 2222).
    pub ssh_port: u16,
    /// What the progress messages wait for (`DEIS_DRINK_OF_CHOICE`, default coffee).
    pub drink: String,
}

impl CliEnv {
    /// Reads `HOME`, `DEIS_PROFILE`, `DEIS_SSH_PORT`, `DEIS_DRINK_OF_CHOICE` and the
    /// working directory.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        CliEnv {
            home: var("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
            profile: var("DEIS_PROFILE").unwrap_or_else(|| "client".into()),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            ssh_port: var("DEIS_SSH_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(2222),
            drink: var("DEIS_DRINK_OF_CHOICE").unwrap_or_else(|| "coffee".into()),
        }
    }
}

/// The result of a command: `Err` is the one-line message shown after `Error:`.
pub(crate) type CliResult<T = ()> = Result<T, String>;

/// One invocation: where to write, and the profile once logged in.
pub(crate) struct Session<'a> {
    pub env: &'a CliEnv,
    pub out: &'a mut dyn Write,
    pub exit_code: i32,
}

impl Session<'_> {
    /// Writes one line of output.
    pub fn say(&mut self, text: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", text.as_ref());
    }

    /// The saved profile, or an error telling the user to log in.
    pub fn profile(&self) -> CliResult<Profile> {
        profile::load(&self.env.home, &self.env.profile)?
            .filter(|p| !p.token.is_empty())
            .ok_or_else(|| {
                "Not logged in. Use `deis login` or `deis register` to get started.".to_string()
            })
    }

    /// A client and the app to act on (`-a`, the `deis` git remote, or the directory).
    pub fn app_client(&self, app: &args::AppArg) -> CliResult<(Client, String)> {
        let (client, profile) = self.client()?;
        let app = output::resolve_app(self, app, &profile)?;
        Ok((client, app))
    }

    /// A client of the saved controller with the saved token.
    pub fn client(&self) -> CliResult<(Client, Profile)> {
        let profile = self.profile()?;
        Ok((
            Client::new(profile.controller.clone()).with_token(profile.token.clone()),
            profile,
        ))
    }
}

/// Turns a client error into the one-line message a person reads.
pub(crate) fn api_error(error: ClientError) -> String {
    match error {
        ClientError::Api {
            status, message, ..
        } => {
            let first = message.lines().collect::<Vec<_>>().join("; ");
            if status == 401 {
                format!("{first} (log in again with `deis login`)")
            } else {
                first
            }
        }
        ClientError::Transport(e) => format!("cannot reach the controller: {e}"),
        ClientError::Decode(e) => format!("unexpected answer from the controller: {e}"),
    }
}

/// Runs one command line (`args[0]` is the program name) and returns the exit code.
pub async fn run(args: Vec<String>, env: &CliEnv, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let cli = match args::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => {
            let informational = matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if informational {
                let _ = write!(out, "{error}");
                return 0;
            }
            let text = error.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            let _ = writeln!(err, "Error: {first} (see `deis help`)");
            return 2;
        }
    };
    let mut session = Session {
        env,
        out,
        exit_code: 0,
    };
    match dispatch(cli.command, &mut session).await {
        Ok(()) => session.exit_code,
        Err(message) => {
            let _ = writeln!(err, "Error: {message}");
            1
        }
    }
}

async fn dispatch(command: args::Command, session: &mut Session<'_>) -> CliResult {
    use args::Command::*;
    match command {
        Register(a) => auth::register(session, a).await,
        Login(a) => auth::login(session, a).await,
        Logout => auth::logout(session),
        Whoami => auth::whoami(session),
        Passwd(a) => auth::passwd(session, a).await,
        Cancel(a) => auth::cancel(session, a).await,
        Regenerate(a) => auth::regenerate(session, a).await,
        Version => {
            session.say(env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        AppsList(a) => apps::list(session, a).await,
        AppsCreate(a) => apps::create(session, a).await,
        AppsInfo(a) => apps::info(session, a).await,
        AppsOpen(a) => apps::open(session, a).await,
        AppsDestroy(a) => apps::destroy(session, a).await,
        AppsTransfer(a) => apps::transfer(session, a).await,
        Logs(a) => apps::logs(session, a).await,
        Run(a) => apps::run(session, a).await,
        GitRemote(a) => apps::git_remote(session, a).await,
        ConfigList(a) => config::list(session, a).await,
        ConfigSet(a) => config::set(session, a).await,
        ConfigUnset(a) => config::unset(session, a).await,
        ConfigPull(a) => config::pull(session, a).await,
        ConfigPush(a) => config::push(session, a).await,
        LimitsList(a) => config::limits_list(session, a).await,
        LimitsSet(a) => config::limits_set(session, a).await,
        LimitsUnset(a) => config::limits_unset(session, a).await,
        TagsList(a) => config::tags_list(session, a).await,
        TagsSet(a) => config::tags_set(session, a).await,
        TagsUnset(a) => config::tags_unset(session, a).await,
        BuildsList(a) => resources::builds_list(session, a).await,
        BuildsCreate(a) => resources::builds_create(session, a).await,
        ReleasesList(a) => resources::releases_list(session, a).await,
        ReleasesInfo(a) => resources::releases_info(session, a).await,
        Rollback(a) => resources::rollback(session, a).await,
        PsList(a) => resources::ps_list(session, a).await,
        PsScale(a) => resources::ps_scale(session, a).await,
        PsRestart(a) => resources::ps_restart(session, a).await,
        DomainsList(a) => resources::domains_list(session, a).await,
        DomainsAdd(a) => resources::domains_add(session, a).await,
        DomainsRemove(a) => resources::domains_remove(session, a).await,
        CertsList(a) => resources::certs_list(session, a).await,
        CertsAdd(a) => resources::certs_add(session, a).await,
        CertsRemove(a) => resources::certs_remove(session, a).await,
        KeysList(a) => resources::keys_list(session, a).await,
        KeysAdd(a) => resources::keys_add(session, a).await,
        KeysRemove(a) => resources::keys_remove(session, a).await,
        PermsList(a) => resources::perms_list(session, a).await,
        PermsCreate(a) => resources::perms_create(session, a).await,
        PermsDelete(a) => resources::perms_delete(session, a).await,
        UsersList(a) => resources::users_list(session, a).await,
    }
}
