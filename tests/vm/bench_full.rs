//! Full-system benchmark client (tests/bench/full.sh, guest script tests/vm/fullsys-bench-guest.sh):
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
//! Not a test: it reports, the guest script turns the lines into tables.

#[path = "shared.rs"]
#[allow(dead_code)]
mod shared;

use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::service::RunningService;
use serde_json::json;

#[path = "mcp_unix.rs"]
mod mcp_unix;
use mcp_unix::call;

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
        _ => {
            eprintln!(
                "usage: fullsys-bench connect SOCKET SSID PSK N | load SOCKET CLIENTS SECONDS"
            );
            std::process::ExitCode::from(2)
        }
    }
}
