//! Dockerfile builds: a repository with a `Dockerfile` at its root is built into a container
//! image by the Docker Engine the scheduler runs images from (bollard's build API), as
//! Deis v1's builder did.
//!
//! - The build context is the pushed tree as a tar, less what `.dockerignore` names
//!   (patterns are relative to the root, `!` re-includes, `**` spans directories; the
//!   `Dockerfile` and `.dockerignore` are always sent, as the docker CLI does).
//! - With a registry ([`ImageBuilder::registry`], a loopback `docker-registry` on the Swarm
//!   topology), a built image that has something to run is also tagged
//!   `<registry>/<app>:git-<sha7>` and pushed there ([`ImageBuilder::push_built`]), and
//!   that reference is what the release runs, so every node can fetch it.
//!   [`ImageBuilder::publish`] does the same for an image deployed with `deis pull`.
//! - The image is tagged `<app>:git-<sha7>` and labelled `io.deis.app`/`io.deis.sha`; the
//!   build runs with the classic builder, `rm`/`forcerm` (no intermediate containers left,
//!   even after a failed step) and no pull: the base image must be on the engine already.
//! - The build output (`Step 1/3 : FROM …`) streams to the pusher line by line; an error
//!   reported by the engine fails the build with that message, so the push is rejected.
//! - Process types follow Deis v1: `CMD` (or `ENTRYPOINT`) is the `cmd` type, which runs the
//!   image's own command; a `Procfile`, if present, adds types. The lowest `EXPOSE`d TCP
//!   port is the port the scheduler routes to (see the Docker scheduler).

use crate::buildpack::BuildLog;
use crate::BuildError;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, PushImageOptionsBuilder,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The label naming the app an image was built for.
pub const LABEL_APP: &str = "io.deis.app";
/// The label naming the commit an image was built from.
pub const LABEL_SHA: &str = "io.deis.sha";

/// Where Dockerfile apps are built: the Docker Engine the scheduler runs images from.
///
/// Set in [`crate::BuilderSettings::image_builder`] when the platform's scheduler runs
/// images (Docker or Swarm); without it, Dockerfile apps are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBuilder {
    /// The engine's unix socket.
    pub socket: String,
    /// The registry (`host:port`, e.g. `127.0.0.1:5000`) built images are pushed to;
    /// `None` keeps them on the engine only.
    pub registry: Option<String>,
}

impl ImageBuilder {
    /// Builds on the engine behind this unix socket.
    pub fn new(socket: impl Into<String>) -> Self {
        ImageBuilder {
            socket: socket.into(),
            registry: None,
        }
    }

    /// Pushes what it builds to `registry` (`host:port`).
    pub fn with_registry(mut self, registry: impl Into<String>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    async fn connect(&self) -> Result<Docker, BuildError> {
        let unreachable = |e: bollard::errors::Error| {
            BuildError::ImageBuild(format!(
                "cannot reach the Docker Engine at {}: {e}",
                self.socket
            ))
        };
        Docker::connect_with_unix(&self.socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(unreachable)?
            .negotiate_version()
            .await
            .map_err(unreachable)
    }

    /// Builds the image of `app` at `sha` from `context_dir` (its root holds the
    /// `Dockerfile`), streaming the engine's output to `log`. The context tar is staged in
    /// `staging` and removed afterwards.
    pub async fn build(
        &self,
        app: &str,
        sha: &str,
        context_dir: &Path,
        staging: &Path,
        log: &BuildLog,
        timeout: Duration,
    ) -> Result<BuiltImage, BuildError> {
        let docker = self.connect().await?;
        let tag = image_tag(app, sha);
        let dir = context_dir.to_path_buf();
        let target = staging.to_path_buf();
        tokio::task::spawn_blocking(move || write_context(&dir, &target))
            .await
            .map_err(|e| BuildError::Rejected(format!("packing the build context: {e}")))??;
        let result =
            tokio::time::timeout(timeout, run_build(&docker, &tag, app, sha, staging, log))
                .await
                .unwrap_or(Err(BuildError::Timeout {
                    step: "docker build",
                    seconds: timeout.as_secs(),
                }));
        let _ = tokio::fs::remove_file(staging).await;
        result?;
        let inspect = docker.inspect_image(&tag).await.map_err(|e| {
            BuildError::ImageBuild(format!("the built image {tag} cannot be inspected: {e}"))
        })?;
        let config = inspect.config.unwrap_or_default();
        let runs_something = config.cmd.as_ref().is_some_and(|c| !c.is_empty())
            || config.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
        Ok(BuiltImage {
            exposed_port: lowest_tcp_port(config.exposed_ports.as_deref().unwrap_or_default()),
            has_command: runs_something,
            image: tag,
        })
    }

    /// Pushes a built image (`<app>:<version>`) to the registry as
    /// `<registry>/<app>:<version>` and returns that reference, the one the release runs;
    /// without a registry the image stays as it is.
    pub async fn push_built(
        &self,
        app: &str,
        image: &str,
        log: &BuildLog,
        timeout: Duration,
    ) -> Result<String, BuildError> {
        let Some(registry) = &self.registry else {
            return Ok(image.to_string());
        };
        let docker = self.connect().await?;
        let _ = log
            .send(format!(
                "-----> Pushing the image to the registry {registry}"
            ))
            .await;
        let (_, version) = image.split_once(':').unwrap_or((image, "latest"));
        tokio::time::timeout(
            timeout,
            push_to_registry(&docker, image, registry, app, version),
        )
        .await
        .unwrap_or(Err(BuildError::Timeout {
            step: "docker push",
            seconds: timeout.as_secs(),
        }))
    }

    /// Publishes `source` (an image on the engine, or in a registry on loopback, which the
    /// engine pulls it from) to the registry as
    /// `<registry>/<app>:id-<12 hex digits of the image id>` and returns that reference, as
    /// Deis v1's controller did for `deis pull` (the tag names the content, so publishing
    /// the same image twice is one tag). An image already in the registry, or any image
    /// without a registry, is returned unchanged once the engine has it.
    pub async fn publish(&self, source: &str, app: &str) -> Result<String, BuildError> {
        let docker = self.connect().await?;
        let inspect = match docker.inspect_image(source).await {
            Ok(inspect) => inspect,
            Err(_) => {
                if !on_loopback_registry(source) {
                    return Err(BuildError::ImageBuild(format!(
                        "the image {source} is not on the engine, and images are pulled only from registries on loopback (127.0.0.1:<port>/<name>): build or load it on the engine first"
                    )));
                }
                pull(&docker, source).await?;
                docker.inspect_image(source).await.map_err(|e| {
                    BuildError::ImageBuild(format!("inspecting {source}: {}", engine_message(e)))
                })?
            }
        };
        let Some(registry) = &self.registry else {
            return Ok(source.to_string());
        };
        if source.starts_with(&format!("{registry}/")) {
            return Ok(source.to_string());
        }
        let id = inspect.id.unwrap_or_default();
        let digits: String = id.trim_start_matches("sha256:").chars().take(12).collect();
        push_to_registry(&docker, source, registry, app, &format!("id-{digits}")).await
    }

    /// The app a builder made `image` for (its `io.deis.app` label); `None` for an image
    /// with no such label or not on the engine.
    pub async fn app_label(&self, image: &str) -> Result<Option<String>, BuildError> {
        let docker = self.connect().await?;
        match docker.inspect_image(image).await {
            Ok(inspect) => Ok(inspect
                .config
                .and_then(|config| config.labels)
                .and_then(|labels| labels.get(LABEL_APP).cloned())),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(BuildError::ImageBuild(format!(
                "inspecting {image}: {}",
                engine_message(e)
            ))),
        }
    }

    /// Removes an image this builder made (e.g. one no release names); a gone one is fine.
    pub async fn remove(&self, image: &str) -> Result<(), BuildError> {
        let docker = self.connect().await?;
        let options = RemoveImageOptionsBuilder::new().noprune(false).build();
        match docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(BuildError::ImageBuild(format!("removing {image}: {e}"))),
        }
    }
}

impl ImageBuilder {
    /// Removes every image built for `app` (labelled `io.deis.app=<app>`), when the app is
    /// destroyed. Returns how many were removed; one still in use is an error.
    pub async fn remove_app_images(&self, app: &str) -> Result<usize, BuildError> {
        let docker = self.connect().await?;
        let filters = HashMap::from([("label", vec![format!("{LABEL_APP}={app}")])]);
        let options = bollard::query_parameters::ListImagesOptionsBuilder::new()
            .filters(&filters)
            .build();
        let images = docker
            .list_images(Some(options))
            .await
            .map_err(|e| BuildError::ImageBuild(format!("listing {app}'s images: {e}")))?;
        let mut removed = 0;
        for image in images {
            // Every tag of the image goes with it (one per commit built).
            let options = RemoveImageOptionsBuilder::new().force(true).build();
            match docker.remove_image(&image.id, Some(options), None).await {
                Ok(_) => removed += 1,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => {
                    return Err(BuildError::ImageBuild(format!(
                        "removing {app}'s image {}: {}",
                        image.id,
                        engine_message(e)
                    )))
                }
            }
        }
        Ok(removed)
    }
}

/// `<registry>/<app>:<version>`: where `app`'s image of `version` lives in `registry`.
pub fn registry_reference(registry: &str, app: &str, version: &str) -> String {
    format!("{registry}/{app}:{version}")
}

/// Checks a registry address: `host:port` (no scheme, no path), as image references take
/// it.
pub fn check_registry(address: &str) -> Result<(), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("registry {address:?}: expected host:port, e.g. 127.0.0.1:5000"))?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    if !host_ok || !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err(format!(
            "registry {address:?}: expected host:port, e.g. 127.0.0.1:5000"
        ));
    }
    Ok(())
}

/// Tags `source` as `<registry>/<app>:<version>` on the engine and pushes it; the
/// registry reference.
async fn push_to_registry(
    docker: &Docker,
    source: &str,
    registry: &str,
    app: &str,
    version: &str,
) -> Result<String, BuildError> {
    let repository = format!("{registry}/{app}");
    let options = TagImageOptionsBuilder::new()
        .repo(&repository)
        .tag(version)
        .build();
    docker.tag_image(source, Some(options)).await.map_err(|e| {
        BuildError::ImageBuild(format!(
            "tagging {source} as {repository}:{version}: {}",
            engine_message(e)
        ))
    })?;
    let options = PushImageOptionsBuilder::new().tag(version).build();
    // A registry without authentication still wants the header.
    let stream = docker.push_image(
        &repository,
        Some(options),
        Some(bollard::auth::DockerCredentials::default()),
    );
    drain(stream, &format!("pushing {repository}:{version}"), |info| {
        info.error_detail.and_then(|d| d.message)
    })
    .await?;
    Ok(registry_reference(registry, app, version))
}

/// Whether `image` names a registry on loopback (`127.0.0.1:5000/app:v1`,
/// `localhost:5000/app`), the only ones images are pulled from.
fn on_loopback_registry(image: &str) -> bool {
    let Some((registry, _)) = image.split_once('/') else {
        return false;
    };
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Has the engine pull `image` (from the registry its name points at).
async fn pull(docker: &Docker, image: &str) -> Result<(), BuildError> {
    let options = CreateImageOptionsBuilder::new().from_image(image).build();
    let stream = docker.create_image(
        Some(options),
        None,
        Some(bollard::auth::DockerCredentials::default()),
    );
    let what = format!("the image {image} is not on the engine and cannot be pulled");
    drain(stream, &what, |info| {
        info.error_detail.and_then(|d| d.message)
    })
    .await
}

/// Reads an engine progress stream (pull, push) to its end; the first error, from the
/// connection or reported in an item (`error_of`), fails with `<what>: <message>`.
async fn drain<T>(
    mut stream: impl futures::Stream<Item = Result<T, bollard::errors::Error>> + Unpin,
    what: &str,
    error_of: impl Fn(T) -> Option<String>,
) -> Result<(), BuildError> {
    while let Some(item) = stream.next().await {
        let info =
            item.map_err(|e| BuildError::ImageBuild(format!("{what}: {}", engine_message(e))))?;
        if let Some(message) = error_of(info).filter(|m| !m.is_empty()) {
            return Err(BuildError::ImageBuild(format!(
                "{what}: {}",
                message.trim()
            )));
        }
    }
    Ok(())
}

/// What a Dockerfile build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image reference on the engine, `<app>:git-<sha7>` (see
    /// [`ImageBuilder::push_built`] for the registry's).
    pub image: String,
    /// The lowest TCP port the image `EXPOSE`s, if any.
    pub exposed_port: Option<u16>,
    /// Whether the image has a `CMD` or `ENTRYPOINT` (the `cmd` process type).
    pub has_command: bool,
}

/// The tag of `app`'s image built from `sha`: `<app>:git-<sha7>`.
pub fn image_tag(app: &str, sha: &str) -> String {
    let short: String = sha.chars().take(7).collect();
    format!("{app}:git-{}", short.to_lowercase())
}

async fn run_build(
    docker: &Docker,
    tag: &str,
    app: &str,
    sha: &str,
    context: &Path,
    log: &BuildLog,
) -> Result<(), BuildError> {
    let labels = HashMap::from([(LABEL_APP, app), (LABEL_SHA, sha)]);
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .labels(&labels)
        .build();
    let file = tokio::fs::File::open(context)
        .await
        .map_err(BuildError::io("reading the build context"))?;
    let body =
        tokio_util::io::ReaderStream::new(file).filter_map(|chunk| async move { chunk.ok() });
    let mut stream = docker.build_image(options, None, Some(bollard::body_stream(body)));
    let mut pending = String::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| BuildError::ImageBuild(engine_message(e)))?;
        if let Some(text) = info.stream {
            pending.push_str(&text);
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                let line = line.trim_end();
                if !line.is_empty() {
                    let _ = log.send(format!("       {line}")).await;
                }
            }
        }
        let error = info
            .error_detail
            .and_then(|d| d.message)
            .filter(|m| !m.is_empty());
        if let Some(message) = error {
            return Err(BuildError::ImageBuild(message.trim().to_string()));
        }
    }
    let rest = pending.trim_end();
    if !rest.is_empty() {
        let _ = log.send(format!("       {rest}")).await;
    }
    Ok(())
}

fn engine_message(error: bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        bollard::errors::Error::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}

fn lowest_tcp_port(exposed: &[String]) -> Option<u16> {
    exposed
        .iter()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            (proto == "tcp").then(|| port.parse::<u16>().ok()).flatten()
        })
        .min()
}

/// Writes the build context of `root` to `destination` as a tar: every file and symlink
/// (as a link), less what `.dockerignore` excludes, `.git` never included.
pub fn write_context(root: &Path, destination: &Path) -> Result<(), BuildError> {
    let matcher = dockerignore(root)?;
    let file =
        std::fs::File::create(destination).map_err(BuildError::io("creating the build context"))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.follow_symlinks(false);
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(BuildError::io(format!("reading {}", dir.display())))?
            .collect::<Result<_, _>>()
            .map_err(BuildError::io("reading the build directory"))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .map_err(|_| BuildError::Rejected("a path outside the build".into()))?
                .to_path_buf();
            if relative == Path::new(".git") {
                continue;
            }
            let file_type = entry
                .file_type()
                .map_err(BuildError::io("reading a file type"))?;
            let always =
                relative == Path::new("Dockerfile") || relative == Path::new(".dockerignore");
            let ignored = !always
                && matcher
                    .matched_path_or_any_parents(&path, file_type.is_dir())
                    .is_ignore();
            if file_type.is_dir() {
                // An excluded directory may still hold a re-included (`!`) path.
                if !ignored || matcher.num_whitelists() > 0 {
                    if !ignored {
                        tar.append_dir(&relative, &path)
                            .map_err(BuildError::io("packing the build context"))?;
                    }
                    pending.push(path);
                }
                continue;
            }
            if ignored {
                continue;
            }
            tar.append_path_with_name(&path, &relative)
                .map_err(BuildError::io("packing the build context"))?;
        }
    }
    tar.into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(BuildError::io("packing the build context"))
}

/// `.dockerignore` as a matcher: its patterns are relative to the context root, so each is
/// anchored there (gitignore would match a bare name at any depth).
fn dockerignore(root: &Path) -> Result<ignore::gitignore::Gitignore, BuildError> {
    let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
    let text = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(BuildError::io("reading .dockerignore")(e)),
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negated, pattern) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        let anchored = format!("{}/{pattern}", if negated { "!" } else { "" });
        builder
            .add_line(None, &anchored)
            .map_err(|e| BuildError::Rejected(format!(".dockerignore: {e}")))?;
    }
    builder
        .build()
        .map_err(|e| BuildError::Rejected(format!(".dockerignore: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_pulled_only_from_loopback_registries() {
        assert!(on_loopback_registry("127.0.0.1:5000/app:v1"));
        assert!(on_loopback_registry("localhost:5000/app"));
        assert!(!on_loopback_registry("app:v1"));
        assert!(!on_loopback_registry("library/busybox:latest"));
        assert!(!on_loopback_registry("registry.example.com:5000/app:v1"));
        assert!(check_registry("127.0.0.1:5000").is_ok());
        assert!(check_registry("http://127.0.0.1:5000").is_err());
        assert!(check_registry("127.0.0.1").is_err());
        assert!(check_registry("127.0.0.1:0").is_err());
        assert_eq!(
            registry_reference("127.0.0.1:5000", "go", "git-abc1234"),
            "127.0.0.1:5000/go:git-abc1234"
        );
    }

    fn entries(archive: &Path) -> Vec<String> {
        let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
        let mut names: Vec<String> = tar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_context_leaves_out_what_dockerignore_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        for (path, text) in [
            ("Dockerfile", "FROM scratch\n"),
            (
                ".dockerignore",
                "# comment\nsecret.txt\nlogs\n*.md\n!KEEP.md\nDockerfile\n",
            ),
            ("secret.txt", "x"),
            ("sub/secret.txt", "kept: patterns are anchored at the root"),
            ("logs/a.log", "x"),
            ("README.md", "x"),
            ("KEEP.md", "x"),
            ("sub/NOTES.md", "kept"),
            ("main.sh", "x"),
            (".git/HEAD", "x"),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::os::unix::fs::symlink("main.sh", root.join("link.sh")).unwrap();
        let archive = dir.path().join("context.tar");
        write_context(&root, &archive).unwrap();
        assert_eq!(
            entries(&archive),
            [
                ".dockerignore",
                "Dockerfile",
                "KEEP.md",
                "link.sh",
                "main.sh",
                "sub",
                "sub/NOTES.md",
                "sub/secret.txt"
            ]
        );
    }

    #[test]
    fn a_bad_dockerignore_pattern_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "[z-a]\n").unwrap();
        let error = dockerignore(dir.path()).unwrap_err();
        assert!(error.to_string().contains(".dockerignore"), "{error}");
    }

    #[test]
    fn tags_and_ports() {
        assert_eq!(image_tag("go", "ABCDEF0123456"), "go:git-abcdef0");
        let ports = ["8080/tcp", "53/udp", "9000/tcp", "nonsense"].map(String::from);
        assert_eq!(lowest_tcp_port(&ports), Some(8080));
        assert_eq!(lowest_tcp_port(&[]), None);
    }
}
