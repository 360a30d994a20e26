//! `deisd --scheduler swarm://…` and `docker://…` on this machine's Docker Engine (a
//! single-node Swarm manager, as scripts/test sets it up): the apps a user pushes run as
//! Swarm services or containers built from their slugs on a slug runner image (this
//! machine's static busybox, imported by the test: nothing is pulled), and the router
//! reaches them on their published ports. Every service, container, network and image the
//! test made is removed at the end, pass or fail.

mod support;

use std::process::{Command, Stdio};
use support::{deis_binary, free_port, wait_http, Daemon, SampleApp, World};

/// Docker objects of one test, labelled `io.deis.owner=<owner>`, removed on drop.
struct Engine {
    owner: String,
    runner: String,
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).to_string()
}

impl Engine {
    fn new(kind: &str) -> Engine {
        let owner = format!("t{kind}{}", std::process::id());
        let runner = format!("{owner}-stack:1");
        import_busybox_stack(&runner);
        Engine { owner, runner }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let label = format!("label=io.deis.owner={}", self.owner);
        for service in docker(&["service", "ls", "-q", "--filter", &label]).split_whitespace() {
            docker(&["service", "rm", service]);
        }
        // Swarm stops the tasks' containers after the services are gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !docker(&["ps", "-aq", "--filter", &label]).trim().is_empty()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        for container in docker(&["ps", "-aq", "--filter", &label]).split_whitespace() {
            docker(&["rm", "-f", container]);
        }
        docker(&["network", "rm", &self.owner]);
        for image in docker(&["images", "-q", "--filter", &label]).split_whitespace() {
            docker(&["rmi", "-f", image]);
        }
        docker(&["rmi", "-f", &self.runner]);
    }
}

/// Imports `/bin/busybox` (busybox-static) with a link per applet as `image`.
fn import_busybox_stack(image: &str) {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    let archive = root.path().join("stack.tar");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .arg("-cf")
        .arg(&archive)
        .args(["bin", "tmp"])
        .status()
        .unwrap();
    assert!(packed.success(), "tar of the stack image");
    let imported = Command::new("docker")
        .args(["import", "-c", "ENV PATH=/bin"])
        .arg(&archive)
        .arg(image)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
}

fn start(scheduler: &str) -> (World, Daemon) {
    let world = World {
        root: tempfile::tempdir().unwrap(),
        api: free_port(),
        router: free_port(),
        ssh: free_port(),
        deis: deis_binary(),
    };
    std::fs::create_dir_all(world.home().join(".ssh")).unwrap();
    std::fs::create_dir_all(world.app_dir()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_deisd"))
        .arg("--data-dir")
        .arg(world.root.path().join("data"))
        .args(["--api-addr", &format!("127.0.0.1:{}", world.api)])
        .args(["--router-addr", &format!("127.0.0.1:{}", world.router)])
        .args(["--ssh-addr", &format!("127.0.0.1:{}", world.ssh)])
        .args(["--scheduler", scheduler])
        .env("HOME", world.home())
        .env_remove("DEIS_DISCOVERY")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let daemon = Daemon { child };
    wait_http(
        &format!("http://127.0.0.1:{}/healthz", world.api),
        "deisd with a container scheduler",
    );
    (world, daemon)
}

const SHELL_WEB: SampleApp = SampleApp {
    dir: "shell-web",
    instance_key: "instance ",
};

#[test]
fn deisd_on_swarm_runs_the_whole_new_user_path_as_services() {
    let engine = Engine::new("swarm");
    let o = &engine.owner;
    let (w, _daemon) = start(&format!(
        "swarm://?runner={}&owner={o}&prefix={o}-&network={o}",
        engine.runner
    ));
    support::new_user_path(&w, &SHELL_WEB);
    // The app ran as Swarm services of this platform, gone after destroy.
    let label = format!("label=io.deis.owner={o}");
    assert_eq!(
        docker(&["service", "ls", "-q", "--filter", &label]).trim(),
        ""
    );
}

#[test]
fn deisd_on_docker_runs_pushed_slugs_as_containers() {
    let engine = Engine::new("docker");
    let o = &engine.owner;
    let (w, _daemon) = start(&format!(
        "docker://?runner={}&owner={o}&prefix={o}-",
        engine.runner
    ));
    support::register_and_push(&w, &SHELL_WEB);
    let body = w.wait_for("demo.localhost", "the first deploy", |code, body| {
        code == 200 && body.contains("hello from demo v2")
    });
    assert!(body.contains("port 5000"), "{body}");
    // The containers carry Deis's names and run the slug image built for the release.
    let label = format!("label=io.deis.owner={o}");
    let names = docker(&[
        "ps",
        "--filter",
        &label,
        "--format",
        "{{.Names}} {{.Image}}",
    ]);
    assert!(
        names.contains(&format!("{o}-demo_v2.web.1 {o}-deis-slug/demo:")),
        "{names}"
    );
    w.deis(&["scale", "web=2"]);
    let seen = support::instances_answering(&w, "demo.localhost", &SHELL_WEB, 2);
    assert_eq!(seen.len(), 2, "two containers answered: {seen:?}");
    let run = w.deis(&["run", "echo", "one-off", "$DEIS_APP"]);
    assert!(run.contains("one-off demo"), "{run}");
    w.deis(&["destroy", "--confirm=demo"]);
    w.wait_for("demo.localhost", "the destroyed app", |code, _| code == 404);
    assert_eq!(docker(&["ps", "-q", "--filter", &label]).trim(), "");
}

#[test]
fn a_bad_scheduler_url_is_a_one_line_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_deisd"))
        .args(["--scheduler", "swarm://?endpoints=vip"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("endpoints=vip"), "{stderr}");
}
