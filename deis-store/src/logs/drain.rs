use chrono::Utc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Where a drain sends lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainUrl {
    /// Syslog over TCP, octet-counted frames (`syslog://host:port`, `syslog+tcp://`, `tcp://`).
    Tcp(String),
    /// Syslog over UDP (`udp://host:port`, `syslog+udp://`).
    Udp(String),
}

impl DrainUrl {
    /// Parses a drain URL, naming what is wrong with a bad one.
    pub fn parse(url: &str) -> Result<DrainUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url}: expected syslog://host:port or udp://host:port"))?;
        let address = rest.trim_end_matches('/');
        let port_ok = address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !port_ok {
            return Err(format!("{url}: expected host:port after the scheme"));
        }
        match scheme {
            "syslog" | "syslog+tcp" | "tcp" => Ok(DrainUrl::Tcp(address.into())),
            "udp" | "syslog+udp" => Ok(DrainUrl::Udp(address.into())),
            other => Err(format!("{url}: unknown drain scheme {other}")),
        }
    }
}

/// Forwards an app's lines to a syslog server as RFC 5424 messages, through a bounded
/// queue; lines that do not fit, or that cannot be delivered, are counted as dropped.
#[derive(Debug, Clone)]
pub struct Drain {
    url: DrainUrl,
    queue: mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl Drain {
    /// Starts a drain on the current tokio runtime.
    pub fn start(url: DrainUrl) -> Drain {
        let (queue, receiver) = mpsc::channel(4096);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(deliver(url.clone(), receiver, dropped.clone()));
        Drain {
            url,
            queue,
            dropped,
        }
    }

    /// The destination.
    pub fn url(&self) -> &DrainUrl {
        &self.url
    }

    /// Lines that could not be delivered.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one line of `app` from `source`.
    pub fn send(&self, app: &str, source: &str, text: &str) {
        let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let message = format!("<14>1 {stamp} deis {app} {source} - - {text}");
        if self.queue.try_send(message).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn deliver(url: DrainUrl, mut receiver: mpsc::Receiver<String>, dropped: Arc<AtomicU64>) {
    let mut backoff = Duration::from_millis(100);
    match url {
        DrainUrl::Udp(address) => {
            let Ok(socket) = UdpSocket::bind("0.0.0.0:0").await else {
                return;
            };
            while let Some(message) = receiver.recv().await {
                if socket
                    .send_to(message.as_bytes(), address.as_str())
                    .await
                    .is_err()
                {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        DrainUrl::Tcp(address) => {
            let mut connection: Option<TcpStream> = None;
            while let Some(message) = receiver.recv().await {
                if connection.is_none() {
                    match TcpStream::connect(address.as_str()).await {
                        Ok(stream) => {
                            connection = Some(stream);
                            backoff = Duration::from_millis(100);
                        }
                        Err(_) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                            continue;
                        }
                    }
                }
                let frame = format!("{} {message}", message.len());
                if let Some(stream) = connection.as_mut() {
                    if stream.write_all(frame.as_bytes()).await.is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        connection = None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{LogStore, SyslogListener};

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            DrainUrl::parse("syslog://logs.example.com:514"),
            Ok(DrainUrl::Tcp("logs.example.com:514".into()))
        );
        assert_eq!(
            DrainUrl::parse("udp://127.0.0.1:514/"),
            Ok(DrainUrl::Udp("127.0.0.1:514".into()))
        );
        for bad in [
            "logs.example.com:514",
            "http://x:80",
            "syslog://nohost",
            "syslog://:514",
            "udp://h:0",
        ] {
            assert!(DrainUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_drain_delivers_to_a_syslog_server() {
        // The platform's own listener stands in for an outside syslog server.
        let received = LogStore::in_memory();
        let listener = SyslogListener::start("127.0.0.1:0".parse().unwrap(), received.clone())
            .await
            .unwrap();
        for url in [
            format!("syslog://{}", listener.tcp),
            format!("udp://{}", listener.udp),
        ] {
            let drain = Drain::start(DrainUrl::parse(&url).unwrap());
            drain.send("go", "web.1", &format!("via {url}"));
            let mut delivered = false;
            for _ in 0..100 {
                if received
                    .tail("go", 10)
                    .iter()
                    .any(|l| l.ends_with(&format!("go[web.1]: via {url}")))
                {
                    delivered = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(delivered, "{url}: {:?}", received.tail("go", 10));
            assert_eq!(drain.dropped(), 0);
        }
    }

    #[tokio::test]
    async fn an_unreachable_drain_counts_its_losses() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let drain = Drain::start(DrainUrl::Tcp(closed.to_string()));
        drain.send("go", "web.1", "lost");
        for _ in 0..100 {
            if drain.dropped() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(drain.dropped(), 1);
    }
}
