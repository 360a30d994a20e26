//! The HTTP/1.1 fast path on raw sockets: framing relayed as it is (length, chunked with
//! trailers, until close, none), pipelining, `Connection: close`, interim responses, request
//! bodies streamed, and connections handed to hyper mid-way (chunked bodies, HTTP/1.0,
//! `Expect`) answered in order on the same socket.

use crate::common::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// An upstream on raw sockets that answers the requests of every connection, in order, with
/// `answers` (the last one repeats), and records each request head (and body) it read. It
/// closes a connection after an answer whose head says `connection: close` or that has no
/// length, and after every answer when `close_silently`.
async fn scripted_upstream(
    answers: Vec<&'static str>,
    close_silently: bool,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let mut reader = BufReader::new(stream);
            loop {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                if !head.ends_with("\r\n\r\n") {
                    break;
                }
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).await.is_err() {
                    break;
                }
                head.push_str(&String::from_utf8_lossy(&body));
                log.lock().unwrap().push(head);
                let answer = answers[next.min(answers.len() - 1)];
                next += 1;
                if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
                    break;
                }
                let lower = answer.to_ascii_lowercase();
                let delimited = lower.contains("content-length")
                    || lower.contains("transfer-encoding")
                    || lower.starts_with("http/1.1 204")
                    || lower.starts_with("http/1.1 304");
                if close_silently || lower.contains("connection: close") || !delimited {
                    break;
                }
            }
        }
    });
    (address, seen)
}

/// Sends `requests` on one connection and reads until the router closes it or `until`
/// appears `count` times; returns what came back.
async fn exchange(addr: SocketAddr, requests: &[u8], until: &str, count: usize) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(requests).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&received);
        if text.matches(until).count() >= count {
            break;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&received).to_string()
}

fn get(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

#[tokio::test]
async fn relays_chunked_bodies_with_trailers_and_reuses_the_connection() {
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 11\r\n\r\n";
    let (address, seen) = scripted_upstream(vec![chunked], false).await;
    let (_router, listening) = router_with(&table(1, &[("chunky", &[address])])).await;
    let host = format!("chunky.{DOMAIN}");
    let requests = get(&host, "/a") + &get(&host, "/b");
    let answer = exchange(listening.local_addr(), requests.as_bytes(), "x-sum: 11", 2).await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert_eq!(
        answer
            .matches("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 11\r\n\r\n")
            .count(),
        2,
        "{answer}"
    );
    assert!(answer
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].starts_with("GET /a HTTP/1.1\r\n") && seen[1].starts_with("GET /b "));

    // curl decodes the relayed chunks.
    let base = format!("http://127.0.0.1:{}/", listening.local_addr().port());
    let (status, body) = curl(&["-H", &format!("Host: {host}"), &base]).await;
    assert_eq!((status, body.as_str()), (200, "hello world"));
}

#[tokio::test]
async fn a_body_delimited_by_close_closes_the_client_connection() {
    let (address, _) = scripted_upstream(
        vec!["HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nto the end"],
        false,
    )
    .await;
    let (_router, listening) = router_with(&table(1, &[("eof", &[address])])).await;
    let host = format!("eof.{DOMAIN}");
    // The second request is never answered: the body ended with the connection.
    let requests = get(&host, "/") + &get(&host, "/");
    let answer = exchange(listening.local_addr(), requests.as_bytes(), "never", 1).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nto the end"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
}

#[tokio::test]
async fn head_204_304_and_interim_responses_have_no_body() {
    let (address, _) = scripted_upstream(
        vec![
        "HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst",
        "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlast",
        ],
        false,
    )
    .await;
    let (_router, listening) = router_with(&table(1, &[("bodies", &[address])])).await;
    let host = format!("bodies.{DOMAIN}");
    let requests = get(&host, "/1")
        + &format!("HEAD /2 HTTP/1.1\r\nHost: {host}\r\n\r\n")
        + &get(&host, "/3")
        + &get(&host, "/4")
        + &get(&host, "/5");
    let answer = exchange(listening.local_addr(), requests.as_bytes(), "last", 1).await;
    // Status lines, wherever they start (a body has no line end of its own).
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &answer[at..at + answer[at..].find("\r\n").unwrap()])
        .collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 103 Early Hints",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 204 No Content",
            "HTTP/1.1 304 Not Modified",
            "HTTP/1.1 200 OK"
        ],
        "{answer}"
    );
    assert!(
        answer.contains("link: </style.css>\r\n\r\nHTTP/1.1 200 OK"),
        "{answer}"
    );
    assert!(
        answer.contains("content-length: 1234\r\n\r\nHTTP/1.1 204"),
        "{answer}"
    );
    assert!(answer.contains("\r\n\r\nfirst"), "{answer}");
}

#[tokio::test]
async fn connection_close_from_the_client_is_honoured() {
    let go = upstream("go").await;
    let (_router, listening) = router_with(&table(1, &[("go", &[go.address()])])).await;
    let request = format!("GET / HTTP/1.1\r\nHost: go.{DOMAIN}\r\nConnection: close\r\n\r\n");
    // Read to the end: the router closes after the answer.
    let answer = exchange(listening.local_addr(), request.as_bytes(), "never", 1).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    let reply = echoed(answer.split_once("\r\n\r\n").unwrap().1);
    // Hop-by-hop: the upstream never sees the client's Connection header.
    assert_eq!(seen_header(&reply, "connection"), None);
}

#[tokio::test]
async fn request_bodies_are_streamed_and_hyper_takes_what_the_fast_path_does_not() {
    let go = upstream("go").await;
    let (_router, listening) = router_with(&table(1, &[("go", &[go.address()])])).await;
    let host = format!("go.{DOMAIN}");
    let big = "x".repeat(900_000);
    // On one connection: a streamed body, then a chunked body and HTTP/1.0 (both served by
    // hyper from the hand-over on), answered in order.
    let mut requests = format!(
        "POST /big HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    requests.push_str(&format!(
        "POST /chunked HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ));
    requests.push_str(&format!("GET /old HTTP/1.0\r\nHost: {host}\r\n\r\n"));
    let answer = exchange(listening.local_addr(), requests.as_bytes(), "\"path\"", 3).await;
    // Split at the status lines (the echoed JSON holds "HTTP/1.1" too, but never this).
    let bodies: Vec<serde_json::Value> = answer
        .split(" 200 OK\r\n")
        .skip(1)
        .map(|part| {
            // The body is one JSON value; the next response follows it.
            let body = part.split_once("\r\n\r\n").unwrap().1;
            let mut values = serde_json::Deserializer::from_str(body).into_iter();
            values.next().unwrap().unwrap()
        })
        .collect();
    assert_eq!(bodies.len(), 3, "{answer}");
    assert_eq!(bodies[0]["path"], "/big");
    assert_eq!(bodies[0]["body_len"], 900_000);
    assert_eq!(bodies[1]["path"], "/chunked");
    assert_eq!(bodies[1]["body_len"], 3);
    assert_eq!(bodies[2]["path"], "/old");

    // Expect: 100-continue goes to hyper too.
    let base = format!("http://127.0.0.1:{}/expect", listening.local_addr().port());
    let (status, body) = curl(&[
        "-H",
        &format!("Host: {host}"),
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "0123456789",
        &base,
    ])
    .await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body)["body_len"], 10);
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_endpoint_is_replaced_for_a_post_only_before_sending() {
    // The endpoint closes every connection after its answer, without saying so.
    let (address, seen) =
        scripted_upstream(vec!["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"], true).await;
    let (_router, listening) = router_with(&table(1, &[("closer", &[address])])).await;
    let host = format!("closer.{DOMAIN}");
    let base = format!("http://127.0.0.1:{}/", listening.local_addr().port());
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, body) = curl(&[
            "-H",
            &format!("Host: {host}"),
            "--data-binary",
            "abc",
            &base,
        ])
        .await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    // The router noticed each close before reusing the connection, and sent each POST
    // (which it never sends twice) exactly once, with one Content-Length.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5);
    for head in &seen {
        let lower = head.to_ascii_lowercase();
        assert_eq!(lower.matches("content-length: 3\r\n").count(), 1, "{head}");
        assert!(lower.ends_with("\r\n\r\nabc"), "{head}");
    }
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let go = upstream("go").await;
    let (_router, listening) = router_with(&table(1, &[("go", &[go.address()])])).await;
    let mut stream = TcpStream::connect(listening.local_addr()).await.unwrap();
    stream
        .write_all(get(&format!("go.{DOMAIN}"), "/").as_bytes())
        .await
        .unwrap();
    let mut buffer = [0u8; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
    let started = std::time::Instant::now();
    listening.shutdown(Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown waited {:?} for an idle connection",
        started.elapsed()
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
}
