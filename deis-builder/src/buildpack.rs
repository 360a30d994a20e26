//! The buildpack API: `bin/detect BUILD_DIR`, `bin/compile BUILD_DIR CACHE_DIR ENV_DIR`,
//! `bin/release BUILD_DIR`, run as child processes with their output streamed.

use crate::BuildError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// Where build output goes, line by line (the pusher sees it as `remote:` lines).
pub type BuildLog = mpsc::Sender<String>;

/// A buildpack to build an app with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buildpack {
    /// A buildpack directory with `bin/detect`, `bin/compile` and `bin/release`.
    Directory {
        /// Its name, as `bin/detect` printed it or the directory name.
        name: String,
        /// The directory.
        path: PathBuf,
    },
    /// The built-in procfile buildpack: the app runs as it is, from its Procfile.
    Procfile,
}

impl Buildpack {
    /// The name shown to the pusher.
    pub fn name(&self) -> &str {
        match self {
            Buildpack::Directory { name, .. } => name,
            Buildpack::Procfile => "Procfile",
        }
    }
}

/// The output and exit status of one step.
#[derive(Debug)]
pub struct StepResult {
    /// The exit code (`None` when killed by a signal).
    pub exit_code: Option<i32>,
    /// What the step printed on stdout, when captured.
    pub stdout: String,
}

/// Runs `program args…` in `dir` with exactly `env` (plus `PATH`), streaming stderr (and
/// stdout unless `capture_stdout`) to `log`, killing it after `timeout`.
pub async fn run_step(
    step: &'static str,
    program: &Path,
    args: &[&Path],
    env: &BTreeMap<String, String>,
    log: &BuildLog,
    capture_stdout: bool,
    timeout: Duration,
) -> Result<StepResult, BuildError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(BuildError::io(format!("starting {}", program.display())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let captured = tokio::spawn(forward(stdout, log.clone(), capture_stdout));
    let streamed = tokio::spawn(forward(stderr, log.clone(), false));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(BuildError::io(format!("waiting for {step}")))?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(BuildError::Timeout {
                step,
                seconds: timeout.as_secs(),
            });
        }
    };
    let stdout = captured.await.unwrap_or_default();
    let _ = streamed.await;
    Ok(StepResult {
        exit_code: status.code(),
        stdout,
    })
}

async fn forward(stream: impl AsyncRead + Unpin, log: BuildLog, capture: bool) -> String {
    let mut lines = BufReader::new(stream).lines();
    let mut captured = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if capture {
            captured.push_str(&line);
            captured.push('\n');
        } else {
            let _ = log.send(line).await;
        }
    }
    captured
}

/// Runs `bin/detect` of each buildpack in order and returns the first that accepts the
/// app; falls back to the built-in procfile buildpack when the app has a Procfile.
pub async fn detect(
    candidates: &[PathBuf],
    build_dir: &Path,
    log: &BuildLog,
    timeout: Duration,
) -> Result<Buildpack, BuildError> {
    for path in candidates {
        let detect = path.join("bin/detect");
        if !detect.is_file() {
            continue;
        }
        let result = run_step(
            "detect",
            &detect,
            &[build_dir],
            &BTreeMap::new(),
            log,
            true,
            timeout,
        )
        .await?;
        if result.exit_code == Some(0) {
            let printed = result
                .stdout
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let name = if printed.is_empty() {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "buildpack".into())
            } else {
                printed
            };
            return Ok(Buildpack::Directory {
                name,
                path: path.clone(),
            });
        }
    }
    if build_dir.join("Procfile").is_file() {
        return Ok(Buildpack::Procfile);
    }
    Err(BuildError::NoBuildpack)
}

/// Resolves `BUILDPACK_URL`: a local directory, or a git URL (optionally `url#ref`) cloned
/// shallowly into `checkout_root`.
pub async fn fetch(
    url: &str,
    checkout_root: &Path,
    log: &BuildLog,
    timeout: Duration,
) -> Result<Buildpack, BuildError> {
    let local = Path::new(url.strip_prefix("file://").unwrap_or(url));
    if local.is_absolute() && !url.contains('#') {
        if !local.join("bin/compile").is_file() {
            return Err(BuildError::BuildpackUrl(format!(
                "{url} has no bin/compile"
            )));
        }
        return Ok(Buildpack::Directory {
            name: local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: local.to_path_buf(),
        });
    }
    let (repository, reference) = match url.split_once('#') {
        Some((repository, reference)) => (repository, Some(reference)),
        None => (url, None),
    };
    let allowed = ["https://", "http://", "git://", "ssh://", "file://", "/"];
    if repository.starts_with('-') || !allowed.iter().any(|p| repository.starts_with(p)) {
        return Err(BuildError::BuildpackUrl(format!(
            "{url} is neither a local path nor a git URL"
        )));
    }
    let checkout = checkout_root.join(sanitize(url));
    if checkout.exists() {
        std::fs::remove_dir_all(&checkout)
            .map_err(BuildError::io("clearing an old buildpack checkout"))?;
    }
    std::fs::create_dir_all(checkout_root)
        .map_err(BuildError::io("creating the buildpack directory"))?;
    let _ = log
        .send(format!("-----> Fetching buildpack {repository}"))
        .await;
    let git = crate::git::git_binary();
    let mut args: Vec<std::ffi::OsString> = vec![
        "clone".into(),
        "--quiet".into(),
        "--depth".into(),
        "1".into(),
    ];
    if let Some(reference) = reference {
        args.push("--branch".into());
        args.push(reference.into());
    }
    args.push("--".into());
    args.push(repository.into());
    args.push(checkout.clone().into());
    let arg_paths: Vec<PathBuf> = args.iter().map(PathBuf::from).collect();
    let arg_refs: Vec<&Path> = arg_paths.iter().map(PathBuf::as_path).collect();
    let result = run_step(
        "fetch",
        &git,
        &arg_refs,
        &BTreeMap::new(),
        log,
        false,
        timeout,
    )
    .await?;
    if result.exit_code != Some(0) || !checkout.join("bin/compile").is_file() {
        return Err(BuildError::BuildpackUrl(format!(
            "could not fetch a buildpack from {url}"
        )));
    }
    Ok(Buildpack::Directory {
        name: repository
            .rsplit('/')
            .next()
            .unwrap_or(repository)
            .trim_end_matches(".git")
            .to_string(),
        path: checkout,
    })
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
