//! Accept loops and connection tasks: caps taken per listener kind, deadlines watched per
//! connection (see [`super::limits`]).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::limits::{Activity, Deadline, InFlight, Refusal};
use super::{Conn, Listener, Peer, Proxy, ProxyBody, TcpSlot};

/// Serve `listeners` on a thread of their own with a single-threaded runtime, until `ct` is
/// cancelled; the receiver resolves when the last connection has been let go.
///
/// A request's path (accept, read, upstream round trip, write back) then never crosses threads:
/// measured under TCG with 64 clients, the multi-threaded runtime's wakeups cost the proxy
/// 1.2–1.5× the CPU per request of this (tests/src/bin/proxy-cpu.rs). The daemon's own runtime
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
/// Serve `listeners` until `ct` is cancelled. Unix-socket connections beyond
/// [`ProxyConfig::max_connections`](super::ProxyConfig) wait in the backlog; TCP connections are
/// accepted at once into the pending pool (see [`super::limits`]). Refusal counts still pending
/// are logged when it returns.
pub async fn serve(proxy: Arc<Proxy>, listeners: Vec<Listener>, ct: CancellationToken) {
    let permits = Arc::new(Semaphore::new(proxy.cfg.max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let (proxy, permits, ct) = (proxy.clone(), permits.clone(), ct.clone());
        tasks.spawn(async move { accept_loop(proxy, l, permits, ct).await });
    }
    {
        // Summaries that are due even when no new refusal arrives to write them.
        let (proxy, ct) = (proxy.clone(), ct.clone());
        tasks.spawn(async move {
            let every = proxy
                .limits
                .refusal_log_interval
                .max(Duration::from_millis(100));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => proxy.refusals.flush(false),
                    _ = ct.cancelled() => return,
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    proxy.refusals.flush(true);
}

async fn accept_loop(
    proxy: Arc<Proxy>,
    l: Listener,
    permits: Arc<Semaphore>,
    ct: CancellationToken,
) {
    loop {
        // The Unix socket's clients are authenticated by its mode: they wait for a slot. TCP
        // clients are accepted at once into the pending pool.
        let permit = match &l {
            Listener::Unix(_) => Some(tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = ct.cancelled() => return,
            }),
            Listener::Tcp(_) => None,
        };
        let accepted = tokio::select! {
            a = accept(&l) => a,
            _ = ct.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                warn!(cause = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (tcp, evicted) = match &peer {
            Peer::Unix { .. } => {
                // Debug only: clients such as rmcp's open one connection per request.
                debug!(IFACE = %proxy.cfg.instance, %peer, "MCP client connected");
                (None, CancellationToken::new())
            }
            Peer::Tcp(_) => {
                let (id, evict, made_room) = proxy.pending.admit();
                if made_room {
                    proxy
                        .refusals
                        .count(Refusal::TcpPendingEvicted, &peer, None);
                }
                let slot = TcpSlot {
                    id,
                    auth: std::sync::Mutex::new(None),
                };
                (Some(slot), evict)
            }
        };
        let proxy = proxy.clone();
        let ct = ct.clone();
        tokio::spawn(connection(proxy, stream, peer, permit, tcp, evicted, ct));
    }
}

/// A response body that keeps its request "in flight" (for the idle deadline) until sent.
struct Guarded {
    inner: ProxyBody,
    _in_flight: InFlight,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// One client connection, until it closes, misses a deadline, is evicted from the pending pool
/// (`evicted`), or `ct` asks for a graceful shutdown. Dropping the HTTP connection drops the
/// request being handled, and with it the upstream request: the agent sees its connection close.
async fn connection(
    proxy: Arc<Proxy>,
    stream: Stream,
    peer: Peer,
    permit: Option<OwnedSemaphorePermit>,
    tcp: Option<TcpSlot>,
    evicted: CancellationToken,
    ct: CancellationToken,
) {
    let _permit = permit;
    let _open = proxy.opened();
    let act = Activity::new(tcp.is_some());
    let pending_id = tcp.as_ref().map(|t| t.id);
    let info = Arc::new(Conn {
        peer,
        act: Some(act.clone()),
        tcp,
    });
    let io = TokioIo::new(Tracked {
        s: stream,
        act: act.clone(),
    });
    let svc = {
        let (proxy, info, act) = (proxy.clone(), info.clone(), act.clone());
        hyper::service::service_fn(move |req| {
            let in_flight = act.begin();
            let (proxy, info) = (proxy.clone(), info.clone());
            async move {
                let r = proxy.handle_on(req, &info).await;
                Ok::<_, Infallible>(r.map(|inner| Guarded {
                    inner,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let limits = proxy.limits.clone();
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // hyper's own timer runs from the end of one response to the next head: a backstop
        // for the finer deadlines below (first head, next head once it began, idle).
        .header_read_timeout(limits.idle_timeout + limits.header_timeout)
        .max_buf_size(64 * 1024)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    loop {
        let wait = match act.deadline(&limits) {
            Deadline::Wait(d) => d,
            Deadline::HeaderTimeout => {
                proxy
                    .refusals
                    .count(Refusal::HeaderTimeout, &info.peer, None);
                break;
            }
            Deadline::Idle => break,
        };
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = evicted.cancelled() => break,
            _ = ct.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
                break;
            }
        }
    }
    if let Some(id) = pending_id {
        proxy.pending.leave(id);
    }
}

/// A client's stream, Unix or TCP.
enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

/// A client's stream that tells its connection's [`Activity`] when bytes arrive.
struct Tracked {
    s: Stream,
    act: Arc<Activity>,
}

async fn accept(l: &Listener) -> std::io::Result<(Stream, Peer)> {
    match l {
        Listener::Unix(u) => {
            let (s, _) = u.accept().await?;
            let c = s.peer_cred()?;
            Ok((
                Stream::Unix(s),
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
            Ok((Stream::Tcp(s), Peer::Tcp(a)))
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = match &mut me.s {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        };
        if buf.filled().len() > before {
            me.act.read();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().s {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().s {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().s {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
