//! `wifi-isolate status [IFACE] [--json]`: what each instance isolated, and how it is doing.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use crate::host::agent_socket::AgentSocket;
use crate::host::daemon::{Isolation, Paths};

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this instance.
    pub iface: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Runtime root of the daemons.
    #[arg(long, default_value = "/run/wifi-isolate", value_name = "DIR")]
    pub runtime_root: PathBuf,
}

/// One instance as `status` reports it.
#[derive(Debug, Serialize)]
pub struct InstanceStatus {
    /// Instance name.
    pub instance: String,
    /// What the daemon recorded.
    pub isolation: Isolation,
    /// Whether the daemon process is alive.
    pub daemon_alive: bool,
    /// Whether the agent answers on its socket.
    pub agent_answers: bool,
    /// Why not, when it does not (missing, or refused: a symlink, not the box's socket).
    pub agent_error: Option<String>,
    /// The agent's `wifi_status` (WiFi state, ip, routes in the box).
    pub wifi: Option<Value>,
    /// Host view: is the interface (by its original name) present in the host?
    pub host_has_interface: bool,
    /// Host view: host routes through that interface.
    pub host_routes_via_interface: Vec<String>,
}

/// Host view: is `iface` in the host, and which host routes (IPv4 and IPv6) go through it.
fn host_routes_via(iface: &str) -> (bool, Vec<String>) {
    let present = std::path::Path::new("/sys/class/net").join(iface).exists();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let v4 = read("/proc/net/route");
    let v6 = read("/proc/net/ipv6_route");
    // /proc/net/route names the device first (after a header line), ipv6_route last.
    let routes = v4
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().next() == Some(iface))
        .chain(
            v6.lines()
                .filter(|l| l.split_whitespace().last() == Some(iface)),
        )
        .map(str::to_string)
        .collect();
    (present, routes)
}

/// Collect the status of one or all instances.
pub async fn collect(paths: &Paths, only: Option<&str>) -> Vec<InstanceStatus> {
    let mut out = Vec::new();
    for iso in paths
        .states()
        .into_iter()
        .filter(|i| only.is_none_or(|o| o == i.instance))
    {
        let name = iso.instance.clone();
        let checked = AgentSocket::open(&paths.agent_socket(&name), iso.box_uid.unwrap_or(0));
        let (wifi, agent_error) = match &checked {
            Ok(s) => match s.answers().await {
                Ok(()) => (s.wifi_status().await, None),
                Err(e) => (None, Some(e.to_string())),
            },
            Err(e) => (None, Some(e.to_string())),
        };
        let answers = agent_error.is_none();
        let (host_has_interface, host_routes_via_interface) = host_routes_via(&iso.iface);
        out.push(InstanceStatus {
            instance: name,
            daemon_alive: std::path::Path::new(&format!("/proc/{}", iso.daemon_pid)).exists(),
            agent_answers: answers,
            agent_error,
            wifi,
            host_has_interface,
            host_routes_via_interface,
            isolation: iso,
        });
    }
    out
}

/// Print the status; exit 3 when the asked-for instance is not running (like `systemctl status`).
pub async fn exec(args: StatusArgs) -> ExitCode {
    let paths = Paths::new(args.runtime_root);
    let all = collect(&paths, args.iface.as_deref()).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    } else if all.is_empty() {
        match &args.iface {
            Some(i) => println!("{i}: not isolated (no running instance)"),
            None => println!("no isolated adapters"),
        }
    } else {
        for s in &all {
            let i = &s.isolation;
            println!("{} ({}):", s.instance, i.phy_name);
            println!(
                "  box:    {}:{} (pid {}){}",
                i.box_engine.as_deref().unwrap_or("-"),
                i.box_name.as_deref().unwrap_or("-"),
                i.box_pid.unwrap_or(0),
                if i.moved {
                    ", phy inside"
                } else {
                    ", phy not moved"
                }
            );
            println!(
                "  daemon: pid {} {}; agent {}",
                i.daemon_pid,
                if s.daemon_alive { "running" } else { "gone" },
                if s.agent_answers {
                    "answers"
                } else {
                    "does not answer"
                }
            );
            if let Some(e) = &s.agent_error {
                println!("  agent:  {e}");
            }
            if let Some(w) = &s.wifi {
                println!(
                    "  wifi:   {} {} {}",
                    w["wpa_state"].as_str().unwrap_or("?"),
                    w["ssid"].as_str().unwrap_or(""),
                    w["ip"].as_str().unwrap_or("")
                );
                let links: Vec<&str> = w["links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!("  box links: {}", links.join(", "));
                for a in w["addresses"].as_array().into_iter().flatten() {
                    println!(
                        "  box addr:  {} dev {} ({})",
                        a["cidr"].as_str().unwrap_or("?"),
                        a["dev"].as_str().unwrap_or("?"),
                        a["scope"].as_str().unwrap_or("?")
                    );
                }
                for r in w["routes"].as_array().into_iter().flatten() {
                    println!(
                        "  box route: {} via {} dev {}{}",
                        r["destination"].as_str().unwrap_or("?"),
                        r["gateway"].as_str().unwrap_or("-"),
                        r["dev"].as_str().unwrap_or("?"),
                        match (r["family"].as_str(), r["protocol"].as_str()) {
                            (Some("ipv6"), Some(p)) => format!(" (IPv6, {p})"),
                            _ => String::new(),
                        }
                    );
                }
            }
            println!(
                "  host:   interface {} {}; {} host route(s) via it",
                i.iface,
                if s.host_has_interface {
                    "PRESENT"
                } else {
                    "absent"
                },
                s.host_routes_via_interface.len()
            );
        }
    }
    if args.iface.is_some() && all.is_empty() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}
