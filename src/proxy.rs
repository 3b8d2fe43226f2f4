//! The MCP endpoint on the host: HTTP/1.1 on the listeners systemd hands us (or our own), proxied
//! into the box's agent socket.
//!
//! - Requests that arrive before the agent is ready wait (bounded), then get 503 + `Retry-After`.
//! - `Origin` present and not local → 403 (MCP 2025-11-25 DNS-rebinding rule).
//! - TCP listeners need `Authorization: Bearer TOKEN` (constant-time compare) → 401 without it;
//!   the Unix socket relies on its mode and group, and logs the peer's uid/pid (`SO_PEERCRED`).
//! - Hop-by-hop headers are stripped, `Host` is rewritten to `localhost` for the agent, response
//!   bodies stream through unbuffered (SSE), and no timeout can cut a running tool call.
//! - Every `tools/call` is audited: peer, tool, outcome, duration — never the arguments.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::logging::msgid;

/// A response body: streamed from the agent, or one of ours.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub enum Peer {
    /// A Unix-socket client, by `SO_PEERCRED`.
    Unix {
        /// uid.
        uid: u32,
        /// gid.
        gid: u32,
        /// pid, if known.
        pid: Option<i32>,
    },
    /// A TCP client.
    Tcp(SocketAddr),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Unix { uid, pid, .. } => write!(f, "uid={uid} pid={}", pid.unwrap_or(-1)),
            Peer::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// A listener to serve.
pub enum Listener {
    /// A Unix stream socket (trusted by its permissions).
    Unix(UnixListener),
    /// A TCP socket (bearer token required).
    Tcp(TcpListener),
}

/// How the proxy behaves.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The agent's socket.
    pub upstream: PathBuf,
    /// How long a request may wait for the agent to become ready.
    pub ready_wait: Duration,
    /// Concurrent connections served.
    pub max_connections: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Bearer token for TCP listeners (`None`: TCP listeners refuse every request).
    pub token: Option<Arc<str>>,
    /// The instance, for logs.
    pub instance: String,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Most requests carry none of these: look before paying for nine removals.
    if !h.keys().any(|k| HOP_BY_HOP.contains(&k.as_str())) {
        return;
    }
    let listed: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(listed.iter().map(String::as_str))
    {
        h.remove(name);
    }
}

/// Is this `Origin` a page served from this machine? (`null` and anything else are not.)
pub fn origin_is_local(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => return h == "::1",
            _ => return false,
        }
    } else {
        rest.split(':').next().unwrap_or("")
    };
    if rest.contains('/') || rest.contains('@') {
        return false;
    }
    matches!(host, "localhost" | "127.0.0.1")
}

/// Constant-time comparison of a presented token with ours.
pub fn token_matches(presented: &[u8], ours: &[u8]) -> bool {
    let mut diff = presented.len() ^ ours.len();
    for (i, b) in ours.iter().enumerate() {
        diff |= (presented.get(i).copied().unwrap_or(0) ^ b) as usize;
    }
    diff == 0
}

fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(
            Full::new(Bytes::from(format!("{text}\n")))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .expect("static response")
}

/// After answering a request early (413) keep reading its body, discarding it, for a while: a
/// client still writing would otherwise get a broken pipe before it reads the answer
/// ("lingering close"). Bounded in time and bytes.
fn linger(mut body: Incoming) {
    const LINGER: Duration = Duration::from_secs(5);
    const LINGER_BYTES: usize = 64 << 20;
    tokio::spawn(async move {
        let mut seen = 0;
        let _ = tokio::time::timeout(LINGER, async {
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, Bytes::len);
                if seen > LINGER_BYTES {
                    break;
                }
            }
        })
        .await;
    });
}

/// The `tools/call` names in a JSON-RPC request body (single message or batch).
///
/// Parsed into borrowed fields only (`arguments` are skipped, never copied): this runs on every
/// request. A message too odd for that (e.g. `params` not an object) falls back to a full parse.
pub fn tool_calls(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Msg<'a> {
        #[serde(borrow, default)]
        method: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        params: Option<Params<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow, default)]
        name: Option<Cow<'a, str>>,
    }
    fn named(name: Option<&str>) -> String {
        name.unwrap_or("?").chars().take(64).collect()
    }
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let typed = if batch {
        serde_json::from_slice::<Vec<Msg>>(body)
    } else {
        serde_json::from_slice::<Msg>(body).map(|m| vec![m])
    };
    if let Ok(msgs) = typed {
        return msgs
            .iter()
            .filter(|m| m.method.as_deref() == Some("tools/call"))
            .map(|m| named(m.params.as_ref().and_then(|p| p.name.as_deref())))
            .collect();
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return vec![];
    };
    let msgs = match v {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    msgs.iter()
        .filter(|m| m["method"] == "tools/call")
        .map(|m| named(m["params"]["name"].as_str()))
        .collect()
}

/// Wraps the agent's response body: passes frames through untouched and, when a tool call is
/// being audited, notices `"isError":true` / a JSON-RPC `"error"` and logs once at the end.
/// Holds the upstream connection until the body has been read to its end, then gives it back to
/// the pool (a body dropped half-read closes it: the connection is mid-message).
struct Audited {
    inner: Incoming,
    audit: Option<Audit>,
    conn: Option<(Upstream, Arc<Pool>)>,
}

impl Audited {
    fn give_back(&mut self) {
        if let Some((conn, pool)) = self.conn.take() {
            pool.put(conn);
        }
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        // A body hyper never polled to its end because it knew the length was reached.
        if self.inner.is_end_stream() {
            self.give_back();
        }
    }
}

struct Audit {
    peer: String,
    tools: Vec<String>,
    started: Instant,
    outcome: &'static str,
    tail: Vec<u8>,
    instance: String,
}

/// Longest marker [`Audit::scan`] looks for, minus one: what a frame keeps for the next.
const SEAM: usize = 16;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl Audit {
    /// Look at one response frame for an error marker, also across the seam with the last one.
    fn scan(&mut self, data: &[u8]) {
        let mut seam = std::mem::take(&mut self.tail);
        seam.extend_from_slice(&data[..data.len().min(SEAM)]);
        for part in [&seam[..], data] {
            if contains(part, br#""isError":true"#) {
                self.outcome = "tool-error";
            } else if self.outcome == "ok" && contains(part, br#""error":{"#) {
                self.outcome = "error";
            }
        }
        let keep = if data.len() >= SEAM { data } else { &seam[..] };
        self.tail = keep[keep.len().saturating_sub(SEAM)..].to_vec();
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        info!(
            MESSAGE_ID = msgid::TOOL_CALL,
            IFACE = %self.instance,
            peer = %self.peer,
            tool = %self.tools.join(","),
            outcome = self.outcome,
            duration_ms = self.started.elapsed().as_millis() as u64,
            "MCP tool call"
        );
    }
}

impl Body for Audited {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let (Some(data), Some(a)) = (frame.data_ref(), self.audit.as_mut())
        {
            a.scan(data);
        }
        if let Poll::Ready(None) = &polled {
            self.audit.take();
            self.give_back();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

type Upstream = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Idle keep-alive connections to the agent, shared by every client connection: clients such as
/// rmcp's Unix-socket transport open a connection per request, and connecting afresh each time
/// (socket, connect, HTTP handshake, a task) was a third of the proxy's system calls. A
/// connection comes back only after its response was read to the end; one the agent has closed
/// (e.g. the box was replaced) is dropped when next taken.
#[derive(Default)]
struct Pool(std::sync::Mutex<Vec<Upstream>>);

/// Idle connections kept at most (more are closed when they come back).
const POOL_IDLE_MAX: usize = 32;

impl Pool {
    fn take(&self) -> Option<Upstream> {
        let mut idle = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    fn put(&self, c: Upstream) {
        let mut idle = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !c.is_closed() && idle.len() < POOL_IDLE_MAX {
            idle.push(c);
        }
    }
}

/// The proxy: shared by every connection.
pub struct Proxy {
    cfg: ProxyConfig,
    ready: watch::Receiver<Option<u32>>,
    pool: Arc<Pool>,
}

impl Proxy {
    /// A proxy forwarding to `cfg.upstream` once `ready` says so: `None` while the agent is not
    /// ready, then `Some(uid)` — the box's host uid. Every upstream connection is checked
    /// ([`crate::host::agent_socket`]): the socket, never a symlink, belongs to that uid and
    /// its listener runs as it.
    pub fn new(cfg: ProxyConfig, ready: watch::Receiver<Option<u32>>) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            ready,
            pool: Arc::default(),
        })
    }

    async fn connect(&self) -> anyhow::Result<Upstream> {
        let uid = (*self.ready.borrow()).ok_or_else(|| anyhow::anyhow!("the agent went away"))?;
        let stream = crate::host::agent_socket::connect(&self.cfg.upstream, uid).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Send on an idle pooled connection, else on a new one. A request that never left (the
    /// pooled connection turned out closed) is retried; one that was written is not.
    async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> anyhow::Result<(Response<Incoming>, Upstream)> {
        while let Some(mut c) = self.pool.take() {
            if c.ready().await.is_err() {
                continue;
            }
            match c.try_send_request(req).await {
                Ok(resp) => return Ok((resp, c)),
                Err(mut e) => match e.take_message() {
                    Some(back) => req = back,
                    None => return Err(e.into_error().into()),
                },
            }
        }
        let mut c = self.connect().await?;
        let resp = c.send_request(req).await?;
        Ok((resp, c))
    }

    async fn wait_ready(&self) -> bool {
        let mut rx = self.ready.clone();
        matches!(
            tokio::time::timeout(self.cfg.ready_wait, rx.wait_for(Option::is_some)).await,
            Ok(Ok(_))
        )
    }

    /// Handle one request from `peer`.
    pub async fn handle(&self, req: Request<Incoming>, peer: &Peer) -> Response<ProxyBody> {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let o = origin.to_str().unwrap_or("");
            if !origin_is_local(o) {
                warn!(IFACE = %self.cfg.instance, %peer, origin = o, "refused: non-local Origin");
                return plain(StatusCode::FORBIDDEN, "forbidden: Origin is not local");
            }
        }
        if let Peer::Tcp(_) = peer {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let ok = match (&self.cfg.token, presented) {
                (Some(ours), Some(p)) => token_matches(p.as_bytes(), ours.as_bytes()),
                _ => false,
            };
            if !ok {
                warn!(IFACE = %self.cfg.instance, %peer, "refused: missing or wrong bearer token");
                let mut r = plain(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized: bearer token required",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        }
        if req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > self.cfg.max_body_bytes)
        {
            linger(req.into_body());
            let mut r = plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
        if !self.wait_ready().await {
            let mut r = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the WiFi agent is not ready yet; retry shortly",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
        match self.forward(req, peer).await {
            Ok(r) => r,
            Err(e) => {
                warn!(IFACE = %self.cfg.instance, %peer, cause = %e, "agent unreachable");
                let mut r = plain(StatusCode::BAD_GATEWAY, "the WiFi agent is unreachable");
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                r
            }
        }
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        peer: &Peer,
    ) -> anyhow::Result<Response<ProxyBody>> {
        let (mut parts, body) = req.into_parts();
        // Requests are small JSON-RPC messages: read them (bounded) to audit tool calls.
        let body = match Limited::new(body, self.cfg.max_body_bytes).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Ok(plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large",
                ));
            }
        };
        let tools = if parts.method == http::Method::POST {
            tool_calls(&body)
        } else {
            vec![]
        };
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(header::HOST, HeaderValue::from_static("localhost"));
        parts.headers.remove(header::AUTHORIZATION);
        parts.headers.remove(header::CONTENT_LENGTH);
        let upstream_req = Request::from_parts(parts, Full::new(body));
        let (resp, conn) = self.send(upstream_req).await?;
        let (mut rparts, rbody) = resp.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        let audit = (!tools.is_empty()).then(|| Audit {
            peer: peer.to_string(),
            tools,
            started: Instant::now(),
            outcome: "ok",
            tail: Vec::new(),
            instance: self.cfg.instance.clone(),
        });
        let body = Audited {
            inner: rbody,
            audit,
            conn: Some((conn, self.pool.clone())),
        }
        .boxed();
        Ok(Response::from_parts(rparts, body))
    }
}

/// Serve `listeners` on a thread of their own with a single-threaded runtime, until `ct` is
/// cancelled; the receiver resolves when the last connection has been let go.
///
/// A request's path (accept, read, upstream round trip, write back) then never crosses threads:
/// measured under TCG with 64 clients, the multi-threaded runtime's wakeups cost the proxy
/// 1.2–1.5× the CPU per request of this (tests/bench/proxy_cpu.rs). The daemon's own runtime
/// stays free for the engine, netlink and D-Bus; `ready` and `ct` work across both.
pub fn serve_dedicated(
    proxy: Arc<Proxy>,
    listeners: Vec<Listener>,
    ct: CancellationToken,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    // The listeners move to the new runtime's reactor: deregister them here first.
    let detached = listeners
        .into_iter()
        .map(|l| match l {
            Listener::Unix(u) => u.into_std().map(Detached::Unix),
            Listener::Tcp(t) => t.into_std().map(Detached::Tcp),
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("mcp-proxy".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut listeners = Vec::with_capacity(detached.len());
                for d in detached {
                    match d.attach() {
                        Ok(l) => listeners.push(l),
                        Err(e) => warn!(cause = %e, "a listener could not be served"),
                    }
                }
                serve(proxy, listeners, ct).await;
            });
            let _ = done_tx.send(());
        })?;
    Ok(done_rx)
}

enum Detached {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

impl Detached {
    fn attach(self) -> std::io::Result<Listener> {
        Ok(match self {
            Detached::Unix(u) => Listener::Unix(UnixListener::from_std(u)?),
            Detached::Tcp(t) => Listener::Tcp(TcpListener::from_std(t)?),
        })
    }
}

/// Serve `listeners` until `ct` is cancelled; connections beyond the cap wait in the backlog.
pub async fn serve(proxy: Arc<Proxy>, listeners: Vec<Listener>, ct: CancellationToken) {
    let permits = Arc::new(Semaphore::new(proxy.cfg.max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let (proxy, permits, ct) = (proxy.clone(), permits.clone(), ct.clone());
        tasks.spawn(async move { accept_loop(proxy, l, permits, ct).await });
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(
    proxy: Arc<Proxy>,
    l: Listener,
    permits: Arc<Semaphore>,
    ct: CancellationToken,
) {
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = ct.cancelled() => return,
        };
        let accepted = tokio::select! {
            a = accept(&l) => a,
            _ = ct.cancelled() => return,
        };
        let (io, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                warn!(cause = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Peer::Unix { .. } = &peer {
            // Debug only: clients such as rmcp's open one connection per request.
            debug!(IFACE = %proxy.cfg.instance, %peer, "MCP client connected");
        }
        let proxy = proxy.clone();
        let ct = ct.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req| {
                let proxy = proxy.clone();
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(proxy.handle(req, &peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(64 * 1024)
                .serve_connection(io, svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = ct.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}

enum Io {
    Unix(TokioIo<tokio::net::UnixStream>),
    Tcp(TokioIo<tokio::net::TcpStream>),
}

async fn accept(l: &Listener) -> std::io::Result<(Io, Peer)> {
    match l {
        Listener::Unix(u) => {
            let (s, _) = u.accept().await?;
            let c = s.peer_cred()?;
            Ok((
                Io::Unix(TokioIo::new(s)),
                Peer::Unix {
                    uid: c.uid(),
                    gid: c.gid(),
                    pid: c.pid(),
                },
            ))
        }
        Listener::Tcp(t) => {
            let (s, a) = t.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Io::Tcp(TokioIo::new(s)), Peer::Tcp(a)))
        }
    }
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => Pin::new(s).poll_flush(cx),
            Io::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Where listeners come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenSpec {
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `tcp:ADDR:PORT` (loopback only).
    Tcp(SocketAddr),
}

impl std::str::FromStr for ListenSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if !p.starts_with('/') {
                return Err(format!("unix socket path must be absolute: {p:?}"));
            }
            return Ok(ListenSpec::Unix(p.into()));
        }
        if let Some(a) = s.strip_prefix("tcp:") {
            let addr: SocketAddr = a
                .parse()
                .map_err(|_| format!("tcp listener must be ADDR:PORT, got {a:?}"))?;
            if !addr.ip().is_loopback() {
                return Err(format!(
                    "tcp listener {addr} is not loopback: the MCP endpoint is never published beyond this machine"
                ));
            }
            return Ok(ListenSpec::Tcp(addr));
        }
        Err(format!(
            "listener must be unix:PATH or tcp:127.0.0.1:PORT, got {s:?}"
        ))
    }
}

/// Listeners passed by systemd (`LISTEN_FDS`), with their `FileDescriptorName=`s.
pub fn from_systemd() -> std::io::Result<Vec<(String, Listener)>> {
    use std::os::fd::FromRawFd;
    // Names first: listenfd clears the environment and does not read LISTEN_FDNAMES.
    let named: Vec<(i32, String)> = sd_notify::listen_fds_with_names()
        .map(|it| it.collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (fd, name) in named {
        let sock = unsafe { socket2::Socket::from_raw_fd(fd) };
        sock.set_nonblocking(true)?;
        if sock.local_addr()?.domain() == socket2::Domain::UNIX {
            let std_l: std::os::unix::net::UnixListener = sock.into();
            out.push((name, Listener::Unix(UnixListener::from_std(std_l)?)));
        } else {
            let std_l: std::net::TcpListener = sock.into();
            out.push((name, Listener::Tcp(TcpListener::from_std(std_l)?)));
        }
    }
    Ok(out)
}

/// Bind our own listener (manual runs and tests). Unix sockets get mode 0660 and, when the
/// `wifi-isolate` group exists, that group.
pub fn bind(spec: &ListenSpec) -> std::io::Result<Listener> {
    match spec {
        ListenSpec::Unix(p) => {
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d)?;
            }
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let l = UnixListener::bind(p)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o660))?;
            if let Ok(Some(g)) = nix::unistd::Group::from_name("wifi-isolate") {
                let _ = nix::unistd::chown(p, None, Some(g.gid));
            }
            Ok(Listener::Unix(l))
        }
        ListenSpec::Tcp(a) => {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(*a),
                socket2::Type::STREAM,
                None,
            )?;
            s.set_reuse_address(true)?;
            s.set_nonblocking(true)?;
            s.bind(&(*a).into())?;
            s.listen(1024)?;
            Ok(Listener::Tcp(TcpListener::from_std(s.into())?))
        }
    }
}

/// Read the bearer token: the systemd credential `token` wins, else `file` (which must not be
/// readable by group or others). Empty or missing → `None`.
pub fn load_token(file: &std::path::Path) -> Result<Option<Arc<str>>, String> {
    let cred = std::env::var_os("CREDENTIALS_DIRECTORY").map(|d| PathBuf::from(d).join("token"));
    let (path, check_mode) = match cred {
        Some(c) if c.is_file() => (c, false),
        _ => (file.to_path_buf(), true),
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if check_mode && (meta.permissions().mode() & 0o077 != 0 || meta.uid() != 0) {
        return Err(format!(
            "{} must be owned by root and not readable by others: chown root: {0} && chmod 600 {0}",
            path.display()
        ));
    }
    let t = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.len() < 16 {
        return Err(format!(
            "{}: the token must be at least 16 characters",
            path.display()
        ));
    }
    Ok(Some(Arc::from(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        for ok in [
            "http://localhost",
            "http://localhost:6274",
            "https://127.0.0.1:8443",
            "http://[::1]:80",
        ] {
            assert!(origin_is_local(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "null",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://localhost@evil.example",
            "file://",
            "http://[::2]",
            "",
        ] {
            assert!(!origin_is_local(bad), "{bad}");
        }
    }

    #[test]
    fn tokens() {
        assert!(token_matches(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!token_matches(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!token_matches(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!token_matches(b"0123456789abcdef0", b"0123456789abcdef"));
        assert!(!token_matches(b"", b"0123456789abcdef"));
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("mcp-session-id", HeaderValue::from_static("abc"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("mcp-session-id"));
    }

    #[test]
    fn tool_names_from_bodies() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wifi_scan","arguments":{"password":"x"}}}"#;
        assert_eq!(tool_calls(one), ["wifi_scan"]);
        let batch = br#"[{"method":"tools/list"},{"method":"tools/call","params":{"name":"wifi_connect"}}]"#;
        assert_eq!(tool_calls(batch), ["wifi_connect"]);
        assert!(tool_calls(b"garbage").is_empty());
        // Escaped names are decoded; params that are not an object still count as a call.
        let escaped = br#"{"method":"tools\/call","params":{"name":"wifi\u005fscan"}}"#;
        assert_eq!(tool_calls(escaped), ["wifi_scan"]);
        let odd = br#" [{"method":"tools/call","params":[1,2]},{"method":"ping"}]"#;
        assert_eq!(tool_calls(odd), ["?"]);
        assert!(tool_calls(br#"{"method":"tools/list","params":{"name":"x"}}"#).is_empty());
    }

    #[test]
    fn listen_specs() {
        assert!("unix:/run/x.sock".parse::<ListenSpec>().is_ok());
        assert!("tcp:127.0.0.1:8080".parse::<ListenSpec>().is_ok());
        assert!("tcp:[::1]:8080".parse::<ListenSpec>().is_ok());
        let e = "tcp:0.0.0.0:8080".parse::<ListenSpec>().unwrap_err();
        assert!(e.contains("not loopback"), "{e}");
        assert!("unix:relative".parse::<ListenSpec>().is_err());
        assert!("http://x".parse::<ListenSpec>().is_err());
    }

    fn audit() -> Audit {
        Audit {
            peer: "p".into(),
            tools: vec!["t".into()],
            started: Instant::now(),
            outcome: "ok",
            tail: vec![],
            instance: "w".into(),
        }
    }

    #[test]
    fn audit_notices_tool_errors_across_frames() {
        let mut a = audit();
        a.scan(b"data: {\"result\":{\"isErr");
        a.scan(b"or\":true}}");
        assert_eq!(a.outcome, "tool-error");
        let mut b = audit();
        // A long frame, the marker split after it, then tiny frames: the seam carries over.
        b.scan(&[b' '; 4096]);
        b.scan(b"{\"er");
        b.scan(b"ror");
        b.scan(b"\":{\"code\":-1}}");
        assert_eq!(b.outcome, "error");
        b.scan(b"no marker here at all, just a long enough frame of text");
        assert_eq!(b.outcome, "error", "an outcome is never downgraded");
    }
}
