//! The path a new user takes, driven through the real binaries: `deisd` on its embedded
//! defaults (own ports and data directory), the `deis` CLI, a stock `git push` over SSH,
//! and `curl` through the router.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{copy_dir, deis_binary, free_port, Daemon, World};

fn start() -> (World, Daemon) {
    let root = tempfile::tempdir().unwrap();
    let world = World {
        api: free_port(),
        router: free_port(),
        ssh: free_port(),
        deis: deis_binary(),
        root,
    };
    std::fs::create_dir_all(world.home().join(".ssh")).unwrap();
    std::fs::create_dir_all(world.app_dir()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_deisd"))
        .args(["--data-dir"])
        .arg(world.root.path().join("data"))
        .args(["--api-addr", &format!("127.0.0.1:{}", world.api)])
        .args(["--router-addr", &format!("127.0.0.1:{}", world.router)])
        .args(["--ssh-addr", &format!("127.0.0.1:{}", world.ssh)])
        .env("HOME", world.home())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let daemon = Daemon { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{}/healthz", world.api)])
            .output()
            .is_ok_and(|o| o.status.success());
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "deisd did not answer /healthz");
        std::thread::sleep(Duration::from_millis(100));
    }
    (world, daemon)
}

#[test]
fn a_new_user_deploys_scales_configures_rolls_back_shares_and_destroys() {
    let (w, _daemon) = start();
    let api = format!("http://127.0.0.1:{}", w.api);

    // Register (the first user is the administrator) and add an SSH key.
    w.deis(&[
        "register",
        &api,
        "--username",
        "alice",
        "--password",
        "s3cret-pw",
        "--email",
        "alice@example.com",
    ]);
    let key = w.home().join(".ssh/id_ed25519");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    w.deis(&["keys:add", key.with_extension("pub").to_str().unwrap()]);

    // Create the app in a git repository of the sample app, and push it.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps/python-env");
    copy_dir(&sample, &w.app_dir());
    assert!(w.git(&["init", "-q", "-b", "master"]).status.success());
    assert!(w.git(&["add", "."]).status.success());
    assert!(w.git(&["commit", "-qm", "sample app"]).status.success());
    let created = w.deis(&["create", "demo"]);
    assert!(created.contains("Git remote deis added"), "{created}");
    let push = w.git(&["push", "deis", "master"]);
    let push_text = format!(
        "{}{}",
        String::from_utf8_lossy(&push.stdout),
        String::from_utf8_lossy(&push.stderr)
    );
    assert!(push.status.success(), "git push failed: {push_text}");
    assert!(push_text.contains("deployed to Deis"), "{push_text}");

    // It answers through the router at <app>.localhost.
    let body = w.wait_for("demo.localhost", "the first deploy", |code, body| {
        code == 200 && body.contains("hello from demo")
    });
    assert!(body.contains("v2"), "{body}");

    // Three instances answer.
    w.deis(&["scale", "web=3"]);
    let ps = w.deis(&["ps"]);
    assert_eq!(ps.matches(" up (v2)").count(), 3, "{ps}");
    let mut ports = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ports.len() < 3 && Instant::now() < deadline {
        let (code, body) = w.curl("demo.localhost");
        if code == 200 {
            if let Some(port) = body.split("port ").nth(1).and_then(|r| r.split(' ').next()) {
                ports.insert(port.to_string());
            }
        }
    }
    assert_eq!(
        ports.len(),
        3,
        "three different instances answered: {ports:?}"
    );

    // A config change is a new release the app sees; rollback brings the old value back.
    let set = w.deis(&["config:set", "GREETING=bonjour"]);
    assert!(set.contains("done, v3"), "{set}");
    w.wait_for("demo.localhost", "the new config", |code, body| {
        code == 200 && body.contains("greeting=bonjour")
    });
    let releases = w.deis(&["releases"]);
    assert!(
        releases.contains("v3") && releases.contains("alice added GREETING"),
        "{releases}"
    );
    let rolled = w.deis(&["rollback", "v2"]);
    assert!(rolled.contains("done, v4"), "{rolled}");
    w.wait_for("demo.localhost", "the rollback", |code, body| {
        code == 200 && body.contains("greeting=\n")
    });

    // A custom domain routes too.
    w.deis(&["domains:add", "www.demo-example.test"]);
    w.wait_for(
        "www.demo-example.test",
        "the custom domain",
        |code, body| code == 200 && body.contains("hello from demo"),
    );

    // The app's output is in its logs; a one-off command runs.
    let logs = w.deis(&["logs", "-n", "5000"]);
    assert!(logs.contains("demo[web.1]: starting on port"), "{logs}");
    assert!(
        logs.contains("demo[deis-controller]: alice deployed"),
        "{logs}"
    );
    assert!(
        logs.contains("demo[deis-controller]: alice scaled containers web=3"),
        "{logs}"
    );
    // `deis logs -f` follows live output.
    let mut follower = Command::new(&w.deis)
        .args(["logs", "-f", "-n", "1"])
        .current_dir(w.app_dir())
        .env("HOME", w.home())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut followed = false;
    while !followed && Instant::now() < deadline {
        w.curl_path("demo.localhost", "/followed-live");
        while let Ok(line) = received.recv_timeout(Duration::from_millis(300)) {
            if line.contains("GET /followed-live") && line.contains("demo[web.") {
                followed = true;
                break;
            }
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(
        followed,
        "deis logs -f showed the request made while following"
    );
    let run = w.deis(&["run", "echo", "one-off", "$DEIS_APP"]);
    assert!(run.contains("one-off demo"), "{run}");

    // A second user is denied until the owner shares the app.
    let bob_register = w.deis_as(
        "bob",
        &[
            "register",
            &api,
            "--username",
            "bob",
            "--password",
            "bob-pw-1",
            "--email",
            "bob@example.com",
        ],
    );
    assert!(bob_register.status.success());
    let denied = w.deis_as("bob", &["ps", "-a", "demo"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("permission"),
        "{denied:?}"
    );
    w.deis(&["perms:create", "bob"]);
    let allowed = w.deis_as("bob", &["ps", "-a", "demo"]);
    assert!(allowed.status.success(), "{allowed:?}");

    // Destroy: the host answers 404.
    w.deis(&["destroy", "--confirm=demo"]);
    w.wait_for("demo.localhost", "the destroyed app", |code, _| code == 404);
}
