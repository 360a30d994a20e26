//! How a change becomes a release: config merge rules, release summaries as Deis wrote
//! them, and the default formation after a first build.

use crate::error::ValidationError;
use crate::model::{Build, Config, Formation};
use crate::time::Timestamp;
use crate::validation;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A requested config change, with Deis's merge rules: keys not named keep their value,
/// a `None` value unsets the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigPatch {
    /// Environment values to set (`Some`) or unset (`None`).
    pub values: BTreeMap<String, Option<String>>,
    /// Memory limits per process type to set or unset.
    pub memory: BTreeMap<String, Option<String>>,
    /// CPU shares per process type to set or unset.
    pub cpu: BTreeMap<String, Option<u32>>,
    /// Tags to set or unset.
    pub tags: BTreeMap<String, Option<String>>,
}

impl ConfigPatch {
    /// Whether the patch names nothing at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.memory.is_empty()
            && self.cpu.is_empty()
            && self.tags.is_empty()
    }

    /// Parses a Deis v1 `POST /config` body (`{values, memory, cpu, tags}`), validating
    /// every key and value.
    pub fn from_json(body: &serde_json::Value) -> Result<Self, ValidationError> {
        let object = body.as_object().ok_or_else(|| {
            ValidationError::new("body", "not_an_object", "expected a JSON object")
        })?;
        let mut patch = ConfigPatch::default();
        for (field, value) in object {
            if !matches!(field.as_str(), "values" | "memory" | "cpu" | "tags") {
                return Err(ValidationError::new(
                    field.as_str(),
                    "unknown_field",
                    "expected one of values, memory, cpu, tags",
                ));
            }
            let entries = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::Object(entries) => entries,
                _ => {
                    return Err(ValidationError::new(
                        field.as_str(),
                        "not_an_object",
                        format!("{field} must be an object of key/value pairs"),
                    ))
                }
            };
            for (key, value) in entries {
                match field.as_str() {
                    "values" => {
                        validation::config_key(key)?;
                        let value = validation::config_value(key, value)?;
                        patch.values.insert(key.to_uppercase(), value);
                    }
                    "memory" => {
                        let value = optional_string(field, value)?;
                        if let Some(limit) = &value {
                            validation::memory_limit(key, limit)?;
                        }
                        patch.memory.insert(key.clone(), value);
                    }
                    "cpu" => {
                        let value = if value.is_null() {
                            None
                        } else {
                            Some(validation::cpu_limit(key, value)?)
                        };
                        patch.cpu.insert(key.clone(), value);
                    }
                    "tags" => {
                        let value = optional_string(field, value)?;
                        if let Some(tag) = &value {
                            validation::tag(key, tag)?;
                        }
                        patch.tags.insert(key.clone(), value);
                    }
                    _ => unreachable!("field names are checked above"),
                }
            }
        }
        Ok(patch)
    }

    /// Applies the patch to `previous`, giving the next revision, or `None` when nothing
    /// would change.
    pub fn apply(&self, previous: &Config, owner: &str) -> Option<Config> {
        let mut next = previous.clone();
        merge(&mut next.values, &self.values);
        merge(&mut next.memory, &self.memory);
        merge(&mut next.cpu, &self.cpu);
        merge(&mut next.tags, &self.tags);
        if next.values == previous.values
            && next.memory == previous.memory
            && next.cpu == previous.cpu
            && next.tags == previous.tags
        {
            return None;
        }
        let now = Timestamp::now();
        next.uuid = Uuid::new_v4();
        next.owner = owner.into();
        next.revision = previous.revision + 1;
        next.created = now;
        next.updated = now;
        Some(next)
    }
}

fn optional_string(
    field: &str,
    value: &serde_json::Value,
) -> Result<Option<String>, ValidationError> {
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(text) => Ok(Some(text.clone())),
        serde_json::Value::Number(number) => Ok(Some(number.to_string())),
        _ => Err(ValidationError::new(
            field,
            "not_a_string",
            format!("{field} values must be strings"),
        )),
    }
}

fn merge<V: Clone>(target: &mut BTreeMap<String, V>, patch: &BTreeMap<String, Option<V>>) {
    for (key, value) in patch {
        match value {
            Some(value) => {
                target.insert(key.clone(), value.clone());
            }
            None => {
                target.remove(key);
            }
        }
    }
}

struct DictDiff {
    added: Vec<String>,
    changed: Vec<String>,
    deleted: Vec<String>,
}

fn dict_diff<V: PartialEq>(new: &BTreeMap<String, V>, old: &BTreeMap<String, V>) -> DictDiff {
    DictDiff {
        added: new
            .keys()
            .filter(|k| !old.contains_key(*k))
            .cloned()
            .collect(),
        changed: new
            .iter()
            .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
            .map(|(k, _)| k.clone())
            .collect(),
        deleted: old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect(),
    }
}

fn describe(diff: &DictDiff, noun: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for (verb, keys) in [
        ("added", &diff.added),
        ("changed", &diff.changed),
        ("deleted", &diff.deleted),
    ] {
        if !keys.is_empty() {
            parts.push(format!("{verb} {noun}{}", keys.join(", ")));
        }
    }
    parts
}

/// The summary of an app's first release: `alice created initial release`.
pub fn initial_summary(owner: &str) -> String {
    format!("{owner} created initial release")
}

/// The summary of a release made by a new build: `alice deployed abc1234`, or the image
/// name for image deploys with no commit.
pub fn build_summary(user: &str, build: &Build) -> String {
    if build.sha.is_empty() {
        format!("{user} deployed {}", build.image)
    } else {
        let short: String = build.sha.chars().take(7).collect();
        format!("{user} deployed {short}")
    }
}

/// The summary of a rollback: `alice rolled back to v3`.
pub fn rollback_summary(user: &str, version: u64) -> String {
    format!("{user} rolled back to v{version}")
}

/// The summary of a config change, as Deis wrote it: `alice added FOO, changed BAR`,
/// `alice changed limits for memory`, `alice added tag env`, joined with ` and `.
pub fn config_summary(user: &str, old: &Config, new: &Config) -> String {
    let mut sentences = Vec::new();
    let values = describe(&dict_diff(&new.values, &old.values), "");
    if !values.is_empty() {
        sentences.push(format!("{user} {}", values.join(", ")));
    }
    let mut limits = Vec::new();
    if new.memory != old.memory {
        limits.push("memory");
    }
    if new.cpu != old.cpu {
        limits.push("cpu");
    }
    if !limits.is_empty() {
        sentences.push(format!("{user} changed limits for {}", limits.join(", ")));
    }
    let tags = describe(&dict_diff(&new.tags, &old.tags), "tag ");
    if !tags.is_empty() {
        sentences.push(format!("{user} {}", tags.join(", ")));
    }
    sentences.join(" and ")
}

/// The formation Deis applies after an app's first build when it was never scaled:
/// `web=1` when the build has a `web` process type (or is a buildpack build with no
/// Procfile, which defaults to web), otherwise `cmd=1`.
pub fn default_formation(build: &Build) -> Formation {
    let buildpack_default_web =
        build.procfile.is_empty() && !build.sha.is_empty() && !build.is_dockerfile();
    let process_type = if build.procfile.contains_key("web") || buildpack_default_web {
        "web"
    } else {
        "cmd"
    };
    Formation::from([(process_type.to_string(), 1)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_with(values: &[(&str, &str)]) -> Config {
        let mut config = Config::initial("go", "alice");
        for (k, v) in values {
            config.values.insert(k.to_string(), v.to_string());
        }
        config
    }

    #[test]
    fn merge_sets_and_unsets() {
        let old = config_with(&[("FOO", "1"), ("BAR", "2")]);
        let patch = ConfigPatch::from_json(&json!({"values": {"foo": "9", "BAR": null, "NEW": 3}}))
            .unwrap();
        let next = patch.apply(&old, "bob").unwrap();
        assert_eq!(next.values.get("FOO").map(String::as_str), Some("9"));
        assert_eq!(next.values.get("NEW").map(String::as_str), Some("3"));
        assert!(!next.values.contains_key("BAR"));
        assert_eq!(next.revision, 2);
        assert_eq!(next.owner, "bob");
        assert_ne!(next.uuid, old.uuid);
    }

    #[test]
    fn a_patch_that_changes_nothing_is_none() {
        let old = config_with(&[("FOO", "1")]);
        let patch = ConfigPatch::from_json(&json!({"values": {"FOO": "1", "GONE": null}})).unwrap();
        assert_eq!(patch.apply(&old, "bob"), None);
    }

    #[test]
    fn bad_config_bodies_name_the_field() {
        assert_eq!(
            ConfigPatch::from_json(&json!([])).unwrap_err().field,
            "body"
        );
        assert_eq!(
            ConfigPatch::from_json(&json!({"values": 3}))
                .unwrap_err()
                .field,
            "values"
        );
        assert_eq!(
            ConfigPatch::from_json(&json!({"colour": {}}))
                .unwrap_err()
                .field,
            "colour"
        );
        assert_eq!(
            ConfigPatch::from_json(&json!({"values": {"1BAD": "x"}}))
                .unwrap_err()
                .field,
            "values"
        );
        assert_eq!(
            ConfigPatch::from_json(&json!({"memory": {"web": "lots"}}))
                .unwrap_err()
                .field,
            "memory"
        );
        assert_eq!(
            ConfigPatch::from_json(&json!({"cpu": {"web": 5000}}))
                .unwrap_err()
                .field,
            "cpu"
        );
        assert_eq!(
            ConfigPatch::from_json(&json!({"tags": {"env": "a b"}}))
                .unwrap_err()
                .field,
            "tags"
        );
    }

    #[test]
    fn summaries_read_as_deis_wrote_them() {
        let old = config_with(&[("BAR", "1"), ("OLD", "x")]);
        let mut new = config_with(&[("FOO", "1"), ("BAR", "2")]);
        assert_eq!(
            config_summary("alice", &old, &new),
            "alice added FOO, changed BAR, deleted OLD"
        );
        new.values = old.values.clone();
        new.memory.insert("web".into(), "512M".into());
        new.tags.insert("env".into(), "prod".into());
        assert_eq!(
            config_summary("alice", &old, &new),
            "alice changed limits for memory and alice added tag env"
        );
        let mut build = Build::new("go", "alice", "go:git-abc1234");
        build.sha = "abc1234def5678".into();
        assert_eq!(build_summary("alice", &build), "alice deployed abc1234");
        build.sha.clear();
        assert_eq!(
            build_summary("alice", &build),
            "alice deployed go:git-abc1234"
        );
        assert_eq!(rollback_summary("alice", 3), "alice rolled back to v3");
        assert_eq!(initial_summary("alice"), "alice created initial release");
    }

    #[test]
    fn default_formation_follows_deis() {
        let mut build = Build::new("go", "alice", "img");
        // An image with no sha and no Procfile runs its CMD.
        assert_eq!(
            default_formation(&build),
            Formation::from([("cmd".into(), 1)])
        );
        build.sha = "abc".into();
        // A buildpack build with no Procfile defaults to web.
        assert_eq!(
            default_formation(&build),
            Formation::from([("web".into(), 1)])
        );
        build.procfile.insert("worker".into(), "run".into());
        assert_eq!(
            default_formation(&build),
            Formation::from([("cmd".into(), 1)])
        );
        build.procfile.insert("web".into(), "serve".into());
        assert_eq!(
            default_formation(&build),
            Formation::from([("web".into(), 1)])
        );
        build.procfile.remove("web");
        build.procfile.clear();
        build.dockerfile = "true".into();
        assert_eq!(
            default_formation(&build),
            Formation::from([("cmd".into(), 1)])
        );
    }
}
