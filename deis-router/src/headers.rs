//! Header rewriting: hop-by-hop removal (RFC 9110 §7.6.1) and `X-Forwarded-*`.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// Headers that describe one connection, never forwarded (the fast path keeps
/// `Transfer-Encoding` on the chunked responses it relays as they are).
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// Removes the hop-by-hop headers and every header the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether the request asks to switch protocols (`Connection: upgrade` plus `Upgrade`).
pub(crate) fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Sets `X-Forwarded-For` (appending the client to an existing list), `-Proto` and `-Port`.
pub(crate) fn set_forwarded(headers: &mut HeaderMap, client: IpAddr, https: bool, port: u16) {
    let client = client.to_string();
    let value = if headers.contains_key("x-forwarded-for") {
        let mut chain: Vec<String> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            if let Ok(text) = value.to_str() {
                chain.extend(
                    text.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
        }
        chain.push(client);
        HeaderValue::from_str(&chain.join(", "))
    } else {
        HeaderValue::from_str(&client)
    };
    if let Ok(value) = value {
        headers.insert("x-forwarded-for", value);
    }
    let proto = if https { "https" } else { "http" };
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    headers.insert("x-forwarded-port", HeaderValue::from(port));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_hop_by_hop_and_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn detects_upgrades() {
        let mut headers = HeaderMap::new();
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(upgrade_protocol(&headers).is_none());
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert_eq!(upgrade_protocol(&headers).unwrap(), "websocket");
    }

    #[test]
    fn appends_to_forwarded_for() {
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 2.2.2.2"),
        );
        headers.append("x-forwarded-for", HeaderValue::from_static("3.3.3.3"));
        set_forwarded(&mut headers, "10.0.0.9".parse().unwrap(), true, 443);
        assert_eq!(
            headers["x-forwarded-for"],
            "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9"
        );
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-port"], "443");
    }
}
