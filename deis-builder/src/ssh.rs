//! Git over SSH (russh): `ssh://git@<host>:2222/<app>.git` with the public keys users
//! registered through `deis keys:add`. Only `git-receive-pack` and `git-upload-pack` are
//! accepted; the push itself goes through the same repositories and hook as smart HTTP.

use crate::git::{app_from_repo_path, GitRepos, GitService, PushContext};
use crate::BuildError;
use async_trait::async_trait;
use russh::keys::PrivateKey;
use russh::server::{Auth, Msg, Server as _, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::ChildStdin;

/// What the SSH server needs from the controller.
#[async_trait]
pub trait SshAuthorizer: std::fmt::Debug + Send + Sync + 'static {
    /// The user who registered the key with this MD5 fingerprint (`aa:bb:…`), if any.
    async fn user_for_key(&self, fingerprint: &str) -> Option<String>;
    /// Whether `user` may push to (and fetch from) `app`: the app's uuid (which tells this
    /// app's repository from one left by a destroyed app of the same name) when they may;
    /// the error is shown to the client.
    async fn authorize(&self, user: &str, app: &str) -> Result<String, String>;
}

/// Loads the host key at `path`, creating an Ed25519 key there (with `ssh-keygen`) when it
/// is missing, so the server keeps its identity across restarts.
pub async fn host_key(path: &Path) -> Result<PrivateKey, BuildError> {
    if !path.exists() {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(BuildError::io("creating the host key directory"))?;
        }
        let output = tokio::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "deis-builder", "-f"])
            .arg(path)
            .output()
            .await
            .map_err(BuildError::io(
                "running ssh-keygen (install openssh-client)",
            ))?;
        if !output.status.success() {
            return Err(BuildError::Rejected(format!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
    }
    russh::keys::load_secret_key(path, None)
        .map_err(|e| BuildError::Rejected(format!("host key {}: {e}", path.display())))
}

/// A running SSH server.
#[derive(Debug)]
pub struct SshServer {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SshServer {
    /// Listens on `address` (port 0 picks one) and serves git over SSH.
    pub async fn start(
        address: SocketAddr,
        key: PrivateKey,
        repos: GitRepos,
        authorizer: Arc<dyn SshAuthorizer>,
    ) -> Result<SshServer, BuildError> {
        let config = Arc::new(russh::server::Config {
            inactivity_timeout: Some(Duration::from_secs(30 * 60)),
            auth_rejection_time: Duration::from_millis(500),
            auth_rejection_time_initial: Some(Duration::from_millis(0)),
            keys: vec![key],
            ..Default::default()
        });
        let listener = TcpListener::bind(address)
            .await
            .map_err(BuildError::io(format!("binding SSH on {address}")))?;
        let address = listener
            .local_addr()
            .map_err(BuildError::io("reading the SSH address"))?;
        let mut server = GitSshServer { repos, authorizer };
        let task = tokio::spawn(async move {
            if let Err(error) = server.run_on_socket(config, &listener).await {
                tracing::error!("SSH server stopped: {error}");
            }
        });
        Ok(SshServer { address, task })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct GitSshServer {
    repos: GitRepos,
    authorizer: Arc<dyn SshAuthorizer>,
}

impl russh::server::Server for GitSshServer {
    type Handler = Connection;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection {
        Connection {
            repos: self.repos.clone(),
            authorizer: self.authorizer.clone(),
            peer,
            user: None,
            fingerprint: None,
            stdins: HashMap::new(),
        }
    }
}

struct Connection {
    repos: GitRepos,
    authorizer: Arc<dyn SshAuthorizer>,
    peer: Option<SocketAddr>,
    user: Option<String>,
    fingerprint: Option<String>,
    stdins: HashMap<ChannelId, ChildStdin>,
}

impl Connection {
    async fn fail(
        &self,
        channel: ChannelId,
        session: &mut Session,
        message: String,
    ) -> Result<(), russh::Error> {
        let handle = session.handle();
        let _ = handle
            .extended_data(channel, 1, format!("deis: {message}\n").into_bytes())
            .await;
        let _ = handle.exit_status_request(channel, 1).await;
        let _ = handle.eof(channel).await;
        let _ = handle.close(channel).await;
        Ok(())
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Ok(line) = key.public_key.to_openssh() else {
            return Ok(Auth::reject());
        };
        let Ok(info) = deis_core::validation::ssh_public_key(&line) else {
            return Ok(Auth::reject());
        };
        match self.authorizer.user_for_key(&info.fingerprint).await {
            Some(user) => {
                self.user = Some(user);
                self.fingerprint = Some(info.fingerprint);
                Ok(Auth::Accept)
            }
            None => Ok(Auth::reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).to_string();
        let Some((service, repo)) = command.split_once(' ') else {
            return self
                .fail(
                    channel,
                    session,
                    format!("only git push and fetch are allowed, not `{command}`"),
                )
                .await;
        };
        let Some(service) = GitService::parse(service.trim()) else {
            return self
                .fail(
                    channel,
                    session,
                    format!("only git push and fetch are allowed, not `{command}`"),
                )
                .await;
        };
        let Some(app) = app_from_repo_path(repo) else {
            return self
                .fail(channel, session, format!("{repo} is not an app repository"))
                .await;
        };
        let Some(user) = self.user.clone() else {
            return self
                .fail(channel, session, "not authenticated".into())
                .await;
        };
        let app_uuid = match self.authorizer.authorize(&user, &app).await {
            Ok(app_uuid) => app_uuid,
            Err(message) => return self.fail(channel, session, message).await,
        };
        let context = PushContext {
            app,
            user,
            app_uuid,
            fingerprint: self.fingerprint.clone(),
            connection: self.peer.map(|p| p.to_string()).unwrap_or_default(),
        };
        let mut process = match self.repos.start(service, &context, false).await {
            Ok(process) => process,
            Err(error) => return self.fail(channel, session, error.to_string()).await,
        };
        session.channel_success(channel)?;
        let stdin = process.child.stdin.take().expect("stdin is piped");
        let mut stdout = process.child.stdout.take().expect("stdout is piped");
        let mut stderr = process.child.stderr.take().expect("stderr is piped");
        self.stdins.insert(channel, stdin);
        let handle = session.handle();
        tokio::spawn(async move {
            // Own the whole process (its push ticket included) until git exits.
            let mut process = process;
            let errors = {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(n) = stderr.read(&mut buffer).await {
                        if n == 0
                            || handle
                                .extended_data(channel, 1, buffer[..n].to_vec())
                                .await
                                .is_err()
                        {
                            break;
                        }
                    }
                })
            };
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buffer).await {
                if n == 0 || handle.data(channel, buffer[..n].to_vec()).await.is_err() {
                    break;
                }
            }
            let _ = errors.await;
            let status = process
                .child
                .wait()
                .await
                .ok()
                .and_then(|s| s.code())
                .unwrap_or(1);
            let _ = handle.exit_status_request(channel, status as u32).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(stdin) = self.stdins.get_mut(&channel) {
            if stdin.write_all(data).await.is_err() {
                self.stdins.remove(&channel);
            }
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(mut stdin) = self.stdins.remove(&channel) {
            let _ = stdin.shutdown().await;
        }
        Ok(())
    }
}
