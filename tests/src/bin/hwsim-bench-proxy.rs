//! Proxy benchmark, run inside the hwsim VM against the real agent on a real radio: per-request
//! latency (p50/p99) and throughput of MCP tool calls (1) direct to the agent's socket, (2)
//! through `wifi-isolate run`'s HTTP-aware proxy, (3) through `systemd-socket-proxyd` (plain L4),
//! all in the same run. Prints Markdown tables with ratios against direct.
//!
//! Usage: `hwsim-bench-proxy STATION [CALLS1 [CALLS_EACH [ROUNDS]]]`. Equal work on every path:
//! each measurement is a fixed number of calls — CALLS1 (default 400) from one client, then
//! CALLS_EACH (default 30) from each of 64 concurrent clients — so throughput is calls / wall
//! time of the same calls, and a path that fails calls shows it as failures, never as fewer or
//! cheaper calls. ROUNDS (default 5) with the paths' order rotated; per round each path's p50, and
//! the added p50 of ours minus socket-proxyd's paired within the round, summarised as median and
//! min–max (a distribution-free interval of the median: 93.8 % coverage at 5 rounds). Failed calls
//! are counted with their first distinct errors. Not a test: it reports, it does not assert.

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

async fn one_call(svc: &RunningService<RoleClient, ()>) -> std::result::Result<(), String> {
    let p = CallToolRequestParams::new("wifi_debug_logs")
        .with_arguments(json!({"lines": 1}).as_object().cloned().unwrap());
    match svc.call_tool(p).await {
        Ok(r) if r.is_error != Some(true) => Ok(()),
        Ok(r) => Err(format!("tool error: {:?}", r.content)),
        Err(e) => Err(e.to_string()),
    }
}

/// Failed calls of one measurement: how many, and the first few distinct errors.
#[derive(Default)]
struct Failures {
    n: AtomicU64,
    first: std::sync::Mutex<Vec<String>>,
}

impl Failures {
    fn add(&self, e: String) {
        self.n.fetch_add(1, Ordering::Relaxed);
        let mut f = self.first.lock().unwrap();
        if f.len() < 4 && !f.contains(&e) {
            f.push(e);
        }
    }
}

/// The calls of one path in one round.
#[derive(Default)]
struct Samples {
    /// Per-call latency (ms) of the successful calls: one client, then `conc` clients.
    lat1: Vec<f64>,
    secs1: f64,
    lat_n: Vec<f64>,
    secs_n: f64,
    /// Calls that failed (reported, not fatal), and the first distinct errors.
    errors: u64,
    first_errors: Vec<String>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Median of a few values and their min–max.
fn mid(v: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    let m = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (m, v[0], v[n - 1])
}

/// The coverage of [min, max] as an interval of the median of `n` values: 1 − 2·2⁻ⁿ.
fn minmax_coverage(n: usize) -> f64 {
    1.0 - 2.0 * 0.5f64.powi(n as i32)
}

/// `calls` calls in a row from one client, `each` calls from each of `conc` concurrent clients
/// (sessions opened first, untimed; then all start together). Failed calls count as failures.
async fn measure(sock: &Path, calls: usize, each: usize, conc: usize) -> Samples {
    let failed = Arc::new(Failures::default());
    let Some(svc) = try_client(sock).await else {
        return Samples {
            errors: 1,
            first_errors: vec!["initialize (1 client) failed".into()],
            ..Samples::default()
        };
    };
    for _ in 0..20 {
        let _ = one_call(&svc).await;
    }
    let mut lat = Vec::new();
    let t0 = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        match one_call(&svc).await {
            Ok(()) => lat.push(t.elapsed().as_secs_f64() * 1000.0),
            Err(e) => failed.add(e),
        }
    }
    let secs1 = t0.elapsed().as_secs_f64();
    let _ = svc.cancel().await;
    // Every client opens its session first (not timed), then all make their calls.
    let (go_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut set = tokio::task::JoinSet::new();
    let opened = Arc::new(tokio::sync::Barrier::new(conc + 1));
    for _ in 0..conc {
        let (sock, opened, failed) = (sock.to_path_buf(), opened.clone(), failed.clone());
        let mut go = go_tx.subscribe();
        set.spawn(async move {
            let svc = try_client(&sock).await;
            opened.wait().await;
            let _ = go.recv().await;
            let Some(svc) = svc else {
                for _ in 0..each {
                    failed.add("initialize failed".into());
                }
                return Vec::new();
            };
            let mut lat = Vec::new();
            for _ in 0..each {
                let t = Instant::now();
                match one_call(&svc).await {
                    Ok(()) => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => failed.add(e),
                }
            }
            let _ = svc.cancel().await;
            lat
        });
    }
    opened.wait().await;
    let t0 = Instant::now();
    let _ = go_tx.send(());
    let mut lat_n = Vec::new();
    while let Some(l) = set.join_next().await {
        lat_n.extend(l.expect("client task"));
    }
    let secs_n = t0.elapsed().as_secs_f64();
    let first_errors = failed.first.lock().unwrap().clone();
    Samples {
        lat1: lat,
        secs1,
        lat_n,
        secs_n,
        errors: failed.n.load(Ordering::Relaxed),
        first_errors,
    }
}

/// One path over all rounds: per-round p50s and throughputs, pooled p99s, the failures.
#[derive(Default)]
struct Path3 {
    p50_1: Vec<f64>,
    p50_n: Vec<f64>,
    rps_1: Vec<f64>,
    rps_n: Vec<f64>,
    all1: Vec<f64>,
    all_n: Vec<f64>,
    calls: usize,
    errors: u64,
    first_errors: Vec<String>,
}

impl Path3 {
    fn add(&mut self, mut s: Samples) {
        self.p50_1.push(pct(&mut s.lat1, 0.5));
        self.p50_n.push(pct(&mut s.lat_n, 0.5));
        self.rps_1.push(s.lat1.len() as f64 / s.secs1);
        self.rps_n.push(s.lat_n.len() as f64 / s.secs_n);
        self.calls += s.lat1.len() + s.lat_n.len();
        self.all1.extend(s.lat1);
        self.all_n.extend(s.lat_n);
        self.errors += s.errors;
        for e in s.first_errors {
            if self.first_errors.len() < 4 && !self.first_errors.contains(&e) {
                self.first_errors.push(e);
            }
        }
    }
}

fn cell(v: &[f64], prec: usize) -> String {
    let (m, lo, hi) = mid(v);
    format!("{m:.prec$} [{lo:.prec$}, {hi:.prec$}]")
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

/// Stop a child; `Some(status)` when it had already exited by itself (died before its stop).
fn stop(mut c: Child) -> Option<std::process::ExitStatus> {
    let early = c.try_wait().ok().flatten();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = c.wait();
    early
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sta = args
        .get(1)
        .expect("usage: hwsim-bench-proxy STATION [CALLS1 [CALLS_EACH [ROUNDS]]]")
        .clone();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (calls1, each, rounds) = (num(2, 400), num(3, 30), num(4, 5));
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
    // socket-proxyd's own options (BENCH_PROXYD_ARGS, space-separated) go before its target.
    let proxyd_args: Vec<String> = std::env::var("BENCH_PROXYD_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    // A fresh socket-proxyd for each of its measurements; its stderr goes to the logs.
    let start_proxyd = || {
        let _ = std::fs::remove_file(&l4);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/share/logs/socket-proxyd.log")
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let mut cmd = Command::new("systemd-socket-activate");
        cmd.arg("-l")
            .arg(&l4)
            .arg("systemd-socket-proxyd")
            .args(&proxyd_args)
            .arg(&agent)
            .stderr(log);
        // As systemd runs it (IgnoreSIGPIPE=yes, the default of every unit): socket-proxyd does
        // not ignore SIGPIPE itself, and std's spawn resets it to the default, so a client that
        // closes its connection before the agent's last bytes were spliced into it (rmcp's client
        // drops the response stream once it has the result) killed it silently with SIGPIPE —
        // every later call then got ECONNREFUSED (the issue-18 failures; BENCHMARKS.md).
        if std::env::var_os("BENCH_PROXYD_SIGPIPE_DEFAULT").is_none() {
            use std::os::unix::process::CommandExt;
            // SAFETY: only signal(2), async-signal-safe, between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        let c = cmd
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
    // machine or the order itself then weighs on every path alike.
    let mut all: Vec<Path3> = paths.iter().map(|_| Path3::default()).collect();
    let mut proxyd_deaths: Vec<String> = Vec::new();
    for round in 0..rounds {
        for k in 0..paths.len() {
            let i = (k + round) % paths.len();
            let (name, sock) = paths[i];
            eprintln!("round {}/{rounds}: measuring {name} ...", round + 1);
            let proxyd = (sock == &l4).then(start_proxyd);
            all[i].add(measure(sock, calls1, each, conc).await);
            if let Some(p) = proxyd
                && let Some(st) = stop(p)
            {
                eprintln!(
                    "round {}: socket-proxyd had exited by itself: {st}",
                    round + 1
                );
                proxyd_deaths.push(format!("round {}: {st}", round + 1));
            }
        }
    }
    stop(daemon);
    let planned = rounds * (calls1 + each * conc);
    println!(
        "Equal work: every path makes the same {planned} calls ({rounds} rounds × ({calls1} from 1 client + {each} from each of {conc} clients)), the paths' order rotated per round. \
         Cells: median over the rounds [min, max] (an interval of the median with {:.1} % coverage); p99 over all of a path's calls. \
         socket-proxyd options: `{}`, SIGPIPE {} (systemd's IgnoreSIGPIPE=yes default for a unit); a fresh one per measurement, {} of {rounds} exited by itself before its stop{}.\n",
        100.0 * minmax_coverage(rounds),
        if proxyd_args.is_empty() {
            "(defaults)".to_string()
        } else {
            proxyd_args.join(" ")
        },
        if std::env::var_os("BENCH_PROXYD_SIGPIPE_DEFAULT").is_none() {
            "ignored"
        } else {
            "left at its default (BENCH_PROXYD_SIGPIPE_DEFAULT), unlike under systemd"
        },
        proxyd_deaths.len(),
        if proxyd_deaths.is_empty() {
            String::new()
        } else {
            format!(" ({})", proxyd_deaths.join("; "))
        }
    );
    println!(
        "| path | calls done / failed | p50 ms (1) | p99 ms (1) | calls/s (1) | p50 ms ({conc}) | p99 ms ({conc}) | calls/s ({conc}) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for ((name, _), p) in paths.iter().zip(all.iter_mut()) {
        println!(
            "| {name} | {} / {} | {} | {:.2} | {} | {} | {:.1} | {} |",
            p.calls,
            p.errors,
            cell(&p.p50_1, 2),
            pct(&mut p.all1, 0.99),
            cell(&p.rps_1, 0),
            cell(&p.p50_n, 1),
            pct(&mut p.all_n, 0.99),
            cell(&p.rps_n, 0),
        );
    }
    for ((name, _), p) in paths.iter().zip(all.iter()) {
        if !p.first_errors.is_empty() {
            println!(
                "\n{name}: {} failed calls; first errors: {:?}",
                p.errors, p.first_errors
            );
        }
    }
    // Added p50 over direct, per round, and ours − socket-proxyd's, paired within the round.
    let added =
        |p: &[f64], d: &[f64]| -> Vec<f64> { p.iter().zip(d).map(|(a, b)| a - b).collect() };
    let (d, o, l) = (&all[0], &all[1], &all[2]);
    let rows = [
        ("1", added(&o.p50_1, &d.p50_1), added(&l.p50_1, &d.p50_1), 2),
        (
            "64",
            added(&o.p50_n, &d.p50_n),
            added(&l.p50_n, &d.p50_n),
            1,
        ),
    ];
    let all_ok = d.errors == 0 && o.errors == 0 && l.errors == 0;
    println!(
        "\nAdded p50 latency over direct, per round, ours vs systemd-socket-proxyd (target: ours ≤ socket-proxyd's; met only when the interval of ours − socket-proxyd's is ≤ 0 at its far end{}):\n",
        if all_ok {
            ""
        } else {
            ", and not judged while any path failed calls"
        }
    );
    println!(
        "| clients | ours − direct, ms | socket-proxyd − direct, ms | ours − socket-proxyd, ms (paired) | target |"
    );
    println!("|---|---|---|---|---|");
    for (c, ours_add, l4_add, prec) in rows {
        let diff: Vec<f64> = ours_add.iter().zip(&l4_add).map(|(a, b)| a - b).collect();
        let (_, lo, hi) = mid(&diff);
        let verdict = if !all_ok {
            "not judged (failures)"
        } else if hi <= 0.0 {
            "**met**"
        } else if lo > 0.0 {
            "**missed**"
        } else {
            "not shown (interval spans 0)"
        };
        println!(
            "| {c} | {} | {} | {} | {verdict} |",
            cell(&ours_add, prec),
            cell(&l4_add, prec),
            cell(&diff, prec)
        );
    }
    // Throughput at 64 clients relative to direct, paired per round.
    let rel = |p: &[f64]| -> Vec<f64> { p.iter().zip(&d.rps_n).map(|(a, b)| a / b).collect() };
    println!(
        "\nThroughput at {conc} clients vs direct (per round): ours {}×, socket-proxyd {}×.",
        cell(&rel(&o.rps_n), 2),
        cell(&rel(&l.rps_n), 2)
    );
}
