//! `hwsim-run-probe`: proves the `wifi-isolate run IFACE` daemon (built-in netns engine) on real
//! mac80211_hwsim radios in the hwsim VM (run by `tests/vm/run/guest.sh`, root, root netns).
//!
//! It runs the real `/usr/local/bin/wifi-isolate` binary as a child, the way systemd would: a test
//! `NOTIFY_SOCKET` collects `READY=1` / `STATUS=` / `STOPPING=1`, signals stop it, and the probe
//! checks the host from the outside (sysfs, iproute2, iw, /proc) after every step. The lab facts
//! come from the harness's env file (`STATIONS`, `STATION_PHYS`, `AP_WPA2_*`).
//!
//! Scenarios: ready + isolation, MCP through the agent socket, SIGTERM release (timed), box killed,
//! daemon killed + restart recovery, unplug (HWSIM_CMD_DEL_RADIO sent from inside the box),
//! refusals, the interface deleted inside the box (the phy comes home with a station interface
//! under its original name, after SIGTERM and after the box died). Prints one line per check and closes with `N passed, N failed`; exit 1 on failure.
//! Lines starting with `note` are observations, not checks.

mod host;
mod instance;
mod lab;
mod scenarios;

use host::*;
use instance::*;
use lab::*;
use scenarios::*;

use hwsim_nl::hwsim_del_radio;
use mcp_unix::{call, session as mcp};
use shared::host_view;
use wifi_isolate_tests::guest as shared;
use wifi_isolate_tests::hwsim_nl;
use wifi_isolate_tests::mcp_unix;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;

use shared::{IP, LOGS, ROOT, WI};
pub(crate) const DAEMON_LOG_FILTER: &str = "info,wifi_isolate=debug";

use wifi_isolate_tests::tally::Tally;

pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} missing from the lab env"))
}

pub(crate) fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stations: Vec<String> = env("STATIONS")
        .split_whitespace()
        .map(String::from)
        .collect();
    let phys: Vec<String> = env("STATION_PHYS")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(stations.len() >= 2 && phys.len() >= 2, "needs 2 stations");
    let started = Instant::now();
    let mut lab = Lab {
        t: Tally::default(),
        sta1: stations[0].clone(),
        phy1: phys[0].clone(),
        sta2: stations[1].clone(),
        phy2: phys[1].clone(),
        baseline: host_view(),
        iw_baseline: iw_dev(),
        mounts: mountinfo(),
    };
    println!("baseline of the root netns:\n{}\n--", lab.baseline);
    let (sta, phy) = (lab.sta1.clone(), lab.phy1.clone());

    // 1-4: ready, MCP, SIGTERM.
    let (mut d, ok) = lab.start("A", &sta, &phy).await;
    if ok {
        scenario_mcp(&mut lab).await;
        lab.stop("A", &mut d, &sta, &phy).await;
    } else {
        d.signal(nix::sys::signal::Signal::SIGTERM);
        let _ = d.wait_exit(Duration::from_secs(15)).await;
    }
    // 5: box killed.
    scenario_box_killed(&mut lab).await;
    // 6: daemon killed, restart recovers.
    scenario_daemon_killed(&mut lab).await;
    // 7: unplug.
    scenario_unplug(&mut lab).await;
    // 8: refusals.
    scenario_refusals(&mut lab).await;
    // 9: the interface deleted inside the box comes home under its name.
    scenario_iface_deleted_in_box(&mut lab).await;

    let iw_now = iw_dev();
    let expected: String = {
        // STA2's radio was deleted in the unplug scenario: drop its block from the baseline.
        let idx2 = lab.phy2.trim_start_matches("phy").to_string();
        let mut out = Vec::new();
        let mut skip = false;
        for l in lab.iw_baseline.lines() {
            if l.starts_with("phy#") {
                skip = l == format!("phy#{idx2}");
            }
            if !skip {
                out.push(l);
            }
        }
        out.join("\n")
    };
    lab.t.check(
        "iw dev at the end = baseline minus the unplugged radio",
        iw_now == expected,
        format!("expected:\n{expected}\nnow:\n{iw_now}"),
    );
    let numbers = lab.t.numbers.join(" ");
    println!("numbers: {numbers}");
    println!("probe wall time {} ms", ms(started.elapsed()));
    println!("{} passed, {} failed", lab.t.passed, lab.t.failed);
    std::process::exit(if lab.t.failed == 0 { 0 } else { 1 });
}
