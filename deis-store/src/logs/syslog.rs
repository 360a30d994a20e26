use super::store::LogStore;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

/// One syslog message mapped to an app's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    /// The app.
    pub app: String,
    /// The source within the app (`web.1`), or `1` when the sender named none.
    pub source: String,
    /// The text.
    pub text: String,
}

/// Parses an RFC 5424 or RFC 3164 message. The app and source come from a Deis tag in the
/// message (`<app>[<source>]: text`, as logspout sends it) or else from APP-NAME/PROCID
/// (RFC 5424) or the TAG[PID] (RFC 3164). Returns `None` when no app can be named.
pub fn parse_syslog(raw: &str) -> Option<SyslogMessage> {
    let raw = raw.trim_end_matches(['\r', '\n', '\0']);
    let rest = raw.strip_prefix('<')?;
    let (priority, rest) = rest.split_once('>')?;
    if priority.is_empty() || priority.len() > 3 || !priority.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(body) = rest.strip_prefix("1 ") {
        return parse_5424(body);
    }
    parse_3164(rest)
}

fn parse_5424(body: &str) -> Option<SyslogMessage> {
    let mut fields = body.splitn(6, ' ');
    let _timestamp = fields.next()?;
    let _host = fields.next()?;
    let app_name = fields.next()?;
    let proc_id = fields.next()?;
    let _msg_id = fields.next()?;
    let rest = fields.next().unwrap_or("");
    let message = skip_structured_data(rest)?;
    let message = message.trim_start_matches('\u{feff}');
    if let Some(tagged) = deis_tag(message) {
        return Some(tagged);
    }
    deis_core::validation::app_id(app_name, &[]).ok()?;
    Some(SyslogMessage {
        app: app_name.to_string(),
        source: if proc_id == "-" {
            "1".into()
        } else {
            proc_id.to_string()
        },
        text: message.to_string(),
    })
}

/// Skips RFC 5424 STRUCTURED-DATA (`-` or `[id k="v"]…`) and the space after it.
fn skip_structured_data(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() && bytes[index] == b'[' {
        let mut in_quotes = false;
        index += 1;
        loop {
            let byte = *bytes.get(index)?;
            match byte {
                b'\\' if in_quotes => index += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            index += 1;
        }
        index += 1;
    }
    let rest = &text[index..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

fn parse_3164(rest: &str) -> Option<SyslogMessage> {
    if let Some(tagged) = deis_tag(rest) {
        return Some(tagged);
    }
    // `Mmm dd hh:mm:ss HOST TAG[PID]: MSG` with a plain TAG naming the app.
    let mut words = rest.split_whitespace();
    let _ = (words.next()?, words.next()?, words.next()?, words.next()?);
    let tag = words.next()?;
    let tag = tag.strip_suffix(':').unwrap_or(tag);
    let (app, source) = match tag.split_once('[') {
        Some((app, pid)) => (app, pid.trim_end_matches(']')),
        None => (tag, "1"),
    };
    deis_core::validation::app_id(app, &[]).ok()?;
    let text = rest.split_once(": ").map(|(_, t)| t).unwrap_or("");
    Some(SyslogMessage {
        app: app.into(),
        source: source.into(),
        text: text.into(),
    })
}

/// Finds the first `<app>[<source>]:` token (Deis v1's logger regex) and splits there.
fn deis_tag(text: &str) -> Option<SyslogMessage> {
    let mut offset = 0;
    for word in text.split(' ') {
        let start = offset;
        offset += word.len() + 1;
        let Some(tag) = word.strip_suffix("]:") else {
            continue;
        };
        let Some((app, source)) = tag.split_once('[') else {
            continue;
        };
        let source_ok = !source.is_empty()
            && source
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if source_ok && deis_core::validation::app_id(app, &[]).is_ok() {
            let text = text.get(start + word.len() + 1..).unwrap_or("");
            return Some(SyslogMessage {
                app: app.into(),
                source: source.into(),
                text: text.into(),
            });
        }
    }
    None
}

/// Listens for syslog over UDP and TCP (newline-delimited or octet-counted frames) and
/// stores each message in the app's log; unparseable messages are counted as dropped.
#[derive(Debug)]
pub struct SyslogListener {
    /// The bound UDP address.
    pub udp: SocketAddr,
    /// The bound TCP address.
    pub tcp: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for SyslogListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl SyslogListener {
    /// Binds UDP and TCP on `address` (port 0 picks free ports for each).
    pub async fn start(address: SocketAddr, store: LogStore) -> std::io::Result<SyslogListener> {
        let udp = UdpSocket::bind(address).await?;
        let tcp = TcpListener::bind(address).await?;
        let (udp_address, tcp_address) = (udp.local_addr()?, tcp.local_addr()?);
        let udp_store = store.clone();
        let udp_task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 65_536];
            while let Ok((n, _)) = udp.recv_from(&mut buffer).await {
                accept(&udp_store, &String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let tcp_task = tokio::spawn(async move {
            while let Ok((stream, _)) = tcp.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = read_tcp(stream, &store).await;
                });
            }
        });
        Ok(SyslogListener {
            udp: udp_address,
            tcp: tcp_address,
            tasks: vec![udp_task, tcp_task],
        })
    }
}

fn accept(store: &LogStore, raw: &str) {
    match parse_syslog(raw) {
        Some(message) => store.append(&message.app, &message.source, &message.text),
        None => {
            store
                .stats()
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

async fn read_tcp(stream: tokio::net::TcpStream, store: &LogStore) -> std::io::Result<()> {
    const MAX_FRAME: usize = 1024 * 1024;
    let mut reader = BufReader::new(stream);
    loop {
        let buffered = reader.fill_buf().await?;
        let Some(&first) = buffered.first() else {
            return Ok(());
        };
        if first.is_ascii_digit() {
            // Octet counting: `LEN SP MSG`.
            let mut length = Vec::new();
            reader.read_until(b' ', &mut length).await?;
            let length: usize = String::from_utf8_lossy(&length)
                .trim()
                .parse()
                .map_err(|_| std::io::Error::other("bad syslog frame length"))?;
            if length > MAX_FRAME {
                return Err(std::io::Error::other("syslog frame too large"));
            }
            let mut frame = vec![0u8; length];
            reader.read_exact(&mut frame).await?;
            accept(store, &String::from_utf8_lossy(&frame));
        } else {
            let mut line = Vec::new();
            let read = (&mut reader)
                .take(MAX_FRAME as u64)
                .read_until(b'\n', &mut line)
                .await?;
            if read == 0 {
                return Ok(());
            }
            accept(store, &String::from_utf8_lossy(&line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(app: &str, source: &str, text: &str) -> Option<SyslogMessage> {
        Some(SyslogMessage {
            app: app.into(),
            source: source.into(),
            text: text.into(),
        })
    }

    #[test]
    fn parses_both_rfcs_and_the_deis_tag() {
        assert_eq!(
            parse_syslog("<14>1 2026-11-26T10:00:00Z host go web.1 - - hello world"),
            message("go", "web.1", "hello world")
        );
        assert_eq!(
            parse_syslog("<14>1 2026-11-26T10:00:00Z host shipper - - [meta a=\"x]y\"][b c=\"d\"] go[worker.2]: tagged"),
            message("go", "worker.2", "tagged")
        );
        assert_eq!(
            parse_syslog("<14>1 2026-11-26T10:00:00Z host go - - - \u{feff}bom"),
            message("go", "1", "bom")
        );
        assert_eq!(
            parse_syslog("<13>Nov 26 10:00:00 host go[123]: classic"),
            message("go", "123", "classic")
        );
        assert_eq!(
            parse_syslog("<14>2026-11-26T10:00:00UTC go[web.1]: logspout style\n"),
            message("go", "web.1", "logspout style")
        );
    }

    #[test]
    fn rejects_what_names_no_app() {
        for raw in [
            "",
            "no priority",
            "<x>1 a b c d e f",
            "<14>1 ts host Bad_App - - - x",
            "<14>Nov 26 10:00:00 host",
        ] {
            assert_eq!(parse_syslog(raw), None, "{raw:?}");
        }
    }

    #[tokio::test]
    async fn receives_over_udp_and_tcp() {
        let store = LogStore::in_memory();
        let listener = SyslogListener::start("127.0.0.1:0".parse().unwrap(), store.clone())
            .await
            .unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        udp.send_to(b"<14>1 - host go web.1 - - over udp", listener.udp)
            .await
            .unwrap();
        let mut tcp = tokio::net::TcpStream::connect(listener.tcp).await.unwrap();
        use tokio::io::AsyncWriteExt;
        let framed = "<14>1 - host go web.2 - - counted";
        tcp.write_all(
            format!(
                "{} {framed}<13>Nov 26 10:00:00 host go[7]: newline\n",
                framed.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        tcp.write_all(b"garbage line\n").await.unwrap();
        tcp.flush().await.unwrap();
        for _ in 0..100 {
            if store.tail("go", 10).len() >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let lines = store.tail("go", 10).join("\n");
        assert!(lines.contains("go[web.1]: over udp"), "{lines}");
        assert!(lines.contains("go[web.2]: counted"), "{lines}");
        assert!(lines.contains("go[7]: newline"), "{lines}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            store
                .stats()
                .dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            1,
            "the garbage line is counted"
        );
    }
}
