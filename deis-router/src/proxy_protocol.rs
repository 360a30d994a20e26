//! The PROXY protocol (HAProxy), versions 1 (text) and 2 (binary), as sent by a front load
//! balancer before the client's bytes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX: usize = 107;
const V2_MAX_PAYLOAD: usize = 4096;

/// What a PROXY header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A proxied TCP connection: the client's address and the address it connected to.
    Proxied {
        /// The client.
        source: SocketAddr,
        /// The address the client connected to (the load balancer's).
        destination: SocketAddr,
    },
    /// No address information (v1 `UNKNOWN`, v2 `LOCAL`, or a non-TCP family): the
    /// connection's own peer address stands.
    Local,
}

/// Why a PROXY header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocolError(String);

impl fmt::Display for ProxyProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad PROXY protocol header: {}", self.0)
    }
}

impl std::error::Error for ProxyProtocolError {}

fn bad(message: impl Into<String>) -> ProxyProtocolError {
    ProxyProtocolError(message.into())
}

/// Reads exactly one PROXY header (v1 or v2) from `io`, consuming nothing after it.
pub async fn read_header<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<ProxyHeader, ProxyProtocolError> {
    let io_error = |e: std::io::Error| bad(format!("reading: {e}"));
    let mut start = [0u8; 8];
    io.read_exact(&mut start).await.map_err(io_error)?;
    if &start[..6] == b"PROXY " {
        let mut line = start.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(bad("v1 line longer than 107 bytes"));
            }
            let mut byte = [0u8; 1];
            io.read_exact(&mut byte).await.map_err(io_error)?;
            line.push(byte[0]);
        }
        return parse_v1(&line);
    }
    if start[..] != V2_SIGNATURE[..8] {
        return Err(bad("no PROXY signature"));
    }
    let mut rest = [0u8; 8];
    io.read_exact(&mut rest).await.map_err(io_error)?;
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&start);
    head[8..].copy_from_slice(&rest);
    let length = usize::from(u16::from_be_bytes([head[14], head[15]]));
    if length > V2_MAX_PAYLOAD {
        return Err(bad(format!("v2 payload of {length} bytes is too long")));
    }
    let mut payload = vec![0u8; length];
    io.read_exact(&mut payload).await.map_err(io_error)?;
    parse_v2(&head, &payload)
}

/// Parses a whole v1 line, `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`.
pub fn parse_v1(line: &[u8]) -> Result<ProxyHeader, ProxyProtocolError> {
    let text = std::str::from_utf8(line).map_err(|_| bad("v1 line is not ASCII"))?;
    let text = text
        .strip_suffix("\r\n")
        .ok_or_else(|| bad("v1 line does not end with CRLF"))?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(ProxyHeader::Local),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |text: &str| -> Result<IpAddr, ProxyProtocolError> {
                let ip: IpAddr = text
                    .parse()
                    .map_err(|_| bad(format!("bad address {text:?}")))?;
                match (*family, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(bad(format!("{text} is not a {family} address"))),
                }
            };
            let port = |text: &str| -> Result<u16, ProxyProtocolError> {
                if text.is_empty() || text.len() > 5 || (text.len() > 1 && text.starts_with('0')) {
                    return Err(bad(format!("bad port {text:?}")));
                }
                text.parse().map_err(|_| bad(format!("bad port {text:?}")))
            };
            Ok(ProxyHeader::Proxied {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            })
        }
        _ => Err(bad("v1 line has the wrong fields")),
    }
}

/// Parses a v2 header: the 16 fixed bytes and the payload after them.
pub fn parse_v2(head: &[u8; 16], payload: &[u8]) -> Result<ProxyHeader, ProxyProtocolError> {
    if head[..12] != V2_SIGNATURE {
        return Err(bad("no v2 signature"));
    }
    if head[12] >> 4 != 2 {
        return Err(bad(format!("unsupported version {}", head[12] >> 4)));
    }
    match head[12] & 0x0f {
        0 => return Ok(ProxyHeader::Local),
        1 => {}
        command => return Err(bad(format!("unknown command {command}"))),
    }
    match head[13] {
        0x11 => {
            let a = payload
                .get(..12)
                .ok_or_else(|| bad("short TCP4 address block"))?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Ok(ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            })
        }
        0x21 => {
            let a = payload
                .get(..36)
                .ok_or_else(|| bad("short TCP6 address block"))?;
            let ip = |o: usize| {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(bytes))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Ok(ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            })
        }
        // UNSPEC, UDP and UNIX sockets carry no TCP client address.
        _ => Ok(ProxyHeader::Local),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (Result<ProxyHeader, ProxyProtocolError>, Vec<u8>) {
        let mut cursor = std::io::Cursor::new(bytes.to_vec());
        let header = read_header(&mut cursor).await;
        let mut rest = Vec::new();
        cursor.read_to_end(&mut rest).await.unwrap();
        (header, rest)
    }

    #[tokio::test]
    async fn reads_v1_and_leaves_the_request() {
        let (header, rest) = read(b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET /").await;
        assert_eq!(
            header.unwrap(),
            ProxyHeader::Proxied {
                source: "192.0.2.1:56324".parse().unwrap(),
                destination: "198.51.100.1:443".parse().unwrap(),
            }
        );
        assert_eq!(rest, b"GET /");
        let (header, rest) = read(b"PROXY UNKNOWN\r\nGET").await;
        assert_eq!(header.unwrap(), ProxyHeader::Local);
        assert_eq!(rest, b"GET");
        let (header, _) = read(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").await;
        assert!(
            matches!(header.unwrap(), ProxyHeader::Proxied { source, .. } if source.port() == 1)
        );
    }

    #[tokio::test]
    async fn refuses_malformed_v1() {
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY XYZ\r\n",
            &[b'P'; 200][..],
        ] {
            assert!(
                read(bad).await.0.is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"PROXY ".to_vec();
        long.extend(std::iter::repeat_n(b'1', 200));
        assert!(read(&long).await.0.is_err());
    }

    #[tokio::test]
    async fn reads_v2() {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend([
            0x21, 0x11, 0, 12, 10, 0, 0, 7, 10, 0, 0, 1, 0x1f, 0x90, 0x01, 0xbb,
        ]);
        bytes.extend(b"GET");
        let (header, rest) = read(&bytes).await;
        assert_eq!(
            header.unwrap(),
            ProxyHeader::Proxied {
                source: "10.0.0.7:8080".parse().unwrap(),
                destination: "10.0.0.1:443".parse().unwrap(),
            }
        );
        assert_eq!(rest, b"GET");
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(read(&local).await.0.unwrap(), ProxyHeader::Local);
        let mut short = V2_SIGNATURE.to_vec();
        short.extend([0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(read(&short).await.0.is_err());
        let mut version = V2_SIGNATURE.to_vec();
        version.extend([0x31, 0x11, 0, 0]);
        assert!(read(&version).await.0.is_err());
    }
}
