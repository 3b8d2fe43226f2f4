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
use wifi_isolate::proxy::{self, Listener, Proxy, ProxyConfig};

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
