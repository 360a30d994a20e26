//! The platform image, built from files on this machine (nothing is pulled): `deisd`,
//! `etcd`, `git` (with its receive/upload helpers), `ssh-keygen`, `curl` (the builder's git
//! hooks call it) and a static busybox (every applet linked into `/bin`), each with the
//! shared libraries `ldd` lists, on `FROM scratch`; and, for the Swarm topology, Debian's
//! `docker-registry` and Debian's PostgreSQL server (`postgres`, `initdb`, its modules and
//! share directory, a `postgres` user with uid 70 owning `/var/lib/postgresql`). The Swarm
//! topology's slug runner ([`ImageSource::runner`]) is the same recipe with busybox and
//! `curl` only.

use crate::{CtlError, CtlResult};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The binaries the image is made of.
#[derive(Debug, Clone)]
pub struct ImageSource {
    /// The `deisd` binary (built with the `etcd` feature).
    pub deisd: PathBuf,
    /// Whether `deisd` goes in: `false` for the slug runner ([`ImageSource::runner`]).
    pub platform: bool,
    /// Other binaries copied to the same path inside the image (etcd, git, ssh-keygen, curl),
    /// with their libraries; missing optional ones are left out.
    pub extras: Vec<PathBuf>,
    /// Debian's PostgreSQL (`/usr/lib/postgresql/<version>`), when the image must run the
    /// platform's database.
    pub postgres: Option<PostgresFiles>,
}

/// Where Debian keeps one PostgreSQL version's server.
#[derive(Debug, Clone)]
pub struct PostgresFiles {
    /// `/usr/lib/postgresql/<version>`: `bin/` and `lib/`.
    pub lib_dir: PathBuf,
    /// `/usr/share/postgresql/<version>`.
    pub share_dir: PathBuf,
}

/// The uid and gid of the `postgres` user inside the image.
pub const POSTGRES_UID: u64 = 70;

impl PostgresFiles {
    /// The newest PostgreSQL server installed (`apt-get install postgresql`).
    pub fn installed() -> CtlResult<PostgresFiles> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| {
                CtlError(format!(
                    "PostgreSQL is not installed (/usr/lib/postgresql: {e}); apt-get install postgresql"
                ))
            })?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let version = path.file_name()?.to_str()?.parse().ok()?;
                path.join("bin/postgres").is_file().then_some((version, path))
            })
            .collect();
        versions.sort();
        let (version, lib_dir) = versions.pop().ok_or_else(|| {
            CtlError(
                "no PostgreSQL server under /usr/lib/postgresql; apt-get install postgresql".into(),
            )
        })?;
        Ok(PostgresFiles {
            lib_dir,
            share_dir: PathBuf::from(format!("/usr/share/postgresql/{version}")),
        })
    }

    /// The server binary inside the image.
    pub fn postgres(&self) -> PathBuf {
        self.lib_dir.join("bin/postgres")
    }

    /// `initdb` inside the image.
    pub fn initdb(&self) -> PathBuf {
        self.lib_dir.join("bin/initdb")
    }
}

impl ImageSource {
    /// `deisd` next to the running `deisctl` (or `$DEISCTL_DEISD`), and `etcd`, `git`,
    /// `ssh-keygen` and `busybox` from `PATH`.
    pub fn from_environment() -> CtlResult<ImageSource> {
        let deisd = match std::env::var_os("DEISCTL_DEISD") {
            Some(path) => PathBuf::from(path),
            None => std::env::current_exe()
                .map_err(|e| CtlError(format!("finding deisctl's own path: {e}")))?
                .with_file_name("deisd"),
        };
        if !deisd.is_file() {
            return Err(CtlError(format!(
                "{} is missing: build deisd (cargo build -p deisd --features etcd) or set DEISCTL_DEISD",
                deisd.display()
            )));
        }
        let extras = ["etcd", "git", "ssh-keygen", "curl", "busybox"]
            .iter()
            .filter_map(|name| which(name))
            .collect();
        Ok(ImageSource {
            deisd,
            platform: true,
            extras,
            postgres: None,
        })
    }

    /// The slug runner apps run on (Swarm topology): a static busybox with every applet and
    /// `curl` (HTTP health checks; busybox's `wget` fails in a scratch image) with their
    /// libraries — a few megabytes, so the slug images that the scheduler pushes to the
    /// registry, and every node pulls, stay small.
    pub fn runner(&self) -> ImageSource {
        ImageSource {
            deisd: self.deisd.clone(),
            platform: false,
            extras: self
                .extras
                .iter()
                .filter(|p| p.file_name().is_some_and(|n| n == "busybox" || n == "curl"))
                .cloned()
                .collect(),
            postgres: None,
        }
    }

    /// Adds Debian's `docker-registry` (the Swarm topology's `registry` unit) to the image.
    pub fn add_registry(&mut self) -> CtlResult<()> {
        let registry = which("docker-registry")
            .or_else(|| Some(PathBuf::from("/usr/bin/docker-registry")).filter(|p| p.is_file()))
            .ok_or_else(|| {
                CtlError(
                    "docker-registry is not installed (apt-get install docker-registry), or pass --registry host:port".into(),
                )
            })?;
        self.extras.push(registry);
        Ok(())
    }

    /// The build context: a `Dockerfile` and `rootfs/` as a tar archive.
    pub fn build_context(&self, prefix: &str) -> CtlResult<Vec<u8>> {
        let mut files: BTreeSet<(PathBuf, PathBuf)> = BTreeSet::new();
        let mut links: BTreeSet<(PathBuf, PathBuf)> = BTreeSet::new();
        if self.platform {
            files.insert((self.deisd.clone(), PathBuf::from("/usr/local/bin/deisd")));
            add_libraries(&self.deisd, &mut files)?;
        }
        for extra in &self.extras {
            let real = std::fs::canonicalize(extra).unwrap_or_else(|_| extra.clone());
            files.insert((real.clone(), extra.clone()));
            add_libraries(&real, &mut files)?;
            let name = extra.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name == "busybox" {
                for applet in busybox_applets(extra) {
                    links.insert((extra.clone(), PathBuf::from("/bin").join(applet)));
                }
            }
            if name == "git" {
                // The helpers `git` runs for pushes and fetches, as links to itself.
                if let Some(exec) = git_exec_path(extra) {
                    for helper in ["git-receive-pack", "git-upload-pack", "git-upload-archive"] {
                        links.insert((extra.clone(), exec.join(helper)));
                    }
                }
                for helper in ["git-receive-pack", "git-upload-pack"] {
                    if let Some(dir) = extra.parent() {
                        links.insert((extra.clone(), dir.join(helper)));
                    }
                }
            }
        }
        let mut trees: Vec<(PathBuf, PathBuf)> = Vec::new();
        if let Some(pg) = &self.postgres {
            for binary in [pg.postgres(), pg.initdb()] {
                files.insert((binary.clone(), binary.clone()));
                add_libraries(&binary, &mut files)?;
            }
            // The server's modules (plpgsql, snowball dictionaries, encodings…), not the
            // JIT bitcode.
            let modules = pg.lib_dir.join("lib");
            for entry in std::fs::read_dir(&modules)
                .map_err(|e| CtlError(format!("reading {}: {e}", modules.display())))?
                .flatten()
            {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "so") {
                    files.insert((path.clone(), path));
                }
            }
            trees.push((pg.share_dir.clone(), pg.share_dir.clone()));
            for zone in ["/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Etc/UTC"] {
                let zone = PathBuf::from(zone);
                if zone.is_file() {
                    let real = std::fs::canonicalize(&zone).unwrap_or_else(|_| zone.clone());
                    files.insert((real, zone));
                }
            }
        }
        let dockerfile = format!(
            "FROM scratch\nCOPY rootfs/ /\nLABEL io.deis.platform=\"{prefix}\"\nENV PATH=/usr/local/bin:/usr/bin:/bin\nENV HOME=/var/lib/deis\nWORKDIR /\n"
        );
        let mut archive = tar::Builder::new(Vec::new());
        // Docker's tar reader takes no GNU sparse entries.
        archive.sparse(false);
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
            .map_err(|e| CtlError(format!("packing the Dockerfile: {e}")))?;
        let inside = |target: &Path| {
            PathBuf::from("rootfs").join(target.strip_prefix("/").unwrap_or(target))
        };
        for (source, target) in &files {
            archive
                .append_path_with_name(source, inside(target))
                .map_err(|e| CtlError(format!("packing {}: {e}", source.display())))?;
        }
        for (source, target) in &trees {
            archive
                .append_dir_all(inside(target), source)
                .map_err(|e| CtlError(format!("packing {}: {e}", source.display())))?;
        }
        if self.postgres.is_some() {
            let passwd = format!(
                "root:x:0:0:root:/root:/bin/sh\npostgres:x:{POSTGRES_UID}:{POSTGRES_UID}:PostgreSQL:/var/lib/postgresql:/bin/sh\n"
            );
            let group = format!("root:x:0:\npostgres:x:{POSTGRES_UID}:\n");
            for (path, text) in [("rootfs/etc/passwd", passwd), ("rootfs/etc/group", group)] {
                let mut header = tar::Header::new_gnu();
                header.set_size(text.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                archive
                    .append_data(&mut header, path, text.as_bytes())
                    .map_err(|e| CtlError(format!("packing {path}: {e}")))?;
            }
            // The database's home, owned by postgres: a fresh volume mounted there takes
            // this ownership.
            for dir in ["rootfs/var/lib/postgresql", "rootfs/tmp"] {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(if dir.ends_with("tmp") { 0o1777 } else { 0o700 });
                header.set_uid(if dir.ends_with("tmp") {
                    0
                } else {
                    POSTGRES_UID
                });
                header.set_gid(if dir.ends_with("tmp") {
                    0
                } else {
                    POSTGRES_UID
                });
                header.set_cksum();
                archive
                    .append_data(&mut header, dir, std::io::empty())
                    .map_err(|e| CtlError(format!("packing {dir}: {e}")))?;
            }
        }
        for (to, link) in &links {
            if files.iter().any(|(_, t)| t == link) {
                continue;
            }
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            archive
                .append_link(&mut header, inside(link), to)
                .map_err(|e| CtlError(format!("packing {}: {e}", link.display())))?;
        }
        archive
            .into_inner()
            .map_err(|e| CtlError(format!("packing the image: {e}")))
    }
}

/// The applets `busybox --list` names (a few basic ones if it cannot say).
fn busybox_applets(busybox: &Path) -> Vec<String> {
    let listed = Command::new(busybox)
        .arg("--list")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let mut applets: Vec<String> = listed
        .split_whitespace()
        .filter(|a| *a != "busybox" && !a.contains('/'))
        .map(String::from)
        .collect();
    if applets.is_empty() {
        applets = [
            "sh", "env", "cat", "ls", "mkdir", "rm", "tar", "gzip", "sleep",
        ]
        .map(String::from)
        .to_vec();
    }
    applets
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn git_exec_path(git: &Path) -> Option<PathBuf> {
    let output = Command::new(git).arg("--exec-path").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let path = PathBuf::from(text.trim());
    path.is_absolute().then_some(path)
}

/// The shared libraries `ldd` lists for `binary` (none for a static one), each under its
/// own path and, when `ldd` names it through a link, under that name too.
fn add_libraries(binary: &Path, files: &mut BTreeSet<(PathBuf, PathBuf)>) -> CtlResult<()> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| CtlError(format!("running ldd: {e}")))?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let named = PathBuf::from(path);
        let real = std::fs::canonicalize(&named).unwrap_or_else(|_| named.clone());
        files.insert((real, named));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_holds_the_binary_its_libraries_and_a_dockerfile() {
        let source = ImageSource {
            deisd: which("ssh-keygen").expect("ssh-keygen on PATH"),
            platform: true,
            extras: Vec::new(),
            postgres: None,
        };
        let context = source.build_context("deis").unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"Dockerfile".to_string()), "{names:?}");
        assert!(
            names.contains(&"rootfs/usr/local/bin/deisd".to_string()),
            "{names:?}"
        );
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("rootfs/lib") && n.contains("libc.so")),
            "{names:?}"
        );
    }

    #[test]
    fn the_runner_holds_busybox_and_curl_but_no_platform_binary() {
        let source = ImageSource {
            deisd: which("ssh-keygen").expect("ssh-keygen on PATH"),
            platform: true,
            extras: ["busybox", "curl", "git", "etcd"]
                .iter()
                .filter_map(|n| which(n))
                .collect(),
            postgres: None,
        };
        let runner = source.runner();
        assert!(runner
            .extras
            .iter()
            .all(|p| p.ends_with("busybox") || p.ends_with("curl")));
        let context = runner.build_context("deis").unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(
            !names.contains(&"rootfs/usr/local/bin/deisd".to_string()),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.ends_with("/sh")), "{names:?}");
    }
}
