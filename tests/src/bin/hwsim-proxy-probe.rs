//! hwsim VM probe for the socket-activated MCP endpoint (`wifi-isolate run` under
//! `systemd-socket-activate`, proxying into the real agent in a netns box on a real radio).
//!
//! Usage (as root, in the VM): `hwsim-proxy-probe STATION`. Prints one line per check and
//! `N passed, N failed`; exit 1 if any failed.

use shared::host_view;
use wifi_isolate_tests::guest as shared;
use wifi_isolate_tests::guest::logfile;
use wifi_isolate_tests::tally::Tally as Checks;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rmcp::model::{CallToolRequestParams, ClientRequest, ProgressNotificationParam, Request};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess, UnixSocketHttpClient};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

const TOKEN: &str = "lab-token-0123456789abcdef";
const TCP: &str = "127.0.0.1:8765";

#[derive(Clone, Default)]
struct Client {
    progress: Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
}

impl ClientHandler for Client {
    async fn on_progress(&self, p: ProgressNotificationParam, _c: NotificationContext<RoleClient>) {
        self.progress
            .lock()
            .unwrap()
            .push((Instant::now(), p.message.unwrap_or_default()));
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} missing from the lab env"))
}

async fn unix_client(sock: &Path) -> anyhow::Result<(RunningService<RoleClient, Client>, Client)> {
    let c = Client::default();
    let http = UnixSocketHttpClient::new(&sock.to_string_lossy(), "http://localhost/mcp");
    let t = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    Ok((c.clone().serve(t).await?, c))
}

async fn call(svc: &RunningService<RoleClient, Client>, tool: &str, args: Value) -> (bool, Value) {
    let p = CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    match svc.call_tool(p).await {
        Ok(r) => (
            r.is_error != Some(true),
            r.structured_content.unwrap_or(Value::Null),
        ),
        Err(e) => (false, json!({"error": e.to_string()})),
    }
}

/// A raw HTTP POST over a Unix or TCP socket; returns (status, body).
async fn raw_post(
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut req = http::Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string())))?;
    let resp = if let Some(p) = target.strip_prefix("unix:") {
        let s = tokio::net::UnixStream::connect(p).await?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
        tokio::spawn(conn);
        tx.send_request(req).await?
    } else {
        let s = tokio::net::TcpStream::connect(target).await?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
        tokio::spawn(conn);
        tx.send_request(req).await?
    };
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
        .await
        .map(|b| {
            b.map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    Ok((status, body))
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}"#;

fn terminate(child: &mut Child) -> Option<std::process::ExitStatus> {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    for _ in 0..200 {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--connect-as-nobody") {
        // Child mode: prove a uid outside the socket's group cannot connect.
        let r = std::os::unix::net::UnixStream::connect(&args[2]);
        std::process::exit(match r {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => 0,
            Err(_) => 2,
            Ok(_) => 1,
        });
    }
    let sta = args
        .get(1)
        .cloned()
        .expect("usage: hwsim-proxy-probe STATION");
    let sock = PathBuf::from(format!("/run/wifi-isolate/{sta}.sock"));
    let mut c = Checks::default();
    std::fs::create_dir_all("/run/wifi-isolate").unwrap();
    std::fs::create_dir_all("/run/creds").unwrap();
    std::fs::write("/run/creds/token", TOKEN).unwrap();
    let baseline = host_view();

    // ---- Phase A: socket activation, cold start --------------------------------------------
    let mut activator = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&sock)
        .args([
            "-l",
            TCP,
            "--fdname=mcp:mcp-tcp",
            "-E",
            "CREDENTIALS_DIRECTORY=/run/creds",
            "-E",
            "WIFI_ISOLATE_LOG=info",
        ])
        .args(["wifi-isolate", "run", &sta, "--engine", "netns"])
        .stdout(logfile("daemon-activated.log"))
        .stderr(logfile("daemon-activated.err"))
        .spawn()
        .expect("systemd-socket-activate");
    let mut waited = 0;
    while !sock.exists() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    // Nothing runs before the first connection: the radio is still in the host.
    c.check(
        "idle: nothing isolated before the first connection",
        Path::new(&format!("/sys/class/net/{sta}")).exists(),
        "station already gone",
    );
    let t0 = Instant::now();
    let (svc, client) = match unix_client(&sock).await {
        Ok(x) => x,
        Err(e) => {
            c.check(
                "cold start: initialize answered once the agent is ready",
                false,
                e,
            );
            println!("{} passed, {} failed", c.passed, c.failed + 1);
            std::process::exit(1);
        }
    };
    let cold = t0.elapsed();
    c.check(
        &format!(
            "cold start: initialize answered once the agent is ready ({} ms)",
            cold.as_millis()
        ),
        true,
        "",
    );
    c.check(
        "the radio left the host",
        !Path::new(&format!("/sys/class/net/{sta}")).exists(),
        "still in the host",
    );
    let tools = svc.list_all_tools().await.map(|t| t.len()).unwrap_or(0);
    c.check("tools/list through the proxy", tools >= 14, tools);
    {
        // The sessionless 2026-07-28 protocol through the proxy.
        use rmcp::ClientServiceExt;
        let http = UnixSocketHttpClient::new(&sock.to_string_lossy(), "http://localhost/mcp");
        let t = StreamableHttpClientTransport::with_client(
            http,
            StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
        );
        let lifecycle = rmcp::ClientLifecycleMode::Discover {
            preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
        };
        let r = ().serve_with_lifecycle(t, lifecycle).await;
        let n = match &r {
            Ok(s2) => s2.list_all_tools().await.map(|t| t.len()).unwrap_or(0),
            Err(_) => 0,
        };
        c.check(
            "protocol 2026-07-28 through the proxy: discover + tools/list",
            n >= 14,
            format!("{n} tools; {:?}", r.as_ref().err()),
        );
        if let Ok(s2) = r {
            let _ = s2.cancel().await;
        }
    }
    let (ok, scan) = call(&svc, "wifi_scan", json!({})).await;
    c.check(
        "wifi_scan through the proxy sees the WPA2 AP",
        ok && scan["networks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n["ssid"] == env("AP_WPA2_SSID"))),
        &scan,
    );

    // SSE arrives incrementally: progress notifications come before the final result.
    client.progress.lock().unwrap().clear();
    let p = CallToolRequestParams::new("wifi_connect").with_arguments(
        json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK")})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let handle = svc
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(p)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("send");
    let resp = handle.await_response().await;
    let done_at = Instant::now();
    let prog = client.progress.lock().unwrap().clone();
    let first = prog.first().map(|(t, _)| done_at.duration_since(*t));
    c.check(
        "SSE streamed: first progress arrived well before the result",
        resp.is_ok() && first.is_some_and(|d| d >= Duration::from_millis(100)),
        format!(
            "progress {:?}, first {:?} before the end, resp ok {}",
            prog.iter().map(|p| &p.1).collect::<Vec<_>>(),
            first,
            resp.is_ok()
        ),
    );
    c.check(
        "host routes/addresses unchanged while connected",
        host_view() == baseline,
        "changed",
    );

    // Origin and token rules.
    let sockt = format!("unix:{}", sock.display());
    let r = raw_post(&sockt, &[("origin", "http://evil.example")], INIT).await;
    c.check(
        "Origin http://evil.example → 403",
        matches!(r, Ok((403, _))),
        format!("{r:?}"),
    );
    let r = raw_post(&sockt, &[("origin", "http://localhost:6274")], INIT).await;
    c.check(
        "local Origin → 200",
        matches!(r, Ok((200, _))),
        format!("{r:?}"),
    );
    let r = raw_post(TCP, &[], INIT).await;
    c.check(
        "TCP without token → 401",
        matches!(r, Ok((401, _))),
        format!("{r:?}"),
    );
    let r = raw_post(
        TCP,
        &[("authorization", "Bearer wrong-token-0123456789")],
        INIT,
    )
    .await;
    c.check(
        "TCP with a wrong token → 401",
        matches!(r, Ok((401, _))),
        format!("{r:?}"),
    );
    let bearer = format!("Bearer {TOKEN}");
    let r = raw_post(TCP, &[("authorization", &bearer)], INIT).await;
    c.check(
        "TCP with the right token → 200",
        matches!(&r, Ok((200, b)) if b.contains("protocolVersion")),
        format!("{r:?}"),
    );
    let r = raw_post(&sockt, &[], "{ not json").await;
    c.check(
        "garbage JSON → 4xx, not a crash",
        matches!(r, Ok((s, _)) if (400..500).contains(&s)),
        format!("{r:?}"),
    );
    let big = "x".repeat(5 * 1024 * 1024);
    let r = raw_post(&sockt, &[], &big).await;
    c.check(
        "oversized body → 413",
        matches!(r, Ok((413, _))),
        format!("{:?}", r.map(|x| x.0)),
    );

    // Another uid outside the socket's group cannot connect to a 0660 socket.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o660)).unwrap();
    let st = Command::new(&args[0])
        .args(["--connect-as-nobody"])
        .arg(&sock)
        .uid(65534)
        .gid(65534)
        .status();
    c.check(
        "uid 65534 (not in the group) cannot connect",
        st.map(|s| s.code() == Some(0)).unwrap_or(false),
        "it could connect",
    );

    // 100 concurrent clients × N calls (N = WI_PROXY_CALLS, default 10: under TCG a call costs
    // ~35 ms of guest CPU, so 100 × 100 takes ~6 minutes; it passed with 10000 ok, 0 errors).
    let per_client: u32 = std::env::var("WI_PROXY_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let errors = Arc::new(AtomicU32::new(0));
    let calls = Arc::new(AtomicU32::new(0));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (sock, errors, calls) = (sock.clone(), errors.clone(), calls.clone());
        set.spawn(async move {
            let Ok((svc, _)) = unix_client(&sock).await else {
                errors.fetch_add(per_client, Ordering::Relaxed);
                return;
            };
            for _ in 0..per_client {
                let (ok, _) = call(&svc, "wifi_debug_logs", json!({"lines": 1})).await;
                if ok {
                    calls.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = svc.cancel().await;
        });
    }
    while set.join_next().await.is_some() {}
    let (n, e) = (
        calls.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    c.check(
        &format!(
            "100 clients × {per_client} calls: {n} ok, {e} errors in {:.1} s",
            t.elapsed().as_secs_f64()
        ),
        n == 100 * per_client && e == 0,
        format!("{n} ok, {e} errors"),
    );
    let _ = svc.cancel().await;
    let st = terminate(&mut activator);
    c.check(
        "SIGTERM: the activated daemon released and exited 0",
        st.is_some_and(|s| s.success()),
        format!("{st:?}"),
    );
    c.check(
        "radio home after release",
        Path::new(&format!("/sys/class/net/{sta}")).exists(),
        "not back",
    );

    // ---- Phase B: the stdio bridge, across a service restart --------------------------------
    let start = || {
        Command::new("wifi-isolate")
            .args(["run", &sta, "--engine", "netns"])
            .stdout(logfile("daemon-manual.log"))
            .stderr(logfile("daemon-manual.err"))
            .process_group(0)
            .spawn()
            .expect("wifi-isolate run")
    };
    let mut daemon = start();
    let mut cmd = tokio::process::Command::new("wifi-isolate");
    cmd.args(["connect", &sta, "--retry", "60"])
        .stderr(logfile("connect.err"));
    let bridge = match ().serve(TokioChildProcess::new(cmd).expect("spawn connect")).await {
        Ok(b) => b,
        Err(e) => {
            c.check("stdio bridge: initialize", false, e);
            println!("{} passed, {} failed", c.passed, c.failed);
            std::process::exit(1);
        }
    };
    c.check(
        "stdio bridge: initialize (waits for the cold service)",
        true,
        "",
    );
    let n = bridge.list_all_tools().await.map(|t| t.len()).unwrap_or(0);
    c.check("stdio bridge: tools/list", n >= 14, n);
    let r = bridge
        .call_tool(CallToolRequestParams::new("wifi_status"))
        .await;
    c.check(
        "stdio bridge: wifi_status",
        r.as_ref().is_ok_and(|r| r.is_error != Some(true)),
        format!("{r:?}"),
    );
    let st = terminate(&mut daemon);
    c.check(
        "manual daemon stopped cleanly",
        st.is_some_and(|s| s.success()),
        format!("{st:?}"),
    );
    let mut daemon = start();
    let r = bridge
        .call_tool(CallToolRequestParams::new("wifi_status"))
        .await;
    c.check(
        "stdio bridge: the next call works after the service restarted",
        r.as_ref().is_ok_and(|r| r.is_error != Some(true)),
        format!("{r:?}"),
    );
    let _ = bridge.cancel().await;
    let _ = terminate(&mut daemon);
    c.check(
        "host routes/addresses unchanged at the end",
        host_view() == baseline,
        "changed",
    );
    println!("{} passed, {} failed", c.passed, c.failed);
    std::process::exit(if c.failed == 0 { 0 } else { 1 });
}
