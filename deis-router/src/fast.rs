//! The HTTP/1.1 fast path: plain requests proxied between two sockets with `httparse`.
//!
//! Most app traffic is HTTP/1.1 requests with no body or a `Content-Length` one. For those the
//! router reads the client's head into one buffer, writes the upstream head (hop-by-hop
//! headers dropped, `Host` and `X-Forwarded-*` set, exactly as the hyper path does) into
//! another, sends it on a pooled socket, and relays the response head and body back as they
//! arrive: one read and one write per direction, no per-header allocation, no task or
//! channel between the two sides. Responses keep their framing (`Content-Length` or chunked,
//! relayed as is; a body that ends when the endpoint closes ends the client's connection too).
//!
//! Anything else goes to hyper, with the bytes read so far: a request line that is not
//! HTTP/1.1 origin-form, `Transfer-Encoding` or `Expect` on a request, an `Upgrade`
//! (WebSocket), HTTP/2's preface, a head that does not parse. hyper then serves the
//! connection to its end, so each connection is served by exactly one of the two and answers
//! never interleave. Both paths share the route table, the allow-lists, limits, metrics and
//! endpoints' in-flight counts.

use crate::balance::{pick, Endpoint};
use crate::headers::HOP_BY_HOP;
use crate::proxy::{ConnInfo, Shared};
use crate::table::AppEntry;
use crate::upstream::{connect, PoolLimits};
use bytes::{Buf, BytesMut};
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// The largest request or response head the fast path reads (hyper takes larger requests).
const MAX_HEAD: usize = 64 * 1024;
/// The most header lines the fast path parses (hyper takes requests with more).
const MAX_HEADERS: usize = 100;
/// How much is read from a socket at a time.
const READ_SIZE: usize = 16 * 1024;
/// Request bodies up to this size that arrived with the head are kept until the response
/// starts, so that a request on a pooled socket the endpoint had just closed can be resent.
const RESENDABLE_BODY: u64 = 64 * 1024;

/// How a connection left the fast path.
pub(crate) enum Ending<I> {
    /// Closed: the client left, asked to close, or the router closed it.
    Closed,
    /// A request the fast path does not take: hyper serves the connection from here on,
    /// starting with the bytes already read.
    Handoff(I, BytesMut),
}

/// Serves HTTP/1.1 requests on `io` until the connection ends or a request needs hyper.
///
/// `draining` turns true when the listener shuts down: a connection waiting for its next
/// request closes, one in the middle of a request closes after the response.
pub(crate) async fn serve<I>(
    mut io: I,
    conn: ConnInfo,
    shared: &Shared,
    draining: &mut watch::Receiver<bool>,
) -> Ending<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffers = Buffers {
        client: BytesMut::with_capacity(READ_SIZE),
        upstream: BytesMut::with_capacity(READ_SIZE),
        out: Vec::with_capacity(4096),
    };
    loop {
        let deadline = Instant::now() + shared.config.header_read_timeout;
        let request = loop {
            if !buffers.client.is_empty() {
                match parse_request(&buffers.client, conn, shared, &mut buffers.out) {
                    Parsed::Ready(request) => break request,
                    Parsed::Partial if buffers.client.len() < MAX_HEAD => {}
                    Parsed::Partial | Parsed::Hyper => {
                        return Ending::Handoff(io, buffers.client);
                    }
                }
            } else if *draining.borrow() {
                return Ending::Closed;
            }
            buffers.client.reserve(READ_SIZE);
            let idle = buffers.client.is_empty();
            let read = tokio::time::timeout_at(deadline, async {
                tokio::select! {
                    biased;
                    read = io.read_buf(&mut buffers.client) => Some(read),
                    _ = draining.changed(), if idle => None,
                }
            })
            .await;
            match read {
                Ok(Some(Ok(n))) if n > 0 => {}
                // The client left or timed out, or the listener is draining.
                _ => return Ending::Closed,
            }
        };
        let keep_open = match respond(&mut io, &mut buffers, &request, conn, shared).await {
            Ok(keep_open) => keep_open && !request.close && !*draining.borrow(),
            Err(error) => {
                tracing::debug!(client = %conn.client, %error, "connection ended");
                false
            }
        };
        if !keep_open {
            let _ = io.shutdown().await;
            return Ending::Closed;
        }
    }
}

/// The three buffers of one client connection, reused from request to request.
struct Buffers {
    /// Bytes read from the client and not handled yet.
    client: BytesMut,
    /// Bytes read from the endpoint and not relayed yet.
    upstream: BytesMut,
    /// The next write: the upstream request head (and body), then each response part.
    out: Vec<u8>,
}

/// A request head the fast path takes; `out` holds the head to send upstream.
struct Request {
    head_len: usize,
    host: Range<usize>,
    path: Range<usize>,
    method: Method,
    content_length: u64,
    /// The client sent `Connection: close`.
    close: bool,
    /// https to the client, or (when trusted) `X-Forwarded-Proto: https` from it.
    https: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    /// PUT, DELETE, OPTIONS, TRACE: may be sent twice (RFC 9110 §9.2.2).
    OtherIdempotent,
    Other,
}

impl Method {
    fn of(name: &str) -> Self {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" | "DELETE" | "OPTIONS" | "TRACE" => Method::OtherIdempotent,
            _ => Method::Other,
        }
    }

    fn idempotent(self) -> bool {
        self != Method::Other
    }
}

enum Parsed {
    Ready(Request),
    Partial,
    /// Not for the fast path: hyper serves it (and answers malformed requests).
    Hyper,
}

fn parse_request(buf: &[u8], conn: ConnInfo, shared: &Shared, out: &mut Vec<u8>) -> Parsed {
    if buf.starts_with(b"PRI ") {
        // The HTTP/2 preface (h2c with prior knowledge).
        return Parsed::Hyper;
    }
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let head_len = match request.parse_with_uninit_headers(buf, &mut storage) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Hyper,
    };
    let (Some(method), Some(path), Some(1)) = (request.method, request.path, request.version)
    else {
        return Parsed::Hyper;
    };
    if !path.starts_with('/') || method == "CONNECT" {
        return Parsed::Hyper;
    }
    let offset = |part: &[u8]| part.as_ptr() as usize - buf.as_ptr() as usize;
    let range = |part: &[u8]| offset(part)..offset(part) + part.len();

    let mut host = None;
    let mut content_length = None;
    let mut close = false;
    let mut forwarded_https = None;
    let mut named_by_connection: [&[u8]; 8] = [b""; 8];
    let mut named = 0;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() || std::str::from_utf8(header.value).is_err() {
                return Parsed::Hyper;
            }
            host = Some(range(header.value));
        } else if name.eq_ignore_ascii_case("content-length") {
            let length = std::str::from_utf8(header.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            match (length, content_length) {
                (Some(length), None) => content_length = Some(length),
                _ => return Parsed::Hyper,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
        {
            return Parsed::Hyper;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return Parsed::Hyper;
                } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                    if named == named_by_connection.len() {
                        return Parsed::Hyper;
                    }
                    named_by_connection[named] = token;
                    named += 1;
                }
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-proto") && forwarded_https.is_none() {
            // The first value of the first header, as the hyper path reads it.
            forwarded_https = Some(
                header
                    .value
                    .split(|b| *b == b',')
                    .next()
                    .is_some_and(|proto| proto.trim_ascii().eq_ignore_ascii_case(b"https")),
            );
        }
    }
    let https =
        conn.https || (shared.config.trust_forwarded_proto && forwarded_https == Some(true));
    let host_value: &[u8] = host.clone().map_or(b"", |r| &buf[r]);

    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host_value);
    out.extend_from_slice(b"\r\n");
    let mut forwarded_for_seen = false;
    for header in request.headers.iter() {
        let name = header.name;
        // `Host` and `Content-Length` are written by the router, once each.
        let skip = name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("x-forwarded-proto")
            || name.eq_ignore_ascii_case("x-forwarded-port")
            || HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || named_by_connection[..named]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        if skip {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            // Every X-Forwarded-For value, in order, becomes one list that the client ends.
            if !forwarded_for_seen {
                forwarded_for_seen = true;
                out.extend_from_slice(b"x-forwarded-for: ");
                let mut first = true;
                for value in request
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for"))
                {
                    for hop in value.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                        if !hop.is_empty() {
                            if !first {
                                out.extend_from_slice(b", ");
                            }
                            out.extend_from_slice(hop);
                            first = false;
                        }
                    }
                }
                if !first {
                    out.extend_from_slice(b", ");
                }
                write_ip(out, conn.client.ip());
                out.extend_from_slice(b"\r\n");
            }
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(header.value);
        out.extend_from_slice(b"\r\n");
    }
    if !forwarded_for_seen {
        out.extend_from_slice(b"x-forwarded-for: ");
        write_ip(out, conn.client.ip());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(if https {
        b"x-forwarded-proto: https\r\n"
    } else {
        b"x-forwarded-proto: http\r\n"
    });
    let _ = write!(out, "x-forwarded-port: {}\r\n", conn.port);
    if let Some(length) = content_length {
        let _ = write!(out, "content-length: {length}\r\n");
    }
    out.extend_from_slice(b"\r\n");

    Parsed::Ready(Request {
        head_len,
        host: host.unwrap_or(0..0),
        path: range(path.as_bytes()),
        method: Method::of(method),
        content_length: content_length.unwrap_or(0),
        close,
        https,
    })
}

fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    let _ = write!(out, "{ip}");
}

/// Answers one request; `Ok(false)` when the connection must close afterwards.
async fn respond<I>(
    io: &mut I,
    buffers: &mut Buffers,
    request: &Request,
    conn: ConnInfo,
    shared: &Shared,
) -> io::Result<bool>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let compiled = shared.table.load_full();
    let path = &buffers.client[request.path.clone()];
    // The host was checked to be UTF-8 when the head was parsed.
    let host = std::str::from_utf8(&buffers.client[request.host.clone()]).unwrap_or_default();
    let Some((_, entry)) = compiled.lookup(host) else {
        let health =
            path == b"/health-check" && matches!(request.method, Method::Get | Method::Head);
        let answer = if health {
            Local::new(200, "OK\n")
        } else {
            Local::new(404, "no app answers at this host\n")
        };
        shared.metrics.default_app().record_status(answer.status);
        let keep_open = consume_request(buffers, request);
        return answer
            .send(io, &mut buffers.out, request, None, keep_open)
            .await;
    };
    let hsts = if request.https {
        shared.hsts.as_ref().map(|v| v.as_bytes())
    } else {
        None
    };
    let local = if !entry.allow.allows(conn.client.ip()) {
        Some(Local::new(403, "forbidden\n"))
    } else if shared.config.redirect_to_https && !request.https {
        let path = std::str::from_utf8(path).unwrap_or("/");
        Some(
            match crate::proxy::https_location(host, path, shared.config.https_port) {
                Some(location) => Local {
                    location: Some(location),
                    ..Local::new(301, "moved to https\n")
                },
                None => Local::new(400, "bad host\n"),
            },
        )
    } else if entry.endpoints.is_empty() {
        Some(Local::new(503, "the app has no running instance\n"))
    } else if shared
        .config
        .max_body_size
        .is_some_and(|limit| request.content_length > limit)
    {
        Some(Local::new(413, "request body too large\n"))
    } else {
        None
    };
    if let Some(answer) = local {
        entry.metrics.record_status(answer.status);
        let keep_open = consume_request(buffers, request);
        return answer
            .send(io, &mut buffers.out, request, hsts, keep_open)
            .await;
    }
    let body_streamed = ((buffers.client.len() - request.head_len) as u64) < request.content_length;
    let status = forward(io, buffers, request, entry, shared, hsts).await;
    match status {
        Forwarded::Relayed { status, keep_open } => {
            entry.metrics.record_status(status);
            Ok(keep_open)
        }
        Forwarded::Failed(status, text) => {
            entry.metrics.record_status(status);
            // A body that was being streamed is not all read: the connection must close.
            Local::new(status, text)
                .send(io, &mut buffers.out, request, hsts, !body_streamed)
                .await
        }
        Forwarded::Aborted(error) => Err(error),
    }
}

/// An answer of the router's own.
struct Local {
    status: u16,
    text: &'static str,
    location: Option<String>,
}

impl Local {
    fn new(status: u16, text: &'static str) -> Self {
        Self {
            status,
            text,
            location: None,
        }
    }

    /// Writes the answer, with `Connection: close` unless `keep_open` (and the client did not
    /// ask to close); returns `keep_open`.
    async fn send<I>(
        self,
        io: &mut I,
        out: &mut Vec<u8>,
        request: &Request,
        hsts: Option<&[u8]>,
        keep_open: bool,
    ) -> io::Result<bool>
    where
        I: AsyncWrite + Unpin,
    {
        out.clear();
        let reason = http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let _ = write!(
            out,
            "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n",
            self.status,
            self.text.len()
        );
        if let Some(location) = &self.location {
            let _ = write!(out, "location: {location}\r\n");
        }
        if let Some(hsts) = hsts {
            out.extend_from_slice(b"strict-transport-security: ");
            out.extend_from_slice(hsts);
            out.extend_from_slice(b"\r\n");
        }
        if !keep_open || request.close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if request.method != Method::Head {
            out.extend_from_slice(self.text.as_bytes());
        }
        io.write_all(out).await?;
        Ok(keep_open)
    }
}

/// Drops a request the router answers itself from the client buffer; `false` when its body
/// has not all arrived, and the connection is to close after the answer (draining the body
/// could take long), as nginx does.
fn consume_request(buffers: &mut Buffers, request: &Request) -> bool {
    let consumed = request.head_len as u64 + request.content_length;
    if buffers.client.len() as u64 >= consumed {
        buffers.client.advance(consumed as usize);
        true
    } else {
        buffers.client.clear();
        false
    }
}

/// What became of a forwarded request.
enum Forwarded {
    /// The endpoint's response was relayed to the client.
    Relayed { status: u16, keep_open: bool },
    /// No response: the router answers this status itself.
    Failed(u16, &'static str),
    /// The exchange broke after the response started or while the client's body was read:
    /// the client connection closes.
    Aborted(io::Error),
}

const UNREACHABLE: Forwarded = Forwarded::Failed(502, "the app could not be reached\n");
const TIMED_OUT: Forwarded = Forwarded::Failed(504, "the app did not answer in time\n");

/// Why an exchange on one socket produced no response head.
enum NoResponse {
    /// The socket closed or failed before any byte of a response: on a pooled socket the
    /// endpoint probably closed it while idle.
    Closed(io::Error),
    /// Anything else: the request is not tried again.
    Failed(Forwarded),
}

async fn forward<I>(
    io: &mut I,
    buffers: &mut Buffers,
    request: &Request,
    entry: &AppEntry,
    shared: &Shared,
    hsts: Option<&[u8]>,
) -> Forwarded
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    // The body: whole in `out` after the head when it arrived with it and is small (so it
    // can be sent again), streamed from the client otherwise.
    let body_buffered = (buffers.client.len() - request.head_len) as u64;
    let mut unread_body = 0;
    let resendable = if body_buffered >= request.content_length {
        let end = request.head_len + request.content_length as usize;
        buffers
            .out
            .extend_from_slice(&buffers.client[request.head_len..end]);
        buffers.client.advance(end);
        request.content_length <= RESENDABLE_BODY
    } else {
        buffers
            .out
            .extend_from_slice(&buffers.client[request.head_len..]);
        unread_body = request.content_length - body_buffered;
        buffers.client.clear();
        false
    };
    let resendable = resendable && request.method.idempotent();
    let limits = shared.pool_limits();
    let deadline = Instant::now() + shared.config.response_header_timeout;
    let attempts = shared.config.connect_attempts.clamp(1, 64);
    let mut tried = 0u64;
    let mut failed_connects = 0;
    let (endpoint, guard, mut socket, response) = loop {
        let Some(index) = pick(&entry.endpoints, &entry.cursor, tried) else {
            return UNREACHABLE;
        };
        tried |= 1 << index.min(63);
        let endpoint = &entry.endpoints[index];
        let guard = endpoint.start();
        let started = std::time::Instant::now();
        // A pooled socket the endpoint closed while idle: noticed below when nothing can be
        // read from it, and the request is sent again on a new one, but only when sending it
        // twice is harmless; a request that is not must be sent once, on a socket checked
        // first (one more system call).
        let pooled = endpoint.idle_sockets.take(limits).and_then(|socket| {
            if resendable {
                Some(socket)
            } else {
                alive(socket)
            }
        });
        let (mut socket, mut reused) = match pooled {
            Some(socket) => (socket, true),
            None => match connect_before(endpoint, limits, deadline).await {
                Ok(socket) => (socket, false),
                Err(Some(error)) => {
                    failed_connects += 1;
                    tracing::debug!(endpoint = %endpoint.address, %error, "connect failed");
                    if failed_connects >= attempts {
                        return UNREACHABLE;
                    }
                    shared.metrics.connect_retry();
                    continue;
                }
                Err(None) => return TIMED_OUT,
            },
        };
        let exchanged = loop {
            let sent = exchange(
                io,
                &mut socket,
                buffers,
                unread_body,
                request.method,
                hsts.is_some(),
                deadline,
            )
            .await;
            match sent {
                Err(NoResponse::Closed(error)) if reused && resendable => {
                    tracing::debug!(endpoint = %endpoint.address, %error, "pooled connection closed; retrying on a new one");
                    match connect_before(endpoint, limits, deadline).await {
                        Ok(fresh) => {
                            socket = fresh;
                            reused = false;
                        }
                        Err(Some(_)) => return UNREACHABLE,
                        Err(None) => return TIMED_OUT,
                    }
                }
                Err(NoResponse::Closed(error)) => {
                    tracing::debug!(endpoint = %endpoint.address, %error, "upstream request failed");
                    return UNREACHABLE;
                }
                Err(NoResponse::Failed(failure)) => return failure,
                Ok(response) => break response,
            }
        };
        entry.metrics.record_latency(started.elapsed());
        break (endpoint, guard, socket, exchanged);
    };
    let result = relay(io, &mut socket, buffers, &response, request, hsts).await;
    drop(guard);
    match result {
        Ok(endpoint_reusable) => {
            if endpoint_reusable && response.reusable && buffers.upstream.is_empty() {
                endpoint.idle_sockets.put(socket, limits);
            }
            buffers.upstream.clear();
            Forwarded::Relayed {
                status: response.status,
                keep_open: response.framing != Framing::UntilClose,
            }
        }
        Err(error) => {
            buffers.upstream.clear();
            Forwarded::Aborted(error)
        }
    }
}

/// A pooled socket, unless the endpoint closed it (or sent something unasked) while idle.
fn alive(socket: TcpStream) -> Option<TcpStream> {
    let mut probe = [0u8; 1];
    match socket.try_read(&mut probe) {
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Some(socket),
        _ => None,
    }
}

/// Connects, giving up at `deadline` (`Err(None)`).
async fn connect_before(
    endpoint: &Arc<Endpoint>,
    limits: PoolLimits,
    deadline: Instant,
) -> Result<TcpStream, Option<io::Error>> {
    match tokio::time::timeout_at(deadline, connect(endpoint, limits)).await {
        Ok(Ok(socket)) => Ok(socket),
        Ok(Err(error)) => Err(Some(error)),
        Err(_) => Err(None),
    }
}

/// A response head relayed to the client.
struct ResponseHead {
    status: u16,
    framing: Framing,
    /// The endpoint allows another request on the socket once this response is read.
    reusable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the endpoint closes (no length given, or HTTP/1.0).
    UntilClose,
}

/// Sends the request (head and body) on `socket` and reads the response head, relaying
/// interim (1xx) responses; on success `buffers.out` holds the head to send the client and
/// `buffers.upstream` the body bytes read with it.
async fn exchange<I>(
    io: &mut I,
    socket: &mut TcpStream,
    buffers: &mut Buffers,
    unread_body: u64,
    method: Method,
    hsts: bool,
    deadline: Instant,
) -> Result<ResponseHead, NoResponse>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let sent = tokio::time::timeout_at(deadline, async {
        socket
            .write_all(&buffers.out)
            .await
            .map_err(NoResponse::Closed)?;
        if unread_body > 0 {
            copy_body(io, socket, &mut buffers.client, unread_body).await?;
        }
        Ok(())
    });
    match sent.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error),
        Err(_) => return Err(NoResponse::Failed(TIMED_OUT)),
    }
    buffers.upstream.clear();
    loop {
        let head = loop {
            match parse_response(&buffers.upstream, method, hsts, &mut buffers.out) {
                Ok(Some(head)) => break head,
                Ok(None) if buffers.upstream.len() < MAX_HEAD => {}
                Ok(None) | Err(()) => return Err(NoResponse::Failed(UNREACHABLE)),
            }
            buffers.upstream.reserve(READ_SIZE);
            let started_empty = buffers.upstream.is_empty();
            match tokio::time::timeout_at(deadline, socket.read_buf(&mut buffers.upstream)).await {
                Ok(Ok(0)) if started_empty => {
                    return Err(NoResponse::Closed(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(Ok(0)) => return Err(NoResponse::Failed(UNREACHABLE)),
                Ok(Ok(_)) => {}
                Ok(Err(error)) if started_empty => return Err(NoResponse::Closed(error)),
                Ok(Err(_)) => return Err(NoResponse::Failed(UNREACHABLE)),
                Err(_) => return Err(NoResponse::Failed(TIMED_OUT)),
            }
        };
        let (head_len, response) = head;
        if (100..200).contains(&response.status) {
            // 100 Continue, 103 Early Hints…: relayed as they are, then the real response.
            // (Upgrades never take this path, so 101 is an error.)
            if response.status == 101 {
                return Err(NoResponse::Failed(UNREACHABLE));
            }
            buffers.upstream.advance(head_len);
            buffers.out.extend_from_slice(b"\r\n");
            if let Err(error) = io.write_all(&buffers.out).await {
                return Err(NoResponse::Failed(Forwarded::Aborted(error)));
            }
            continue;
        }
        buffers.upstream.advance(head_len);
        return Ok(response);
    }
}

/// Copies `length` body bytes from the client to the endpoint.
async fn copy_body<I>(
    io: &mut I,
    socket: &mut TcpStream,
    client: &mut BytesMut,
    mut length: u64,
) -> Result<(), NoResponse>
where
    I: AsyncRead + Unpin,
{
    while length > 0 {
        client.clear();
        client.reserve(READ_SIZE);
        let n = match io.read_buf(client).await {
            Ok(0) => {
                let error = io::Error::new(io::ErrorKind::UnexpectedEof, "client left mid-body");
                return Err(NoResponse::Failed(Forwarded::Aborted(error)));
            }
            Ok(n) => n,
            Err(error) => return Err(NoResponse::Failed(Forwarded::Aborted(error))),
        };
        let take = (n as u64).min(length) as usize;
        if let Err(error) = socket.write_all(&client[..take]).await {
            tracing::debug!(%error, "endpoint stopped reading the request body");
            return Err(NoResponse::Failed(UNREACHABLE));
        }
        client.advance(take);
        length -= take as u64;
    }
    // Bytes past the body (a pipelined request) stay in `client`.
    Ok(())
}

/// Parses a response head into the head for the client (`out`): status line, the endpoint's
/// headers without hop-by-hop ones (and without its `Strict-Transport-Security` when the
/// router's `hsts` replaces it in `relay`).
fn parse_response(
    buf: &[u8],
    method: Method,
    hsts: bool,
    out: &mut Vec<u8>,
) -> Result<Option<(usize, ResponseHead)>, ()> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut storage);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let (Some(version), Some(status)) = (response.version, response.code) else {
        return Err(());
    };
    let mut content_length = None;
    let mut chunked = None;
    let mut close = version == 0;
    let mut keep_alive = false;
    let mut named_by_connection: [&[u8]; 8] = [b""; 8];
    let mut named = 0;
    for header in response.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let length = std::str::from_utf8(header.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(())?;
            if content_length.is_some_and(|known| known != length) {
                return Err(());
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked when chunked is the last coding (RFC 9112 §6.3).
            let last = header.value.rsplit(|b| *b == b',').next().unwrap_or(b"");
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if !token.is_empty() && named < named_by_connection.len() {
                    named_by_connection[named] = token;
                    named += 1;
                }
            }
        }
    }
    if version == 0 && keep_alive && content_length.is_some() {
        close = false;
    }
    let framing = if method == Method::Head || status == 204 || status == 304 || status < 200 {
        Framing::Empty
    } else {
        match (chunked, content_length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::UntilClose,
            (None, Some(length)) => Framing::Length(length),
            (None, None) => Framing::UntilClose,
        }
    };
    let reason = response.reason.unwrap_or("");
    out.clear();
    let _ = write!(out, "HTTP/1.1 {status} {reason}\r\n");
    for header in response.headers.iter() {
        let name = header.name;
        let pass_encoding =
            framing == Framing::Chunked && name.eq_ignore_ascii_case("transfer-encoding");
        let skip = !pass_encoding
            && (HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
                || named_by_connection[..named]
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name.as_bytes())));
        // `Content-Length` next to `Transfer-Encoding` is dropped (RFC 9112 §6.3).
        let conflicting = chunked.is_some() && name.eq_ignore_ascii_case("content-length");
        let replaced = hsts && name.eq_ignore_ascii_case("strict-transport-security");
        if skip || conflicting || replaced {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(header.value);
        out.extend_from_slice(b"\r\n");
    }
    let reusable = !close && framing != Framing::UntilClose;
    Ok(Some((
        head_len,
        ResponseHead {
            status,
            framing,
            reusable,
        },
    )))
}

/// Finishes the client's head (HSTS, `Connection: close`) and relays the body; returns
/// whether the body ended as its framing said (so the socket can carry another request).
async fn relay<I>(
    io: &mut I,
    socket: &mut TcpStream,
    buffers: &mut Buffers,
    response: &ResponseHead,
    request: &Request,
    hsts: Option<&[u8]>,
) -> io::Result<bool>
where
    I: AsyncWrite + Unpin,
{
    let out = &mut buffers.out;
    if let Some(hsts) = hsts {
        out.extend_from_slice(b"strict-transport-security: ");
        out.extend_from_slice(hsts);
        out.extend_from_slice(b"\r\n");
    }
    if request.close || response.framing == Framing::UntilClose {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let mut body = BodyEnd::new(response.framing);
    loop {
        let upstream = &mut buffers.upstream;
        let (take, done) = body
            .advance(upstream)
            .map_err(|()| io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body"))?;
        out.extend_from_slice(&upstream[..take]);
        upstream.advance(take);
        if done {
            io.write_all(out).await?;
            return Ok(true);
        }
        if !out.is_empty() {
            io.write_all(out).await?;
            out.clear();
        }
        upstream.reserve(READ_SIZE);
        match socket.read_buf(upstream).await {
            Ok(0) if body.framing == Framing::UntilClose => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "endpoint closed mid-body",
                ))
            }
            Ok(_) => {}
            Err(error) => return Err(error),
        }
    }
}

/// Finds where a response body ends as its bytes go by.
struct BodyEnd {
    framing: Framing,
    state: ChunkState,
    /// A chunk-size or trailer line being read.
    line: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

impl BodyEnd {
    fn new(framing: Framing) -> Self {
        let remaining = match framing {
            Framing::Length(length) => length,
            _ => 0,
        };
        Self {
            framing,
            state: ChunkState::Data(remaining),
            line: Vec::new(),
        }
        .chunked_start()
    }

    fn chunked_start(mut self) -> Self {
        if self.framing == Framing::Chunked {
            self.state = ChunkState::Size;
        }
        self
    }

    /// How many bytes of `data` belong to the body, and whether the body ends there.
    fn advance(&mut self, data: &[u8]) -> Result<(usize, bool), ()> {
        match self.framing {
            Framing::Empty => Ok((0, true)),
            Framing::UntilClose => Ok((data.len(), false)),
            Framing::Length(_) => {
                let ChunkState::Data(remaining) = &mut self.state else {
                    return Err(());
                };
                let take = (data.len() as u64).min(*remaining);
                *remaining -= take;
                Ok((take as usize, *remaining == 0))
            }
            Framing::Chunked => self.advance_chunked(data),
        }
    }

    fn advance_chunked(&mut self, data: &[u8]) -> Result<(usize, bool), ()> {
        let mut at = 0;
        while at < data.len() {
            match self.state {
                ChunkState::Data(remaining) => {
                    let take = ((data.len() - at) as u64).min(remaining);
                    at += take as usize;
                    self.state = if remaining == take {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(remaining - take)
                    };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailers => {
                    let rest = &data[at..];
                    let Some(newline) = rest.iter().position(|b| *b == b'\n') else {
                        self.line.extend_from_slice(rest);
                        if self.line.len() > MAX_LINE {
                            return Err(());
                        }
                        return Ok((data.len(), false));
                    };
                    self.line.extend_from_slice(&rest[..=newline]);
                    at += newline + 1;
                    if self.line.len() > MAX_LINE {
                        return Err(());
                    }
                    let line = std::mem::take(&mut self.line);
                    let blank = line == b"\r\n" || line == b"\n";
                    match self.state {
                        ChunkState::Size => match httparse::parse_chunk_size(&line) {
                            Ok(httparse::Status::Complete((_, 0))) => {
                                self.state = ChunkState::Trailers;
                            }
                            Ok(httparse::Status::Complete((_, size))) => {
                                self.state = ChunkState::Data(size);
                            }
                            _ => return Err(()),
                        },
                        ChunkState::DataEnd if blank => self.state = ChunkState::Size,
                        ChunkState::Trailers if blank => return Ok((at, true)),
                        ChunkState::Trailers => {}
                        _ => return Err(()),
                    }
                    self.line = line;
                    self.line.clear();
                }
            }
        }
        Ok((at, false))
    }
}

/// A connection handed to hyper: the bytes the fast path read come first.
pub(crate) struct Rewind<I> {
    prefix: BytesMut,
    io: I,
}

impl<I> Rewind<I> {
    pub(crate) fn new(io: I, prefix: BytesMut) -> Self {
        Self { prefix, io }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_end(framing: Framing, parts: &[&[u8]]) -> (usize, bool) {
        let mut body = BodyEnd::new(framing);
        let mut total = 0;
        for part in parts {
            let (take, done) = body.advance(part).expect("well-formed");
            total += take;
            if done {
                return (total, true);
            }
        }
        (total, false)
    }

    #[test]
    fn finds_the_end_of_chunked_bodies_split_anywhere() {
        let body: &[u8] =
            b"5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            let (taken, done) = body_end(Framing::Chunked, &[a, b]);
            assert!(done, "split at {split}");
            assert_eq!(taken, end, "split at {split}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(body_end(Framing::Chunked, &bytes), (end, true));
        assert_eq!(
            body_end(Framing::Chunked, &[b"0\r\n\r\n"]),
            (5, true),
            "an empty body"
        );
        assert_eq!(body_end(Framing::Chunked, &[b"5\r\nhel"]), (6, false));
    }

    #[test]
    fn rejects_malformed_chunks() {
        for bad in [&b"zz\r\n"[..], b"5\r\nhelloXX\r\n", b"5\r\nhello\r\n0\r\n"] {
            let mut body = BodyEnd::new(Framing::Chunked);
            let result = body.advance(bad);
            let incomplete = matches!(result, Ok((_, false)));
            assert!(
                result.is_err() || (incomplete && bad.ends_with(b"0\r\n")),
                "{bad:?}: {result:?}"
            );
        }
    }

    #[test]
    fn length_framing_stops_at_the_length() {
        assert_eq!(body_end(Framing::Length(3), &[b"ab", b"cdef"]), (3, true));
        assert_eq!(body_end(Framing::Length(0), &[b""]), (0, true));
        assert_eq!(body_end(Framing::Empty, &[b"junk"]), (0, true));
        assert_eq!(body_end(Framing::UntilClose, &[b"ab", b"c"]), (3, false));
    }

    fn response_head(head: &str, method: Method) -> (String, ResponseHead) {
        let mut out = Vec::new();
        let (len, parsed) = parse_response(head.as_bytes(), method, false, &mut out)
            .expect("parses")
            .expect("complete");
        assert_eq!(len, head.len());
        (String::from_utf8(out).unwrap(), parsed)
    }

    #[test]
    fn response_heads_lose_hop_by_hop_headers_and_keep_their_framing() {
        let (out, head) = response_head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\nX-Kept: yes\r\n\r\n",
            Method::Get,
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kept: yes\r\n"
        );
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.reusable);

        let (_, head) = response_head("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", Method::Head);
        assert_eq!(head.framing, Framing::Empty);
        let (_, head) = response_head("HTTP/1.0 200 OK\r\n\r\n", Method::Get);
        assert_eq!(head.framing, Framing::UntilClose);
        assert!(!head.reusable);
        let (_, head) = response_head(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
            Method::Get,
        );
        assert_eq!(head.framing, Framing::Length(2));
        assert!(!head.reusable);
        let mut out = Vec::new();
        assert!(parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            Method::Get,
            false,
            &mut out
        )
        .is_err());
    }
}
