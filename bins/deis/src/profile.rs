//! The client profile: `~/.deis/<profile>.json` as the Deis v1 client wrote it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `deis login` saves.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// The user name.
    #[serde(default)]
    pub username: String,
    /// Whether TLS certificates are verified.
    #[serde(default = "yes")]
    pub ssl_verify: bool,
    /// The controller URL, e.g. `http://127.0.0.1:8000`.
    #[serde(default)]
    pub controller: String,
    /// The API token.
    #[serde(default)]
    pub token: String,
    /// The default page size.
    #[serde(default = "default_limit")]
    pub response_limit: u64,
}

fn yes() -> bool {
    true
}

fn default_limit() -> u64 {
    100
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("username", &self.username)
            .field("controller", &self.controller)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The file of a profile.
pub fn path(home: &Path, name: &str) -> PathBuf {
    home.join(".deis").join(format!("{name}.json"))
}

/// Reads a profile; `None` when there is none yet.
pub fn load(home: &Path, name: &str) -> Result<Option<Profile>, String> {
    let file = path(home, name);
    match std::fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a valid profile: {e}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", file.display())),
    }
}

/// Writes a profile, readable by its owner only (it holds the token).
pub fn save(home: &Path, name: &str, profile: &Profile) -> Result<(), String> {
    let file = path(home, name);
    let dir = file.parent().expect("a profile has a directory");
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(profile).map_err(|e| e.to_string())?;
    let staging = file.with_extension("json.tmp");
    std::fs::write(&staging, text).map_err(|e| format!("writing {}: {e}", staging.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("securing {}: {e}", staging.display()))?;
    }
    std::fs::rename(&staging, &file).map_err(|e| format!("writing {}: {e}", file.display()))
}

/// Deletes a profile (logout).
pub fn remove(home: &Path, name: &str) -> Result<(), String> {
    match std::fs::remove_file(path(home, name)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
