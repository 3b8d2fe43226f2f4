//! Host-side profile of the proxy's own cost (no VM, no radio): CPU time the proxy process spends
//! per request — wifi-isolate's proxy vs `systemd-socket-proxyd` — in front of the same stand-in
//! upstream, under the same load (one connection per request, as rmcp's Unix-socket client does).
//! Where the VM benchmark (tests/bench/proxy.sh) says *that* we are slower, this says *where*
//! (run the proxy role under `perf record`).
//!
//! Usage:
//!   proxy-cpu upstream SOCK                  serve a canned MCP-like SSE answer on SOCK
//!   proxy-cpu proxy LISTEN_SOCK UPSTREAM     wifi-isolate's proxy as the daemon runs it (own
//!                                            thread, single-threaded runtime), ready at once
//!   proxy-cpu proxy-shared LISTEN_SOCK UPSTREAM   the same on a multi-threaded runtime
//!   proxy-cpu load SOCK CLIENTS SECONDS      drive SOCK; prints "requests p50_ms p99_ms"

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};

const ANSWER: &str = "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"[]\"}],\"isError\":false}}\n\n";
const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"wifi_debug_logs","arguments":{"lines":1}}}"#;

async fn upstream(sock: PathBuf) {
    let _ = std::fs::remove_file(&sock);
    let l = UnixListener::bind(&sock).expect("bind upstream");
    loop {
        let (s, _) = l.accept().await.expect("accept");
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(
                        http::Response::builder()
                            .header("content-type", "text/event-stream")
                            .header("mcp-session-id", "0123456789abcdef")
                            // Streamed (chunked), as the agent's SSE answers are.
                            .body(StreamBody::new(futures::stream::iter([
                                Ok::<_, Infallible>(Frame::data(Bytes::from_static(
                                    ANSWER.as_bytes(),
                                ))),
                            ])))
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

async fn proxy(listen: PathBuf, up: PathBuf, dedicated: bool) {
    use wifi_isolate::host::proxy::{self, ListenSpec, Proxy, ProxyConfig};
    let (_tx, ready) = tokio::sync::watch::channel(Some(nix::unistd::getuid().as_raw()));
    let p = Proxy::new(
        ProxyConfig {
            upstream: up,
            ready_wait: Duration::from_secs(1),
            max_connections: 512,
            max_body_bytes: 4 << 20,
            token: None,
            instance: "bench".into(),
        },
        ready,
    );
    let l = proxy::bind(&ListenSpec::Unix(listen)).expect("bind proxy");
    let ct = tokio_util::sync::CancellationToken::new();
    if dedicated {
        let _ = proxy::serve_dedicated(p, vec![l], ct)
            .expect("proxy thread")
            .await;
    } else {
        proxy::serve(p, vec![l], ct).await;
    }
}

async fn one(sock: &std::path::Path) -> bool {
    let Ok(s) = UnixStream::connect(sock).await else {
        return false;
    };
    let Ok((mut tx, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await else {
        return false;
    };
    tokio::spawn(conn);
    let req = http::Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "0123456789abcdef")
        .header("mcp-protocol-version", "2025-11-25")
        .body(Full::new(Bytes::from_static(CALL.as_bytes())))
        .unwrap();
    match tx.send_request(req).await {
        Ok(r) => r
            .into_body()
            .collect()
            .await
            .is_ok_and(|b| b.to_bytes().len() == ANSWER.len()),
        Err(_) => false,
    }
}

async fn load(sock: PathBuf, clients: usize, secs: f64) {
    let sock = Arc::new(sock);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let sock = sock.clone();
        set.spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                assert!(one(&sock).await, "request failed");
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        });
    }
    let mut lat = Vec::new();
    while let Some(l) = set.join_next().await {
        lat.extend(l.expect("client"));
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!("{} {:.3} {:.3}", lat.len(), at(0.5), at(0.99));
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: proxy-cpu upstream SOCK | proxy[-shared] LISTEN UPSTREAM | load SOCK CLIENTS SECONDS";
    match a.get(1).map(String::as_str) {
        Some("upstream") => upstream(a.get(2).expect(usage).into()).await,
        Some(mode @ ("proxy" | "proxy-shared")) => {
            proxy(
                a.get(2).expect(usage).into(),
                a.get(3).expect(usage).into(),
                mode == "proxy",
            )
            .await
        }
        Some("load") => {
            load(
                a.get(2).expect(usage).into(),
                a.get(3).and_then(|s| s.parse().ok()).expect(usage),
                a.get(4).and_then(|s| s.parse().ok()).expect(usage),
            )
            .await
        }
        _ => panic!("{usage}"),
    }
}
