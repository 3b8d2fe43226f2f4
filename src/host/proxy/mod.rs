//! The MCP endpoint on the host: HTTP/1.1 on the listeners systemd hands us (or our own), proxied
//! into the box's agent socket.
//!
//! - What a request gets follows the daemon's [`Phase`]: before the agent is ready it waits
//!   (bounded), then 503 + `Retry-After`; held by a user's stop or stopping: 503 at once, saying so.
//! - `Origin` present and not local → 403 (MCP 2025-11-25 DNS-rebinding rule).
//! - TCP listeners need `Authorization: Bearer TOKEN` (constant-time compare) → 401 without it;
//!   the Unix socket relies on its mode and group, and logs the peer's uid/pid (`SO_PEERCRED`).
//!   Every TCP listener, systemd's too, must be loopback ([`require_loopback`]).
//! - Under load and abuse ([`limits`]): header-read, idle keep-alive and body deadlines; separate
//!   caps for the Unix socket, for authenticated TCP and for not-yet-authenticated TCP; a byte
//!   budget for buffered bodies; refusals counted into rate-limited summary lines.
//! - Hop-by-hop headers are stripped, `Host` is rewritten to `localhost` for the agent, response
//!   bodies stream through unbuffered (SSE), and no timeout can cut a running tool call. A client
//!   that goes away mid-request drops the upstream request: the agent sees its connection close.
//! - Every `tools/call` is audited: peer, tool, outcome, duration — never the arguments; one
//!   INFO record per call, never rate-limited.
//!
//! # Layout
//! - this file — [`Proxy`]: one request's way (checks, phase, body, forwarding, audit).
//! - [`limits`] — deadlines, caps, the body budget, refusal counters.
//! - `listen` — [`Listener`]s: [`bind`], [`from_systemd`], [`require_loopback`], [`load_token`].
//! - `serve` — [`serve`], [`serve_dedicated`]: accept loops and connection tasks.

pub mod limits;
mod listen;
mod serve;

pub use limits::{Limits, Refusal};
pub use listen::{
    ListenSpec, Listener, Opened, OwnSockets, bind, from_systemd, load_token, open_listeners,
    require_loopback,
};
pub use serve::{serve, serve_dedicated};

use limits::{Budget, PendingTcp, Refusals, Reserved};

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::sync::{Semaphore, watch};
use tracing::info;

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

/// What the daemon's lifecycle says the endpoint does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The agent is not ready yet: requests wait (up to [`ProxyConfig::ready_wait`]), then 503.
    Starting,
    /// Forward to the agent whose socket (never a symlink) belongs to `uid`, the box's host uid.
    Ready {
        /// The box's host uid ([`crate::host::agent_socket`] checks the socket's owner).
        uid: u32,
    },
    /// A user's stop holds the instance: 503 at once, saying so (`message`) and how to start it.
    Held {
        /// Shown to the client as the JSON-RPC error's message (or the text/plain body).
        message: String,
    },
    /// The instance is going down: 503 at once.
    Stopping,
}

/// A client connection, as a request sees it.
pub(crate) struct Conn {
    pub(crate) peer: Peer,
    /// Its deadlines (`None`: a request handled outside a connection task).
    pub(crate) act: Option<Arc<limits::Activity>>,
    /// TCP only: where the connection stands with the caps (see [`limits`]).
    pub(crate) tcp: Option<TcpSlot>,
}

/// A TCP connection's place: pending (in [`limits::PendingTcp`], by `id`) until its first
/// authenticated request, then holding a slot of the authenticated cap.
pub(crate) struct TcpSlot {
    pub(crate) id: u64,
    pub(crate) auth: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

/// The proxy: shared by every connection.
pub struct Proxy {
    cfg: ProxyConfig,
    limits: Limits,
    phase: watch::Receiver<Phase>,
    pool: Arc<Pool>,
    pub(crate) refusals: Refusals,
    budget: Arc<Budget>,
    pub(crate) pending: Arc<PendingTcp>,
    tcp_permits: Arc<Semaphore>,
    born: Instant,
    open: AtomicUsize,
    last_close_ms: AtomicU64,
}

/// An open client connection, counted for [`Proxy::idle_for`] until dropped.
pub(crate) struct OpenConn(Arc<Proxy>);

impl Drop for OpenConn {
    fn drop(&mut self) {
        let p = &self.0;
        p.last_close_ms
            .store(p.born.elapsed().as_millis() as u64, Ordering::Release);
        p.open.fetch_sub(1, Ordering::AcqRel);
    }
}

fn close(mut r: Response<ProxyBody>) -> Response<ProxyBody> {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn retry_after(mut r: Response<ProxyBody>, secs: &'static str) -> Response<ProxyBody> {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
    r
}

/// 503 with `message`: a JSON-RPC error (id null: the request was not read) for clients that
/// accept JSON or SSE — MCP clients do — else text/plain.
fn unavailable(accept: Option<&HeaderValue>, message: &str) -> Response<ProxyBody> {
    let wants_json = accept
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json") || a.contains("event-stream"));
    if !wants_json {
        return plain(StatusCode::SERVICE_UNAVAILABLE, message);
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32000, "message": message },
    });
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .expect("static response")
}

impl Proxy {
    /// A proxy forwarding to `cfg.upstream` as `phase` says (see [`Phase`]), within `limits`.
    /// Every upstream connection is checked ([`crate::host::agent_socket`]): the socket, never
    /// a symlink, belongs to the ready uid and its listener runs as it.
    pub fn with_phase(
        cfg: ProxyConfig,
        limits: Limits,
        phase: watch::Receiver<Phase>,
    ) -> Arc<Self> {
        Arc::new(Self {
            refusals: Refusals::new(&cfg.instance, limits.refusal_log_interval),
            budget: Budget::new(limits.body_budget_bytes),
            pending: PendingTcp::new(limits.max_tcp_pending),
            tcp_permits: Arc::new(Semaphore::new(limits.max_tcp_connections)),
            cfg,
            limits,
            phase,
            pool: Arc::default(),
            born: Instant::now(),
            open: AtomicUsize::new(0),
            last_close_ms: AtomicU64::new(0),
        })
    }

    /// Compatibility constructor (until `run` passes a [`Phase`]): `None` is
    /// [`Phase::Starting`], `Some(uid)` is [`Phase::Ready`]; default [`Limits`]. Must be called
    /// within a Tokio runtime (a task there translates `ready` into phases).
    pub fn new(cfg: ProxyConfig, mut ready: watch::Receiver<Option<u32>>) -> Arc<Self> {
        fn phase(r: Option<u32>) -> Phase {
            r.map_or(Phase::Starting, |uid| Phase::Ready { uid })
        }
        let (tx, rx) = watch::channel(phase(*ready.borrow_and_update()));
        tokio::spawn(async move {
            while ready.changed().await.is_ok() {
                let p = phase(*ready.borrow_and_update());
                tx.send_replace(p);
            }
        });
        Self::with_phase(cfg, Limits::default(), rx)
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Requests and connections refused so far (each is in a rate-limited summary line).
    pub fn refused(&self) -> u64 {
        self.refusals.total()
    }

    /// How long the endpoint has been without clients: zero while a connection is open, else the
    /// time since the last one closed (or since the proxy was made). A held daemon exits after
    /// this reaches its idle limit.
    pub fn idle_for(&self) -> Duration {
        if self.open.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let since = Duration::from_millis(self.last_close_ms.load(Ordering::Acquire));
        self.born.elapsed().saturating_sub(since)
    }

    /// A client connection opened; its [`OpenConn`] counts it until dropped.
    pub(crate) fn opened(self: &Arc<Self>) -> OpenConn {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenConn(self.clone())
    }

    async fn connect(&self) -> anyhow::Result<Upstream> {
        let uid = match &*self.phase.borrow() {
            Phase::Ready { uid } => *uid,
            _ => anyhow::bail!("the agent went away"),
        };
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

    /// The phase once it is not [`Phase::Starting`], waiting up to `ready_wait` for that.
    async fn settled_phase(&self) -> Phase {
        if let p @ Phase::Ready { .. } = &*self.phase.borrow() {
            return p.clone();
        }
        let mut rx = self.phase.clone();
        if let Ok(Ok(p)) =
            tokio::time::timeout(self.cfg.ready_wait, rx.wait_for(|p| *p != Phase::Starting)).await
        {
            return p.clone();
        }
        self.phase.borrow().clone()
    }

    /// A TCP connection's first authenticated request takes a slot of the authenticated cap
    /// (without waiting) and leaves the pending pool; `false`: the cap is full.
    fn promote(&self, slot: &TcpSlot, act: Option<&limits::Activity>) -> bool {
        let mut auth = slot.auth.lock().unwrap_or_else(|p| p.into_inner());
        if auth.is_some() {
            return true;
        }
        match self.tcp_permits.clone().try_acquire_owned() {
            Ok(p) => {
                *auth = Some(p);
                self.pending.leave(slot.id);
                if let Some(a) = act {
                    a.relax();
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Handle one request from `peer`, outside any connection's caps.
    pub async fn handle(&self, req: Request<Incoming>, peer: &Peer) -> Response<ProxyBody> {
        let conn = Conn {
            peer: peer.clone(),
            act: None,
            tcp: None,
        };
        self.handle_on(req, &conn).await
    }

    /// Handle one request on `conn`.
    pub(crate) async fn handle_on(
        &self,
        req: Request<Incoming>,
        conn: &Conn,
    ) -> Response<ProxyBody> {
        let peer = &conn.peer;
        let tcp = matches!(peer, Peer::Tcp(_));
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let o = origin.to_str().unwrap_or("");
            if !origin_is_local(o) {
                self.refusals.count(Refusal::Origin, peer, Some(&o));
                return plain(StatusCode::FORBIDDEN, "forbidden: Origin is not local");
            }
        }
        if tcp {
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
                self.refusals.count(Refusal::BadToken, peer, None);
                let mut r = plain(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized: bearer token required",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
            if let Some(slot) = &conn.tcp
                && !self.promote(slot, conn.act.as_deref())
            {
                self.refusals.count(Refusal::TcpCap, peer, None);
                return close(retry_after(
                    plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many TCP clients; retry shortly",
                    ),
                    "1",
                ));
            }
        }
        if req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > self.cfg.max_body_bytes)
        {
            self.refusals.count(Refusal::TooLarge, peer, None);
            linger(req.into_body());
            return close(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
        match self.settled_phase().await {
            Phase::Ready { .. } => {}
            Phase::Starting => {
                self.refusals.count(Refusal::NotReady, peer, None);
                return retry_after(
                    plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the WiFi agent is not ready yet; retry shortly",
                    ),
                    "5",
                );
            }
            Phase::Held { message } => {
                self.refusals.count(Refusal::Held, peer, None);
                return unavailable(req.headers().get(header::ACCEPT), &message);
            }
            Phase::Stopping => {
                self.refusals.count(Refusal::Stopping, peer, None);
                return retry_after(
                    unavailable(req.headers().get(header::ACCEPT), "stopping"),
                    "5",
                );
            }
        }
        match self.forward(req, peer).await {
            Ok(r) => r,
            Err(e) => {
                self.refusals.count(Refusal::Unreachable, peer, Some(&e));
                retry_after(
                    plain(StatusCode::BAD_GATEWAY, "the WiFi agent is unreachable"),
                    "5",
                )
            }
        }
    }

    /// Read a request body: bounded in size, in time (`body_timeout` after the head) and by the
    /// shared byte budget. `Err`: the answer to send instead.
    async fn read_body(
        &self,
        mut body: Incoming,
        peer: &Peer,
        held: &mut Reserved,
    ) -> Result<Bytes, Response<ProxyBody>> {
        let deadline = tokio::time::sleep(self.limits.body_timeout);
        tokio::pin!(deadline);
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        loop {
            let frame = tokio::select! {
                f = body.frame() => f,
                _ = &mut deadline => {
                    self.refusals.count(Refusal::BodyTimeout, peer, None);
                    return Err(close(plain(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body not received in time",
                    )));
                }
            };
            let data = match frame {
                None => break,
                Some(Err(_)) => {
                    return Err(close(plain(StatusCode::BAD_REQUEST, "bad request body")));
                }
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
            };
            if len + data.len() > self.cfg.max_body_bytes {
                self.refusals.count(Refusal::TooLarge, peer, None);
                linger(body);
                return Err(close(plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large",
                )));
            }
            if !held.grow(data.len()) {
                self.refusals.count(Refusal::Budget, peer, None);
                linger(body);
                return Err(close(retry_after(
                    plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many request bodies in flight; retry shortly",
                    ),
                    "1",
                )));
            }
            len += data.len();
            chunks.push(data);
        }
        Ok(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut all = bytes::BytesMut::with_capacity(len);
                for c in chunks {
                    all.extend_from_slice(&c);
                }
                all.freeze()
            }
        })
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        peer: &Peer,
    ) -> anyhow::Result<Response<ProxyBody>> {
        let (mut parts, body) = req.into_parts();
        // Requests are small JSON-RPC messages: read them (bounded) to audit tool calls. The
        // bytes count against the budget until the agent has answered the request's head.
        let mut held = Reserved::new(&self.budget);
        let body = match self.read_body(body, peer, &mut held).await {
            Ok(b) => b,
            Err(answer) => return Ok(answer),
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
