//! `deisctl config <component> get|set|rm key[=value]…`: settings under
//! `/deis/<component>/<key>` in discovery (Deis v1: `deisctl config platform set
//! domain=example.com`, `deisctl config router set bodySize=1m`).

use crate::{CtlError, CtlResult};
use deis_core::discovery::keys;
use deis_core::DynDiscovery;

/// What `config` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigAction {
    /// Reads keys.
    Get(Vec<String>),
    /// Writes `key=value` pairs.
    Set(Vec<(String, String)>),
    /// Removes keys.
    Rm(Vec<String>),
}

/// Checks a registry address: `host:port`, as image references take it (no scheme).
pub fn check_registry(address: &str) -> CtlResult<()> {
    let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if valid {
        Ok(())
    } else {
        Err(CtlError(format!(
            "--registry {address:?}: expected host:port, e.g. 127.0.0.1:5000"
        )))
    }
}

/// Checks a component or key name: letters, digits, `-`, `_` and `.`, as etcd paths of
/// Deis v1 had them (`platform`, `router`, `bodySize`, `sshPrivateKey`).
pub fn check_name(what: &str, name: &str) -> CtlResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if valid {
        Ok(())
    } else {
        Err(CtlError(format!(
            "{what} {name:?}: use letters, digits, '-', '_' and '.'"
        )))
    }
}

/// Parses `get|set|rm` and its arguments.
pub fn parse_action(verb: &str, args: &[String]) -> CtlResult<ConfigAction> {
    if args.is_empty() {
        return Err(CtlError(format!("config {verb}: name at least one key")));
    }
    match verb {
        "get" | "rm" => {
            for key in args {
                check_name("key", key)?;
            }
            Ok(if verb == "get" {
                ConfigAction::Get(args.to_vec())
            } else {
                ConfigAction::Rm(args.to_vec())
            })
        }
        "set" => {
            let mut pairs = Vec::new();
            for arg in args {
                let Some((key, value)) = arg.split_once('=') else {
                    return Err(CtlError(format!("config set {arg}: expected key=value")));
                };
                check_name("key", key)?;
                pairs.push((key.to_string(), value.to_string()));
            }
            Ok(ConfigAction::Set(pairs))
        }
        other => Err(CtlError(format!(
            "config: unknown action {other:?}; expected get, set or rm"
        ))),
    }
}

/// Runs a config action on `component`; returns the lines to print (`get`: the values in
/// order; `set`: the values written; `rm`: the keys removed).
pub async fn run(
    discovery: &DynDiscovery,
    component: &str,
    action: &ConfigAction,
) -> CtlResult<Vec<String>> {
    check_name("component", component)?;
    let failed = |e: deis_core::Error| CtlError(format!("discovery: {e}"));
    let mut lines = Vec::new();
    match action {
        ConfigAction::Get(names) => {
            for name in names {
                let key = keys::component_setting(component, name);
                match discovery.get(&key).await.map_err(failed)? {
                    Some(kv) => lines.push(kv.value),
                    None => return Err(CtlError(format!("{key} is not set"))),
                }
            }
        }
        ConfigAction::Set(pairs) => {
            for (name, value) in pairs {
                let key = keys::component_setting(component, name);
                discovery.put(&key, value, None).await.map_err(failed)?;
                lines.push(value.clone());
            }
        }
        ConfigAction::Rm(names) => {
            for name in names {
                let key = keys::component_setting(component, name);
                if !discovery.delete(&key).await.map_err(failed)? {
                    return Err(CtlError(format!("{key} is not set")));
                }
                lines.push(name.clone());
            }
        }
    }
    Ok(lines)
}

/// Opens the discovery an operator named; `memory://` is refused, since an in-process
/// key space would vanish with this command.
pub async fn open(url: &str) -> CtlResult<DynDiscovery> {
    if url.trim_start().starts_with("memory:") {
        return Err(CtlError(
            "--discovery memory:// makes no sense for deisctl: an in-memory key space dies with this command; name the platform's etcd (etcd://host:port)".into(),
        ));
    }
    deis_discovery::open_discovery(url)
        .await
        .map_err(|e| CtlError(format!("discovery {url}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn actions_parse_and_reject_bad_input() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_action("set", &args(&["domain=example.com", "x=a=b"])).unwrap(),
            ConfigAction::Set(vec![
                ("domain".into(), "example.com".into()),
                ("x".into(), "a=b".into())
            ])
        );
        assert!(parse_action("set", &args(&["domain"])).is_err());
        assert!(parse_action("get", &args(&[])).is_err());
        assert!(parse_action("get", &args(&["../x"])).is_err());
        assert!(parse_action("frob", &args(&["x"])).is_err());
    }

    #[tokio::test]
    async fn set_get_rm_round_trip_on_any_discovery() {
        let discovery: DynDiscovery = Arc::new(deis_core::memory::MemoryDiscovery::new());
        let set = ConfigAction::Set(vec![("domain".into(), "example.com".into())]);
        run(&discovery, "platform", &set).await.unwrap();
        assert_eq!(
            discovery
                .get("/deis/platform/domain")
                .await
                .unwrap()
                .unwrap()
                .value,
            "example.com"
        );
        let get = ConfigAction::Get(vec!["domain".into()]);
        assert_eq!(
            run(&discovery, "platform", &get).await.unwrap(),
            vec!["example.com"]
        );
        let rm = ConfigAction::Rm(vec!["domain".into()]);
        run(&discovery, "platform", &rm).await.unwrap();
        let missing = run(&discovery, "platform", &get).await.unwrap_err();
        assert_eq!(missing.0, "/deis/platform/domain is not set");
    }

    #[tokio::test]
    async fn memory_discovery_is_refused() {
        let error = open("memory://").await.unwrap_err();
        assert!(error.0.contains("makes no sense"), "{error}");
    }
}
