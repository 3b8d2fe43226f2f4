//! The proxy's own HTTP logic on the host, with a stand-in upstream (the real agent is proven in
//! the hwsim VM suite): 503 + Retry-After while not ready, then forwarding with `Host` rewritten,
//! hop-by-hop headers stripped, and a streamed body arriving chunk by chunk (not buffered).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use wifi_isolate::host::proxy::{self, Listener, Proxy, ProxyConfig};
use wifi_isolate_tests::logs::Captured;

/// Upstream stand-in: answers with the headers it saw, then three SSE chunks 300 ms apart.
async fn upstream(l: UnixListener) {
    loop {
        let (s, _) = l.accept().await.unwrap();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let seen = format!(
                        "host={:?} conn={:?} te={:?} x-hop={:?}",
                        req.headers().get("host"),
                        req.headers().get("connection"),
                        req.headers().get("te"),
                        req.headers().get("x-hop"),
                    );
                    let (tx, rx) =
                        tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                    tokio::spawn(async move {
                        let _ = tx
                            .send(Ok(Frame::data(Bytes::from(format!("data: {seen}\n\n")))))
                            .await;
                        for i in 0..2 {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            let _ = tx
                                .send(Ok(Frame::data(Bytes::from(format!("data: {i}\n\n")))))
                                .await;
                        }
                    });
                    let body = StreamBody::new(tokio_stream_from(rx));
                    Ok::<_, Infallible>(
                        http::Response::builder()
                            .header("content-type", "text/event-stream")
                            .header("connection", "x-upstream-hop")
                            .header("x-upstream-hop", "1")
                            .body(body)
                            .unwrap(),
                    )
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Send `req` on a new connection to `sock` (a client per request, as rmcp's Unix client does).
async fn send_fresh(
    sock: &std::path::Path,
    req: http::Request<Full<Bytes>>,
) -> http::Response<hyper::body::Incoming> {
    let s = UnixStream::connect(sock).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx.send_request(req).await.unwrap()
}

async fn post(sock: &std::path::Path) -> http::Response<hyper::body::Incoming> {
    let req = http::Request::post("/mcp")
        .header("host", "attacker.example")
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    send_fresh(sock, req).await
}

/// Our uid: the test's upstream sockets are ours, as a box's are the box uid's.
fn me() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The proxy under test, in front of `upstream`: short ready wait, small limits, no token.
fn test_proxy(
    upstream: std::path::PathBuf,
    ready: tokio::sync::watch::Receiver<Option<u32>>,
) -> Arc<Proxy> {
    Proxy::new(
        ProxyConfig {
            upstream,
            ready_wait: Duration::from_millis(300),
            max_connections: 8,
            max_body_bytes: 1024,
            token: None,
            instance: "test0".into(),
        },
        ready,
    )
}

#[tokio::test]
async fn waits_then_503_then_forwards_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("agent.sock");
    tokio::spawn(upstream(UnixListener::bind(&up).unwrap()));
    let front = dir.path().join("front.sock");
    let listener = proxy::bind(&proxy::ListenSpec::Unix(front.clone())).unwrap();
    assert!(matches!(listener, Listener::Unix(_)));
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(None);
    let p = test_proxy(up, ready_rx);
    let ct = tokio_util::sync::CancellationToken::new();
    tokio::spawn(proxy::serve(Arc::clone(&p), vec![listener], ct.clone()));

    // Not ready: the request waits (bounded), then 503 with Retry-After.
    let t = Instant::now();
    let r = post(&front).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "did not wait: {:?}",
        t.elapsed()
    );

    // A request waiting when the agent becomes ready is served.
    let front2 = front.clone();
    let waiting = tokio::spawn(async move { post(&front2).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    ready_tx.send_replace(Some(me()));
    let r = waiting.await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !r.headers().contains_key("x-upstream-hop"),
        "hop-by-hop header leaked back"
    );
    let mut body = r.into_body();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    let t = Instant::now();
    while let Some(f) = body.frame().await {
        if let Some(d) = f.unwrap().data_ref() {
            arrivals.push(t.elapsed());
            text.push_str(&String::from_utf8_lossy(d));
        }
    }
    assert!(text.contains("host=Some(\"localhost\")"), "{text}");
    assert!(
        text.contains("conn=None") && text.contains("te=None") && text.contains("x-hop=None"),
        "{text}"
    );
    assert!(arrivals.len() >= 3, "{arrivals:?}");
    assert!(
        arrivals[0] < Duration::from_millis(200)
            && *arrivals.last().unwrap() >= Duration::from_millis(500),
        "body was buffered, not streamed: {arrivals:?}"
    );
    ct.cancel();
}

/// Upstream stand-in that counts its connections and answers each request with a short body;
/// `keep_alive: false` closes every connection after one answer.
async fn counting_upstream(l: UnixListener, accepted: Arc<AtomicUsize>, keep_alive: bool) {
    loop {
        let (s, _) = l.accept().await.unwrap();
        accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let got = req.into_body().collect().await.unwrap().to_bytes();
                    Ok::<_, Infallible>(http::Response::new(Full::new(got)))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(keep_alive)
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

async fn post_body(sock: &std::path::Path, body: &'static str) -> (u16, String) {
    let req = http::Request::post("/mcp")
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let r = send_fresh(sock, req).await;
    let status = r.status().as_u16();
    let b = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&b).into_owned())
}

/// A ready proxy on its own thread (as the daemon runs it) in front of a counting upstream.
struct Front {
    _dir: tempfile::TempDir,
    sock: std::path::PathBuf,
    accepted: Arc<AtomicUsize>,
    ct: tokio_util::sync::CancellationToken,
    _ready: tokio::sync::watch::Sender<Option<u32>>,
}

fn front(keep_alive: bool) -> Front {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("agent.sock");
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn(counting_upstream(
        UnixListener::bind(&up).unwrap(),
        accepted.clone(),
        keep_alive,
    ));
    let sock = dir.path().join("front.sock");
    let listener = proxy::bind(&proxy::ListenSpec::Unix(sock.clone())).unwrap();
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(Some(me()));
    let ct = tokio_util::sync::CancellationToken::new();
    // Served until `ct` is cancelled; the completion signal is not awaited.
    drop(proxy::serve_dedicated(test_proxy(up, ready_rx), vec![listener], ct.clone()).unwrap());
    Front {
        _dir: dir,
        sock,
        accepted,
        ct,
        _ready: ready_tx,
    }
}

/// Client connections come and go (one per request, as rmcp's Unix client does); the agent sees
/// one connection, reused. An agent that closes after each answer still gets every request.
#[tokio::test]
async fn upstream_connections_are_pooled_and_closed_ones_replaced() {
    for keep_alive in [true, false] {
        let f = front(keep_alive);
        for i in 0..20 {
            let (status, body) = post_body(&f.sock, "ping").await;
            assert_eq!((status, body.as_str()), (200, "ping"), "request {i}");
        }
        let n = f.accepted.load(Ordering::SeqCst);
        if keep_alive {
            assert_eq!(n, 1, "20 requests should share one upstream connection");
        } else {
            assert_eq!(n, 20, "a closed connection must not be reused");
        }
        f.ct.cancel();
    }
}

/// A body over the limit gets 413 — and the client, still writing it, reads that answer instead
/// of a broken pipe: the proxy keeps reading (and discarding) for a while after answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_gets_413_not_a_broken_pipe() {
    let f = front(true);
    // The race (answer vs. the client's next write) is lost a few times in 300 without lingering.
    for i in 0..300 {
        let s = UnixStream::connect(&f.sock).await.unwrap();
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::post("/mcp")
            .header("host", "localhost")
            .body(Full::new(Bytes::from(vec![b'x'; 5 << 20])))
            .unwrap();
        let r = tx.send_request(req).await;
        assert!(
            matches!(&r, Ok(r) if r.status() == 413),
            "attempt {i}: {:?}",
            r.map(|r| r.status())
        );
    }
    assert_eq!(
        f.accepted.load(Ordering::SeqCst),
        0,
        "nothing reached the agent"
    );
    f.ct.cancel();
}

/// A hostile box replaces its agent socket with a symlink to another socket (a host service, here
/// a live stand-in of the right owner). The proxy refuses to follow it — 502, and the target never
/// sees a connection — and forwards again once a real socket is back in its place. A real socket
/// that is not the box uid's is refused too.
#[tokio::test]
async fn a_planted_symlink_does_not_redirect_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let host_sock = dir.path().join("host-only.sock");
    let host_hits = Arc::new(AtomicUsize::new(0));
    tokio::spawn(counting_upstream(
        UnixListener::bind(&host_sock).unwrap(),
        host_hits.clone(),
        true,
    ));
    let box_dir = dir.path().join("box").join("wlan0");
    std::fs::create_dir_all(&box_dir).unwrap();
    let up = box_dir.join("mcp.sock");
    std::os::unix::fs::symlink(&host_sock, &up).unwrap();

    let front = dir.path().join("front.sock");
    let listener = proxy::bind(&proxy::ListenSpec::Unix(front.clone())).unwrap();
    let (_ready_tx, ready_rx) = tokio::sync::watch::channel(Some(me()));
    let ct = tokio_util::sync::CancellationToken::new();
    tokio::spawn(proxy::serve(
        test_proxy(up.clone(), ready_rx),
        vec![listener],
        ct.clone(),
    ));

    let (status, _) = post_body(&front, "{}").await;
    assert_eq!(status, 502, "the proxy followed the planted symlink");
    assert_eq!(
        host_hits.load(Ordering::SeqCst),
        0,
        "the symlink's target got a connection"
    );

    // The box's own socket in its place: forwarded.
    std::fs::remove_file(&up).unwrap();
    let box_hits = Arc::new(AtomicUsize::new(0));
    tokio::spawn(counting_upstream(
        UnixListener::bind(&up).unwrap(),
        box_hits.clone(),
        true,
    ));
    let (status, body) = post_body(&front, "{\"x\":1}").await;
    assert_eq!((status, body.as_str()), (200, "{\"x\":1}"));
    assert_eq!(box_hits.load(Ordering::SeqCst), 1);

    // The same socket in front of a box said to run as another uid: refused (owner check).
    let front2 = dir.path().join("front2.sock");
    let listener2 = proxy::bind(&proxy::ListenSpec::Unix(front2.clone())).unwrap();
    let (_tx2, ready2) = tokio::sync::watch::channel(Some(me().wrapping_add(1)));
    tokio::spawn(proxy::serve(
        test_proxy(up, ready2),
        vec![listener2],
        ct.clone(),
    ));
    let (status, _) = post_body(&front2, "{}").await;
    assert_eq!(status, 502, "a socket of the wrong owner was used");
    assert_eq!(box_hits.load(Ordering::SeqCst), 1);
    assert_eq!(host_hits.load(Ordering::SeqCst), 0);
    ct.cancel();
}

// ---- Under load and abuse: deadlines, caps, budget, refusal logs, phases. ----

use std::sync::atomic::AtomicBool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wifi_isolate::host::proxy::{Limits, Phase};

/// A proxy with `limits`, following `phase`; Unix cap 8, bodies up to 1024 bytes, `token`.
fn limited_proxy(
    upstream: std::path::PathBuf,
    limits: Limits,
    phase: tokio::sync::watch::Receiver<Phase>,
    token: Option<&str>,
) -> Arc<Proxy> {
    Proxy::with_phase(
        ProxyConfig {
            upstream,
            ready_wait: Duration::from_millis(300),
            max_connections: 8,
            max_body_bytes: 1024,
            token: token.map(Arc::from),
            instance: "test0".into(),
        },
        limits,
        phase,
    )
}

/// An echoing upstream, a proxy in front of it on a Unix socket (and more `extra` listeners),
/// served on its own thread as the daemon does.
struct Limited {
    dir: tempfile::TempDir,
    sock: std::path::PathBuf,
    proxy: Arc<Proxy>,
    ct: tokio_util::sync::CancellationToken,
    phase: tokio::sync::watch::Sender<Phase>,
    accepted: Arc<AtomicUsize>,
}

fn limited(limits: Limits, token: Option<&str>, extra: Vec<Listener>) -> Limited {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("agent.sock");
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn(counting_upstream(
        UnixListener::bind(&up).unwrap(),
        accepted.clone(),
        true,
    ));
    let sock = dir.path().join("front.sock");
    let mut listeners = vec![proxy::bind(&proxy::ListenSpec::Unix(sock.clone())).unwrap()];
    listeners.extend(extra);
    let (phase, rx) = tokio::sync::watch::channel(Phase::Ready { uid: me() });
    let p = limited_proxy(up, limits, rx, token);
    let ct = tokio_util::sync::CancellationToken::new();
    drop(proxy::serve_dedicated(p.clone(), listeners, ct.clone()).unwrap());
    Limited {
        dir,
        sock,
        proxy: p,
        ct,
        phase,
        accepted,
    }
}

/// Read from `s` until EOF (or `limit`): what arrived, and whether the peer closed.
async fn read_until_close(s: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// A request head that never completes is cut at the header deadline; a keep-alive connection
/// outlives the header deadline while idle and is closed at the idle one; a body that stops
/// arriving gets 408 at the body deadline. (Without a timer, none of these connections close.)
#[tokio::test]
async fn header_idle_and_body_deadlines_close_connections() {
    let f = limited(
        Limits {
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(1200),
            body_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        None,
        vec![],
    );
    // 1. A head that stops half-way.
    let t = Instant::now();
    let mut s = UnixStream::connect(&f.sock).await.unwrap();
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(3)).await;
    let took = t.elapsed();
    assert!(closed, "a half-sent head kept its connection open");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "closed after {took:?}, the header deadline is 300 ms"
    );
    // 1b. A connection that never sends anything: the first head is due 300 ms after accept.
    let mut s = UnixStream::connect(&f.sock).await.unwrap();
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(3)).await;
    assert!(closed, "a silent connection was kept");

    // 2. Keep-alive: one request, then idle.
    let s = UnixStream::connect(&f.sock).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let r = tx
        .send_request(
            http::Request::post("/mcp")
                .header("host", "localhost")
                .body(Full::new(Bytes::from_static(b"ping")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.into_body().collect().await.unwrap();
    let idle_from = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !conn.is_finished(),
        "an idle keep-alive connection was closed at the header deadline, not the idle one"
    );
    // Still usable after more than the header deadline of idleness.
    let r = tx
        .send_request(
            http::Request::post("/mcp")
                .header("host", "localhost")
                .body(Full::new(Bytes::from_static(b"again")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.into_body().collect().await.unwrap();
    let idle_from2 = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), conn)
        .await
        .expect("an idle keep-alive connection was never closed")
        .unwrap()
        .ok();
    let idle = idle_from2.elapsed();
    assert!(
        idle >= Duration::from_millis(1000) && idle < Duration::from_millis(2500),
        "idle close after {idle:?} (first request {:?} ago), the idle deadline is 1.2 s",
        idle_from.elapsed()
    );

    // 3. A body that stops arriving.
    let t = Instant::now();
    let mut s = UnixStream::connect(&f.sock).await.unwrap();
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let (text, closed) = read_until_close(&mut s, Duration::from_secs(3)).await;
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "a stalled body got {text:?}"
    );
    assert!(closed, "the connection of a stalled body stayed open");
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "408 too early: {:?}",
        t.elapsed()
    );
    assert_eq!(
        f.accepted.load(Ordering::SeqCst),
        1,
        "only the two full requests went up"
    );
    f.ct.cancel();
}

/// Send `req` on a new TCP connection.
async fn send_tcp(
    addr: std::net::SocketAddr,
    req: http::Request<Full<Bytes>>,
) -> http::Response<hyper::body::Incoming> {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx.send_request(req).await.unwrap()
}

const TOKEN: &str = "0123456789abcdef-test-token";

/// 300 idle TCP connections from "any local user" (no token, nothing sent) are held open; a Unix
/// client and an authenticated TCP client are still served within 2 s. Unauthenticated TCP
/// connections live in a small pending pool of their own (oldest evicted), never in the Unix
/// socket's cap nor in the authenticated TCP cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_flood_does_not_block_unix_or_authenticated_clients() {
    let tcp = proxy::bind(&proxy::ListenSpec::Tcp("127.0.0.1:0".parse().unwrap())).unwrap();
    let Listener::Tcp(t) = &tcp else {
        unreachable!()
    };
    let addr = t.local_addr().unwrap();
    let f = limited(
        Limits {
            max_tcp_connections: 8,
            max_tcp_pending: 32,
            ..Limits::default()
        },
        Some(TOKEN),
        vec![tcp],
    );
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // Let the proxy accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Several of each, one after the other: a cap shared with the idle connections would let
    // one through on a slot its accept loop already held, and block the next.
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), async {
        for i in 0..5 {
            let (status, body) = post_body(&f.sock, "unix").await;
            assert_eq!((status, body.as_str()), (200, "unix"), "Unix client {i}");
            let r = send_tcp(
                addr,
                http::Request::post("/mcp")
                    .header("host", "localhost")
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .body(Full::new(Bytes::from_static(b"tcp")))
                    .unwrap(),
            )
            .await;
            assert_eq!(r.status(), 200, "TCP client {i}");
            let b = r.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&b[..], b"tcp");
        }
    })
    .await
    .expect("5 Unix and 5 authenticated TCP clients were not served within 2 s");
    eprintln!(
        "5 Unix + 5 TCP clients served in {:?} with 300 idle TCP connections",
        t.elapsed()
    );
    assert!(
        f.proxy.refused() >= 300 - 32,
        "evictions not counted: {}",
        f.proxy.refused()
    );

    // Without a token, TCP clients are refused.
    let r = send_tcp(
        addr,
        http::Request::post("/mcp")
            .header("host", "localhost")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), 401);
    drop(idle);
    f.ct.cancel();
}

/// The authenticated TCP cap is a cap: one client over it gets 503 + Retry-After at once. An
/// unauthenticated connection is kept alive across refusals, but idle only for a header deadline.
#[tokio::test]
async fn authenticated_tcp_cap_answers_503_when_full() {
    let tcp = proxy::bind(&proxy::ListenSpec::Tcp("127.0.0.1:0".parse().unwrap())).unwrap();
    let Listener::Tcp(t) = &tcp else {
        unreachable!()
    };
    let addr = t.local_addr().unwrap();
    let f = limited(
        Limits {
            max_tcp_connections: 2,
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        Some(TOKEN),
        vec![tcp],
    );
    let auth = || {
        http::Request::post("/mcp")
            .header("host", "localhost")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::from_static(b"x")))
            .unwrap()
    };
    // Two keep-alive clients hold the two slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(conn);
        let r = tx.send_request(auth()).await.unwrap();
        assert_eq!(r.status(), 200);
        r.into_body().collect().await.unwrap();
        held.push(tx);
    }
    let r = send_tcp(addr, auth()).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    drop(held);
    // Their slots come back once the proxy has seen them close.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Refused requests keep a connection alive but pending: idle, it lasts only as long as a
    // request head may take (300 ms here), while an authenticated one lasts the idle deadline.
    let keep = |token: Option<&str>| {
        let mut b = http::Request::post("/mcp").header("host", "localhost");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Full::new(Bytes::from_static(b"x"))).unwrap()
    };
    let mut lives = Vec::new();
    for token in [None, Some(TOKEN)] {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        for _ in 0..3 {
            let r = tx.send_request(keep(token)).await.unwrap();
            assert_eq!(r.status(), if token.is_some() { 200 } else { 401 });
            r.into_body().collect().await.unwrap();
        }
        lives.push((tx, conn));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        lives[0].1.is_finished(),
        "an idle unauthenticated connection outlived the header deadline"
    );
    assert!(
        !lives[1].1.is_finished(),
        "an idle authenticated connection was closed early"
    );
    f.ct.cancel();
}

/// Bodies buffered at once are bounded by a byte budget across all connections: over it, 503 +
/// Retry-After (not unbounded memory); the budget is given back when requests finish.
#[tokio::test]
async fn body_budget_over_all_connections_answers_503() {
    let f = limited(
        Limits {
            body_budget_bytes: 2048,
            ..Limits::default()
        },
        None,
        vec![],
    );
    let head = b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n";
    let part = vec![b'a'; 900];
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = UnixStream::connect(&f.sock).await.unwrap();
        s.write_all(head).await.unwrap();
        s.write_all(&part).await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = UnixStream::connect(&f.sock).await.unwrap();
    third.write_all(head).await.unwrap();
    third.write_all(&part).await.unwrap();
    let (text, _) = read_until_close(&mut third, Duration::from_secs(2)).await;
    assert!(
        text.starts_with("HTTP/1.1 503"),
        "over the budget: {text:?}"
    );
    assert!(text.to_ascii_lowercase().contains("retry-after:"), "{text}");
    // The first two complete and are served; then the budget is free again.
    for s in &mut slow {
        s.write_all(&[b'b'; 100]).await.unwrap();
    }
    for s in &mut slow {
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    drop(slow);
    let (status, body) = post_body(&f.sock, "after").await;
    assert_eq!((status, body.as_str()), (200, "after"));
    f.ct.cancel();
}

/// 20 000 refused requests (non-local `Origin`) produce a handful of summary lines whose counts
/// add up to 20 000; a tool call right after still gets its own audit record.
#[tokio::test]
async fn a_refusal_flood_logs_a_handful_of_lines_and_the_audit_record_survives() {
    let logs = Captured::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // This thread only (a current-thread runtime: the proxy's tasks run here too).
    let _guard = tracing::subscriber::set_default(sub);

    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("agent.sock");
    tokio::spawn(counting_upstream(
        UnixListener::bind(&up).unwrap(),
        Arc::new(AtomicUsize::new(0)),
        true,
    ));
    let sock = dir.path().join("front.sock");
    let l = proxy::bind(&proxy::ListenSpec::Unix(sock.clone())).unwrap();
    let (_phase, rx) = tokio::sync::watch::channel(Phase::Ready { uid: me() });
    let p = limited_proxy(up, Limits::default(), rx, None);
    let ct = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(proxy::serve(p.clone(), vec![l], ct.clone()));

    const N: usize = 20_000;
    const CLIENTS: usize = 8;
    let t = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let sock = sock.clone();
        clients.push(tokio::spawn(async move {
            let s = UnixStream::connect(&sock).await.unwrap();
            let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                .await
                .unwrap();
            tokio::spawn(conn);
            for _ in 0..N / CLIENTS {
                let r = tx
                    .send_request(
                        http::Request::post("/mcp")
                            .header("host", "localhost")
                            .header("origin", "http://evil.example")
                            .body(Full::new(Bytes::from_static(b"{}")))
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.status(), 403);
                r.into_body().collect().await.unwrap();
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let flood = t.elapsed();
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wifi_scan","arguments":{}}}"#;
    let (status, _) = post_body(&sock, std::str::from_utf8(call).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(p.refused(), N as u64);
    ct.cancel();
    served.await.unwrap();
    // Give the connection tasks a moment to finish their lines.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let text = logs.text();
    let warns: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    let summed: u64 = warns
        .iter()
        .filter(|l| l.contains("kind=\"non-local-origin\"") || l.contains("kind=non-local-origin"))
        .filter_map(|l| {
            l.split("count=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!(
        "{N} refusals in {flood:?}: {} WARN lines\n{}",
        warns.len(),
        warns.join("\n")
    );
    assert!(
        warns.len() <= 2 + flood.as_secs() as usize / 10,
        "{} WARN lines for {N} refusals in {flood:?}",
        warns.len()
    );
    assert_eq!(
        summed, N as u64,
        "the summaries' counts do not add up:\n{text}"
    );
    let audits = text.lines().filter(|l| l.contains("MCP tool call")).count();
    assert_eq!(
        audits, 1,
        "the tool call's audit record is missing:\n{text}"
    );
    assert!(text.contains("tool=wifi_scan"), "{text}");
}

/// Every TCP listener must be loopback — systemd's too; Unix sockets pass.
#[tokio::test]
async fn require_loopback_refuses_a_non_loopback_tcp_listener() {
    let dir = tempfile::tempdir().unwrap();
    let unix = proxy::bind(&proxy::ListenSpec::Unix(dir.path().join("s.sock"))).unwrap();
    let v4 = proxy::bind(&proxy::ListenSpec::Tcp("127.0.0.1:0".parse().unwrap())).unwrap();
    let v6 = proxy::bind(&proxy::ListenSpec::Tcp("[::1]:0".parse().unwrap())).unwrap();
    let ok = vec![unix, v4, v6];
    assert_eq!(proxy::require_loopback(&ok), Ok(()));
    // As a socket systemd could pass (ListenStream=0.0.0.0:PORT): bound, never accepted on.
    let any = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    any.set_nonblocking(true).unwrap();
    let mut bad = ok;
    bad.push(Listener::Tcp(
        tokio::net::TcpListener::from_std(any).unwrap(),
    ));
    let e = proxy::require_loopback(&bad).unwrap_err();
    assert!(e.contains("0.0.0.0") && e.contains("not loopback"), "{e}");
}

/// Phases: Starting waits then 503; Ready forwards; Held answers 503 at once with the message
/// (a JSON-RPC error for MCP clients, text otherwise) and reaches nothing; Stopping says so.
/// `idle_for` is zero while a client is connected and grows once none is.
#[tokio::test]
async fn phases_and_idle_time() {
    let f = limited(Limits::default(), None, vec![]);
    let (status, body) = post_body(&f.sock, "ready").await;
    assert_eq!((status, body.as_str()), (200, "ready"));

    let msg = "wlp6s0 is held: it was stopped with `systemctl stop`; start it with `systemctl start wifi-isolate@wlp6s0`";
    f.phase.send_replace(Phase::Held {
        message: msg.into(),
    });
    let t = Instant::now();
    let r = send_fresh(
        &f.sock,
        http::Request::post("/mcp")
            .header("host", "localhost")
            .header("accept", "application/json, text/event-stream")
            .body(Full::new(Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#,
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "held did not answer at once"
    );
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: serde_json::Value =
        serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["error"]["message"], msg);
    let (status, body) = post_body(&f.sock, "{}").await;
    assert_eq!(status, 503);
    assert_eq!(body.trim_end(), msg, "text/plain fallback");

    f.phase.send_replace(Phase::Stopping);
    let (status, body) = post_body(&f.sock, "{}").await;
    assert_eq!((status, body.trim_end()), (503, "stopping"));

    // Starting: waits up to ready_wait, and is served when Ready comes in time.
    f.phase.send_replace(Phase::Starting);
    let sock = f.sock.clone();
    let waiting = tokio::spawn(async move { post_body(&sock, "late").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.phase.send_replace(Phase::Ready { uid: me() });
    assert_eq!(waiting.await.unwrap(), (200, "late".to_string()));
    assert_eq!(
        f.accepted.load(Ordering::SeqCst),
        1,
        "held or stopping reached the agent"
    );

    // Idle time: zero while a client holds a connection, growing once it is gone.
    let held = UnixStream::connect(&f.sock).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.proxy.idle_for(), Duration::ZERO);
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = f.proxy.idle_for();
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_secs(2),
        "idle_for = {idle:?}"
    );
    let _ = &f.dir;
    f.ct.cancel();
}

/// Upstream stand-in that records when the proxy closes its side: it reads the request, then
/// (with `sse`) answers with an event-stream head and one event, and never finishes.
async fn recording_upstream(l: UnixListener, closed: Arc<AtomicBool>, sse: bool) {
    loop {
        let (mut s, _) = l.accept().await.unwrap();
        let closed = closed.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            if sse {
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
                          d\r\ndata: first\n\n\r\n",
                    )
                    .await;
            }
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            closed.store(true, Ordering::SeqCst);
        });
    }
}

/// A client that goes away mid-request — while the agent works on it, or while its response
/// streams — takes the upstream request with it: the agent sees its connection close.
#[tokio::test]
async fn a_client_going_away_closes_the_upstream_request() {
    for sse in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path().join("agent.sock");
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(recording_upstream(
            UnixListener::bind(&up).unwrap(),
            closed.clone(),
            sse,
        ));
        let sock = dir.path().join("front.sock");
        let l = proxy::bind(&proxy::ListenSpec::Unix(sock.clone())).unwrap();
        let (_phase, rx) = tokio::sync::watch::channel(Phase::Ready { uid: me() });
        let ct = tokio_util::sync::CancellationToken::new();
        drop(
            proxy::serve_dedicated(
                limited_proxy(up, Limits::default(), rx, None),
                vec![l],
                ct.clone(),
            )
            .unwrap(),
        );

        let mut s = UnixStream::connect(&sock).await.unwrap();
        s.write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .unwrap();
        if sse {
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                String::from_utf8_lossy(&buf[..n]).contains("200"),
                "no streamed response"
            );
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(
            !closed.load(Ordering::SeqCst),
            "closed before the client left"
        );
        drop(s);
        let t = Instant::now();
        while !closed.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            closed.load(Ordering::SeqCst),
            "sse={sse}: the agent's connection stayed open after the client left"
        );
        eprintln!(
            "sse={sse}: upstream closed {:?} after the client left",
            t.elapsed()
        );
        ct.cancel();
    }
}

/// No deadline cuts a running request: a response that streams (or waits) longer than the
/// header and idle deadlines together keeps its client connection and its upstream request.
#[tokio::test]
async fn deadlines_never_cut_a_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("agent.sock");
    let closed = Arc::new(AtomicBool::new(false));
    tokio::spawn(recording_upstream(
        UnixListener::bind(&up).unwrap(),
        closed.clone(),
        true,
    ));
    let sock = dir.path().join("front.sock");
    let l = proxy::bind(&proxy::ListenSpec::Unix(sock.clone())).unwrap();
    let (_phase, rx) = tokio::sync::watch::channel(Phase::Ready { uid: me() });
    let ct = tokio_util::sync::CancellationToken::new();
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    drop(proxy::serve_dedicated(limited_proxy(up, limits, rx, None), vec![l], ct.clone()).unwrap());
    let mut s = UnixStream::connect(&sock).await.unwrap();
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200"));
    // 2 s > header + idle (0.9 s) + hyper's backstop: still open on both sides.
    let (_, closed_here) = read_until_close(&mut s, Duration::from_secs(2)).await;
    assert!(!closed_here, "a streaming response was cut by a deadline");
    assert!(
        !closed.load(Ordering::SeqCst),
        "the upstream request was cut"
    );
    ct.cancel();
}

/// `wifi-isolate connect` in front of a held endpoint: it does not retry for its whole window
/// (a held adapter does not start by waiting) but answers the client at once with the
/// endpoint's message.
#[tokio::test]
async fn connect_reports_a_held_endpoint_at_once() {
    use tokio::io::AsyncBufReadExt;
    let f = limited(Limits::default(), None, vec![]);
    let msg = "wlan9 is held: it was stopped with `systemctl stop`";
    f.phase.send_replace(Phase::Held {
        message: msg.into(),
    });
    let t = Instant::now();
    let mut child = tokio::process::Command::new(wifi_isolate_tests::env::bin("wifi-isolate"))
        .args(["connect", "wlan9", "--retry", "30", "--socket"])
        .arg(&f.sock)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .await
        .unwrap();
    stdin.write_all(b"\n").await.unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), out.next_line())
        .await
        .expect("connect kept retrying a held endpoint")
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["id"], 1, "{line}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("is held"),
        "{line}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("connect exits when stdin closes")
        .unwrap();
    assert!(status.success());
}
