//! The path a new user takes, driven through the real binaries: `deisd` on its embedded
//! defaults (own ports and data directory), the `deis` CLI, a stock `git push` over SSH,
//! and `curl` through the router.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{deis_binary, free_port, Daemon, World};

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
    support::new_user_path(
        &w,
        &support::SampleApp {
            dir: "python-env",
            instance_key: "port ",
        },
    );
}
