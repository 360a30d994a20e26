//! WebSocket upgrades and HTTP/2 from clients.

use crate::common::*;
use deis_core::Router;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

async fn websocket_echo() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() || message.is_binary() {
                        let reply = match message {
                            Message::Text(text) => {
                                Message::text(format!("echo: {}", text.as_str()))
                            }
                            other => other,
                        };
                        if ws.send(reply).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn proxies_websocket_upgrades() {
    let (ws_addr, ws_task) = websocket_echo().await;
    let (router, listening) = router_with(&table(1, &[("chat", &[ws_addr.to_string()])])).await;
    let stream = TcpStream::connect(listening.local_addr()).await.unwrap();
    let (mut ws, response) =
        tokio_tungstenite::client_async("ws://chat.example.test/socket", stream)
            .await
            .expect("websocket handshake through the router");
    assert_eq!(response.status(), 101);
    for i in 0..5 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(
            reply.into_text().unwrap().as_str(),
            format!("echo: hello {i}")
        );
    }
    // A table change, even one that removes the app's endpoint, cuts no open tunnel.
    router
        .apply(&table(
            2,
            &[("chat", &[]), ("other", &[ws_addr.to_string()])],
        ))
        .await
        .unwrap();
    ws.send(Message::text("after the swap")).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "echo: after the swap");
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().into_data().as_ref(),
        &[1u8, 2, 3]
    );
    ws.close(None).await.unwrap();
    ws_task.abort();
}

#[tokio::test]
async fn speaks_http2_with_prior_knowledge() {
    let go = upstream("go").await;
    let (_router, listening) = router_with(&table(1, &[("go", &[go.address()])])).await;
    let port = listening.local_addr().port();
    let resolve = format!("go.example.test:{port}:127.0.0.1");
    let output = tokio::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "--resolve",
            &resolve,
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .arg(format!("http://go.example.test:{port}/h2"))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, trailer) = text.rsplit_once('\n').unwrap();
    assert_eq!(trailer, "2 200", "{text}");
    let reply = echoed(body);
    assert_eq!(reply["backend"], "go");
    // The upstream gets HTTP/1.1 with the Host from :authority.
    assert_eq!(reply["version"], "HTTP/1.1");
    assert_eq!(
        seen_header(&reply, "host").unwrap(),
        format!("go.example.test:{port}")
    );
    // A hyper HTTP/2 client: several concurrent streams on one connection.
    let stream = TcpStream::connect(listening.local_addr()).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let requests = (0..10).map(|i| {
        let mut sender = sender.clone();
        async move {
            let request = hyper::Request::get(format!("http://go.example.test/{i}"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.version(), hyper::Version::HTTP_2);
            assert_eq!(response.status(), 200);
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap();
            echoed(&String::from_utf8_lossy(&body.to_bytes()))["path"].clone()
        }
    });
    let paths = futures::future::join_all(requests).await;
    for (i, path) in paths.iter().enumerate() {
        assert_eq!(path, &format!("/{i}"));
    }
}
