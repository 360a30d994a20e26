//! Memory and CPU limits of local instances through cgroup v2, where the host allows it.
//!
//! The scheduler creates `<root>/deis/<app>/<job name>`, writes `memory.max` and
//! `cpu.weight` there and moves the instance's process into it. When the host has no
//! writable cgroup v2 hierarchy with the `memory` and `cpu` controllers, limits are
//! reported as not enforced, with the reason.

use deis_core::scheduler::ProcessLimits;
use std::path::{Path, PathBuf};

/// Whether an instance's limits are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitEnforcement {
    /// The release sets no limit for the instance's type.
    NoLimits,
    /// The limits are enforced by a cgroup.
    Enforced,
    /// The release sets limits but this host cannot enforce them.
    NotEnforced {
        /// Why, for people.
        reason: String,
    },
}

/// What the host offers.
#[derive(Debug)]
pub(crate) struct Cgroups {
    /// `<root>/deis` when limits can be enforced.
    base: Option<PathBuf>,
    /// Why they cannot, otherwise.
    reason: String,
}

impl Cgroups {
    /// Probes the cgroup v2 hierarchy mounted at `root` (normally `/sys/fs/cgroup`).
    pub(crate) fn detect(root: &Path) -> Cgroups {
        match Self::prepare(root) {
            Ok(base) => Cgroups {
                base: Some(base),
                reason: String::new(),
            },
            Err(reason) => Cgroups { base: None, reason },
        }
    }

    fn prepare(root: &Path) -> Result<PathBuf, String> {
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).map_err(|e| {
                format!(
                    "no cgroup v2 hierarchy at {} ({e}); the host uses cgroup v1 or none",
                    root.display()
                )
            })?;
        for needed in ["memory", "cpu"] {
            if !controllers.split_whitespace().any(|c| c == needed) {
                return Err(format!(
                    "the cgroup v2 hierarchy at {} has no {needed} controller",
                    root.display()
                ));
            }
        }
        let base = root.join("deis");
        std::fs::create_dir_all(&base)
            .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        enable_controllers(root)?;
        enable_controllers(&base)?;
        Ok(base)
    }

    /// Whether limits can be enforced on this host.
    pub(crate) fn available(&self) -> bool {
        self.base.is_some()
    }

    /// Why limits cannot be enforced (empty when they can).
    pub(crate) fn reason(&self) -> &str {
        &self.reason
    }

    /// Puts `pid` into a cgroup for `job` of `app` with `limits`; returns the cgroup's
    /// directory, to remove once the instance is gone.
    pub(crate) fn attach(
        &self,
        app: &str,
        job: &str,
        pid: u32,
        limits: &ProcessLimits,
    ) -> Result<PathBuf, String> {
        let base = self.base.as_ref().ok_or_else(|| self.reason.clone())?;
        let app_dir = base.join(app);
        std::fs::create_dir_all(&app_dir)
            .map_err(|e| format!("cannot create {}: {e}", app_dir.display()))?;
        enable_controllers(&app_dir)?;
        let dir = app_dir.join(job);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if let Some(bytes) = limits.memory_bytes {
            write(&dir.join("memory.max"), &bytes.to_string())?;
        }
        if let Some(shares) = limits.cpu_shares {
            write(
                &dir.join("cpu.weight"),
                &shares_to_weight(shares).to_string(),
            )?;
        }
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
        Ok(dir)
    }

    /// Removes an instance's cgroup once its processes are gone (best effort).
    pub(crate) fn release(dir: &Path) {
        let _ = std::fs::remove_dir(dir);
    }
}

fn enable_controllers(dir: &Path) -> Result<(), String> {
    write(&dir.join("cgroup.subtree_control"), "+memory +cpu")
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Docker's CPU shares (2–262144, default 1024) as a cgroup v2 `cpu.weight` (1–10000, default
/// 100), with the conversion runc uses.
pub(crate) fn shares_to_weight(shares: u32) -> u64 {
    let shares = u64::from(shares.clamp(2, 262_144));
    1 + ((shares - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
    }

    #[test]
    fn a_missing_hierarchy_is_reported_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cgroups = Cgroups::detect(dir.path());
        assert!(!cgroups.available());
        assert!(
            cgroups.reason().contains("no cgroup v2"),
            "{}",
            cgroups.reason()
        );
        let err = cgroups
            .attach("go", "go_v1.web.1", 1, &ProcessLimits::default())
            .unwrap_err();
        assert_eq!(err, cgroups.reason());
    }

    #[test]
    fn a_hierarchy_without_the_memory_controller_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu io pids\n").unwrap();
        let cgroups = Cgroups::detect(dir.path());
        assert!(!cgroups.available());
        assert!(cgroups.reason().contains("memory"), "{}", cgroups.reason());
    }

    #[test]
    fn limits_are_written_into_a_writable_hierarchy() {
        // A plain directory standing in for cgroupfs: the files are written as the kernel
        // would receive them.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        let cgroups = Cgroups::detect(dir.path());
        assert!(cgroups.available(), "{}", cgroups.reason());
        let limits = ProcessLimits {
            memory_bytes: Some(64 << 20),
            cpu_shares: Some(512),
        };
        let job = cgroups.attach("go", "go_v1.web.1", 4242, &limits).unwrap();
        let read = |f: &str| std::fs::read_to_string(job.join(f)).unwrap();
        assert_eq!(read("memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("cpu.weight"), shares_to_weight(512).to_string());
        assert_eq!(read("cgroup.procs"), "4242");
    }
}
