//! The build pipeline against real buildpack scripts and real files.

use deis_builder::slug::{unpack, SlugLimits};
use deis_builder::slug_store::SlugStore;
use deis_builder::{BuildError, BuildRequest, Builder, BuilderSettings};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Builder settings with data and slugs (a local blob directory) under `root/<name>`.
fn settings_in(root: &Path, name: &str) -> BuilderSettings {
    let data = root.join(name);
    let slugs = SlugStore::local(data.join("blobs")).unwrap();
    BuilderSettings::new(data, slugs)
}

fn script(path: &Path, body: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A buildpack that detects apps with a `hello.txt`, counts its runs in the cache and
/// declares a default `web` type.
fn counting_buildpack(root: &Path) -> PathBuf {
    let pack = root.join("buildpacks/hello");
    script(
        &pack.join("bin/detect"),
        "[ -f \"$1/hello.txt\" ] && echo Hello",
    );
    script(
        &pack.join("bin/compile"),
        "echo \"-----> compiling with $(cat $3/GREETING)\"\n\
         n=$(cat \"$2/runs\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$2/runs\"\n\
         echo \"       cache run $n\"\n\
         echo built > \"$1/built.txt\"",
    );
    script(
        &pack.join("bin/release"),
        "cat <<'YAML'\n---\ndefault_process_types:\n  web: ./serve $PORT\nYAML",
    );
    pack
}

fn source(root: &Path, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(format!("src-{}", files.len()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
    dir
}

async fn run(
    builder: &Builder,
    app: &str,
    dir: &Path,
    env: BTreeMap<String, String>,
) -> (Result<deis_builder::BuildOutput, BuildError>, Vec<String>) {
    let (log, mut lines) = mpsc::channel(1024);
    let request = BuildRequest {
        app: app.into(),
        sha: "abc1234".into(),
        source_dir: dir.to_path_buf(),
        env,
    };
    let result = builder.build(&request, &log).await;
    drop(log);
    let mut out = Vec::new();
    while let Some(line) = lines.recv().await {
        out.push(line);
    }
    (result, out)
}

#[tokio::test]
async fn a_procfile_app_builds_with_the_builtin_buildpack() {
    let root = tempfile::tempdir().unwrap();
    let builder = Builder::new(settings_in(root.path(), "data"));
    let dir = source(
        root.path(),
        &[
            ("Procfile", "web: ./serve\nworker: ./work\n"),
            ("serve", "x"),
        ],
    );
    let (result, lines) = run(&builder, "plain", &dir, BTreeMap::new()).await;
    let output = result.unwrap();
    assert_eq!(output.buildpack, "Procfile");
    assert_eq!(
        output.procfile.keys().collect::<Vec<_>>(),
        ["web", "worker"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Procfile declares types -> web, worker")),
        "{lines:?}"
    );
    let out = root.path().join("unpacked");
    let slug = root.path().join("slug.tgz");
    builder.slugs().download(&output.slug, &slug).await.unwrap();
    unpack(&slug, &out).unwrap();
    assert_eq!(fs::read_to_string(out.join("serve")).unwrap(), "x");
}

#[tokio::test]
async fn a_detected_buildpack_compiles_with_a_cache_and_env_dir() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = settings_in(root.path(), "data");
    settings.buildpacks = vec![
        root.path().join("buildpacks/none"),
        counting_buildpack(root.path()),
    ];
    let builder = Builder::new(settings);
    let env = BTreeMap::from([("GREETING".to_string(), "hi there".to_string())]);
    let dir = source(root.path(), &[("hello.txt", "x")]);
    let (result, lines) = run(&builder, "hello", &dir, env.clone()).await;
    let output = result.unwrap();
    assert_eq!(output.buildpack, "Hello");
    assert_eq!(output.procfile["web"], "./serve $PORT");
    assert!(
        lines.contains(&"-----> compiling with hi there".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"       cache run 1".to_string()),
        "{lines:?}"
    );
    // A second build reuses the cache.
    let dir = source(
        root.path(),
        &[("hello.txt", "x"), ("Procfile", "worker: ./w")],
    );
    let (result, lines) = run(&builder, "hello", &dir, env).await;
    let output = result.unwrap();
    assert!(
        lines.contains(&"       cache run 2".to_string()),
        "{lines:?}"
    );
    assert_eq!(
        output.procfile.len(),
        2,
        "the Procfile adds to the buildpack defaults"
    );
    let out = root.path().join("unpacked");
    let slug = root.path().join("slug.tgz");
    builder.slugs().download(&output.slug, &slug).await.unwrap();
    unpack(&slug, &out).unwrap();
    assert_eq!(
        fs::read_to_string(out.join("built.txt")).unwrap().trim(),
        "built"
    );
}

#[tokio::test]
async fn buildpack_url_names_a_local_buildpack() {
    let root = tempfile::tempdir().unwrap();
    let pack = counting_buildpack(root.path());
    let builder = Builder::new(settings_in(root.path(), "data"));
    let env = BTreeMap::from([
        ("BUILDPACK_URL".to_string(), pack.display().to_string()),
        ("GREETING".to_string(), "url".to_string()),
    ]);
    let dir = source(root.path(), &[("other.txt", "no hello here")]);
    let (result, _) = run(&builder, "byurl", &dir, env).await;
    assert_eq!(result.unwrap().buildpack, "hello");
    let bad = BTreeMap::from([(
        "BUILDPACK_URL".to_string(),
        "--upload-pack=evil".to_string(),
    )]);
    let (result, _) = run(&builder, "byurl", &dir, bad).await;
    assert!(
        matches!(result, Err(BuildError::BuildpackUrl(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn buildpack_url_clones_a_git_repository_at_a_ref() {
    let root = tempfile::tempdir().unwrap();
    let pack = counting_buildpack(root.path());
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(&pack)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["-c", "user.email=t@t", "-c", "user.name=t", "add", "."]);
    git(&[
        "-c",
        "user.email=t@t",
        "-c",
        "user.name=t",
        "commit",
        "-qm",
        "pack",
    ]);
    git(&["tag", "v1"]);
    let builder = Builder::new(settings_in(root.path(), "data"));
    let env = BTreeMap::from([
        (
            "BUILDPACK_URL".to_string(),
            format!("file://{}#v1", pack.display()),
        ),
        ("GREETING".to_string(), "git".to_string()),
    ]);
    let dir = source(root.path(), &[("x", "y")]);
    let (result, lines) = run(&builder, "bygit", &dir, env).await;
    assert!(result.is_ok(), "{result:?} {lines:?}");
    assert!(
        lines.contains(&"-----> compiling with git".to_string()),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_dockerfile_app_without_a_procfile_gets_a_clear_refusal() {
    let root = tempfile::tempdir().unwrap();
    let builder = Builder::new(settings_in(root.path(), "data"));
    let dir = source(root.path(), &[("Dockerfile", "FROM scratch\n")]);
    let (result, _) = run(&builder, "docker", &dir, BTreeMap::new()).await;
    assert!(
        matches!(result, Err(BuildError::Rejected(ref m)) if m.contains("Dockerfile")),
        "{result:?}"
    );
}

#[tokio::test]
async fn failures_are_reported_clearly() {
    let root = tempfile::tempdir().unwrap();
    let broken = root.path().join("buildpacks/broken");
    script(&broken.join("bin/detect"), "echo Broken");
    script(&broken.join("bin/compile"), "echo 'oh no' >&2; exit 7");
    let mut settings = settings_in(root.path(), "data");
    settings.buildpacks = vec![broken];
    let builder = Builder::new(settings);
    let dir = source(root.path(), &[("a", "b")]);
    let (result, lines) = run(&builder, "fails", &dir, BTreeMap::new()).await;
    match result {
        Err(BuildError::Step {
            step: "compile",
            exit_code: Some(7),
            ..
        }) => {}
        other => panic!("expected a compile failure, got {other:?}"),
    }
    assert!(lines.contains(&"oh no".to_string()));

    let plain = Builder::new(settings_in(root.path(), "data2"));
    let (result, _) = run(
        &plain,
        "nothing",
        &source(root.path(), &[("README", "x")]),
        BTreeMap::new(),
    )
    .await;
    assert!(matches!(result, Err(BuildError::NoBuildpack)), "{result:?}");
    let (result, _) = run(
        &plain,
        "badproc",
        &source(root.path(), &[("Procfile", "web ./x")]),
        BTreeMap::new(),
    )
    .await;
    assert!(
        matches!(result, Err(BuildError::Procfile { line: 1, .. })),
        "{result:?}"
    );
    let (result, _) = run(
        &plain,
        "Bad_Name",
        &source(root.path(), &[("Procfile", "web: x")]),
        BTreeMap::new(),
    )
    .await;
    assert!(matches!(result, Err(BuildError::Rejected(_))), "{result:?}");
}

#[tokio::test]
async fn hostile_sources_are_rejected_before_anything_runs() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = settings_in(root.path(), "data");
    settings.limits = SlugLimits {
        max_file_bytes: 1024,
        max_total_bytes: 1 << 20,
    };
    let builder = Builder::new(settings);
    let dir = source(root.path(), &[("Procfile", "web: x")]);
    std::os::unix::fs::symlink("/etc/shadow", dir.join("secrets")).unwrap();
    let (result, _) = run(&builder, "evil", &dir, BTreeMap::new()).await;
    assert!(
        matches!(result, Err(BuildError::Rejected(ref m)) if m.contains("outside")),
        "{result:?}"
    );
    let dir = source(
        root.path(),
        &[("Procfile", "web: x"), ("huge", &"x".repeat(4096))],
    );
    let (result, _) = run(&builder, "huge", &dir, BTreeMap::new()).await;
    assert!(
        matches!(result, Err(BuildError::Rejected(ref m)) if m.contains("huge")),
        "{result:?}"
    );
    for app in ["evil", "huge"] {
        assert!(
            builder.slugs().list(app).await.unwrap().is_empty(),
            "no slug is stored for a rejected build of {app}"
        );
    }
}
