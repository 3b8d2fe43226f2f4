//! Full-system benchmark client (tests/bench/full.sh, guest script tests/bench/full-guest.sh):
//! the MCP side of the measurements against an installed wifi-isolate in the full-system VM.
//!
//! Usage (root, in the VM):
//!   fullsys-bench connect SOCKET SSID PSK N
//!       one MCP session; N times: `wifi_connect` (timed: wall time of the call as the client sees
//!       it, and the tool's own `elapsed_ms`), then `wifi_disconnect` (not timed) and a 1 s pause.
//!       One line per round: `CONNECT wall_ms=… elapsed_ms=… ip=…`. Exit 1 on any failure.
//!   fullsys-bench load SOCKET CLIENTS SECONDS
//!       CLIENTS concurrent sessions calling `wifi_status` in a loop for SECONDS; prints
//!       `LOAD calls=… errors=… calls_per_s=… p50_ms=… p99_ms=…`.
//!   fullsys-bench first-answer SOCKET [T0_US]
//!       one MCP `initialize`, hand-written HTTP/1.1 over the Unix socket (no client library in the
//!       way: its cost is the same in every row); prints `ANSWER ms=… t0_us=… connected_us=…
//!       sent_us=… first_byte_us=… answered_us=…` (epoch µs, the guest's clock, comparable with
//!       the journal). `ms` counts from T0_US when given (e.g. just before `systemctl start`),
//!       else from this call's own connect. Exit 1 without an answer within 30 s.
//!   fullsys-bench wait SOCKET T0_US [TIMEOUT_S]
//!       poll SOCKET every 5 ms with the daemon's own readiness request (`GET /mcp`, the first
//!       bytes of an HTTP/1.1 answer) until it answers; prints the ms since T0_US (epoch µs).
//! Not a test: it reports, the guest script turns the lines into tables.

use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::service::RunningService;
use serde_json::json;

use mcp_unix::call;
use wifi_isolate_tests::mcp_unix;

async fn session(sock: &str) -> Result<RunningService<RoleClient, ()>, String> {
    mcp_unix::session(std::path::Path::new(sock)).await
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn connect(sock: &str, ssid: &str, psk: &str, n: u32) -> bool {
    let svc = match session(sock).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("no MCP session: {e}");
            return false;
        }
    };
    let mut all_ok = true;
    for _ in 0..n {
        let t = Instant::now();
        let (ok, r, text) = call(
            &svc,
            "wifi_connect",
            json!({"ssid": ssid, "password": psk, "security": "wpa2-psk"}),
        )
        .await;
        let wall = t.elapsed().as_millis();
        if !ok || r["ip"].as_str().is_none() {
            eprintln!("wifi_connect failed: {text}");
            all_ok = false;
        } else {
            println!(
                "CONNECT wall_ms={wall} elapsed_ms={} ip={}",
                r["elapsed_ms"],
                r["ip"].as_str().unwrap_or("")
            );
        }
        let (ok, _, text) = call(&svc, "wifi_disconnect", json!({})).await;
        if !ok {
            eprintln!("wifi_disconnect failed: {text}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = svc.cancel().await;
    all_ok
}

async fn load(sock: &str, clients: usize, secs: f64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let sock = sock.to_string();
        set.spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            let Ok(svc) = session(&sock).await else {
                return (lat, 1);
            };
            while Instant::now() < end {
                let t = Instant::now();
                if call(&svc, "wifi_status", json!({})).await.0 {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            let _ = svc.cancel().await;
            (lat, errors)
        });
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    while let Some(r) = set.join_next().await {
        let (l, e) = r.expect("client task");
        lat.extend(l);
        errors += e;
    }
    let rate = lat.len() as f64 / t0.elapsed().as_secs_f64();
    println!(
        "LOAD calls={} errors={errors} calls_per_s={rate:.1} p50_ms={:.1} p99_ms={:.1}",
        lat.len(),
        pct(&mut lat.clone(), 0.5),
        pct(&mut lat, 0.99)
    );
}

/// Microseconds since the epoch (the clock the journal and bash's `EPOCHREALTIME` use).
fn epoch_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// One raw MCP `initialize` on `sock`: the epoch-µs stamps of connect, request written, first
/// answer byte, and the JSON-RPC result seen (or `None` when the answer never came).
fn first_answer(sock: &str) -> Result<[u128; 5], String> {
    use std::io::{Read, Write};
    let t0 = epoch_us();
    let mut s =
        std::os::unix::net::UnixStream::connect(sock).map_err(|e| format!("connect: {e}"))?;
    let connected = epoch_us();
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"fullsys-bench","version":"0"}}}"#;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let sent = epoch_us();
    let (mut got, mut buf, mut first) = (Vec::new(), [0u8; 4096], 0);
    loop {
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed without a result: {}",
                String::from_utf8_lossy(&got[..got.len().min(300)])
            ));
        }
        if first == 0 {
            first = epoch_us();
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if text.contains("\"result\"") {
            if !text.starts_with("HTTP/1.1 200") {
                return Err(format!("not a 200: {}", &text[..text.len().min(300)]));
            }
            return Ok([t0, connected, sent, first, epoch_us()]);
        }
        if text.contains("\"error\"")
            || text.starts_with("HTTP/1.1 5")
            || text.starts_with("HTTP/1.1 4")
        {
            return Err(format!("an error: {}", &text[..text.len().min(300)]));
        }
    }
}

/// The daemon's readiness request (`AgentSocket::answers`): does `sock` answer HTTP/1.1?
fn answers(sock: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = b"GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n";
    let mut buf = [0u8; 12];
    s.write_all(req).is_ok() && s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 ")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match arg(1) {
        "connect" => {
            let n = arg(5).parse().unwrap_or(1);
            let ok = connect(arg(2), arg(3), arg(4), n).await;
            std::process::ExitCode::from(u8::from(!ok))
        }
        "load" => {
            load(
                arg(2),
                arg(3).parse().unwrap_or(4),
                arg(4).parse().unwrap_or(5.0),
            )
            .await;
            std::process::ExitCode::SUCCESS
        }
        "first-answer" => match first_answer(arg(2)) {
            Ok([t0, connected, sent, first, answered]) => {
                let from = arg(3).parse().unwrap_or(t0);
                println!(
                    "ANSWER ms={} t0_us={from} connected_us={connected} sent_us={sent} first_byte_us={first} answered_us={answered}",
                    answered.saturating_sub(from) / 1000
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("first-answer {}: {e}", arg(2));
                std::process::ExitCode::FAILURE
            }
        },
        "wait" => {
            let t0: u128 = arg(3).parse().unwrap_or_else(|_| epoch_us());
            let timeout = arg(4).parse().unwrap_or(30.0);
            let end = Instant::now() + Duration::from_secs_f64(timeout);
            while Instant::now() < end {
                if answers(arg(2)) {
                    println!("{}", epoch_us().saturating_sub(t0) / 1000);
                    return std::process::ExitCode::SUCCESS;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            eprintln!("{} did not answer within {timeout} s", arg(2));
            std::process::ExitCode::FAILURE
        }
        _ => {
            eprintln!(
                "usage: fullsys-bench connect SOCKET SSID PSK N | load SOCKET CLIENTS SECONDS | first-answer SOCKET [T0_US] | wait SOCKET T0_US [TIMEOUT_S]"
            );
            std::process::ExitCode::from(2)
        }
    }
}
