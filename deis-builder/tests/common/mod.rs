//! Helpers shared by the push tests.
#![allow(dead_code)]

use async_trait::async_trait;
use deis_builder::git::PushContext;
use deis_builder::hook::PushHandler;
use deis_builder::slug_store::SlugStore;
use deis_builder::{BuildOutput, BuilderSettings};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Records what the builder asked of the controller.
#[derive(Debug, Default)]
pub struct Recorder {
    pub begun: Mutex<Vec<(String, String)>>,
    pub deployed: Mutex<Vec<(String, BTreeMap<String, String>)>>,
    pub refuse_user: Option<String>,
}

#[async_trait]
impl PushHandler for Recorder {
    async fn begin(
        &self,
        push: &PushContext,
        sha: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        if self.refuse_user.as_deref() == Some(push.user.as_str()) {
            return Err(format!("{} may not push to {}", push.user, push.app));
        }
        self.begun
            .lock()
            .unwrap()
            .push((push.app.clone(), sha.to_string()));
        Ok(BTreeMap::from([("GREETING".into(), "hello".into())]))
    }

    async fn deploy(
        &self,
        push: &PushContext,
        _sha: &str,
        output: &BuildOutput,
    ) -> Result<Vec<String>, String> {
        assert!(
            output.slug.starts_with("blob:slugs/"),
            "the slug is in the slug store: {}",
            output.slug
        );
        self.deployed
            .lock()
            .unwrap()
            .push((push.app.clone(), output.procfile.clone()));
        Ok(vec![format!("done, {}:v2 deployed to Deis", push.app)])
    }
}

/// Builder settings with data under `root/data` and slugs in `root/data/blobs`.
pub fn settings_in(root: &Path) -> BuilderSettings {
    let data = root.join("data");
    let slugs = SlugStore::local(data.join("blobs")).unwrap();
    BuilderSettings::new(data, slugs)
}

pub fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(["-c", "user.email=dev@example.com", "-c", "user.name=Dev"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap()
}

pub fn app_repo(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(&dir).unwrap();
    assert!(git(&dir, &["init", "-q", "-b", "master"]).status.success());
    for (file, text) in files {
        fs::write(dir.join(file), text).unwrap();
    }
    assert!(git(&dir, &["add", "."]).status.success());
    assert!(git(&dir, &["commit", "-qm", "first"]).status.success());
    dir
}
