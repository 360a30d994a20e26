//! The Swarm service spec of one app's process type: a pure translation of an [`AppSpec`],
//! kept apart so every rule (labels, health check, placement, limits, update order) is
//! unit-tested without an engine.

use super::SwarmConfig;
use crate::docker::engine::{LABEL_APP, LABEL_OWNER, LABEL_RELEASE, LABEL_TYPE};
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, NetworkAttachmentConfig, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use deis_core::error::{Error, Result};
use deis_core::model::{is_routable_type, Healthcheck};
use deis_core::scheduler::AppSpec;
use deis_core::ValidationError;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The service of `process_type` of `app`: `<prefix><app>_<type>`.
pub(crate) fn service_name(config: &SwarmConfig, app: &str, process_type: &str) -> String {
    format!("{}{app}_{process_type}", config.name_prefix)
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

/// Quotes `value` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The container HEALTHCHECK: `GET <HEALTHCHECK_URL>` answering 2xx (through `wget` or
/// `curl`, whichever the image has; the check's timeout is Docker's HEALTHCHECK timeout,
/// as busybox 1.35's `wget -T` crashes), or, without a URL, a TCP connect to `$PORT` (through
/// `nc`, or bash's `/dev/tcp`). Swarm only reports a task `running` once this passed, which
/// is what gates a start-first rollout.
pub(crate) fn health_config(check: Option<&Healthcheck>, config: &SwarmConfig) -> HealthConfig {
    let (script, timeout, start) = match check {
        Some(check) => {
            let timeout = check.timeout_secs.max(1);
            // `$PORT` must expand and the path must not, so the URL is built from two parts.
            let path = shell_quote(&check.url);
            let script = format!(
                "url=\"http://127.0.0.1:$PORT\"{path}; \
                 if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null \"$url\"; \
                 elif command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null -m {timeout} \"$url\"; \
                 else echo 'HEALTHCHECK_URL needs wget or curl in the image' >&2; exit 1; fi"
            );
            (
                script,
                Duration::from_secs(timeout + 1),
                Duration::from_secs(check.initial_delay_secs),
            )
        }
        None => (
            "if command -v nc >/dev/null 2>&1; then nc -w 2 127.0.0.1 \"$PORT\" </dev/null >/dev/null; \
             elif command -v bash >/dev/null 2>&1; then bash -c 'exec 3<>/dev/tcp/127.0.0.1/'\"$PORT\"; \
             else echo 'the port check needs nc or bash in the image' >&2; exit 1; fi"
                .to_string(),
            Duration::from_secs(3),
            Duration::ZERO,
        ),
    };
    HealthConfig {
        test: Some(vec!["CMD-SHELL".into(), script]),
        interval: Some(nanos(config.health_interval)),
        timeout: Some(nanos(timeout)),
        retries: Some(i64::from(config.health_retries.max(1))),
        start_period: Some(nanos(start + config.start_grace)),
        start_interval: None,
    }
}

/// Placement constraints from the app's tags: `environ=prod` is `node.labels.environ==prod`,
/// as `deis tags:set` placed units on fleet machines with that metadata.
pub(crate) fn constraints(tags: &BTreeMap<String, String>) -> Result<Vec<String>> {
    tags.iter()
        .map(|(key, value)| {
            let plain = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            };
            if plain(key) && plain(value) {
                Ok(format!("node.labels.{key}=={value}"))
            } else {
                Err(Error::Invalid(ValidationError::new(
                    "tags",
                    "invalid",
                    format!(
                        "tag {key}={value} cannot be a placement constraint: use letters, digits, \
                         '-', '_' and '.'"
                    ),
                )))
            }
        })
        .collect()
}

/// What one service is made of.
pub(crate) struct ServiceInput<'a> {
    pub(crate) spec: &'a AppSpec,
    pub(crate) process_type: &'a str,
    pub(crate) replicas: u32,
    pub(crate) image: &'a str,
}

/// The labels of a service, and of its containers.
pub(crate) fn labels(
    config: &SwarmConfig,
    app: &str,
    process_type: &str,
    release: u64,
) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_OWNER.to_string(), config.owner.clone()),
        (LABEL_APP.to_string(), app.to_string()),
        (LABEL_TYPE.to_string(), process_type.to_string()),
        (LABEL_RELEASE.to_string(), release.to_string()),
    ])
}

/// The whole service spec; see the module docs of `swarm` for the rules.
pub(crate) fn service_spec(config: &SwarmConfig, input: &ServiceInput<'_>) -> Result<ServiceSpec> {
    let spec = input.spec;
    let routable = is_routable_type(input.process_type);
    let labels = labels(config, &spec.app, input.process_type, spec.release);
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if routable {
        env.push(format!("PORT={}", config.container_port));
    }
    let limits = spec
        .limits
        .get(input.process_type)
        .cloned()
        .unwrap_or_default();
    let container = TaskSpecContainerSpec {
        image: Some(input.image.to_string()),
        labels: Some(labels.clone()),
        command: spec
            .processes
            .get(input.process_type)
            .map(|c| vec!["/bin/sh".to_string(), "-c".to_string(), c.clone()]),
        env: Some(env),
        init: config.init.then_some(true),
        stop_grace_period: Some(nanos(config.stop_grace)),
        health_check: routable.then(|| health_config(spec.healthcheck.as_ref(), config)),
        ..Default::default()
    };
    let resources = TaskSpecResources {
        limits: Some(Limit {
            memory_bytes: limits.memory_bytes.and_then(|b| i64::try_from(b).ok()),
            // Swarm has no CPU shares; 1024 shares count as one CPU, the usual convention.
            nano_cpus: limits
                .cpu_shares
                .map(|shares| i64::from(shares) * 1_000_000_000 / 1024),
            pids: None,
        }),
        ..Default::default()
    };
    let mut constraints = constraints(&spec.tags)?;
    constraints.extend(config.placement.iter().cloned());
    let endpoint_spec = routable.then(|| EndpointSpec {
        // DNS round robin, not a virtual IP: the service name resolves to the task
        // addresses on the overlay network. A VIP needs IPVS in the kernel, which hosts
        // such as this project's CI machine lack (connections to the VIP fail with "no
        // route to host"), and host-mode ports need no VIP.
        mode: Some(EndpointSpecModeEnum::DNSRR),
        // Overlay endpoints are the task addresses: nothing to publish on the hosts.
        ports: (config.endpoints == super::SwarmEndpoints::HostPort).then(|| {
            vec![EndpointPortConfig {
                name: None,
                protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                target_port: Some(i64::from(config.container_port)),
                // Host mode with no fixed port: every task gets its own port on its node, which
                // is the task's endpoint (the ingress mesh would hide the tasks behind one port).
                published_port: None,
                publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            }]
        }),
    });
    let monitor = nanos(config.update_monitor);
    Ok(ServiceSpec {
        name: Some(service_name(config, &spec.app, input.process_type)),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(resources),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(config.restart_delay)),
                max_attempts: Some(0),
                window: None,
            }),
            placement: Some(TaskSpecPlacement {
                constraints: (!constraints.is_empty()).then_some(constraints),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(config.network.clone()),
                aliases: Some(vec![format!("{}.{}", input.process_type, spec.app)]),
                driver_opts: None,
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(input.replicas)),
            }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(i64::from(config.update_parallelism)),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(monitor),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(0),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(monitor),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }),
        networks: None,
        endpoint_spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use deis_core::scheduler::{Artifact, ProcessLimits};

    fn app_spec() -> AppSpec {
        let mut spec = AppSpec::new("go", 7);
        spec.artifact = Artifact::Image {
            name: "go:v7".into(),
        };
        spec.processes.insert("web".into(), "exec ./server".into());
        spec.env.insert("DEIS_APP".into(), "go".into());
        spec
    }

    fn input<'a>(spec: &'a AppSpec, process_type: &'a str) -> ServiceInput<'a> {
        ServiceInput {
            spec,
            process_type,
            replicas: 3,
            image: "go:v7",
        }
    }

    #[test]
    fn overlay_endpoints_publish_no_host_port() {
        let config = SwarmConfig {
            endpoints: super::super::SwarmEndpoints::Overlay,
            ..SwarmConfig::default()
        };
        let spec = app_spec();
        let service = service_spec(&config, &input(&spec, "web")).unwrap();
        let endpoint = service.endpoint_spec.unwrap();
        assert_eq!(endpoint.mode, Some(EndpointSpecModeEnum::DNSRR));
        assert_eq!(endpoint.ports, None);
    }

    #[test]
    fn a_web_service_is_replicated_labelled_published_and_rolls_start_first() {
        let config = SwarmConfig::default();
        let spec = app_spec();
        let service = service_spec(&config, &input(&spec, "web")).unwrap();
        assert_eq!(service.name.as_deref(), Some("go_web"));
        let labels = service.labels.unwrap();
        assert_eq!(labels[LABEL_APP], "go");
        assert_eq!(labels[LABEL_TYPE], "web");
        assert_eq!(labels[LABEL_RELEASE], "7");
        assert_eq!(service.mode.unwrap().replicated.unwrap().replicas, Some(3));
        let update = service.update_config.unwrap();
        assert_eq!(
            update.order,
            Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
        );
        assert_eq!(
            update.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
        assert_eq!(update.monitor, Some(nanos(config.update_monitor)));
        let port = &service.endpoint_spec.unwrap().ports.unwrap()[0];
        assert_eq!(port.target_port, Some(5000));
        assert_eq!(
            port.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
        let task = service.task_template.unwrap();
        let container = task.container_spec.unwrap();
        assert_eq!(
            container.command.unwrap(),
            ["/bin/sh", "-c", "exec ./server"]
        );
        assert!(container.env.unwrap().contains(&"PORT=5000".to_string()));
        assert_eq!(container.labels.unwrap()[LABEL_RELEASE], "7");
        assert!(container.health_check.is_some(), "web is health-checked");
        assert_eq!(
            task.networks.unwrap()[0].target.as_deref(),
            Some(config.network.as_str())
        );
        assert_eq!(
            task.restart_policy.unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::ANY)
        );
    }

    #[test]
    fn workers_have_no_port_and_no_port_check_and_run_the_image_command_without_procfile() {
        let config = SwarmConfig::default();
        let spec = app_spec();
        let service = service_spec(&config, &input(&spec, "worker")).unwrap();
        assert!(service.endpoint_spec.is_none());
        let container = service.task_template.unwrap().container_spec.unwrap();
        assert!(container.health_check.is_none());
        assert!(container.command.is_none(), "no Procfile entry");
        assert!(!container
            .env
            .unwrap()
            .iter()
            .any(|e| e.starts_with("PORT=")));
    }

    #[test]
    fn tags_become_node_label_constraints_and_bad_tags_are_refused() {
        let tags = BTreeMap::from([
            ("environ".to_string(), "prod".to_string()),
            ("rack".to_string(), "r-1.a".to_string()),
        ]);
        assert_eq!(
            constraints(&tags).unwrap(),
            ["node.labels.environ==prod", "node.labels.rack==r-1.a"]
        );
        let bad = BTreeMap::from([("environ".to_string(), "prod!=x".to_string())]);
        assert!(matches!(constraints(&bad), Err(Error::Invalid(_))));
        let config = SwarmConfig::default();
        let mut spec = app_spec();
        spec.tags = tags;
        let service = service_spec(&config, &input(&spec, "web")).unwrap();
        let placement = service.task_template.unwrap().placement.unwrap();
        assert_eq!(placement.constraints.unwrap().len(), 2);
    }

    #[test]
    fn limits_become_memory_and_nano_cpus() {
        let config = SwarmConfig::default();
        let mut spec = app_spec();
        spec.limits.insert(
            "web".into(),
            ProcessLimits {
                memory_bytes: Some(64 << 20),
                cpu_shares: Some(512),
            },
        );
        let service = service_spec(&config, &input(&spec, "web")).unwrap();
        let limits = service
            .task_template
            .unwrap()
            .resources
            .unwrap()
            .limits
            .unwrap();
        assert_eq!(limits.memory_bytes, Some(64 << 20));
        assert_eq!(limits.nano_cpus, Some(500_000_000));
    }

    #[test]
    fn health_checks_follow_the_healthcheck_settings() {
        let config = SwarmConfig::default();
        let check = Healthcheck {
            url: "/health?x='1'".into(),
            initial_delay_secs: 4,
            timeout_secs: 2,
        };
        let health = health_config(Some(&check), &config);
        let test = health.test.unwrap();
        assert_eq!(test[0], "CMD-SHELL");
        assert!(test[1].contains(r#"url="http://127.0.0.1:$PORT"'/health?x='\''1'\'''"#));
        assert!(test[1].contains("wget -q -O /dev/null \"$url\""));
        assert!(test[1].contains("curl -fsS -o /dev/null -m 2"));
        assert_eq!(health.timeout, Some(nanos(Duration::from_secs(3))));
        assert_eq!(
            health.start_period,
            Some(nanos(Duration::from_secs(4) + config.start_grace))
        );
        let port_check = health_config(None, &config).test.unwrap();
        assert!(port_check[1].contains("nc -w 2 127.0.0.1 \"$PORT\""));
    }
}
