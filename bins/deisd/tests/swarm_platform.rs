//! The multi-host topology on this machine's Docker Swarm (one node, as scripts/test sets it
//! up), stood up by `deisctl --engine swarm install platform` / `start platform`: three etcd
//! members, PostgreSQL, the logger, the controller (scheduling apps as Swarm services on
//! the overlay network), the builder and two router meshes, each a Swarm service placed by
//! node labels. A new user's whole path runs against it, and then the fault tests, each
//! bounded in time and measured (the numbers are printed as `recovery:` lines):
//!
//! - one etcd member stopped: routing and deploys go on;
//! - every etcd member stopped: the routers keep serving their last table; when etcd comes
//!   back a deploy is routed with no manual step;
//! - a router killed: the other mesh keeps serving, Swarm replaces the killed one;
//! - the controller killed in the middle of a deploy: on restart the release is there once
//!   and runs (the deploy completes), no release is lost or duplicated;
//! - an app container killed: Swarm replaces it and it is routable again.
//!
//! Everything the test made (services, containers, network, volumes, images, the node
//! labels it added) is removed at the end, pass or fail.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{deis_binary, free_port, wait_http, SampleApp, World};

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Three free ports in a row (etcd members publish their client ports side by side).
fn free_port_run(count: u16) -> u16 {
    loop {
        let base = free_port();
        if base > u16::MAX - count {
            continue;
        }
        let all_free =
            (0..count).all(|i| std::net::TcpListener::bind(("0.0.0.0", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
}

/// One platform on the swarm under a unique prefix.
struct Platform {
    prefix: String,
    etcd_port: u16,
    registry_port: u16,
    labelled_nodes: bool,
}

impl Platform {
    fn discovery(&self) -> String {
        let p = self.etcd_port;
        format!(
            "etcd://127.0.0.1:{p},127.0.0.1:{},127.0.0.1:{}",
            p + 1,
            p + 2
        )
    }

    fn deisctl(&self, args: &[&str]) -> Output {
        let deisd = PathBuf::from(env!("CARGO_BIN_EXE_deisd"));
        let deisctl = deisd.with_file_name("deisctl");
        assert!(
            deisctl.is_file(),
            "{} is missing: build the workspace (cargo build --bins --features etcd)",
            deisctl.display()
        );
        Command::new(deisctl)
            .args(["--engine", "swarm", "--prefix", &self.prefix])
            .args(["--etcd-port", &self.etcd_port.to_string()])
            .args(["--discovery", &self.discovery()])
            .args(args)
            .env("DEISCTL_DEISD", &deisd)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.deisctl(args);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "deisctl {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// The container of the running task of service `service`.
    fn task_container(&self, service: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={service}"),
            ]);
            if let Some(id) = found.split_whitespace().next() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no running task of {service}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let p = self.prefix.clone();
        let _ = self.deisctl(&["uninstall", "platform"]);
        for label in [
            format!("label=io.deis.platform={p}"),
            format!("label=io.deis.owner={p}"),
        ] {
            for service in docker(&["service", "ls", "-q", "--filter", &label]).split_whitespace() {
                docker(&["service", "rm", service]);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let leftovers = || {
            let mut ids = docker(&[
                "ps",
                "-aq",
                "--filter",
                &format!("label=io.deis.platform={p}"),
            ]);
            ids.push_str(&docker(&[
                "ps",
                "-aq",
                "--filter",
                &format!("label=io.deis.owner={p}"),
            ]));
            ids
        };
        while !leftovers().trim().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
        }
        for id in leftovers().split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        for plane in ["control", "etcd", "router", "data"] {
            docker(&["network", "rm", &format!("{p}-{plane}")]);
        }
        docker(&[
            "volume",
            "rm",
            "-f",
            &format!("{p}-data"),
            &format!("{p}-database"),
            &format!("{p}-registry"),
        ]);
        // What was pushed to the platform's registry (tags of images built or published).
        for pattern in ["*", "*/*"] {
            let pushed = format!("reference=127.0.0.1:{}/{pattern}", self.registry_port);
            for image in docker(&["images", "-q", "--filter", &pushed]).split_whitespace() {
                docker(&["rmi", "-f", image]);
            }
        }
        // App (slug) images, and the platform image even when an earlier removal only
        // untagged it (a container still used it).
        for label in [
            format!("label=io.deis.owner={p}"),
            format!("label=io.deis.platform={p}"),
        ] {
            for image in docker(&["images", "-q", "--filter", &label]).split_whitespace() {
                docker(&["rmi", "-f", image]);
            }
        }
        for image in ["platform", "runner"] {
            docker(&[
                "rmi",
                "-f",
                &format!("{p}-{image}:{}", env!("CARGO_PKG_VERSION")),
            ]);
        }
        if self.labelled_nodes {
            for node in docker(&["node", "ls", "-q"]).split_whitespace() {
                for label in ["deis.control", "deis.etcd", "deis.router", "deis.data"] {
                    docker(&["node", "update", "--label-rm", label, node]);
                }
            }
        }
    }
}

const SHELL_WEB: SampleApp = SampleApp {
    dir: "shell-web",
    instance_key: "instance ",
};

/// Polls `check` every 100 ms for at most `limit`; the time it took, or a panic naming
/// `what`.
fn measure(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    eprintln!("recovery: {what}: {} ms", took.as_millis());
    took
}

/// Whether the router on `port` answers `host` with a body containing `needle`.
fn serves(host: &str, port: u16, needle: &str) -> bool {
    let output = Command::new("curl")
        .args(["-s", "-m", "2", "-H"])
        .arg(format!("Host: {host}"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).contains(needle)
}

/// Asserts that every request for `duration` through `port` is answered by the app.
fn keeps_serving(port: u16, duration: Duration, what: &str) {
    let until = Instant::now() + duration;
    let mut answered = 0;
    while Instant::now() < until {
        assert!(
            serves("demo.localhost", port, "hello from demo"),
            "{what}: the router on {port} stopped serving after {answered} answers"
        );
        answered += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("{what}: {answered} requests through router port {port}, all answered");
}

fn etcd_healthy(port: u16) -> bool {
    Command::new("curl")
        .args(["-sf", "-m", "2", &format!("http://127.0.0.1:{port}/health")])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("true"))
}

fn release_numbers(w: &World) -> Vec<String> {
    w.deis(&["releases"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| v.starts_with('v') && v[1..].chars().all(|c| c.is_ascii_digit()))
        .map(String::from)
        .collect()
}

fn faults(w: &World, platform: &Platform, routers: [u16; 2]) {
    let p = &platform.prefix;
    let e = platform.etcd_port;

    // 1. One etcd member stops: routing and deploys go on.
    platform.ok(&["stop", "etcd@2"]);
    measure("etcd@2 stopped", Duration::from_secs(30), || {
        !etcd_healthy(e + 1)
    });
    keeps_serving(routers[0], Duration::from_secs(2), "etcd@2 down");
    let started = Instant::now();
    let set = w.deis(&["config:set", "FAULT=one-member-down"]);
    assert!(set.contains("done, v5"), "{set}");
    w.wait_for(
        "demo.localhost",
        "a deploy with one etcd member down",
        |code, body| code == 200 && body.contains("hello from demo v5"),
    );
    eprintln!(
        "recovery: deploy (config:set to routed) with etcd@2 down: {} ms",
        started.elapsed().as_millis()
    );
    let restarted = Instant::now();
    platform.ok(&["start", "etcd@2"]);
    measure("etcd@2 back and healthy", Duration::from_secs(60), || {
        etcd_healthy(e + 1)
    });
    eprintln!(
        "recovery: etcd@2 start to healthy member: {} ms",
        restarted.elapsed().as_millis()
    );

    // 2. Every etcd member stops: the routers keep their last table.
    platform.ok(&["stop", "etcd"]);
    measure("all etcd members stopped", Duration::from_secs(30), || {
        (0..3).all(|i| !etcd_healthy(e + i))
    });
    keeps_serving(routers[0], Duration::from_secs(12), "etcd down");
    keeps_serving(routers[1], Duration::from_secs(1), "etcd down");
    // The store is PostgreSQL, so the controller still scales; the new instance cannot be
    // published until etcd is back.
    let scaled = w.deis(&["scale", "web=4"]);
    assert!(
        scaled.contains("web=4") || scaled.contains("done"),
        "{scaled}"
    );
    keeps_serving(routers[0], Duration::from_secs(1), "etcd down, scaled");
    let restarted = Instant::now();
    platform.ok(&["start", "etcd"]);
    measure(
        "etcd cluster back (quorum)",
        Duration::from_secs(60),
        || (0..3).filter(|i| etcd_healthy(e + i)).count() >= 2,
    );
    eprintln!(
        "recovery: etcd start to a healthy cluster: {} ms",
        restarted.elapsed().as_millis()
    );
    keeps_serving(routers[0], Duration::from_secs(1), "etcd back");
    // What changed during the outage is published with no manual step.
    measure(
        "etcd back to the instance started during the outage routed",
        Duration::from_secs(60),
        || support::instances_answering(w, "demo.localhost", &SHELL_WEB, 4).len() == 4,
    );
    eprintln!(
        "recovery: etcd start to the outage's new instance routed: {} ms",
        restarted.elapsed().as_millis()
    );
    w.deis(&["scale", "web=3"]);
    // A deploy after the outage is published and routed with no manual step.
    let set = w.deis(&["config:set", "FAULT=etcd-back"]);
    assert!(set.contains("done, v6"), "{set}");
    w.wait_for(
        "demo.localhost",
        "a deploy after etcd came back",
        |code, body| code == 200 && body.contains("hello from demo v6"),
    );
    eprintln!(
        "recovery: etcd start to a new deploy routed: {} ms",
        restarted.elapsed().as_millis()
    );

    // 3. A router is killed: the other mesh keeps serving; Swarm replaces the killed one.
    let router = platform.task_container(&format!("{p}-router-1"));
    docker(&["kill", &router]);
    let mut survivor_answers = 0;
    measure(
        "router@1 killed to a new router@1 serving (router@2 checked meanwhile)",
        Duration::from_secs(60),
        || {
            assert!(
                serves("demo.localhost", routers[1], "hello from demo"),
                "router@2 stopped serving while router@1 was down"
            );
            survivor_answers += 1;
            // Only ask router@1 once a new task runs: the dead one's port swallows requests.
            let running = docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={p}-router-1"),
            ]);
            running.split_whitespace().any(|id| id != router)
                && serves("demo.localhost", routers[0], "hello from demo")
        },
    );
    eprintln!("router@1 down: router@2 answered all {survivor_answers} requests");

    // 4. The controller is killed in the middle of a deploy.
    let before = release_numbers(w);
    let mut deploy = Command::new(&w.deis)
        .args(["config:set", "FAULT=controller-killed"])
        .current_dir(w.app_dir())
        .env("HOME", w.home())
        .env("DEIS_PROFILE", "client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let controller = platform.task_container(&format!("{p}-controller"));
    docker(&["kill", &controller]);
    let killed = Instant::now();
    let _ = deploy.wait();
    wait_http(
        &format!("http://127.0.0.1:{}/healthz", w.api),
        "the restarted controller",
    );
    eprintln!(
        "recovery: controller killed to answering again: {} ms",
        killed.elapsed().as_millis()
    );
    let after = release_numbers(w);
    let unique: BTreeSet<&String> = after.iter().collect();
    assert_eq!(unique.len(), after.len(), "no duplicate release: {after:?}");
    for release in &before {
        assert!(after.contains(release), "release {release} lost: {after:?}");
    }
    let config = w.deis(&["config"]);
    if after.len() > before.len() {
        // The deploy's release was recorded: on restart it runs (completed).
        assert_eq!(after.len(), before.len() + 1, "{after:?}");
        assert!(config.contains("controller-killed"), "{config}");
        measure(
            "controller restart to the interrupted release on every instance",
            Duration::from_secs(90),
            || {
                let ps = w.deis(&["ps"]);
                ps.matches(" up (v7)").count() == 3 && ps.matches(" (v").count() == 3
            },
        );
        assert!(serves("demo.localhost", routers[0], "hello from demo v7"));
    } else {
        // The kill came before the release was recorded: nothing changed (rolled back).
        assert!(!config.contains("controller-killed"), "{config}");
        measure(
            "controller restart with the old release still routed",
            Duration::from_secs(30),
            || serves("demo.localhost", routers[0], "hello from demo v6"),
        );
    }
    let ps = w.deis(&["ps"]);
    assert_eq!(ps.matches(" up (v").count(), 3, "{ps}");

    // 5. An app container is killed: Swarm replaces it and it is routable again. First the
    // service must be settled (no rolling update left from the restart), so the only new
    // instance is the replacement.
    let service = format!("{p}-demo_web");
    measure(
        "the app's service settled after the controller restart",
        Duration::from_secs(120),
        || {
            let update = docker(&[
                "service",
                "inspect",
                &service,
                "-f",
                "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            ]);
            matches!(update.trim(), "" | "completed" | "rollback_completed")
                && support::instances_answering(w, "demo.localhost", &SHELL_WEB, 3).len() == 3
        },
    );
    let before = support::instances_answering(w, "demo.localhost", &SHELL_WEB, 3);
    assert_eq!(before.len(), 3, "{before:?}");
    std::thread::sleep(Duration::from_secs(2));
    let again = support::instances_answering(w, "demo.localhost", &SHELL_WEB, 3);
    assert_eq!(
        before, again,
        "the instances changed while nothing happened"
    );
    // The victim is one of the instances that answered (not a task still shutting down).
    let running = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={p}-demo_web"),
    ]);
    let (victim, victim_host) = running
        .split_whitespace()
        .map(|id| {
            let host = docker(&["inspect", "-f", "{{.Config.Hostname}}", id]);
            (id.to_string(), host.trim().to_string())
        })
        .find(|(_, host)| before.contains(host))
        .unwrap_or_else(|| panic!("no running container answered as {before:?}"));
    docker(&["kill", &victim]);
    let killed = Instant::now();
    assert!(
        before.contains(&victim_host),
        "{victim_host} not in {before:?}"
    );
    measure(
        "app container killed to its replacement answering through the router",
        Duration::from_secs(60),
        || {
            let (code, body) = w.curl("demo.localhost");
            code == 200
                && body
                    .split("instance ")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .is_some_and(|id| !before.contains(id))
        },
    );
    let after = support::instances_answering(w, "demo.localhost", &SHELL_WEB, 3);
    assert!(!after.contains(&victim_host), "{after:?}");
    eprintln!(
        "recovery: app container kill to three instances answering again: {} ms \
         (killed {victim_host}; before {before:?}, after {after:?})",
        killed.elapsed().as_millis()
    );
}

/// The address of `container` on the network `network`.
fn address_on(container: &str, network: &str) -> String {
    let ip = docker(&[
        "inspect",
        "-f",
        &format!("{{{{with index .NetworkSettings.Networks \"{network}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}"),
        container,
    ]);
    let ip = ip.trim().to_string();
    assert!(!ip.is_empty(), "{container} is not on {network}");
    ip
}

/// What `container` gets for `GET <path>` from `host:port`, through its own busybox `nc`
/// (its `wget` crashes in the scratch image).
fn http_get_from(container: &str, host: &str, port: u16, path: &str) -> String {
    let request = format!(
        "printf 'GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | timeout 3 nc -w 2 {host} {port}"
    );
    docker(&["exec", container, "sh", "-c", &request])
}

/// What `container` gets when it asks etcd's `/health` at `host`.
fn etcd_health_from(container: &str, host: &str) -> String {
    http_get_from(container, host, 2379, "/health")
}

/// Whether `container` gets PostgreSQL's answer to an SSLRequest from `ip`: the one byte
/// `N` (or `S`), which only a PostgreSQL server sends (a plain TCP connect proves nothing
/// here: this machine's egress proxy accepts any connection).
fn postgres_answers_from(container: &str, ip: &str) -> bool {
    let probe =
        format!("printf '\\000\\000\\000\\010\\004\\322\\026\\057' | timeout 3 nc -w 2 {ip} 5432");
    let answer = docker(&["exec", container, "sh", "-c", &probe]);
    answer == "N" || answer == "S"
}

/// The networks `container` is attached to.
fn networks_of(container: &str) -> Vec<String> {
    let names = docker(&[
        "inspect",
        "-f",
        "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
        container,
    ]);
    names.split_whitespace().map(str::to_string).collect()
}

/// The route `container` would take to `ip`, read from its own routing table (`ip route
/// get` sends nothing).
fn route_from(container: &str, ip: &str) -> String {
    docker(&["exec", container, "ip", "route", "get", ip])
}

/// Asserts that `container` has no network in common with `ip`: only its default route
/// (via a gateway) leads there. Probing with packets instead would send them off the
/// machine through that default route.
fn assert_cut_off(container: &str, what: &str, ip: &str) {
    let route = route_from(container, ip);
    assert!(
        route.contains(" via "),
        "{container} has a network of its own to {what} at {ip}: {route}"
    );
}

/// The planes are separate networks: an app reaches neither PostgreSQL nor etcd, while the
/// controller reaches both and a router reaches etcd and the app.
fn network_isolation(platform: &Platform) {
    let p = &platform.prefix;
    let started = Instant::now();
    let app = platform.task_container(&format!("{p}-demo_web"));
    let router = platform.task_container(&format!("{p}-router-1"));
    let controller = platform.task_container(&format!("{p}-controller"));
    let database = platform.task_container(&format!("{p}-database"));
    let etcd = platform.task_container(&format!("{p}-etcd-1"));
    let database_ip = address_on(&database, &format!("{p}-control"));
    let etcd_ip = address_on(&etcd, &format!("{p}-etcd"));
    let app_ip = address_on(&app, &format!("{p}-data"));
    // What can reach what: the controller the store and etcd, a router etcd and the app
    // (each over an overlay network both ends are on).
    assert!(postgres_answers_from(&controller, &database_ip));
    let health = etcd_health_from(&controller, &etcd_ip);
    assert!(health.contains("\"health\":\"true\""), "{health}");
    let health = etcd_health_from(&router, &etcd_ip);
    assert!(health.contains("\"health\":\"true\""), "{health}");
    let page = http_get_from(&router, &app_ip, 5000, "/");
    assert!(page.contains("hello from demo"), "{page}");
    // What cannot: the app is on the data network only, with no route of its own to
    // PostgreSQL or etcd; a router has none to the control plane.
    let app_networks = networks_of(&app);
    assert!(
        app_networks
            .iter()
            .all(|n| n != &format!("{p}-control") && n != &format!("{p}-etcd")),
        "the app is on {app_networks:?}"
    );
    assert!(
        app_networks.contains(&format!("{p}-data")),
        "{app_networks:?}"
    );
    assert_cut_off(&app, "PostgreSQL", &database_ip);
    assert_cut_off(&app, "etcd", &etcd_ip);
    assert_cut_off(&router, "PostgreSQL", &database_ip);
    let router_networks = networks_of(&router);
    assert!(
        !router_networks.contains(&format!("{p}-control")),
        "a router is on {router_networks:?}"
    );
    eprintln!(
        "networks: app on {app_networks:?}, no route to PostgreSQL or etcd; router on \
         {router_networks:?}, reaches etcd and the app, no route to PostgreSQL (checked in {} ms)",
        started.elapsed().as_millis()
    );
}

/// `deis` as alice in `dir`.
fn deis_in(w: &World, dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(&w.deis)
        .args(args)
        .current_dir(dir)
        .env("HOME", w.home())
        .env("DEIS_PROFILE", "client")
        .env("DEIS_SSH_PORT", w.ssh.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "deis {args:?} failed: {}{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

/// `git` as alice in `dir` (her SSH key for pushes).
fn git_in(w: &World, dir: &std::path::Path, args: &[&str]) -> Output {
    let key = w.home().join(".ssh/id_ed25519");
    Command::new("git")
        .args(["-c", "user.email=alice@example.com", "-c", "user.name=Alice"])
        .args(args)
        .current_dir(dir)
        .env("HOME", w.home())
        .env(
            "GIT_SSH_COMMAND",
            format!(
                "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR",
                key.display()
            ),
        )
        .output()
        .unwrap()
}

/// A Dockerfile app made of this machine's static busybox (nothing is pulled): `httpd` on
/// port 5000 answering `hello from <greeting> <release>`.
fn write_dockerfile_app(dir: &std::path::Path, greeting: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("busybox-static installed");
    std::fs::copy(busybox, dir.join("busybox")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nEXPOSE 5000\n\
             CMD [\"/bin/sh\", \"-c\", \"mkdir -p /www && echo \\\"hello from {greeting} $DEIS_RELEASE\\\" > /www/index.html && exec httpd -f -p 5000 -h /www\"]\n"
        ),
    )
    .unwrap();
}

/// The tags of `name` in the platform's registry (`GET /v2/<name>/tags/list`).
fn registry_tags(platform: &Platform, name: &str) -> String {
    let output = Command::new("curl")
        .args(["-s", "-m", "5"])
        .arg(format!(
            "http://127.0.0.1:{}/v2/{name}/tags/list",
            platform.registry_port
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn service_image(service: &str) -> String {
    docker(&[
        "service",
        "inspect",
        service,
        "-f",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ])
    .trim()
    .to_string()
}

/// App images go through the platform's registry: a Dockerfile app pushed with git is
/// built, pushed to the registry and run from the registry reference; an image deployed
/// with `deis pull` is tagged into the registry and run from there too.
fn registry_images(w: &World, platform: &Platform) {
    let p = &platform.prefix;
    let registry = format!("127.0.0.1:{}", platform.registry_port);
    let dir = w.root.path().join("dockerapp");
    write_dockerfile_app(&dir, "dockerfile");
    assert!(git_in(w, &dir, &["init", "-q", "-b", "master"])
        .status
        .success());
    assert!(git_in(w, &dir, &["add", "."]).status.success());
    assert!(git_in(w, &dir, &["commit", "-qm", "dockerfile app"])
        .status
        .success());
    let sha = String::from_utf8_lossy(&git_in(w, &dir, &["rev-parse", "HEAD"]).stdout)
        .trim()
        .to_string();
    let tag = format!("git-{}", &sha[..7]);
    deis_in(w, &dir, &["create", "dockerapp"]);
    let started = Instant::now();
    let push = git_in(w, &dir, &["push", "deis", "master"]);
    let push_text = format!(
        "{}{}",
        String::from_utf8_lossy(&push.stdout),
        String::from_utf8_lossy(&push.stderr)
    );
    assert!(push.status.success(), "git push failed: {push_text}");
    assert!(
        push_text.contains(&format!("Pushing the image to the registry {registry}")),
        "{push_text}"
    );
    let tags = registry_tags(platform, "dockerapp");
    assert!(tags.contains(&format!("\"{tag}\"")), "{tags}");
    let service = format!("{p}-dockerapp_cmd");
    assert_eq!(
        service_image(&service),
        format!("{registry}/dockerapp:{tag}")
    );
    w.wait_for("dockerapp.localhost", "the Dockerfile app", |code, body| {
        code == 200 && body.contains("hello from dockerfile v2")
    });
    eprintln!(
        "registry: Dockerfile app pushed, built, pushed to {registry} and routed in {} ms",
        started.elapsed().as_millis()
    );

    // `deis pull` of an image on the engine: published to the registry, run from there.
    let pulled_dir = w.root.path().join("pulled");
    write_dockerfile_app(&pulled_dir, "pulled");
    let local = format!("{p}-pulled:1");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", &local, "--label"])
        .arg(format!("io.deis.platform={p}"))
        .arg(&pulled_dir)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let id = String::from_utf8_lossy(&built.stdout).trim().to_string();
    let id_tag = format!(
        "id-{}",
        id.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>()
    );
    let started = Instant::now();
    let pulled = deis_in(w, &dir, &["pull", &local, "-a", "dockerapp"]);
    assert!(pulled.contains("v3"), "{pulled}");
    let tags = registry_tags(platform, "dockerapp");
    assert!(tags.contains(&format!("\"{id_tag}\"")), "{tags}");
    assert_eq!(
        service_image(&service),
        format!("{registry}/dockerapp:{id_tag}")
    );
    w.wait_for("dockerapp.localhost", "the pulled image", |code, body| {
        code == 200 && body.contains("hello from pulled v3")
    });
    eprintln!(
        "registry: deis pull published to {registry} and routed in {} ms",
        started.elapsed().as_millis()
    );
    // An image the engine does not have is refused in one line, nothing pulled.
    let missing = Command::new(&w.deis)
        .args(["pull", &format!("{p}-missing:1"), "-a", "dockerapp"])
        .current_dir(&dir)
        .env("HOME", w.home())
        .env("DEIS_PROFILE", "client")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&missing.stderr).to_string();
    assert!(!missing.status.success(), "{said}");
    assert!(said.contains("is not on the engine"), "{said}");
    assert!(
        !deis_in(w, &dir, &["releases"]).contains("v4"),
        "the failed pull made no release"
    );
    deis_in(
        w,
        &dir,
        &["destroy", "-a", "dockerapp", "--confirm", "dockerapp"],
    );
}

#[test]
fn deisctl_stands_up_the_swarm_topology_that_serves_the_new_user_path_and_survives_faults() {
    let mut platform = Platform {
        prefix: format!("sw{}", std::process::id()),
        etcd_port: free_port_run(3),
        registry_port: free_port(),
        labelled_nodes: false,
    };
    let world = World {
        root: tempfile::tempdir().unwrap(),
        api: free_port(),
        router: free_port_run(2),
        ssh: free_port(),
        deis: deis_binary(),
    };
    std::fs::create_dir_all(world.home().join(".ssh")).unwrap();
    std::fs::create_dir_all(world.app_dir()).unwrap();
    let p = platform.prefix.clone();

    // etcd first (the settings live there), then the rest of the platform.
    let stood_up = Instant::now();
    let installed = platform.ok(&["install", "etcd"]);
    platform.labelled_nodes = installed.contains("labelled");
    for n in 1..=3 {
        assert!(
            installed.contains(&format!("{p}-etcd@{n}: installed")),
            "{installed}"
        );
    }
    platform.ok(&["start", "etcd"]);
    platform.ok(&[
        "config",
        "controller",
        "set",
        &format!("hostPort={}", world.api),
    ]);
    platform.ok(&[
        "config",
        "builder",
        "set",
        &format!("hostPort={}", world.ssh),
    ]);
    platform.ok(&[
        "config",
        "router",
        "set",
        &format!("hostPort={}", world.router),
    ]);
    platform.ok(&[
        "config",
        "registry",
        "set",
        &format!("hostPort={}", platform.registry_port),
    ]);
    let installed = platform.ok(&["install", "platform", "--router-mesh-size", "2"]);
    for unit in [
        "database",
        "registry",
        "logger",
        "controller",
        "builder",
        "router@1",
        "router@2",
    ] {
        assert!(
            installed.contains(&format!("{p}-{unit}: installed")),
            "{installed}"
        );
    }
    let started = platform.ok(&["start", "platform"]);
    assert!(
        started.contains(&format!("{p}-router@2: started")),
        "{started}"
    );
    wait_http(
        &format!("http://127.0.0.1:{}/healthz", world.api),
        "the controller",
    );
    eprintln!(
        "platform stood up (install + start, image built) in {} ms",
        stood_up.elapsed().as_millis()
    );

    // `list` shows every unit running, where, and its placement by plane.
    let list = platform.ok(&["list"]);
    eprintln!("{list}");
    let node = docker(&["node", "inspect", "self", "-f", "{{.Description.Hostname}}"]);
    for (unit, plane) in [
        ("etcd@1", "deis.etcd"),
        ("etcd@2", "deis.etcd"),
        ("etcd@3", "deis.etcd"),
        ("database", "deis.control"),
        ("registry", "deis.control"),
        ("logger", "deis.control"),
        ("controller", "deis.control"),
        ("builder", "deis.control"),
        ("router@1", "deis.router"),
        ("router@2", "deis.router"),
    ] {
        let line = list
            .lines()
            .find(|l| l.starts_with(&format!("{p}-{unit} ")))
            .unwrap_or_else(|| panic!("{unit} missing from {list}"));
        assert!(line.contains(" running "), "{line}");
        assert!(line.contains(node.trim()), "{line}");
        assert!(
            line.contains(&format!("placement node.labels.{plane}==true")),
            "{line}"
        );
    }
    // And on which networks (the planes').
    for (unit, networks) in [
        ("etcd@1", "networks etcd"),
        ("database", "networks control"),
        ("controller", "networks control,etcd"),
        ("router@1", "networks router,etcd,data"),
    ] {
        let line = list
            .lines()
            .find(|l| l.starts_with(&format!("{p}-{unit} ")))
            .unwrap();
        assert!(line.ends_with(networks), "{line}");
    }
    assert!(
        list.contains(&format!("{p}-router@1")) && list.contains("global"),
        "{list}"
    );
    // The controller schedules apps on the data plane.
    let scheduler = docker(&[
        "service",
        "inspect",
        &format!("{p}-controller"),
        "-f",
        "{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}",
    ]);
    assert!(
        scheduler.contains("constraint=node.labels.deis.data==true"),
        "{scheduler}"
    );

    // The new user's path, with the fault tests before the app is destroyed.
    let routers = [world.router, world.router + 1];
    support::new_user_path_with(&world, &SHELL_WEB, |w| {
        // The app runs as a Swarm service of this platform placed on the data plane.
        let placement = docker(&[
            "service",
            "inspect",
            &format!("{p}-demo_web"),
            "-f",
            "{{json .Spec.TaskTemplate.Placement.Constraints}}",
        ]);
        assert!(
            placement.contains("node.labels.deis.data==true"),
            "{placement}"
        );
        // The slug app runs from its slug image in the platform's registry.
        let image = service_image(&format!("{p}-demo_web"));
        let registry = format!("127.0.0.1:{}", platform.registry_port);
        assert!(
            image.starts_with(&format!("{registry}/{p}-deis-slug/demo:")),
            "{image}"
        );
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        let tags = registry_tags(&platform, &format!("{p}-deis-slug/demo"));
        assert!(tags.contains(&format!("\"{tag}\"")), "{tags}");
        // Both router meshes serve it.
        assert!(serves("demo.localhost", routers[1], "hello from demo"));
        network_isolation(&platform);
        registry_images(w, &platform);
        faults(w, &platform, routers);
    });
}
