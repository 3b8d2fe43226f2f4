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

use hwsim_nl::hwsim_del_radio;
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
const DAEMON_LOG_FILTER: &str = "info,wifi_isolate=debug";

// ---- checks ---------------------------------------------------------------------------------

use wifi_isolate_tests::tally::Tally;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} missing from the lab env"))
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---- the host as seen from outside ----------------------------------------------------------

fn run_out(cmd: &str, args: &[&str]) -> (bool, String) {
    match Command::new(cmd).args(args).stdin(Stdio::null()).output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ),
        Err(e) => (false, format!("{cmd}: {e}")),
    }
}

/// `iw dev` reduced to what identifies the radios (phy, interface, MAC, type).
fn iw_dev() -> String {
    let (_, out) = run_out("iw", &["dev"]);
    out.lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("phy#")
                || l.starts_with("Interface")
                || l.starts_with("addr")
                || l.starts_with("type")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

fn in_host(iface: &str) -> bool {
    Path::new("/sys/class/net").join(iface).exists()
}

fn phy_in_host(phy: &str) -> bool {
    Path::new("/sys/class/ieee80211").join(phy).exists()
}

/// (is up, operstate)
fn link_state(iface: &str) -> (Option<bool>, String) {
    let flags = fs::read_to_string(format!("/sys/class/net/{iface}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .map(|f| f & 1 == 1);
    let oper = fs::read_to_string(format!("/sys/class/net/{iface}/operstate"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("? ({e})"));
    (flags, oper)
}

fn ipv4_of(iface: &str) -> String {
    run_out(IP, &["-4", "-o", "addr", "show", "dev", iface])
        .1
        .trim()
        .to_string()
}

/// Live `wifi-isolate-agent` processes (zombies listed apart).
fn agents() -> (Vec<u32>, Vec<u32>) {
    let (mut live, mut zombies) = (Vec::new(), Vec::new());
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let state = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().next().map(str::to_string))
            })
            .unwrap_or_default();
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 =
            String::from_utf8_lossy(cmd.split(|b| *b == 0).next().unwrap_or(&[])).into_owned();
        let exe = fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let is_agent = argv0.ends_with("wifi-isolate-agent")
            || exe.ends_with("wifi-isolate-agent")
            || comm.trim() == "wifi-isolate-ag";
        if is_agent {
            if state == "Z" {
                zombies.push(pid);
            } else {
                live.push(pid);
            }
        }
    }
    (live, zombies)
}

fn pid_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Every path under `dir` (relative), for the record.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

fn state_path(instance: &str) -> PathBuf {
    Path::new(ROOT)
        .join("state")
        .join(format!("{instance}.json"))
}

fn state(instance: &str) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(state_path(instance)).ok()?).ok()
}

fn netns_state_path(instance: &str) -> PathBuf {
    Path::new(ROOT)
        .join(".netns")
        .join(format!("{instance}.json"))
}

fn box_pid(instance: &str) -> Option<u32> {
    state(instance)?["box_pid"].as_u64().map(|p| p as u32)
}

/// Run a command inside the netns at `ns` (see [`shared::run_in_netns`]).
fn run_in(ns: &Path, cmd: &str, args: &[&str]) -> (bool, String) {
    shared::run_in_netns(ns, run_out, cmd, args)
}

/// Is `iface` (of `phy`) in the netns of `pid`? Returns (yes, what was seen).
fn in_box(pid: u32, iface: &str, phy: &str) -> (bool, String) {
    let ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let (ok_link, link) = run_in(&ns, IP, &["-o", "link", "show", "dev", iface]);
    let (_, iw) = run_in(&ns, "iw", &["dev"]);
    let idx = phy.trim_start_matches("phy");
    let yes =
        ok_link && iw.contains(&format!("Interface {iface}")) && iw.contains(&format!("phy#{idx}"));
    let first = link
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    (
        yes,
        format!(
            "ip -n: {first}; iw dev in box lists phy#{idx}: {}",
            iw.contains(&format!("phy#{idx}"))
        ),
    )
}

// ---- the daemon as a child ------------------------------------------------------------------

struct Instance {
    child: tokio::process::Child,
    pid: u32,
    rx: mpsc::UnboundedReceiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
    log: PathBuf,
    t0: Instant,
    exit: Option<ExitStatus>,
}

impl Instance {
    fn spawn(label: &str, args: &[&str]) -> Instance {
        fs::create_dir_all("/run/probe").unwrap();
        let sock = PathBuf::from(format!("/run/probe/notify-{label}.sock"));
        let _ = fs::remove_file(&sock);
        let dgram = UnixDatagram::bind(&sock).expect("binding the notify socket");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = dgram.recv(&mut buf).await {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send((Instant::now(), msg)).is_err() {
                    break;
                }
            }
        });
        let log = PathBuf::from(format!("{LOGS}/daemon-{label}.log"));
        let file = fs::File::create(&log).expect("daemon log");
        let t0 = Instant::now();
        let child = tokio::process::Command::new(WI)
            .args(args)
            .env("NOTIFY_SOCKET", &sock)
            .env("WIFI_ISOLATE_LOG", DAEMON_LOG_FILTER)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawning wifi-isolate run");
        let pid = child.id().unwrap();
        Instance {
            child,
            pid,
            rx,
            seen: Vec::new(),
            log,
            t0,
            exit: None,
        }
    }

    /// The first notify message (since spawn) that satisfies `pred`, waiting up to `within`.
    async fn note(
        &mut self,
        pred: impl Fn(&str) -> bool,
        within: Duration,
    ) -> Option<(Instant, String)> {
        if let Some(m) = self.seen.iter().find(|(_, m)| pred(m)) {
            return Some(m.clone());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => {
                    self.seen.push(m.clone());
                    if pred(&m.1) {
                        return Some(m);
                    }
                }
                _ => return None,
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.seen.push(m);
        }
    }

    /// Wait for READY=1 (or the daemon's exit). Returns the READY message and its delay.
    async fn ready(&mut self, within: Duration) -> Option<(Duration, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some((t, m)) = self
                .note(
                    |m| m.lines().any(|l| l == "READY=1"),
                    Duration::from_millis(100),
                )
                .await
            {
                return Some((t - self.t0, m));
            }
            if self.exited_now().is_some() || tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }

    fn exited_now(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Ok(Ok(s)) = tokio::time::timeout(within, self.child.wait()).await
        {
            self.exit = Some(s);
        }
        self.exit
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), sig);
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self, n: usize) -> String {
        let t = self.log_text();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn statuses(&mut self) -> Vec<String> {
        self.drain();
        self.seen
            .iter()
            .map(|(_, m)| m.replace('\n', " | "))
            .collect()
    }
}

fn describe(s: Option<ExitStatus>) -> String {
    match s {
        None => "still running".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => format!("{s:?}"),
        },
    }
}

/// Poll `/sys/class/net/IFACE` every 10 ms. Returns how long it took after `since`.
async fn wait_iface(iface: &str, since: Instant, within: Duration) -> Option<Duration> {
    loop {
        if in_host(iface) {
            return Some(since.elapsed());
        }
        if since.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- MCP ------------------------------------------------------------------------------------

use mcp_unix::{call, session as mcp};

fn subnet_prefix(cidr: &str) -> String {
    // "10.0.2.0/24" -> "10.0.2."
    let net = cidr.split('/').next().unwrap_or("");
    net.rsplit_once('.')
        .map(|(a, _)| format!("{a}."))
        .unwrap_or_default()
}

// ---- the scenarios --------------------------------------------------------------------------

struct Lab {
    t: Tally,
    sta1: String,
    phy1: String,
    sta2: String,
    phy2: String,
    baseline: String,
    iw_baseline: String,
    mounts: String,
}

impl Lab {
    fn check_host(&mut self, when: &str) {
        let now = host_view();
        let detail = format!("before:\n{}\nnow:\n{}", self.baseline, now);
        self.t.check(
            &format!("host routes/addresses unchanged {when}"),
            now == self.baseline,
            detail,
        );
    }

    /// Start `run IFACE --engine netns` and wait for READY=1. Checks the status line and the
    /// isolation. Returns the instance (even if not ready, for cleanup).
    async fn start(&mut self, label: &str, iface: &str, phy: &str) -> (Instance, bool) {
        let mut d = Instance::spawn(label, &["run", iface, "--engine", "netns"]);
        let ready = d.ready(Duration::from_secs(30)).await;
        let ok = self.t.check(
            &format!("[{label}] READY=1 within 30 s"),
            ready.is_some(),
            match &ready {
                Some((t, _)) => format!("{} ms", ms(*t)),
                None => format!(
                    "{}; notify: {:?}\n{}",
                    describe(d.exited_now()),
                    d.statuses(),
                    d.log_tail(30)
                ),
            },
        );
        if let Some((t, m)) = &ready {
            self.t.time(&format!("{label} READY"), ms(*t));
            let status = m
                .lines()
                .find_map(|l| l.strip_prefix("STATUS="))
                .unwrap_or("")
                .to_string();
            self.t.check(
                &format!("[{label}] STATUS names the iface, phy and netns box"),
                status.contains(iface)
                    && status.contains(&format!("({phy})"))
                    && status.contains("netns:"),
                &status,
            );
        }
        if !ok {
            return (d, false);
        }
        self.t.check(
            &format!("[{label}] {iface} gone from the root netns"),
            !in_host(iface) && !phy_in_host(phy),
            format!(
                "/sys/class/net/{iface}: {}, /sys/class/ieee80211/{phy}: {}",
                in_host(iface),
                phy_in_host(phy)
            ),
        );
        let st = state(iface);
        let bp = box_pid(iface);
        self.t.check(
            &format!("[{label}] state file records the box"),
            bp.is_some()
                && st
                    .as_ref()
                    .is_some_and(|s| s["moved"] == true && s["phy_name"] == phy),
            format!("{st:?}"),
        );
        if let Some(bp) = bp {
            let (yes, seen) = in_box(bp, iface, phy);
            self.t.check(
                &format!("[{label}] {phy}/{iface} is in the box's netns (pid {bp})"),
                yes,
                seen,
            );
        }
        (d, true)
    }

    /// After the phy came home: down, no IPv4, original phy; nothing left behind.
    fn check_home(&mut self, label: &str, iface: &str, phy: &str) {
        let (up, oper) = link_state(iface);
        let v4 = ipv4_of(iface);
        let phy_now = fs::read_to_string(format!("/sys/class/net/{iface}/phy80211/name"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        self.t.check(
            &format!("[{label}] {iface} home: down, no IPv4, on {phy}"),
            up == Some(false) && oper == "down" && v4.is_empty() && phy_now == phy,
            format!("up={up:?} operstate={oper} ipv4={v4:?} phy={phy_now}"),
        );
    }

    fn check_nothing_left(&mut self, label: &str, iface: &str) {
        let (live, zombies) = agents();
        self.t.check(
            &format!("[{label}] no agent process left"),
            live.is_empty(),
            format!("live {live:?}, zombies {zombies:?}"),
        );
        if !zombies.is_empty() {
            self.t.note(format!(
                "[{label}] agent zombies (not reaped by the VM's PID 1): {zombies:?}"
            ));
        }
        self.t.check(
            &format!("[{label}] state files gone"),
            !state_path(iface).exists() && !netns_state_path(iface).exists(),
            format!(
                "{}: {}, {}: {}",
                state_path(iface).display(),
                state_path(iface).exists(),
                netns_state_path(iface).display(),
                netns_state_path(iface).exists()
            ),
        );
        let left: Vec<String> = walk(Path::new(ROOT));
        self.t
            .note(format!("[{label}] {ROOT} after release: {left:?}"));
        let m = mountinfo();
        self.t.check(
            &format!("[{label}] no leftover mounts"),
            m == self.mounts,
            format!("before:\n{}\nnow:\n{m}", self.mounts),
        );
        self.check_host(&format!("[{label}] after release"));
    }

    /// SIGTERM → timed return → STOPPING=1 → exit 0 → nothing left.
    async fn stop(&mut self, label: &str, d: &mut Instance, iface: &str, phy: &str) {
        let t0 = Instant::now();
        d.signal(nix::sys::signal::Signal::SIGTERM);
        let back = wait_iface(iface, t0, Duration::from_secs(15)).await;
        if let Some(b) = back {
            self.t.time(&format!("{label} SIGTERM→{iface} home"), ms(b));
        }
        self.t.check(
            &format!("[{label}] {iface} back under its name < 0.5 s after SIGTERM"),
            back.is_some_and(|b| b < Duration::from_millis(500)),
            match back {
                Some(b) => format!("{} ms", ms(b)),
                None => format!("not back; iw dev:\n{}\n{}", iw_dev(), d.log_tail(30)),
            },
        );
        let stopping = d
            .note(
                |m| m.lines().any(|l| l == "STOPPING=1"),
                Duration::from_secs(5),
            )
            .await;
        self.t.check(
            &format!("[{label}] STOPPING=1 sent"),
            stopping.is_some(),
            format!("{:?}", d.statuses()),
        );
        let exit = d.wait_exit(Duration::from_secs(15)).await;
        if exit.is_some() {
            self.t
                .time(&format!("{label} SIGTERM→exit"), ms(t0.elapsed()));
        }
        self.t.check(
            &format!("[{label}] daemon exits 0"),
            exit.is_some_and(|s| s.code() == Some(0)),
            format!(
                "{}\n{}",
                describe(exit),
                if exit.is_some_and(|s| s.success()) {
                    String::new()
                } else {
                    d.log_tail(30)
                }
            ),
        );
        if back.is_some() {
            self.check_home(label, iface, phy);
        }
        self.check_nothing_left(label, iface);
    }
}

async fn scenario_mcp(lab: &mut Lab) {
    lab.check_host("[A] isolated, before connecting");
    let sock = Path::new(ROOT).join("box").join(&lab.sta1).join("mcp.sock");
    let svc = match mcp(&sock).await {
        Ok(s) => s,
        Err(e) => {
            lab.t
                .check("[A] MCP session over the agent socket", false, e);
            return;
        }
    };
    lab.t.check(
        "[A] MCP session over the agent socket",
        true,
        sock.display(),
    );
    let t = Instant::now();
    let (ok, c, text) = call(
        &svc,
        "wifi_connect",
        json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK"), "security": "wpa2-psk"}),
    )
    .await;
    let prefix = subnet_prefix(&env("AP_WPA2_SUBNET"));
    let ip = c["ip"].as_str().unwrap_or("").to_string();
    lab.t.check(
        "[A] wifi_connect WPA2 → lease in the AP's subnet",
        ok && ip.starts_with(&prefix),
        format!(
            "ip={ip} subnet={} in {} ms {}",
            env("AP_WPA2_SUBNET"),
            ms(t.elapsed()),
            if ok { String::new() } else { text }
        ),
    );
    lab.t.time("A wifi_connect", ms(t.elapsed()));
    lab.check_host("[A] while connected");
    let (ok, p, text) = call(
        &svc,
        "network_ping",
        json!({"host": env("AP_WPA2_IP"), "count": 2}),
    )
    .await;
    lab.t.check(
        "[A] network_ping the AP",
        ok && p["received"].as_u64().unwrap_or(0) >= 1,
        format!("{p} {text}"),
    );
    lab.check_host("[A] after ping");
    // The box's view: the lease lives there, not in the host.
    if let Some(bp) = box_pid(&lab.sta1) {
        let (_, v4) = run_in(
            &PathBuf::from(format!("/proc/{bp}/ns/net")),
            IP,
            &["-4", "-o", "addr", "show", "dev", &lab.sta1],
        );
        lab.t.check(
            "[A] the lease is in the box's netns",
            !ip.is_empty() && v4.contains(&ip),
            v4.trim(),
        );
    }
    // `status` and `doctor` tell the truth about a live isolation.
    let (code, out) = refuse(&["status", &lab.sta1, "--json"]).await;
    let json_part = out
        .find('[')
        .and_then(|a| out.rfind(']').map(|b| &out[a..=b]))
        .unwrap_or("");
    let v: Value = serde_json::from_str(json_part).unwrap_or(Value::Null);
    lab.t.check(
        "[A] `status --json`: agent answers, WiFi COMPLETED with the lease, host has no interface or routes",
        code == Some(0)
            && v[0]["agent_answers"] == true
            && v[0]["wifi"]["wpa_state"] == "COMPLETED"
            && v[0]["wifi"]["ip"].as_str().is_some_and(|i| !ip.is_empty() && i.starts_with(&ip))
            && v[0]["host_has_interface"] == false
            && v[0]["host_routes_via_interface"].as_array().is_some_and(|a| a.is_empty())
            && v[0]["isolation"]["moved"] == true,
        &out,
    );
    let (code, out) = refuse(&["status"]).await;
    lab.t.check(
        "[A] `status` (text) shows box, agent, WiFi and the host view",
        code == Some(0)
            && out.contains("netns:wifi-isolate-")
            && out.contains("agent answers")
            && out.contains("COMPLETED")
            && out.contains("box route: default via")
            && out.contains("box links: lo, ")
            && out.contains("absent"),
        &out,
    );
    let (_, out) = refuse(&["doctor"]).await;
    lab.t.check(
        "[A] `doctor` lists the remaining adapter as movable and the kernel as fine",
        out.contains("can change namespace") && !out.contains("FAIL  kernel"),
        &out,
    );
    let _ = svc.cancel().await;
}

async fn scenario_box_killed(lab: &mut Lab) {
    let (sta, phy) = (lab.sta1.clone(), lab.phy1.clone());
    let (mut d, ok) = lab.start("B", &sta, &phy).await;
    if !ok {
        d.signal(nix::sys::signal::Signal::SIGKILL);
        return;
    }
    let Some(bp) = box_pid(&sta) else { return };
    let (live, _) = agents();
    lab.t.check(
        "[B] box pid is the agent",
        live.contains(&bp),
        format!("box {bp}, agents {live:?}"),
    );
    let t0 = Instant::now();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bp as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let back = wait_iface(&sta, t0, Duration::from_secs(10)).await;
    if let Some(b) = back {
        lab.t.time(&format!("B agent SIGKILL→{sta} home"), ms(b));
    }
    lab.t.check(
        &format!("[B] {sta} back under its name after the agent was killed"),
        back.is_some(),
        match back {
            Some(b) => format!("{} ms", ms(b)),
            None => format!("iw dev:\n{}", iw_dev()),
        },
    );
    let exit = d.wait_exit(Duration::from_secs(15)).await;
    if exit.is_some() {
        lab.t.time("B agent SIGKILL→daemon exit", ms(t0.elapsed()));
    }
    let log = d.log_text();
    lab.t.check(
        "[B] daemon notices and exits non-zero",
        exit.is_some_and(|s| s.code().is_some_and(|c| c != 0)),
        describe(exit),
    );
    let reason = log
        .lines()
        .find(|l| {
            l.contains("killed by signal 9") || l.contains("exited") || l.contains("vanished")
        })
        .unwrap_or("")
        .to_string();
    lab.t.check(
        "[B] the log gives the reason",
        !reason.is_empty(),
        if reason.is_empty() {
            d.log_tail(20)
        } else {
            reason
        },
    );
    if back.is_some() {
        // The netns died on its own: the phy arrives whenever cleanup_net runs.
        lab.check_home("B", &sta, &phy);
    }
    let release_errs: Vec<&str> = log.lines().filter(|l| l.contains("release:")).collect();
    if !release_errs.is_empty() {
        lab.t
            .note(format!("[B] release reported: {release_errs:?}"));
    }
    lab.check_nothing_left("B", &sta);
}

async fn scenario_daemon_killed(lab: &mut Lab) {
    let (sta, phy) = (lab.sta1.clone(), lab.phy1.clone());
    let (mut d, ok) = lab.start("C1", &sta, &phy).await;
    if !ok {
        d.signal(nix::sys::signal::Signal::SIGKILL);
        return;
    }
    let bp = box_pid(&sta).unwrap_or(0);
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let exit = d.wait_exit(Duration::from_secs(5)).await;
    lab.t.check(
        "[C1] daemon SIGKILLed",
        exit.is_some_and(|s| s.signal() == Some(9)),
        describe(exit),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alive = pid_alive(bp);
    let (boxed, seen) = if alive {
        in_box(bp, &sta, &phy)
    } else {
        (false, "agent gone".into())
    };
    lab.t.note(format!(
        "[C1] 1 s after the daemon's SIGKILL: agent pid {bp} alive={alive}; phy in the box={boxed} ({seen}); {sta} in host={}; state file kept={}",
        in_host(&sta),
        state_path(&sta).exists()
    ));
    lab.t.check(
        "[C1] the phy stays in the box while the orphaned agent lives",
        !in_host(&sta) && (!alive || boxed),
        format!("alive={alive} boxed={boxed} in_host={}", in_host(&sta)),
    );
    // A new daemon cleans up and isolates again.
    let (mut d2, ok) = lab.start("C2", &sta, &phy).await;
    let log = d2.log_text();
    let recover: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("earlier run") || l.contains("leftover") || l.contains("cleanup"))
        .collect();
    lab.t.check(
        "[C2] the restarted daemon cleaned up its predecessor's leftovers",
        !recover.is_empty(),
        format!("{recover:?}"),
    );
    lab.t.check(
        "[C2] the old agent is gone",
        !pid_alive(bp),
        format!("old agent pid {bp}"),
    );
    let (live, _) = agents();
    let nbp = box_pid(&sta).unwrap_or(0);
    lab.t.check(
        "[C2] exactly one agent: the new box",
        live == vec![nbp] && nbp != bp,
        format!("agents {live:?}, new box {nbp}, old {bp}"),
    );
    if ok {
        lab.stop("C2", &mut d2, &sta, &phy).await;
    } else {
        d2.signal(nix::sys::signal::Signal::SIGTERM);
        let _ = d2.wait_exit(Duration::from_secs(15)).await;
    }
}

async fn scenario_unplug(lab: &mut Lab) {
    let (sta, phy) = (lab.sta2.clone(), lab.phy2.clone());
    let (mut d, ok) = lab.start("D", &sta, &phy).await;
    if !ok {
        d.signal(nix::sys::signal::Signal::SIGKILL);
        return;
    }
    let Some(bp) = box_pid(&sta) else { return };
    let t0 = Instant::now();
    let r = hwsim_del_radio(&PathBuf::from(format!("/proc/{bp}/ns/net")), &phy);
    lab.t.check(
        &format!("[D] HWSIM_CMD_DEL_RADIO {phy} from inside the box"),
        r.is_ok(),
        format!("{r:?}"),
    );
    let exit = d.wait_exit(Duration::from_secs(15)).await;
    if exit.is_some() {
        lab.t.time("D unplug→daemon exit", ms(t0.elapsed()));
    }
    lab.t.check(
        "[D] daemon exits 0 within a few seconds after the unplug",
        exit.is_some_and(|s| s.code() == Some(0)) && t0.elapsed() < Duration::from_secs(8),
        format!(
            "{} after {} ms\n{}",
            describe(exit),
            ms(t0.elapsed()),
            d.log_tail(20)
        ),
    );
    let log = d.log_text();
    lab.t.check(
        "[D] the log says the adapter was removed",
        log.contains("adapter was removed"),
        d.log_tail(10),
    );
    let stopping = d
        .note(
            |m| m.lines().any(|l| l == "STOPPING=1"),
            Duration::from_secs(1),
        )
        .await;
    lab.t.check(
        "[D] STOPPING=1 sent",
        stopping.is_some(),
        format!("{:?}", d.statuses()),
    );
    lab.t.check(
        &format!("[D] {phy} is gone everywhere"),
        !phy_in_host(&phy) && !in_host(&sta),
        iw_dev(),
    );
    lab.check_nothing_left("D", &sta);
}

/// `wifi-isolate ARGS` to completion: (exit code, output).
async fn refuse(args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(WI)
            .args(args)
            .env("WIFI_ISOLATE_LOG", "info")
            .stdin(Stdio::null())
            .output(),
    )
    .await;
    match out {
        Ok(Ok(o)) => (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        ),
        Ok(Err(e)) => (None, e.to_string()),
        Err(_) => (None, "timed out".into()),
    }
}

async fn scenario_refusals(lab: &mut Lab) {
    for (label, args, needle) in [
        (
            "E1",
            vec!["run", "lo", "--engine", "netns"],
            "not a wireless interface",
        ),
        (
            "E2",
            vec!["run", "nosuch0"],
            "no network interface or phy named",
        ),
    ] {
        let (hv, iw, m) = (host_view(), iw_dev(), mountinfo());
        let (code, out) = refuse(&args).await;
        lab.t.check(
            &format!(
                "[{label}] `wifi-isolate {}` exits 78 naming {needle:?}",
                args.join(" ")
            ),
            code == Some(78) && out.contains(needle),
            format!("code {code:?}: {}", out.trim()),
        );
        lab.t.check(
            &format!("[{label}] nothing changed (routes, addresses, iw dev, mounts, agents)"),
            host_view() == hv && iw_dev() == iw && mountinfo() == m && agents().0.is_empty(),
            format!("iw dev now:\n{}", iw_dev()),
        );
    }
    // An instance runs on STA1; a second one by phy name, then by the same name.
    let (sta, phy) = (lab.sta1.clone(), lab.phy1.clone());
    let (mut d, ok) = lab.start("E3", &sta, &phy).await;
    if !ok {
        d.signal(nix::sys::signal::Signal::SIGKILL);
        return;
    }
    let bp = box_pid(&sta).unwrap_or(0);
    for (label, name) in [("E3a", phy.clone()), ("E3b", sta.clone())] {
        let (hv, iw, m) = (host_view(), iw_dev(), mountinfo());
        let (code, out) = refuse(&["run", &name, "--engine", "netns"]).await;
        let msg = out
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("error"))
            .collect::<Vec<_>>()
            .join(" / ");
        lab.t.check(
            &format!("[{label}] a second `run {name}` while {sta} is isolated refuses"),
            code.is_some_and(|c| c != 0),
            format!(
                "code {code:?}: {}",
                if msg.is_empty() {
                    out.trim().to_string()
                } else {
                    msg.clone()
                }
            ),
        );
        lab.t.note(format!(
            "[{label}] what the user sees for `run {name}`: exit {code:?}: {msg}"
        ));
        if name == phy {
            lab.t.check(
                &format!("[{label}] the refusal names the instance that holds {phy}"),
                out.contains(&format!("isolated by instance {sta}")),
                &msg,
            );
        }
        lab.t.check(
            &format!("[{label}] nothing changed and the first instance is untouched"),
            host_view() == hv
                && iw_dev() == iw
                && mountinfo() == m
                && d.exited_now().is_none()
                && box_pid(&sta) == Some(bp)
                && pid_alive(bp)
                && in_box(bp, &sta, &phy).0
                && agents().0 == vec![bp],
            format!(
                "first: {}; box {:?}; agents {:?}",
                describe(d.exited_now()),
                box_pid(&sta),
                agents()
            ),
        );
    }
    // The first one still serves MCP.
    let sock = Path::new(ROOT).join("box").join(&sta).join("mcp.sock");
    match mcp(&sock).await {
        Ok(svc) => {
            let (ok, st, text) = call(&svc, "wifi_status", json!({})).await;
            lab.t.check(
                "[E3] the first instance still answers MCP (wifi_status)",
                ok,
                format!("{} {text}", st["wpa_state"]),
            );
            let _ = svc.cancel().await;
        }
        Err(e) => {
            lab.t.check(
                "[E3] the first instance still answers MCP (wifi_status)",
                false,
                e,
            );
        }
    }
    // Observation: the phy leaves the box behind the daemon's back (the agent holds NET_ADMIN,
    // so a compromised agent could do this). Does the daemon notice?
    let ns = PathBuf::from(format!("/proc/{bp}/ns/net"));
    // By index: iw resolves `phyN` through sysfs, which shows the root netns's phys here.
    let phy_idx = format!("phy#{}", phy.trim_start_matches("phy"));
    let (moved, out) = run_in(&ns, "iw", &[&phy_idx, "set", "netns", "1"]);
    if moved {
        let noticed = d.wait_exit(Duration::from_secs(4)).await;
        lab.t.check(
            "[E4] the daemon notices the phy left the box behind its back, releases, exits 1",
            noticed.is_some_and(|s| s.code() == Some(1)),
            describe(noticed),
        );
        lab.t.note(format!(
            "[E4] phy moved home from inside the box (`iw {phy_idx} set netns 1`): {sta} in host={}; daemon after 4 s: {}",
            in_host(&sta),
            describe(noticed)
        ));
    } else {
        lab.t.note(format!(
            "[E4] `iw {phy_idx} set netns 1` in the box failed: {}",
            out.trim()
        ));
    }
    if d.exited_now().is_none() {
        let was_home = in_host(&sta);
        let t0 = Instant::now();
        d.signal(nix::sys::signal::Signal::SIGTERM);
        let back = wait_iface(&sta, t0, Duration::from_secs(15)).await;
        if !was_home && let Some(b) = back {
            lab.t.time("E3 SIGTERM→home", ms(b));
        }
        let exit = d.wait_exit(Duration::from_secs(15)).await;
        lab.t.check(
            "[E3] stopped: exits 0",
            exit.is_some_and(|s| s.code() == Some(0)),
            format!("{}\n{}", describe(exit), d.log_tail(15)),
        );
        let _ = d
            .note(|m| m.contains("STOPPING=1"), Duration::from_secs(1))
            .await;
    } else {
        lab.t.note(format!(
            "[E4] daemon ended on its own: {}",
            describe(d.exited_now())
        ));
    }
    // Give a phy that returned on its own a moment.
    let _ = wait_iface(&sta, Instant::now(), Duration::from_secs(3)).await;
    lab.check_home("E3", &sta, &phy);
    lab.check_nothing_left("E3", &sta);
}

/// `iw dev STA del` inside the box of `bp`, checked: the phy stays in the box, bare.
fn delete_in_box(lab: &mut Lab, label: &str, bp: u32, sta: &str, phy: &str) -> bool {
    let ns = PathBuf::from(format!("/proc/{bp}/ns/net"));
    let (deleted, out) = run_in(&ns, "iw", &["dev", sta, "del"]);
    let (_, iw_box) = run_in(&ns, "iw", &["dev"]);
    let (_, phys_box) = run_in(&ns, "iw", &["phy"]);
    lab.t.check(
        &format!(
            "[{label}] `iw dev {sta} del` inside the box: {phy} stays in the box without an interface"
        ),
        deleted
            && !iw_box.contains(&format!("Interface {sta}"))
            && phys_box.contains(&format!("Wiphy {phy}"))
            && !in_host(sta)
            && !phy_in_host(phy),
        format!(
            "del ok={deleted} {}; iw dev in box:\n{}\nphys in box: {}",
            out.trim(),
            iw_box.trim(),
            phys_box
                .lines()
                .filter(|l| l.starts_with("Wiphy"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// The phy is home with a station interface under its original name, and the log says the
/// daemon created it.
fn check_recreated(lab: &mut Lab, label: &str, d: &Instance, sta: &str, phy: &str, how: &str) {
    let (_, info) = run_out("iw", &["dev", sta, "info"]);
    let phy_now = fs::read_to_string(format!("/sys/class/net/{sta}/phy80211/name"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    lab.t.check(
        &format!(
            "[{label}] {phy} came home ({how}) with a station interface under its original name {sta}"
        ),
        in_host(sta) && phy_now == phy && info.contains("type managed"),
        format!(
            "in host={} phy={phy_now:?}; iw dev {sta} info:\n{}\niw dev:\n{}",
            in_host(sta),
            info.trim(),
            iw_dev()
        ),
    );
    let log = d.log_text();
    let created = log
        .lines()
        .find(|l| l.contains("created a station interface"))
        .unwrap_or("")
        .to_string();
    lab.t.check(
        &format!("[{label}] the daemon's log says it created the interface"),
        !created.is_empty(),
        if created.is_empty() {
            d.log_tail(20)
        } else {
            created
        },
    );
}

/// Some drivers delete the interface when its namespace dies, and the phy comes home bare. F:
/// the interface is deleted inside the box (`iw dev STA del` in the box's netns) while the daemon
/// serves, then SIGTERM: the explicit return must create a station interface under the original
/// name. F2: the same, then the box dies (agent SIGKILLed): the kernel hands the bare phy home on
/// its own and the daemon must give it its interface back.
async fn scenario_iface_deleted_in_box(lab: &mut Lab) {
    let (sta, phy) = (lab.sta1.clone(), lab.phy1.clone());
    let (mut d, ok) = lab.start("F", &sta, &phy).await;
    if !ok {
        d.signal(nix::sys::signal::Signal::SIGKILL);
        return;
    }
    let Some(bp) = box_pid(&sta) else { return };
    delete_in_box(lab, "F", bp, &sta, &phy);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    lab.t.check(
        "[F] the daemon keeps serving with the interface gone (the phy is still in the box)",
        d.exited_now().is_none(),
        format!("{}\n{}", describe(d.exited_now()), d.log_tail(15)),
    );
    // SIGTERM: the timed return, exit 0, home down/no IPv4 on the phy, nothing left.
    lab.stop("F", &mut d, &sta, &phy).await;
    check_recreated(lab, "F", &d, &sta, &phy, "SIGTERM");

    let (mut d, ok) = lab.start("F2", &sta, &phy).await;
    if !ok {
        d.signal(nix::sys::signal::Signal::SIGKILL);
        return;
    }
    let Some(bp) = box_pid(&sta) else { return };
    delete_in_box(lab, "F2", bp, &sta, &phy);
    let t0 = Instant::now();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bp as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let back = wait_iface(&sta, t0, Duration::from_secs(10)).await;
    if let Some(b) = back {
        lab.t
            .time(&format!("F2 agent SIGKILL→{sta} re-created"), ms(b));
    }
    let exit = d.wait_exit(Duration::from_secs(15)).await;
    lab.t.check(
        "[F2] the daemon notices the box died and exits non-zero",
        exit.is_some_and(|s| s.code().is_some_and(|c| c != 0)),
        format!("{}\n{}", describe(exit), d.log_tail(20)),
    );
    check_recreated(lab, "F2", &d, &sta, &phy, "the box's netns died");
    if back.is_some() {
        lab.check_home("F2", &sta, &phy);
    }
    lab.check_nothing_left("F2", &sta);
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
