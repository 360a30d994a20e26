//! Health checks of local instances: an open TCP port, or `GET <url>` answering 200.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Healthy.
    Healthy,
    /// Not healthy, for this reason (for people).
    Unhealthy(String),
}

/// Whether something accepts TCP connections on `127.0.0.1:port` within `timeout`.
pub(crate) async fn tcp_probe(port: u16, timeout: Duration) -> Probe {
    match tokio::time::timeout(timeout, TcpStream::connect(("127.0.0.1", port))).await {
        Ok(Ok(_)) => Probe::Healthy,
        Ok(Err(e)) => Probe::Unhealthy(format!(
            "nothing accepts connections on 127.0.0.1:{port} ({e})"
        )),
        Err(_) => Probe::Unhealthy(format!(
            "connecting to 127.0.0.1:{port} took longer than {timeout:?}"
        )),
    }
}

/// Like [`tcp_probe`] for a port published through a proxy (Docker's userland proxy
/// accepts every connection and closes it at once when nothing listens behind it): the
/// connection must also stay open, or bring data, for a moment.
#[cfg_attr(not(feature = "docker"), allow(dead_code))]
pub(crate) async fn proxied_tcp_probe(port: u16, timeout: Duration) -> Probe {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(("127.0.0.1", port))).await
    {
        Ok(Ok(stream)) => stream,
        _ => return tcp_probe(port, timeout).await,
    };
    let mut stream = stream;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Probe::Unhealthy(format!(
            "127.0.0.1:{port} closes connections at once: nothing listens behind it"
        )),
        Ok(Ok(_)) | Err(_) => Probe::Healthy,
    }
}

/// Whether `GET <path>` on `127.0.0.1:port` answers 200 within `timeout`, over a minimal
/// HTTP/1.0 exchange (only the status line is read).
pub(crate) async fn http_probe(port: u16, path: &str, timeout: Duration) -> Probe {
    match tokio::time::timeout(timeout, http_status(port, path)).await {
        Ok(Ok(200)) => Probe::Healthy,
        Ok(Ok(code)) => Probe::Unhealthy(format!("GET {path} answered {code}, not 200")),
        Ok(Err(e)) => Probe::Unhealthy(format!("GET {path} on 127.0.0.1:{port} failed: {e}")),
        Err(_) => Probe::Unhealthy(format!(
            "GET {path} on 127.0.0.1:{port} did not answer within {timeout:?}"
        )),
    }
}

async fn http_status(port: u16, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: deis-scheduler\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    // Read until the end of the status line; a status line longer than 4 KiB is garbage.
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the answer is not an HTTP response",
        )
    })
}

/// The status code of `HTTP/1.x NNN reason`.
fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status_line(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.1 404 Not Found\r\nx"), Some(404));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 huh\r\n"), None);
    }

    async fn serve_once(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http_probe_wants_200() {
        let ok = serve_once("HTTP/1.0 200 OK\r\n\r\nfine").await;
        assert_eq!(
            http_probe(ok, "/health", Duration::from_secs(2)).await,
            Probe::Healthy
        );
        let missing = serve_once("HTTP/1.0 404 Not Found\r\n\r\n").await;
        match http_probe(missing, "/health", Duration::from_secs(2)).await {
            Probe::Unhealthy(why) => assert!(why.contains("404"), "{why}"),
            Probe::Healthy => panic!("a 404 is not healthy"),
        }
    }

    #[tokio::test]
    async fn a_port_that_hangs_up_at_once_is_unhealthy_through_a_proxy() {
        let hangs_up = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = hangs_up.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = hangs_up.accept().await {
                drop(stream);
            }
        });
        assert!(matches!(
            proxied_tcp_probe(port, Duration::from_secs(1)).await,
            Probe::Unhealthy(_)
        ));
        let waits = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = waits.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (_stream, _) = waits.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        assert_eq!(
            proxied_tcp_probe(port, Duration::from_secs(1)).await,
            Probe::Healthy
        );
        server.abort();
    }

    #[tokio::test]
    async fn closed_ports_are_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(matches!(
            tcp_probe(port, Duration::from_secs(1)).await,
            Probe::Unhealthy(_)
        ));
        assert!(matches!(
            http_probe(port, "/", Duration::from_secs(1)).await,
            Probe::Unhealthy(_)
        ));
    }
}
