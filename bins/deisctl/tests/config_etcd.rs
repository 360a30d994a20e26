//! `deisctl config` against the real etcd of `DEIS_TEST_ETCD_ENDPOINTS` (a private key
//! namespace per run), through the binary.

use std::process::{Command, Output};

fn discovery() -> String {
    let endpoints = std::env::var("DEIS_TEST_ETCD_ENDPOINTS").unwrap_or_default();
    assert!(
        !endpoints.is_empty(),
        "DEIS_TEST_ETCD_ENDPOINTS is not set: this test needs a running etcd (run scripts/test)"
    );
    let hosts: Vec<&str> = endpoints
        .split(',')
        .map(|e| e.trim().trim_start_matches("http://"))
        .collect();
    format!(
        "etcd://{}?namespace=/deisctl-config-{}-{}",
        hosts.join(","),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn deisctl(discovery: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deisctl"))
        .arg("--discovery")
        .arg(discovery)
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn config_sets_gets_and_removes_component_settings_in_etcd() {
    let d = discovery();
    let set = deisctl(&d, &["config", "platform", "set", "domain=example.com"]);
    assert!(set.status.success(), "{set:?}");
    assert_eq!(text(&set).0, "example.com\n");
    let set = deisctl(&d, &["config", "router", "set", "bodySize=5m", "gzip=on"]);
    assert!(set.status.success(), "{set:?}");

    let get = deisctl(&d, &["config", "platform", "get", "domain"]);
    assert!(get.status.success(), "{get:?}");
    assert_eq!(text(&get).0, "example.com\n");
    let get = deisctl(&d, &["config", "router", "get", "bodySize", "gzip"]);
    assert_eq!(text(&get).0, "5m\non\n");

    let rm = deisctl(&d, &["config", "router", "rm", "bodySize"]);
    assert!(rm.status.success(), "{rm:?}");
    let gone = deisctl(&d, &["config", "router", "get", "bodySize"]);
    assert!(!gone.status.success());
    let (_, stderr) = text(&gone);
    assert_eq!(stderr, "deisctl: /deis/router/bodySize is not set\n");
}

#[test]
fn bad_input_is_one_line_and_a_failure() {
    let d = discovery();
    for (args, expected) in [
        (
            vec!["config", "platform", "set", "domain"],
            "deisctl: config set domain: expected key=value\n",
        ),
        (
            vec!["config", "platform", "frob", "x"],
            "deisctl: config: unknown action \"frob\"; expected get, set or rm\n",
        ),
        (
            vec!["config", "../etc", "get", "x"],
            "deisctl: component \"../etc\": use letters, digits, '-', '_' and '.'\n",
        ),
    ] {
        let output = deisctl(&d, &args);
        assert!(!output.status.success(), "{args:?}");
        assert_eq!(text(&output).1, expected, "{args:?}");
    }
    let memory = deisctl("memory://", &["config", "platform", "get", "domain"]);
    assert!(!memory.status.success());
    let (_, stderr) = text(&memory);
    assert!(stderr.contains("makes no sense for deisctl"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let unreachable = deisctl(
        "etcd://127.0.0.1:1?connect_timeout_ms=500",
        &["config", "platform", "get", "domain"],
    );
    assert!(!unreachable.status.success());
    assert_eq!(text(&unreachable).1.lines().count(), 1);
}
