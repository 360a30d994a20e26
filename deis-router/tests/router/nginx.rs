//! The nginx backend against the real nginx binary, on a loopback port with a temp prefix.

use crate::common::*;
use deis_core::Router;
use deis_router::{NginxConfig, NginxRouter};
use tokio::net::TcpListener;

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

async fn nginx_router(prefix: &std::path::Path) -> (NginxRouter, u16) {
    let port = free_port().await;
    let mut config = NginxConfig::new(prefix, format!("127.0.0.1:{port}"));
    config.worker_processes = "1".into();
    config.user = Some("root".into());
    let router = NginxRouter::new(config);
    router.start().await.expect("starting nginx");
    (router, port)
}

async fn get(port: u16, host: &str, path: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    curl(&["-H", &format!("Host: {host}"), &url]).await
}

/// nginx reloads asynchronously (old workers finish their accepted connections): poll until
/// the answer for `host` and `path` has `status`.
async fn status_soon(port: u16, host: &str, path: &str, status: u16) -> String {
    let mut last = (0, String::new());
    for _ in 0..100 {
        last = get(port, host, path).await;
        if last.0 == status {
            return last.1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{host}{path} answered {last:?}, never {status}");
}

/// Polls until `host` is served by `want_backend`.
async fn eventually(port: u16, host: &str, want_backend: &str) {
    for _ in 0..100 {
        let (status, body) = get(port, host, "/").await;
        if status == 200 && echoed(&body)["backend"] == want_backend {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{host} never reached {want_backend}");
}

#[tokio::test]
async fn routes_through_nginx_and_follows_table_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = upstream("a").await;
    let b = upstream("b").await;
    let (router, port) = nginx_router(dir.path()).await;
    assert_eq!(router.backend(), "nginx");

    let mut first = table(1, &[("go", &[a.address()]), ("idle", &[])]);
    first
        .apps
        .get_mut("go")
        .unwrap()
        .domains
        .insert("www.go.test".into());
    router.apply(&first).await.unwrap();
    eventually(port, "go.example.test", "a").await;
    let body = status_soon(port, "www.go.test", "/x", 200).await;
    let reply = echoed(&body);
    assert_eq!(reply["path"], "/x");
    assert_eq!(seen_header(&reply, "x-forwarded-for").unwrap(), "127.0.0.1");
    assert_eq!(seen_header(&reply, "host").unwrap(), "www.go.test");
    status_soon(port, "idle.example.test", "/", 503).await;
    status_soon(port, "nobody.test", "/", 404).await;
    let health = status_soon(port, "nobody.test", "/health-check", 200).await;
    assert_eq!(health, "OK\n");

    let mut second = table(2, &[("go", &[b.address()]), ("new", &[a.address()])]);
    second.apps.get_mut("new").unwrap().whitelist = vec!["10.0.0.0/8:office".into()];
    router.apply(&second).await.unwrap();
    eventually(port, "go.example.test", "b").await;
    status_soon(port, "new.example.test", "/", 403).await;
    status_soon(port, "www.go.test", "/", 404).await;
    assert_eq!(router.current().await.unwrap(), second);

    // A table nginx refuses (an upstream host that does not resolve) leaves the previous
    // configuration and table in force.
    let bad = table(3, &[("go", &["no-such-host.invalid:80".to_string()])]);
    let error = router.apply(&bad).await.unwrap_err();
    assert!(error.to_string().contains("nginx -t"), "{error}");
    assert_eq!(router.current().await.unwrap(), second);
    assert_eq!(get(port, "go.example.test", "/").await.0, 200);
    let in_force = std::fs::read_to_string(dir.path().join("nginx.conf")).unwrap();
    assert!(in_force.contains("revision 2."), "{in_force}");
    router.stop().await.unwrap();
}

#[tokio::test]
async fn a_dropped_router_takes_nginx_down_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let go = upstream("go").await;
    let (router, port) = nginx_router(dir.path()).await;
    router
        .apply(&table(1, &[("go", &[go.address()])]))
        .await
        .unwrap();
    eventually(port, "go.example.test", "go").await;
    drop(router);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nginx still listens after its router was dropped");
}

#[tokio::test]
async fn serves_platform_and_per_domain_certificates_by_sni() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::tls::Pki::new();
    let (platform, platform_der) = pki.leaf(&["*.example.test"]);
    let (custom, custom_der) = pki.leaf(&["www.custom.test"]);
    let go = upstream("go").await;
    let (port, https) = (free_port().await, free_port().await);
    let mut config = NginxConfig::new(dir.path(), format!("127.0.0.1:{port}"));
    config.worker_processes = "1".into();
    config.user = Some("root".into());
    config.https_listen = Some(format!("127.0.0.1:{https}"));
    config.platform_certificate = Some(platform);
    config.hsts = Some(deis_router::Hsts::default());
    config.redirect_to_https = true;
    let router = NginxRouter::new(config);
    router.start().await.unwrap();
    let mut table = table(1, &[("go", &[go.address()])]);
    table
        .apps
        .get_mut("go")
        .unwrap()
        .domains
        .insert("www.custom.test".into());
    table.certificates.insert("www.custom.test".into(), custom);
    router.apply(&table).await.unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{https}").parse().unwrap();
    // Old workers keep the previous certificates until the reload reaches them.
    let mut served_custom = false;
    for _ in 0..100 {
        if let Ok((served, response)) =
            crate::tls::try_tls_get(&pki, addr, "www.custom.test", "/").await
        {
            if response.starts_with("HTTP/1.1 200") {
                assert_eq!(served, custom_der);
                served_custom = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        served_custom,
        "nginx never served www.custom.test with its certificate"
    );
    let mut platform_answer = None;
    for _ in 0..100 {
        let (served, response) = crate::tls::tls_get(&pki, addr, "go.example.test", "/").await;
        if response.starts_with("HTTP/1.1 200") {
            platform_answer = Some((served, response));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (served, response) = platform_answer.expect("go.example.test never answered 200");
    assert_eq!(served, platform_der);
    assert!(
        response
            .to_lowercase()
            .contains("strict-transport-security: max-age=10886400\r\n"),
        "{response}"
    );
    let reply = echoed(response.split("\r\n\r\n").nth(1).unwrap());
    assert_eq!(seen_header(&reply, "x-forwarded-proto").unwrap(), "https");
    let output = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Host: go.example.test",
        ])
        .arg(format!("http://127.0.0.1:{port}/p?q=1"))
        .output()
        .await
        .unwrap();
    let head = String::from_utf8_lossy(&output.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 301"), "{head}");
    assert!(
        head.contains("location: https://go.example.test/p?q=1\r\n"),
        "{head}"
    );
    assert!(!head.contains("strict-transport-security"), "{head}");
    let key_file = std::fs::read_dir(dir.path().join("certs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "key"))
        .unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    router.stop().await.unwrap();
}

#[tokio::test]
async fn nginx_passes_the_router_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _port) = nginx_router(dir.path()).await;
    deis_core::conformance::router::run_all(&router, "127.0.0.1:9").await;
    router.stop().await.unwrap();
}
