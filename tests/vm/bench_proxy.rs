//! Proxy benchmark, run inside the hwsim VM against the real agent on a real radio: per-request
//! latency (p50/p99) and throughput of MCP tool calls (1) direct to the agent's socket, (2)
//! through `wifi-isolate run`'s HTTP-aware proxy, (3) through `systemd-socket-proxyd` (plain L4),
//! all in the same run. Prints a Markdown table with ratios against direct.
//!
//! Usage: `hwsim-bench-proxy STATION [SECONDS [ROUNDS]]` (default 5 s per measurement, 3 rounds,
//! the paths' order rotated each round; samples pooled). Not a test: it reports, it does not
//! assert.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use rmcp::{RoleClient, ServiceExt};
use serde_json::json;

async fn try_client(sock: &Path) -> Option<RunningService<RoleClient, ()>> {
    let http = UnixSocketHttpClient::new(&sock.to_string_lossy(), "http://localhost/mcp");
    let t = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    match ().serve(t).await {
        Ok(svc) => Some(svc),
        Err(e) => {
            eprintln!("initialize via {} failed: {e}", sock.display());
            None
        }
    }
}

async fn client(sock: &Path) -> RunningService<RoleClient, ()> {
    try_client(sock).await.expect("initialize")
}

async fn one_call(svc: &RunningService<RoleClient, ()>) -> bool {
    let p = CallToolRequestParams::new("wifi_debug_logs")
        .with_arguments(json!({"lines": 1}).as_object().cloned().unwrap());
    svc.call_tool(p)
        .await
        .is_ok_and(|r| r.is_error != Some(true))
}

struct Result {
    p50: f64,
    p99: f64,
    rps1: f64,
    p50_n: f64,
    p99_n: f64,
    rps_n: f64,
    /// Calls that failed (reported, not fatal: one reference path may drop a call under load).
    errors: u64,
}

/// The raw samples of one path, pooled over the rounds.
#[derive(Default)]
struct Samples {
    lat1: Vec<f64>,
    secs1: f64,
    lat_n: Vec<f64>,
    secs_n: f64,
    errors: u64,
}

impl Samples {
    fn add(&mut self, o: Samples) {
        self.lat1.extend(o.lat1);
        self.secs1 += o.secs1;
        self.lat_n.extend(o.lat_n);
        self.secs_n += o.secs_n;
        self.errors += o.errors;
    }

    fn result(mut self) -> Result {
        Result {
            p50: pct(&mut self.lat1, 0.5),
            p99: pct(&mut self.lat1, 0.99),
            rps1: self.lat1.len() as f64 / self.secs1,
            p50_n: pct(&mut self.lat_n, 0.5),
            p99_n: pct(&mut self.lat_n, 0.99),
            rps_n: self.lat_n.len() as f64 / self.secs_n,
            errors: self.errors,
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(sock: &Path, seconds: f64, conc: usize) -> Samples {
    let Some(svc) = try_client(sock).await else {
        return Samples {
            errors: 1,
            ..Samples::default()
        };
    };
    for _ in 0..20 {
        one_call(&svc).await;
    }
    let mut lat = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let t0 = Instant::now();
    let failed = Arc::new(AtomicU64::new(0));
    while Instant::now() < end {
        let t = Instant::now();
        if one_call(&svc).await {
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        } else {
            failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    let secs1 = t0.elapsed().as_secs_f64();
    let _ = svc.cancel().await;
    // Every client opens its session first (not timed), then all call until the same end.
    let (ready_tx, _) = tokio::sync::broadcast::channel::<Instant>(1);
    let mut set = tokio::task::JoinSet::new();
    let opened = Arc::new(tokio::sync::Barrier::new(conc + 1));
    for _ in 0..conc {
        let (sock, opened, failed) = (sock.to_path_buf(), opened.clone(), failed.clone());
        let mut go = ready_tx.subscribe();
        set.spawn(async move {
            let svc = try_client(&sock).await;
            opened.wait().await;
            let end = go.recv().await.expect("start signal");
            let Some(svc) = svc else {
                failed.fetch_add(1, Ordering::Relaxed);
                return Vec::new();
            };
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                if one_call(&svc).await {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = svc.cancel().await;
            lat
        });
    }
    opened.wait().await;
    let t0 = Instant::now();
    let _ = ready_tx.send(t0 + Duration::from_secs_f64(seconds));
    let mut lat_n = Vec::new();
    while let Some(l) = set.join_next().await {
        lat_n.extend(l.expect("client task"));
    }
    Samples {
        lat1: lat,
        secs1,
        lat_n,
        secs_n: t0.elapsed().as_secs_f64(),
        errors: failed.load(Ordering::Relaxed),
    }
}

fn wait_for(p: &Path) {
    for _ in 0..600 {
        if p.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared", p.display());
}

fn stop(mut c: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = c.wait();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sta = args
        .get(1)
        .expect("usage: hwsim-bench-proxy STATION [SECONDS [ROUNDS]]")
        .clone();
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let conc = 64;
    // systemd-socket-proxyd holds six descriptors per connection (two sockets, two pipes) and
    // 64 sessions keep ~128 connections open: lift the soft limit for every child to the hard one.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    let ours = PathBuf::from(format!("/run/wifi-isolate/{sta}.sock"));
    let agent = PathBuf::from(format!("/run/wifi-isolate/box/{sta}/mcp.sock"));
    let l4 = PathBuf::from("/run/bench-l4.sock");
    let daemon = Command::new("wifi-isolate")
        .args(["run", &sta, "--engine", "netns"])
        .env("WIFI_ISOLATE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("wifi-isolate run");
    wait_for(&ours);
    wait_for(&agent);
    // Make sure the agent answers before measuring.
    let _ = client(&ours).await.cancel().await;
    // A fresh socket-proxyd for each of its measurements (one once stopped answering mid-run);
    // its stderr goes to the logs the runner collects.
    let start_proxyd = || {
        let _ = std::fs::remove_file(&l4);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/share/logs/socket-proxyd.log")
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let c = Command::new("systemd-socket-activate")
            .arg("-l")
            .arg(&l4)
            .args(["systemd-socket-proxyd"])
            .arg(&agent)
            .stderr(log)
            .spawn()
            .expect("systemd-socket-activate systemd-socket-proxyd");
        wait_for(&l4);
        c
    };
    let paths = [
        ("direct to the agent socket", &agent),
        ("through wifi-isolate's proxy", &ours),
        ("through systemd-socket-proxyd (L4)", &l4),
    ];
    // Rounds, each path once per round in a rotated order: a slow stretch of the (noisy, TCG)
    // machine or the order itself then weighs on every path alike. Samples pool over rounds.
    let mut pooled: Vec<Samples> = paths.iter().map(|_| Samples::default()).collect();
    for round in 0..rounds {
        for k in 0..paths.len() {
            let i = (k + round) % paths.len();
            let (name, sock) = paths[i];
            eprintln!("round {}/{rounds}: measuring {name} ...", round + 1);
            let proxyd = (sock == &l4).then(start_proxyd);
            pooled[i].add(measure(sock, secs, conc).await);
            if let Some(p) = proxyd {
                stop(p);
            }
        }
    }
    let rows: Vec<(&str, Result)> = paths
        .iter()
        .zip(pooled)
        .map(|((name, _), s)| (*name, s.result()))
        .collect();
    stop(daemon);
    let d = &rows[0].1;
    println!(
        "{secs} s per measurement, {rounds} rounds with the paths' order rotated, samples pooled.\n"
    );
    println!(
        "| path | p50 ms (1) | p99 ms (1) | calls/s (1) | p50 ms ({conc}) | p99 ms ({conc}) | calls/s ({conc}) | p50 vs direct (1) | throughput vs direct ({conc}) | failed calls |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, r) in &rows {
        println!(
            "| {name} | {:.2} | {:.2} | {:.0} | {:.1} | {:.1} | {:.0} | {:.2}× | {:.2}× | {} |",
            r.p50,
            r.p99,
            r.rps1,
            r.p50_n,
            r.p99_n,
            r.rps_n,
            r.p50 / d.p50,
            r.rps_n / d.rps_n,
            r.errors
        );
    }
    let (ours_r, l4_r) = (&rows[1].1, &rows[2].1);
    let verdict = |a: f64, b: f64| if a <= b { "met" } else { "missed" };
    println!(
        "\nAdded latency over direct, ours vs systemd-socket-proxyd (target: ours ≤ socket-proxyd's):\n\n\
         | clients | p50 ours | p50 socket-proxyd | p99 ours | p99 socket-proxyd | p50 target |\n\
         |---|---|---|---|---|---|\n\
         | 1 | {:+.2} ms | {:+.2} ms | {:+.2} ms | {:+.2} ms | **{}** |\n\
         | {conc} | {:+.1} ms | {:+.1} ms | {:+.1} ms | {:+.1} ms | **{}** |",
        ours_r.p50 - d.p50,
        l4_r.p50 - d.p50,
        ours_r.p99 - d.p99,
        l4_r.p99 - d.p99,
        verdict(ours_r.p50 - d.p50, l4_r.p50 - d.p50),
        ours_r.p50_n - d.p50_n,
        l4_r.p50_n - d.p50_n,
        ours_r.p99_n - d.p99_n,
        l4_r.p99_n - d.p99_n,
        verdict(ours_r.p50_n - d.p50_n, l4_r.p50_n - d.p50_n),
    );
}
