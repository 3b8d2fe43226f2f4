//! The demo, inside the hwsim VM: isolate a simulated radio with `wifi-isolate run`, drive it
//! over MCP (scan, connect, ping, DNS), show that the host never noticed, release it — printing
//! a route trace (host vs box) at each step.
//!
//! Usage: `hwsim-demo STATION`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

const IP: &str = "/usr/bin/ip";

fn routes(netns_pid: Option<u32>) -> Vec<String> {
    let mut cmd = match netns_pid {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.args(["-t", &pid.to_string(), "-n", IP]);
            c
        }
        None => Command::new(IP),
    };
    let out = cmd.args(["-4", "route", "show"]).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn links(netns_pid: Option<u32>) -> String {
    let mut cmd = match netns_pid {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.args(["-t", &pid.to_string(), "-n", IP]);
            c
        }
        None => Command::new(IP),
    };
    let out = cmd.args(["-br", "link"]).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|n| n != "hwsim0")
            .collect::<Vec<_>>()
            .join(" ")
    })
    .unwrap_or_default()
}

fn box_pid(sta: &str) -> Option<u32> {
    let s = std::fs::read(format!("/run/wifi-isolate/state/{sta}.json")).ok()?;
    let v: Value = serde_json::from_slice(&s).ok()?;
    v["box_pid"].as_u64().map(|p| p as u32)
}

struct Trace {
    rows: Vec<(String, String, String, String)>,
}

impl Trace {
    fn snap(&mut self, event: &str, sta: &str) {
        let host = routes(None);
        let bx = box_pid(sta)
            .map(|p| routes(Some(p)).join("; "))
            .unwrap_or_else(|| "(no box)".into());
        let host_links = links(None);
        self.rows.push((
            event.to_string(),
            if host.is_empty() {
                "(none)".into()
            } else {
                host.join("; ")
            },
            host_links,
            bx,
        ));
        println!("   host routes: {}", self.rows.last().unwrap().1);
        println!("   box routes:  {}", self.rows.last().unwrap().3);
    }

    fn print(&self) {
        println!("\n| event | host routes | host links | box routes |");
        println!("|---|---|---|---|");
        for (e, h, l, b) in &self.rows {
            println!("| {e} | {h} | {l} | {b} |");
        }
    }
}

async fn call(svc: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Value {
    let p = CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    match svc.call_tool(p).await {
        Ok(r) => r.structured_content.unwrap_or(Value::Null),
        Err(e) => json!({"error": e.to_string()}),
    }
}

#[tokio::main]
async fn main() {
    let sta = std::env::args().nth(1).expect("usage: hwsim-demo STATION");
    let ssid = std::env::var("AP_WPA2_SSID").unwrap_or_default();
    let psk = std::env::var("AP_WPA2_PSK").unwrap_or_default();
    let mut t = Trace { rows: vec![] };
    println!(
        "\n== 1. The host (the VM's root network namespace) before: {sta} is a WiFi card here"
    );
    t.snap("before", &sta);
    println!("\n== 2. wifi-isolate run {sta} --engine netns");
    let started = Instant::now();
    let mut daemon = Command::new("wifi-isolate")
        .args(["run", &sta, "--engine", "netns"])
        .stderr(Stdio::from(
            std::fs::File::create("/run/hwsim/logs/demo-daemon.log").expect("log"),
        ))
        .spawn()
        .expect("wifi-isolate run");
    let sock = format!("/run/wifi-isolate/{sta}.sock");
    while !Path::new(&sock).exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = UnixSocketHttpClient::new(&sock, "http://localhost/mcp");
    let svc = ()
        .serve(StreamableHttpClientTransport::with_client(
            http,
            StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
        ))
        .await
        .expect("MCP initialize");
    println!(
        "   MCP session up after {} ms; {sta} has left the host",
        started.elapsed().as_millis()
    );
    t.snap("isolated", &sta);
    println!("\n== 3. An MCP client scans through the box");
    let scan = call(&svc, "wifi_scan", json!({})).await;
    for n in scan["networks"].as_array().into_iter().flatten() {
        println!(
            "   {:<24} {}  ch {:<3} {:>4} dBm  {}",
            n["ssid"].as_str().unwrap_or(""),
            n["bssid"].as_str().unwrap_or(""),
            n["channel"],
            n["signal_dbm"],
            n["security"].as_str().unwrap_or("")
        );
    }
    println!("\n== 4. wifi_connect {ssid:?} (WPA2)");
    let c = call(&svc, "wifi_connect", json!({"ssid": ssid, "password": psk})).await;
    println!(
        "   ip {} gateway {} dns {} in {} ms",
        c["ip"], c["gateway"], c["dns"], c["elapsed_ms"]
    );
    t.snap("connected", &sta);
    let p = call(&svc, "network_ping", json!({"count": 2})).await;
    println!(
        "   network_ping gateway: {}/{} replies, avg {} ms",
        p["received"], p["sent"], p["avg_ms"]
    );
    let d = call(&svc, "network_dns_lookup", json!({"name": "ap.test"})).await;
    println!("   network_dns_lookup ap.test: {}", d["addresses"]);
    println!("\n== 5. The host never noticed: its routes are the same, the lease lives in the box");
    let _ = svc.cancel().await;
    println!("\n== 6. Release (SIGTERM, what systemctl stop does)");
    let t0 = Instant::now();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    while !Path::new(&format!("/sys/class/net/{sta}")).exists()
        && t0.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "   {sta} back in the host under its name after {} ms",
        t0.elapsed().as_millis()
    );
    let status = daemon.wait().expect("daemon");
    println!("   daemon exited: {status}");
    t.snap("released", &sta);
    t.print();
    let same = t.rows.first().map(|r| &r.1) == t.rows.last().map(|r| &r.1)
        && t.rows.iter().all(|r| r.1 == t.rows[0].1);
    println!(
        "\nHost routes identical at every step: {}",
        if same { "yes" } else { "NO" }
    );
    std::process::exit(if same && status.success() && c["ip"].is_string() {
        0
    } else {
        1
    });
}
