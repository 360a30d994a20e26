//! `git push` with a stock git and OpenSSH client over the builder's SSH server.

mod common;

use async_trait::async_trait;
use common::{app_repo, git, Recorder};
use deis_builder::git::GitRepos;
use deis_builder::hook::HookServer;
use deis_builder::ssh::{host_key, SshAuthorizer, SshServer};
use deis_builder::Builder;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Knows one key (alice's) and lets her push to `ssh-app` only.
#[derive(Debug)]
struct OneKey {
    fingerprint: String,
}

#[async_trait]
impl SshAuthorizer for OneKey {
    async fn user_for_key(&self, fingerprint: &str) -> Option<String> {
        (fingerprint == self.fingerprint).then(|| "alice".to_string())
    }

    async fn authorize(&self, user: &str, app: &str) -> Result<String, String> {
        if app == "ssh-app" {
            Ok("3f1d4c2e-5b6a-4c7d-8e9f-0a1b2c3d4e5f".into())
        } else {
            Err(format!("{user} has no permission on {app}"))
        }
    }
}

fn keygen(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

fn ssh_command(key: &Path, port: u16) -> String {
    format!(
        "ssh -i {} -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR",
        key.display()
    )
}

fn push_over_ssh(repo: &Path, key: &Path, port: u16, app: &str) -> (bool, String) {
    let out = Command::new("git")
        .args([
            "push",
            &format!("ssh://git@127.0.0.1:{port}/{app}.git"),
            "master",
        ])
        .current_dir(repo)
        .env("GIT_SSH_COMMAND", ssh_command(key, port))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_over_ssh_with_a_registered_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_alice");
    let public = keygen(&key);
    let fingerprint = deis_core::validation::ssh_public_key(public.trim())
        .unwrap()
        .fingerprint;
    let stranger = dir.path().join("id_stranger");
    keygen(&stranger);

    let recorder = Arc::new(Recorder::default());
    let hooks = HookServer::start(
        dir.path().join("builder.sock"),
        Builder::new(common::settings_in(dir.path())),
        recorder.clone(),
    )
    .await
    .unwrap();
    let repos = GitRepos::new(dir.path().join("repos"), hooks);
    let host = host_key(&dir.path().join("host/ssh_host_ed25519_key"))
        .await
        .unwrap();
    let again = host_key(&dir.path().join("host/ssh_host_ed25519_key"))
        .await
        .unwrap();
    assert_eq!(
        host.public_key(),
        again.public_key(),
        "the host key persists"
    );
    let server = SshServer::start(
        "127.0.0.1:0".parse().unwrap(),
        host,
        repos,
        Arc::new(OneKey { fingerprint }),
    )
    .await
    .unwrap();
    let port = server.address().port();
    let repo = app_repo(dir.path(), "app", &[("Procfile", "web: ./serve\n")]);

    let (ok, output) = tokio::task::spawn_blocking({
        let (repo, key) = (repo.clone(), key.clone());
        move || push_over_ssh(&repo, &key, port, "ssh-app")
    })
    .await
    .unwrap();
    assert!(ok, "{output}");
    assert!(
        output.contains("remote: done, ssh-app:v2 deployed to Deis"),
        "{output}"
    );
    assert_eq!(recorder.deployed.lock().unwrap().len(), 1);

    let (ok, output) = tokio::task::spawn_blocking({
        let (repo, key) = (repo.clone(), key.clone());
        move || push_over_ssh(&repo, &key, port, "other-app")
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(
        output.contains("alice has no permission on other-app"),
        "{output}"
    );

    let (ok, output) = tokio::task::spawn_blocking({
        let repo = repo.clone();
        move || push_over_ssh(&repo, &stranger, port, "ssh-app")
    })
    .await
    .unwrap();
    assert!(!ok, "an unknown key is refused: {output}");
    assert!(output.contains("Permission denied"), "{output}");

    let shell = tokio::task::spawn_blocking(move || {
        let mut args: Vec<String> = ssh_command(&key, port)
            .split(' ')
            .skip(1)
            .map(String::from)
            .collect();
        args.extend([
            "git@127.0.0.1".to_string(),
            "ls".to_string(),
            "/".to_string(),
        ]);
        Command::new("ssh").args(&args).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!shell.status.success());
    assert!(String::from_utf8_lossy(&shell.stderr).contains("only git push and fetch are allowed"));
    let _ = git(&repo, &["status"]);
}
