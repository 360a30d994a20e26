//! Body limits, allow-lists and the PROXY protocol.

use crate::common::*;
use deis_core::Router;
use deis_router::{ListenerKind, ListenerOptions, RouterConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn refuses_bodies_over_the_limit_with_413() {
    let go = upstream("go").await;
    let config = RouterConfig {
        max_body_size: Some(1000),
        ..RouterConfig::default()
    };
    let (router, listening) = router(config).await;
    router
        .apply(&table(1, &[("go", &[go.address()])]))
        .await
        .unwrap();
    let client = client(listening.local_addr(), &["go.example.test"]);
    let url = format!("http://go.example.test:{}/", listening.local_addr().port());
    let small = client
        .post(&url)
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    assert_eq!(echoed(&small.text().await.unwrap())["body_len"], 1000);
    let big = client
        .post(&url)
        .body(vec![b'x'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    // A chunked body with no declared length is cut off when it passes the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b'y'; 100])).collect();
    let stream = futures::stream::iter(chunks);
    let chunked = client
        .post(&url)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
    let (status, _) = curl(&[
        "-H",
        "Host: go.example.test",
        "--data-binary",
        &"z".repeat(5000),
        &format!("http://127.0.0.1:{}/", listening.local_addr().port()),
    ])
    .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn enforces_the_allow_list() {
    let go = upstream("go").await;
    let mut table = table(
        1,
        &[
            ("open", &[go.address()]),
            ("closed", &[go.address()]),
            ("mine", &[go.address()]),
        ],
    );
    table.apps.get_mut("closed").unwrap().whitelist =
        vec!["10.0.0.0/8:office".into(), "2001:db8::/32".into()];
    table.apps.get_mut("mine").unwrap().whitelist = vec!["192.0.2.1".into(), "127.0.0.1:me".into()];
    let (_router, listening) = router_with(&table).await;
    let base = format!("http://127.0.0.1:{}/", listening.local_addr().port());
    assert_eq!(curl(&["-H", "Host: open.example.test", &base]).await.0, 200);
    assert_eq!(
        curl(&["-H", "Host: closed.example.test", &base]).await.0,
        403
    );
    assert_eq!(curl(&["-H", "Host: mine.example.test", &base]).await.0, 200);
}

async fn raw_request(addr: SocketAddr, prefix: &[u8], host: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(prefix).await.unwrap();
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).to_string()
}

fn v2_header(source: [u8; 4], source_port: u16, dest_port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend([0x21, 0x11, 0, 12]);
    header.extend(source);
    header.extend([127, 0, 0, 1]);
    header.extend(source_port.to_be_bytes());
    header.extend(dest_port.to_be_bytes());
    header
}

#[tokio::test]
async fn takes_the_client_address_from_proxy_protocol_v1_and_v2() {
    let go = upstream("go").await;
    let mut table = table(1, &[("go", &[go.address()]), ("office", &[go.address()])]);
    table.apps.get_mut("office").unwrap().whitelist = vec!["10.0.0.0/8".into()];
    let (router, _plain) = router_with(&table).await;
    let listening = router
        .listen(
            ListenerOptions::new(ListenerKind::Http, "127.0.0.1:0".parse().unwrap())
                .with_proxy_protocol(true),
        )
        .await
        .unwrap();
    let addr = listening.local_addr();

    let v1 = raw_request(
        addr,
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 8443\r\n",
        "go.example.test",
    )
    .await;
    assert!(v1.starts_with("HTTP/1.1 200"), "{v1}");
    let body = v1.split("\r\n\r\n").nth(1).unwrap();
    let reply = echoed(body);
    assert_eq!(
        seen_header(&reply, "x-forwarded-for").unwrap(),
        "198.51.100.7"
    );
    assert_eq!(seen_header(&reply, "x-forwarded-port").unwrap(), "8443");

    let v2 = raw_request(
        addr,
        &v2_header([203, 0, 113, 5], 5555, 80),
        "go.example.test",
    )
    .await;
    assert!(v2.starts_with("HTTP/1.1 200"), "{v2}");
    let reply = echoed(v2.split("\r\n\r\n").nth(1).unwrap());
    assert_eq!(
        seen_header(&reply, "x-forwarded-for").unwrap(),
        "203.0.113.5"
    );

    // The allow-list sees the PROXY address, not the loopback peer.
    let denied = raw_request(
        addr,
        b"PROXY TCP4 198.51.100.7 127.0.0.1 1 80\r\n",
        "office.example.test",
    )
    .await;
    assert!(denied.starts_with("HTTP/1.1 403"), "{denied}");
    let allowed = raw_request(
        addr,
        &v2_header([10, 1, 2, 3], 1, 80),
        "office.example.test",
    )
    .await;
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");

    // A missing or malformed header closes the connection without an answer.
    assert_eq!(raw_request(addr, b"", "go.example.test").await, "");
    assert_eq!(
        raw_request(addr, b"PROXY TCP4 1.2.3.4 nonsense\r\n", "go.example.test").await,
        ""
    );
    // PROXY protocol is off by default: the plain listener treats the header as garbage.
    let plain = raw_request(
        _plain.local_addr(),
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        "go.example.test",
    )
    .await;
    assert!(
        plain.starts_with("HTTP/1.1 400") || plain.is_empty(),
        "{plain}"
    );
}

#[tokio::test]
async fn answers_garbage_with_400_and_keeps_serving() {
    let go = upstream("go").await;
    let (_router, listening) = router_with(&table(1, &[("go", &[go.address()])])).await;
    let addr = listening.local_addr();
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: go.example.test\r\nBad Header\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        &[0xff; 64][..],
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(garbage).await.unwrap();
        let mut response = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 400"),
            "{text}"
        );
    }
    let base = format!("http://127.0.0.1:{}/", addr.port());
    assert_eq!(curl(&["-H", "Host: go.example.test", &base]).await.0, 200);
    // A Host header that is not valid text is treated as an unknown host.
    let weird = raw_request(addr, b"", "g\u{e9}.example.test").await;
    assert!(
        weird.starts_with("HTTP/1.1 404") || weird.starts_with("HTTP/1.1 400"),
        "{weird}"
    );
}
