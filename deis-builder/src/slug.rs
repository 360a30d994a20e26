//! Slugs: the built app as a `tar.gz`, with `.slugignore` applied and safety checks.

use crate::BuildError;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Size limits that keep a hostile or careless repository from harming the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlugLimits {
    /// The largest single file allowed, in bytes.
    pub max_file_bytes: u64,
    /// The largest total size of the app, in bytes.
    pub max_total_bytes: u64,
}

impl Default for SlugLimits {
    fn default() -> Self {
        SlugLimits {
            max_file_bytes: 256 * 1024 * 1024,
            max_total_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// Removes what `.slugignore` names from the build directory (gitignore syntax, as Heroku),
/// before compilation. Returns how many paths were removed.
pub fn apply_slugignore(build_dir: &Path) -> Result<usize, BuildError> {
    let ignore_file = build_dir.join(".slugignore");
    if !ignore_file.is_file() {
        return Ok(0);
    }
    let mut builder = ignore::gitignore::GitignoreBuilder::new(build_dir);
    if let Some(error) = builder.add(&ignore_file) {
        return Err(BuildError::Rejected(format!(".slugignore: {error}")));
    }
    let matcher = builder
        .build()
        .map_err(|e| BuildError::Rejected(format!(".slugignore: {e}")))?;
    let mut removed = 0;
    let mut pending = vec![build_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).map_err(BuildError::io(format!("reading {}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(BuildError::io("reading the build directory"))?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(BuildError::io("reading a file type"))?;
            let is_dir = file_type.is_dir();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if matcher.matched(&path, is_dir).is_ignore() {
                if is_dir {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                }
                .map_err(BuildError::io(format!("removing {}", path.display())))?;
                removed += 1;
            } else if is_dir {
                pending.push(path);
            }
        }
    }
    Ok(removed)
}

/// Checks the tree before anything runs on it: no symlink may lead outside the app, no file
/// may exceed the limits. Returns the total size in bytes.
pub fn check_tree(root: &Path, limits: SlugLimits) -> Result<u64, BuildError> {
    let canonical_root = root
        .canonicalize()
        .map_err(BuildError::io("resolving the build directory"))?;
    let mut total = 0u64;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            fs::read_dir(&dir).map_err(BuildError::io(format!("reading {}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(BuildError::io("reading the build directory"))?;
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let metadata = fs::symlink_metadata(&path)
                .map_err(BuildError::io(format!("reading {relative}")))?;
            if metadata.file_type().is_symlink() {
                let target = fs::read_link(&path)
                    .map_err(BuildError::io(format!("reading link {relative}")))?;
                let resolved = path.parent().unwrap_or(root).join(&target);
                if !stays_inside(&canonical_root, &resolved) {
                    return Err(BuildError::Rejected(format!(
                        "symlink {relative} points outside the app ({})",
                        target.display()
                    )));
                }
            } else if metadata.is_dir() {
                pending.push(path);
            } else {
                if metadata.len() > limits.max_file_bytes {
                    return Err(BuildError::Rejected(format!(
                        "{relative} is {} bytes; the limit is {} bytes per file",
                        metadata.len(),
                        limits.max_file_bytes
                    )));
                }
                total += metadata.len();
                if total > limits.max_total_bytes {
                    return Err(BuildError::Rejected(format!(
                        "the app is larger than {} bytes",
                        limits.max_total_bytes
                    )));
                }
            }
        }
    }
    Ok(total)
}

/// Whether `path` (which may not exist, and may contain `..`) stays under `root` once
/// resolved lexically and through whatever part of it exists.
fn stays_inside(root: &Path, path: &Path) -> bool {
    // Resolve the existing prefix through the file system (it may itself hold links).
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return false,
        }
    }
    let Ok(mut resolved) = existing.canonicalize() else {
        return false;
    };
    for name in rest.into_iter().rev() {
        for component in Path::new(&name).components() {
            match component {
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(part) => resolved.push(part),
                _ => {}
            }
        }
    }
    resolved.starts_with(root)
}

/// Packs the build directory (without `.git`) into a gzipped tar at `destination`,
/// written to a temporary name first so a reader never sees half a slug. Returns its size.
pub fn pack(build_dir: &Path, destination: &Path) -> Result<u64, BuildError> {
    if let Some(parent) = destination.parent() {
        fs::create_dir_all(parent).map_err(BuildError::io("creating the slug directory"))?;
    }
    let staging = destination.with_extension("partial");
    let file = fs::File::create(&staging).map_err(BuildError::io("creating the slug"))?;
    let mut archive = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    archive.follow_symlinks(false);
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = build_dir.join(&relative);
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .map_err(BuildError::io("reading the build directory"))?
            .collect::<Result<_, _>>()
            .map_err(BuildError::io("reading the build directory"))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = relative.join(entry.file_name());
            if name == Path::new(".git") {
                continue;
            }
            let file_type = entry
                .file_type()
                .map_err(BuildError::io("reading a file type"))?;
            if file_type.is_dir() && !file_type.is_symlink() {
                archive
                    .append_dir(&name, entry.path())
                    .map_err(BuildError::io("packing a directory"))?;
                pending.push(name);
            } else {
                archive
                    .append_path_with_name(entry.path(), &name)
                    .map_err(BuildError::io(format!("packing {}", name.display())))?;
            }
        }
    }
    let encoder = archive
        .into_inner()
        .map_err(BuildError::io("finishing the slug"))?;
    encoder
        .finish()
        .and_then(|file| file.sync_all())
        .map_err(BuildError::io("writing the slug"))?;
    fs::rename(&staging, destination).map_err(BuildError::io("storing the slug"))?;
    Ok(fs::metadata(destination)
        .map_err(BuildError::io("reading the slug"))?
        .len())
}

/// Unpacks a slug into `destination`, refusing any entry that would land outside it.
pub fn unpack(slug: &Path, destination: &Path) -> Result<(), BuildError> {
    let file = fs::File::open(slug).map_err(BuildError::io("opening the slug"))?;
    unpack_from(GzDecoder::new(file), destination)
}

/// Unpacks a plain (uncompressed) tar, such as `git archive` output, into `destination`,
/// refusing any entry that would land outside it.
pub fn unpack_tar(archive: &Path, destination: &Path) -> Result<(), BuildError> {
    let file = fs::File::open(archive).map_err(BuildError::io("opening the archive"))?;
    unpack_from(file, destination)
}

fn unpack_from(reader: impl std::io::Read, destination: &Path) -> Result<(), BuildError> {
    fs::create_dir_all(destination).map_err(BuildError::io("creating the app directory"))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    for entry in archive
        .entries()
        .map_err(BuildError::io("reading the slug"))?
    {
        let mut entry = entry.map_err(BuildError::io("reading the slug"))?;
        let path = entry
            .path()
            .map_err(BuildError::io("reading a slug entry"))?
            .display()
            .to_string();
        let inside = entry
            .unpack_in(destination)
            .map_err(BuildError::io(format!("unpacking {path}")))?;
        if !inside {
            return Err(BuildError::Rejected(format!(
                "slug entry {path} points outside the app"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn slugignore_removes_matching_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join(".slugignore"), "*.psd\n/docs\n").unwrap();
        fs::create_dir_all(root.join("docs")).unwrap();
        fs::write(root.join("docs/readme"), "x").unwrap();
        fs::create_dir_all(root.join("art")).unwrap();
        fs::write(root.join("art/logo.psd"), "x").unwrap();
        fs::write(root.join("art/logo.png"), "x").unwrap();
        assert_eq!(apply_slugignore(root).unwrap(), 2);
        assert!(!root.join("docs").exists());
        assert!(!root.join("art/logo.psd").exists());
        assert!(root.join("art/logo.png").exists());
    }

    #[test]
    fn symlinks_out_of_the_app_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("real"), "x").unwrap();
        symlink("real", root.join("inside")).unwrap();
        symlink("../real", root.join("sub/up-one")).unwrap();
        assert!(check_tree(&root, SlugLimits::default()).is_ok());
        for (name, target) in [
            ("etc", "/etc/passwd"),
            ("escape", "../../outside"),
            ("sub/deep", "../../x"),
        ] {
            symlink(target, root.join(name)).unwrap();
            let error = check_tree(&root, SlugLimits::default()).unwrap_err();
            assert!(
                matches!(error, BuildError::Rejected(ref m) if m.contains("outside")),
                "{name}: {error}"
            );
            fs::remove_file(root.join(name)).unwrap();
        }
    }

    #[test]
    fn files_over_the_limits_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("big"), vec![0u8; 2048]).unwrap();
        fs::write(dir.path().join("small"), vec![0u8; 100]).unwrap();
        let per_file = SlugLimits {
            max_file_bytes: 1024,
            max_total_bytes: 1 << 20,
        };
        assert!(
            matches!(check_tree(dir.path(), per_file), Err(BuildError::Rejected(m)) if m.contains("big"))
        );
        let total = SlugLimits {
            max_file_bytes: 1 << 20,
            max_total_bytes: 2000,
        };
        assert!(
            matches!(check_tree(dir.path(), total), Err(BuildError::Rejected(m)) if m.contains("larger"))
        );
        let roomy = SlugLimits {
            max_file_bytes: 4096,
            max_total_bytes: 4096,
        };
        assert_eq!(check_tree(dir.path(), roomy).unwrap(), 2148);
    }

    #[test]
    fn pack_and_unpack_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        fs::create_dir_all(app.join("bin")).unwrap();
        fs::create_dir_all(app.join(".git")).unwrap();
        fs::write(app.join(".git/HEAD"), "ref").unwrap();
        fs::write(app.join("bin/server"), "#!/bin/sh\necho hi\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(app.join("bin/server"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("bin/server", app.join("start")).unwrap();
        let slug = dir.path().join("slugs/app.tgz");
        assert!(pack(&app, &slug).unwrap() > 0);
        let out = dir.path().join("out");
        unpack(&slug, &out).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("bin/server")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            fs::metadata(out.join("bin/server"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        assert_eq!(
            fs::read_link(out.join("start")).unwrap(),
            Path::new("bin/server")
        );
        assert!(!out.join(".git").exists(), ".git stays out of the slug");
    }

    #[test]
    fn unpack_refuses_entries_outside_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let slug = dir.path().join("evil.tgz");
        let file = fs::File::create(&slug).unwrap();
        let mut archive = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
        let mut header = tar::Header::new_gnu();
        let data = b"owned";
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        // Write the raw name so the tar crate does not refuse it on the way in.
        header.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../escape.tx");
        header.set_cksum();
        archive.append(&header, &data[..]).unwrap();
        archive.into_inner().unwrap().finish().unwrap();
        let out = dir.path().join("out");
        let error = unpack(&slug, &out).unwrap_err();
        assert!(matches!(error, BuildError::Rejected(_)), "{error}");
        assert!(!dir.path().join("escape.tx").exists());
    }
}
