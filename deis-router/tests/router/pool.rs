//! The upstream keep-alive pool: connections are reused, and an endpoint closing an idle
//! connection (as every server does after its keep-alive timeout) costs no request.

use crate::common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a raw upstream treats a connection after answering a request on it.
#[derive(Clone, Copy)]
enum AfterAnswer {
    /// Keeps it open for the next request.
    KeepOpen,
    /// Closes it at once without saying so (no `Connection: close`): the router finds out
    /// only when it reads the end of the stream.
    CloseSilently,
}

/// An HTTP/1.1 upstream written on raw sockets; returns its address and the number of
/// connections it accepted so far.
async fn raw_upstream(after: AfterAnswer) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(serve(stream, number, after));
        }
    });
    (address, accepted)
}

async fn serve(mut stream: TcpStream, number: usize, after: AfterAnswer) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buffer.drain(..end);
        let body = format!("connection {number}\n");
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        if let AfterAnswer::CloseSilently = after {
            return;
        }
    }
}

#[tokio::test]
async fn reuses_upstream_connections() {
    let (address, accepted) = raw_upstream(AfterAnswer::KeepOpen).await;
    let (_router, listening) = router_with(&table(1, &[("pooled", &[address])])).await;
    let host = format!("pooled.{DOMAIN}");
    let client = client(listening.local_addr(), &[&host]);
    let url = format!("http://{host}:{}/", listening.local_addr().port());
    for _ in 0..20 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "connection 1\n");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection for 20 requests in a row"
    );
}

#[tokio::test]
async fn an_endpoint_closing_idle_connections_costs_no_request() {
    let (address, accepted) = raw_upstream(AfterAnswer::CloseSilently).await;
    let (_router, listening) = router_with(&table(1, &[("closer", &[address])])).await;
    let host = format!("closer.{DOMAIN}");
    let client = client(listening.local_addr(), &[&host]);
    let url = format!("http://{host}:{}/", listening.local_addr().port());
    for round in 1..=20usize {
        // Back to back, the close may not have arrived when the connection is taken again
        // (the request is then resent on a new one); after a pause it has.
        if round % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "request {round}");
        assert_eq!(
            response.text().await.unwrap(),
            format!("connection {round}\n")
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 20);
}

#[tokio::test]
async fn concurrent_requests_share_a_bounded_set_of_connections() {
    let (address, accepted) = raw_upstream(AfterAnswer::KeepOpen).await;
    let (_router, listening) = router_with(&table(1, &[("busy", &[address])])).await;
    let host = format!("busy.{DOMAIN}");
    let client = client(listening.local_addr(), &[&host]);
    let url = format!("http://{host}:{}/", listening.local_addr().port());
    for _ in 0..5 {
        let requests = (0..8).map(|_| {
            let client = client.clone();
            let url = url.clone();
            async move { client.get(&url).send().await.unwrap().status() }
        });
        let statuses = futures::future::join_all(requests).await;
        assert!(statuses.iter().all(|status| *status == 200));
    }
    // Five waves of eight: at most eight connections were ever needed at once.
    let opened = accepted.load(Ordering::SeqCst);
    assert!(
        (1..=8).contains(&opened),
        "{opened} connections for 40 requests"
    );
}
