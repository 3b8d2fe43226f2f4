//! Full-system VM probe: an MCP client for the systemd-activated socket of an installed
//! wifi-isolate (the .deb), used by the guest scripts in tests/vm/fullsys-*.sh.
//!
//! Usage (root, in the VM, with the lab env exported):
//!   fullsys-probe story SOCKET    scan, connect WPA2 and WPA3-SAE, ping, resolve, disconnect;
//!                                 the VM root netns unchanged throughout. One line per check.
//!   fullsys-probe call SOCKET TOOL [JSON]
//!                                 one tool call in a fresh session: prints the structured result,
//!                                 exit 1 on a tool error or when the endpoint does not answer.
//!   fullsys-probe first-reply SOCKET
//!                                 milliseconds from connect to the first answer (cold activation)
//!   fullsys-probe del-radio NETNS_PATH PHY
//!                                 unplug hwsim radio PHY, which lives in the netns at NETNS_PATH

#[path = "shared.rs"]
mod shared;
use shared::{Tally, host_view};
#[path = "hwsim_nl.rs"]
mod hwsim_nl;
#[path = "mcp_unix.rs"]
mod mcp_unix;
use mcp_unix::call;

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
            let result = match session(arg(2)).await {
                Ok(svc) => {
                    let r = call(&svc, arg(3), args_json).await;
                    let _ = svc.cancel().await;
                    r
                }
                Err(e) => (false, Value::Null, format!("no MCP session: {e}")),
            };
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
        _ => {
            eprintln!("usage: fullsys-probe story|call|first-reply SOCKET …");
            std::process::ExitCode::from(2)
        }
    }
}
