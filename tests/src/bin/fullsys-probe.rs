//! Full-system VM probe: an MCP client for the systemd-activated socket of an installed
//! wifi-isolate (the .deb), used by the guest scripts in tests/vm/fullsys-*.sh.
//!
//! Usage (root, in the VM, with the lab env exported):
//!   fullsys-probe story SOCKET    scan, connect WPA2 and WPA3-SAE, ping, resolve, disconnect;
//!                                 the VM root netns unchanged throughout. One line per check.
//!   fullsys-probe call SOCKET TOOL [JSON]
//!                                 one tool call in a fresh session: prints the structured result,
//!                                 exit 1 on a tool error or when the endpoint does not answer;
//!                                 on stderr `fullsys-probe call: N ms` (session + call).
//!   fullsys-probe first-reply SOCKET
//!                                 milliseconds from connect to the first answer (cold activation)
//!   fullsys-probe del-radio NETNS_PATH PHY
//!                                 unplug hwsim radio PHY, which lives in the netns at NETNS_PATH
//!   fullsys-probe http ADDR [TOKEN]
//!                                 one raw HTTP POST /mcp (an MCP initialize) to ADDR (a Unix
//!                                 socket path or tcp:HOST:PORT), with a bearer TOKEN if given:
//!                                 prints the status code, then the body (first 400 bytes).
//!   fullsys-probe retry ADDR SECS MS
//!                                 a client retrying: a fresh `http` request every MS ms for SECS
//!                                 seconds, one line per attempt: `STATUS BODY` (the body's first
//!                                 120 bytes on one line) or `ERR cause`.
//!   fullsys-probe idle tcp:HOST:PORT N SECS
//!                                 open N TCP connections, send nothing, hold them SECS seconds:
//!                                 prints `opened N` once all are open, at the end how many the
//!                                 server closed.
//!   fullsys-probe flood tcp:HOST:PORT N TOKEN [CONNS]
//!                                 N requests with the (wrong) bearer TOKEN over CONNS (8)
//!                                 keep-alive connections, pipelined: prints a JSON summary
//!                                 (answered, by status, errors, ms); exit 1 unless all N answered.

use mcp_unix::call;
use shared::host_view;
use wifi_isolate_tests::guest as shared;
use wifi_isolate_tests::hwsim_nl;
use wifi_isolate_tests::mcp_unix;
use wifi_isolate_tests::tally::Tally;

/// A session on the socket at `sock`.
async fn session(sock: &str) -> Result<RunningService<RoleClient, ()>, String> {
    mcp_unix::session(std::path::Path::new(sock)).await
}

use std::time::Instant;

use rmcp::RoleClient;
use rmcp::service::RunningService;
use serde_json::{Value, json};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} missing from the lab env"))
}

fn prefix(ip: &str) -> &str {
    ip.rsplit_once('.').map_or(ip, |(a, _)| a)
}

async fn story(sock: &str) -> Tally {
    let mut t = Tally::default();
    let baseline = host_view();
    let svc = match session(sock).await {
        Ok(s) => s,
        Err(e) => {
            t.check("MCP session on the activated socket", false, e);
            return t;
        }
    };
    t.check("MCP session on the activated socket", true, "");
    let (ok, scan, text) = call(&svc, "wifi_scan", json!({})).await;
    let seen = |ssid: String| {
        scan["networks"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x["ssid"] == ssid.as_str()))
    };
    t.check(
        "scan sees the WPA2 and SAE access points",
        ok && seen(env("AP_WPA2_SSID")) && seen(env("AP_SAE_SSID")),
        &text,
    );
    for (name, security) in [("WPA2", "wpa2-psk"), ("SAE", "wpa3-sae")] {
        let ssid = env(&format!("AP_{name}_SSID"));
        let gw = env(&format!("AP_{name}_IP"));
        let (ok, c, text) = call(
            &svc,
            "wifi_connect",
            json!({"ssid": ssid, "password": env(&format!("AP_{name}_PSK")), "security": security}),
        )
        .await;
        t.check(
            &format!("connect {name}: lease in the AP's subnet"),
            ok && c["ip"].as_str().is_some_and(|ip| prefix(ip) == prefix(&gw)),
            &text,
        );
        let (ok, p, text) = call(&svc, "network_ping", json!({"host": gw, "count": 2})).await;
        t.check(
            &format!("{name}: ping the AP"),
            ok && p["received"].as_u64().unwrap_or(0) >= 1,
            &text,
        );
        let (ok, d, text) = call(&svc, "network_dns_lookup", json!({"name": "ap.test"})).await;
        t.check(
            &format!("{name}: ap.test resolves through the AP"),
            ok && d["addresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == &gw)),
            &text,
        );
        let now = host_view();
        t.check(
            &format!("{name}: VM root netns routes/addresses unchanged while connected"),
            now == baseline,
            format!("before:\n{baseline}\nnow:\n{now}"),
        );
        let (ok, _, text) = call(&svc, "wifi_disconnect", json!({})).await;
        t.check(&format!("{name}: disconnect"), ok, &text);
    }
    let (ok, st, text) = call(&svc, "wifi_status", json!({})).await;
    t.check(
        "status after disconnect: no address, no default route",
        ok && st["ip"].is_null()
            && !st["routes"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["destination"] == "default")),
        &text,
    );
    let _ = svc.cancel().await;
    t
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match arg(1) {
        "story" => {
            let t = story(arg(2)).await;
            println!("{} passed, {} failed", t.passed, t.failed);
            std::process::ExitCode::from(u8::from(t.failed > 0))
        }
        "call" => {
            let args_json: Value = serde_json::from_str(args.get(4).map_or("{}", String::as_str))
                .expect("JSON arguments");
            let start = Instant::now();
            let result = match session(arg(2)).await {
                Ok(svc) => {
                    let r = call(&svc, arg(3), args_json).await;
                    let _ = svc.cancel().await;
                    r
                }
                Err(e) => (false, Value::Null, format!("no MCP session: {e}")),
            };
            // Connect to answer, without this process's own start-up (~2 s under TCG).
            eprintln!("fullsys-probe call: {} ms", start.elapsed().as_millis());
            let (ok, v, text) = result;
            println!(
                "{}",
                if v.is_null() {
                    json!({"text": text})
                } else {
                    v
                }
            );
            std::process::ExitCode::from(u8::from(!ok))
        }
        "first-reply" => {
            let start = Instant::now();
            match session(arg(2)).await {
                Ok(svc) => {
                    println!("{}", start.elapsed().as_millis());
                    let _ = svc.cancel().await;
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("no answer: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        "del-radio" => match hwsim_nl::hwsim_del_radio(std::path::Path::new(arg(2)), arg(3)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("del-radio: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        "http" => match raw::once(
            arg(2),
            args.get(3).map(String::as_str).filter(|t| !t.is_empty()),
        )
        .await
        {
            Ok((status, body)) => {
                println!("{status}");
                println!("{}", body.chars().take(400).collect::<String>());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("http: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        "retry" => {
            let secs: u64 = arg(3).parse().unwrap_or(30);
            let every = std::time::Duration::from_millis(arg(4).parse().unwrap_or(500));
            let end = Instant::now() + std::time::Duration::from_secs(secs);
            while Instant::now() < end {
                match raw::once(arg(2), None).await {
                    Ok((status, body)) => {
                        let line: String = body.chars().take(120).collect();
                        println!("{status} {}", line.replace(['\r', '\n'], " "));
                    }
                    Err(e) => println!("ERR {e}"),
                }
                tokio::time::sleep(every).await;
            }
            std::process::ExitCode::SUCCESS
        }
        "idle" => {
            raw::idle(
                arg(2),
                arg(3).parse().unwrap_or(1),
                arg(4).parse().unwrap_or(10),
            )
            .await
        }
        "flood" => {
            raw::flood(
                arg(2),
                arg(3).parse().unwrap_or(1),
                arg(4),
                args.get(5).and_then(|c| c.parse().ok()).unwrap_or(8),
            )
            .await
        }
        _ => {
            eprintln!("usage: fullsys-probe story|call|first-reply|http|idle|flood …");
            std::process::ExitCode::from(2)
        }
    }
}

/// Raw HTTP/1.1 against the daemon's endpoint: what an MCP SDK would never send (no session,
/// wrong tokens, idle sockets), for the endpoint's deadlines, caps and held-mode answers.
mod raw {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fullsys-probe","version":"0"}}}"#;

    async fn dial(addr: &str) -> std::io::Result<Box<dyn Io>> {
        Ok(match addr.strip_prefix("tcp:") {
            Some(hp) => Box::new(tokio::net::TcpStream::connect(hp).await?),
            None => Box::new(tokio::net::UnixStream::connect(addr).await?),
        })
    }

    fn request(token: Option<&str>, close: bool) -> String {
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\n{auth}{}Content-Length: {}\r\n\r\n{INIT}",
            if close { "Connection: close\r\n" } else { "" },
            INIT.len()
        )
    }

    /// One request with `Connection: close`: (status, body as read within 10 s).
    pub async fn once(addr: &str, token: Option<&str>) -> Result<(u16, String), String> {
        let mut s = tokio::time::timeout(Duration::from_secs(10), dial(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.write_all(request(token, true).as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, s.read(&mut chunk)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) if buf.is_empty() => return Err(format!("read: {e}")),
                Ok(Err(_)) => break,
            }
            // A complete plain answer (Content-Length) ends the wait early.
            if let Some((head, body)) = split(&buf)
                && content_length(head).is_some_and(|n| body.len() >= n)
            {
                break;
            }
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = status_of(&text).ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        Ok((status, body))
    }

    fn split(buf: &[u8]) -> Option<(&str, &[u8])> {
        let i = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        Some((std::str::from_utf8(&buf[..i]).ok()?, &buf[i + 4..]))
    }

    fn content_length(head: &str) -> Option<usize> {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
    }

    fn status_of(text: &str) -> Option<u16> {
        text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
    }

    /// Open `n` connections, hold them `secs` seconds without sending a byte.
    pub async fn idle(addr: &str, n: usize, secs: u64) -> std::process::ExitCode {
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            match tokio::time::timeout(Duration::from_secs(10), dial(addr)).await {
                Ok(Ok(c)) => conns.push(c),
                Ok(Err(e)) => {
                    eprintln!("idle: connection {i}: {e}");
                    break;
                }
                Err(_) => {
                    eprintln!("idle: connection {i}: connect timed out");
                    break;
                }
            }
        }
        println!("opened {}", conns.len());
        let t0 = Instant::now();
        // Watch each connection for the server closing it (read → 0 or an error).
        let closed = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for mut c in conns.drain(..) {
            let closed = closed.clone();
            tasks.push(tokio::spawn(async move {
                let mut b = [0u8; 512];
                loop {
                    match c.read(&mut b).await {
                        Ok(0) | Err(_) => {
                            closed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Ok(_) => {}
                    }
                }
            }));
        }
        let opened = tasks.len();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        println!(
            "held {opened} idle connections {} ms: {} closed by the server",
            t0.elapsed().as_millis(),
            closed.load(Ordering::Relaxed)
        );
        for t in tasks {
            t.abort();
        }
        std::process::ExitCode::from(u8::from(opened < n))
    }

    /// `n` requests with `token`, pipelined in batches over `conns` keep-alive connections.
    pub async fn flood(addr: &str, n: usize, token: &str, conns: usize) -> std::process::ExitCode {
        let next = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(120);
        let mut tasks = Vec::new();
        for _ in 0..conns.max(1) {
            let (next, addr, token) = (next.clone(), addr.to_string(), token.to_string());
            tasks.push(tokio::spawn(async move {
                let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
                let mut errors = 0usize;
                let req = request(Some(&token), false);
                let mut conn: Option<Box<dyn Io>> = None;
                let mut pending = 0usize; // taken from `next`, not answered yet
                let mut buf: Vec<u8> = Vec::new();
                // Pipelined while the server keeps the connection; one at a time once it closes
                // connections after an answer (the rest of a batch would be lost each time).
                let mut batch = 32usize;
                'outer: while Instant::now() < deadline {
                    if pending == 0 {
                        let start = next.fetch_add(batch, Ordering::Relaxed);
                        if start >= n {
                            break;
                        }
                        pending = batch.min(n - start);
                    }
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => match dial(&addr).await {
                            Ok(c) => {
                                buf.clear();
                                conn.insert(c)
                            }
                            Err(_) => {
                                errors += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                continue;
                            }
                        },
                    };
                    let mut inflight = pending.min(batch);
                    if c.write_all(req.repeat(inflight).as_bytes()).await.is_err() {
                        errors += 1;
                        conn = None;
                        continue;
                    }
                    let mut chunk = [0u8; 16384];
                    while inflight > 0 {
                        // Parse every complete answer in the buffer.
                        while let Some((head, body)) = split(&buf) {
                            let len = content_length(head).unwrap_or(0);
                            if body.len() < len {
                                break;
                            }
                            let status = status_of(head).unwrap_or(0);
                            let close = head.to_ascii_lowercase().contains("connection: close");
                            let used = head.len() + 4 + len;
                            *by_status.entry(status).or_default() += 1;
                            buf.drain(..used);
                            pending -= 1;
                            inflight -= 1;
                            if close {
                                batch = 1;
                                conn = None;
                                continue 'outer;
                            }
                            if inflight == 0 {
                                continue 'outer;
                            }
                        }
                        match tokio::time::timeout(Duration::from_secs(10), c.read(&mut chunk))
                            .await
                        {
                            Ok(Ok(k)) if k > 0 => buf.extend_from_slice(&chunk[..k]),
                            _ => {
                                // Closed with answers outstanding: resend them, one at a time.
                                errors += 1;
                                batch = 1;
                                conn = None;
                                continue 'outer;
                            }
                        }
                    }
                }
                (by_status, errors)
            }));
        }
        let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
        let mut errors = 0;
        for t in tasks {
            if let Ok((b, e)) = t.await {
                for (k, v) in b {
                    *by_status.entry(k).or_default() += v;
                }
                errors += e;
            }
        }
        let answered: usize = by_status.values().sum();
        let statuses: serde_json::Map<String, serde_json::Value> = by_status
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        println!(
            "{}",
            serde_json::json!({"requests": n, "answered": answered, "by_status": statuses,
                "errors": errors, "ms": t0.elapsed().as_millis() as u64})
        );
        std::process::ExitCode::from(u8::from(answered < n))
    }
}
