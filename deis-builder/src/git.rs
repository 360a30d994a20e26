//! Git receive backed by the real `git`: bare repositories per app, the smart HTTP
//! `info/refs` advertisement and `git-receive-pack` / `git-upload-pack` RPCs, and the
//! `pre-receive` hook that builds the pushed commit and rejects the push when the build
//! fails.
//!
//! The transports (smart HTTP in the controller, SSH in the builder's SSH server) do
//! authentication and permission checks, then hand the authorised [`PushContext`] here.

use crate::hook::{HookServer, PushTicket};
use crate::BuildError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncRead;
use tokio::process::{Child, Command};

/// The git services a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitService {
    /// `git push`.
    ReceivePack,
    /// `git fetch` / `git clone`.
    UploadPack,
}

impl GitService {
    /// Parses `git-receive-pack` / `git-upload-pack`, the only services allowed.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "git-receive-pack" => Some(GitService::ReceivePack),
            "git-upload-pack" => Some(GitService::UploadPack),
            _ => None,
        }
    }

    /// The service's wire name.
    pub fn name(self) -> &'static str {
        match self {
            GitService::ReceivePack => "git-receive-pack",
            GitService::UploadPack => "git-upload-pack",
        }
    }

    fn subcommand(self) -> &'static str {
        match self {
            GitService::ReceivePack => "receive-pack",
            GitService::UploadPack => "upload-pack",
        }
    }
}

/// Who is pushing to which app, as established by the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushContext {
    /// The app (its repository is `<app>.git`).
    pub app: String,
    /// The authenticated user.
    pub user: String,
    /// The app's uuid, from the controller: a repository (and build cache and slugs) left
    /// by a destroyed app of the same name is deleted before this app's first push or
    /// fetch. Empty when the authorizer does not tell (nothing is then checked).
    pub app_uuid: String,
    /// The SSH key fingerprint, when the push came over SSH.
    pub fingerprint: Option<String>,
    /// `SSH_CONNECTION`-like description of the client, for the audit record.
    pub connection: String,
}

/// Parses a repository path as clients send it (`/go.git`, `'go.git'`, `go`) into an app
/// name, refusing anything that is not a plain app id.
pub fn app_from_repo_path(path: &str) -> Option<String> {
    let name = path
        .trim()
        .trim_matches(|c| c == '\'' || c == '"')
        .trim_start_matches('/');
    let name = name.strip_suffix(".git").unwrap_or(name);
    deis_core::validation::app_id(name, &[]).ok()?;
    Some(name.to_string())
}

/// The bare repositories of every app, under one directory.
#[derive(Debug, Clone)]
pub struct GitRepos {
    root: PathBuf,
    hooks: Arc<HookServer>,
}

impl GitRepos {
    /// Repositories under `root`, building pushes through `hooks`.
    pub fn new(root: impl Into<PathBuf>, hooks: Arc<HookServer>) -> Self {
        GitRepos {
            root: root.into(),
            hooks,
        }
    }

    /// The bare repository of an app.
    pub fn repo_path(&self, app: &str) -> PathBuf {
        repo_path_in(&self.root, app)
    }

    /// The directory holding every repository.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the app's bare repository with its hook when missing.
    pub async fn ensure_repo(&self, app: &str) -> Result<PathBuf, BuildError> {
        let path = self.repo_path(app);
        if !path.join("HEAD").is_file() {
            tokio::fs::create_dir_all(&self.root)
                .await
                .map_err(BuildError::io("creating the repository directory"))?;
            let output = Command::new(git_binary())
                .args(["init", "--quiet", "--bare"])
                .arg(&path)
                .output()
                .await
                .map_err(BuildError::io("running git init"))?;
            if !output.status.success() {
                return Err(BuildError::Rejected(format!(
                    "git init failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
        }
        let hook = path.join("hooks/pre-receive");
        tokio::fs::create_dir_all(path.join("hooks"))
            .await
            .map_err(BuildError::io("creating the hooks directory"))?;
        tokio::fs::write(&hook, PRE_RECEIVE)
            .await
            .map_err(BuildError::io("installing the pre-receive hook"))?;
        set_executable(&hook).await?;
        Ok(path)
    }

    /// The repository of the app `context` names, made (and marked with the app's uuid) if
    /// needed, after anything an earlier app of the same name left is deleted.
    async fn repo_for(&self, context: &PushContext) -> Result<PathBuf, BuildError> {
        self.forget_earlier_app(&context.app, &context.app_uuid)
            .await?;
        let path = self.ensure_repo(&context.app).await?;
        if !context.app_uuid.is_empty() {
            tokio::fs::write(path.join(APP_MARKER), &context.app_uuid)
                .await
                .map_err(BuildError::io("marking the repository with its app"))?;
        }
        Ok(path)
    }

    /// Deletes what an app of the same name that was destroyed since left: its repository
    /// (which would hand its history to the new owner), build cache and slugs. The
    /// builder's periodic clean-up does the same, but an app destroyed and created again
    /// in between would find them. A repository without a marker (made before markers)
    /// is kept and marked.
    async fn forget_earlier_app(&self, app: &str, app_uuid: &str) -> Result<(), BuildError> {
        if app_uuid.is_empty() {
            return Ok(());
        }
        let marker = self.repo_path(app).join(APP_MARKER);
        match tokio::fs::read_to_string(&marker).await {
            Ok(owner) if owner.trim() == app_uuid => Ok(()),
            Ok(_) => {
                tracing::info!(
                    app,
                    "the repository was left by a destroyed app of the same name; starting afresh"
                );
                self.remove_repo(app).await?;
                self.hooks.builder().remove_app(app).await
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BuildError::io("reading the repository's app marker")(e)),
        }
    }

    /// Deletes an app's repository (after the app is destroyed).
    pub async fn remove_repo(&self, app: &str) -> Result<(), BuildError> {
        remove_repo_in(&self.root, app).await
    }

    /// The body of `GET /<app>.git/info/refs?service=<service>`: the service header and the
    /// ref advertisement in pkt-line format.
    pub async fn advertisement(
        &self,
        context: &PushContext,
        service: GitService,
    ) -> Result<Vec<u8>, BuildError> {
        let path = self.repo_for(context).await?;
        let output = Command::new(git_binary())
            .arg(service.subcommand())
            .args(["--stateless-rpc", "--advertise-refs"])
            .arg(&path)
            .output()
            .await
            .map_err(BuildError::io("running git"))?;
        if !output.status.success() {
            return Err(BuildError::Rejected(format!(
                "git {} failed: {}",
                service.subcommand(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let mut body = pkt_line(&format!("# service={}\n", service.name()));
        body.extend_from_slice(b"0000");
        body.extend_from_slice(&output.stdout);
        Ok(body)
    }

    /// Starts one RPC of a service for an authorised client. `stateless` is true for smart
    /// HTTP and false for SSH. The caller feeds the request into the child's stdin and
    /// copies its stdout back; a push holds the app's push lock until the child exits.
    pub async fn start(
        &self,
        service: GitService,
        context: &PushContext,
        stateless: bool,
    ) -> Result<GitProcess, BuildError> {
        let path = self.repo_for(context).await?;
        let ticket = match service {
            GitService::ReceivePack => Some(self.hooks.issue(context.clone())?),
            GitService::UploadPack => None,
        };
        let mut command = Command::new(git_binary());
        if service == GitService::ReceivePack {
            // Refuse a pack larger than the whole app may be before it is even stored
            // (git keeps a rejected push's objects in quarantine and drops them).
            let limit = self.hooks.builder().settings().limits.max_total_bytes;
            command
                .arg("-c")
                .arg(format!("receive.maxInputSize={limit}"));
        }
        command.arg(service.subcommand());
        if stateless {
            command.arg("--stateless-rpc");
        }
        command
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env_remove("GIT_DIR");
        if let Some(ticket) = &ticket {
            command
                .env("DEIS_BUILDER_SOCKET", self.hooks.socket_path())
                .env("DEIS_PUSH_TICKET", ticket.secret())
                .env("DEIS_APP", &context.app);
        }
        let child = command.spawn().map_err(BuildError::io("starting git"))?;
        Ok(GitProcess {
            child,
            _ticket: ticket,
        })
    }
}

/// The bare repository of `app` among the repositories under `root`.
pub fn repo_path_in(root: &Path, app: &str) -> PathBuf {
    root.join(format!("{app}.git"))
}

/// Deletes the repository of `app` under `root` (a missing one is fine). Refuses a name
/// that is not an app id, so nothing outside `root` is touched.
pub async fn remove_repo_in(root: &Path, app: &str) -> Result<(), BuildError> {
    deis_core::validation::app_id(app, &[]).map_err(|e| BuildError::Rejected(e.to_string()))?;
    match tokio::fs::remove_dir_all(repo_path_in(root, app)).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BuildError::io("removing the repository")(e)),
    }
}

/// A running git RPC. Dropping it kills git and releases the push lock.
#[derive(Debug)]
pub struct GitProcess {
    /// The git child; take its stdin, stdout and stderr.
    pub child: Child,
    _ticket: Option<PushTicket>,
}

/// Encodes one pkt-line.
pub fn pkt_line(text: &str) -> Vec<u8> {
    format!("{:04x}{text}", text.len() + 4).into_bytes()
}

/// The content type of a service's RPC result.
pub fn result_content_type(service: GitService) -> String {
    format!("application/x-{}-result", service.name())
}

/// The content type of a service's advertisement.
pub fn advertisement_content_type(service: GitService) -> String {
    format!("application/x-{}-advertisement", service.name())
}

pub(crate) fn git_binary() -> PathBuf {
    for candidate in ["/usr/local/bin/git", "/usr/bin/git"] {
        if Path::new(candidate).is_file() {
            return PathBuf::from(candidate);
        }
    }
    PathBuf::from("git")
}

async fn set_executable(path: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .await
        .map_err(BuildError::io("making the hook executable"))
}

/// Reads everything from `reader` (a helper for tests and small bodies).
pub async fn read_all(mut reader: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await?;
    Ok(out)
}

/// The `pre-receive` hook: for a push to `master` or `main` it sends the pushed tree to the
/// builder over its unix socket, prints the build output (the pusher sees it as `remote:`
/// lines) and fails the push unless the builder reports success.
/// The file in a repository that holds the uuid of the app it was made for.
const APP_MARKER: &str = "deis-app-uuid";

const PRE_RECEIVE: &str = r#"#!/bin/sh
# Installed by deis-builder. Builds the pushed commit; a failed build rejects the push.
zero=0000000000000000000000000000000000000000
result="$(mktemp)"
trap 'rm -f "$result"' EXIT
while read -r old new ref; do
    case "$ref" in
        refs/heads/master|refs/heads/main) ;;
        *) echo "deis: only pushes to master or main are deployed, not $ref"; exit 1 ;;
    esac
    if [ "$new" = "$zero" ]; then
        echo "deis: deleting $ref is not allowed"
        exit 1
    fi
    : > "$result"
    git archive --format=tar "$new" | curl -sS -N --unix-socket "$DEIS_BUILDER_SOCKET" \
        -H "X-Deis-Push-Ticket: $DEIS_PUSH_TICKET" -H "X-Deis-Sha: $new" \
        -H "Content-Type: application/x-tar" --data-binary @- http://builder/push |
    while IFS= read -r line; do
        case "$line" in
            "deis-build-result: ok") echo ok > "$result" ;;
            "deis-build-result: "*) ;;
            *) printf '%s\n' "$line" ;;
        esac
    done
    if [ "$(cat "$result")" != ok ]; then
        echo "deis: build failed; the push is rejected and the app keeps its current release"
        exit 1
    fi
done
exit 0
"#;
