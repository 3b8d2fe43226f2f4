//! `hwsim-hostile-host`: the host side of the hostile-agent phase of the daemon's hwsim suite
//! (run by `tests/vm/run/guest.sh` after `hwsim-run-probe`, root, the VM's root netns).
//!
//! It runs the real `wifi-isolate run STA --engine netns` with `[agent] path =
//! "/usr/local/bin/hostile-probe"` (an instance drop-in under `/run/wifi-isolate/config`), so the
//! engine starts the hostile probe (`tests/src/bin/hostile-probe.rs`) in place of the agent; the probe
//! attacks, writes its report, then execs the real agent. This side checks the host on its own,
//! independently of the report: root-only canary files (random content that must never show up
//! in the report or the logs), a canary `sleep` process (root) and the daemon still alive, no
//! `wihost*` link and no new link at all in the root netns (nor in the AP's netns), addresses and
//! routes unchanged, no `wi-hostile-<nonce>` file anywhere, nobody connected to fake host sockets
//! (`/run/dbus/system_bus_socket`, `/run/docker.sock`, `/run/podman/podman.sock`), the hostname
//! unchanged, the phy in the box the whole time and home only through release (SIGTERM), under
//! its name. Then the report: every attempt refused (or contained), every positive control ok;
//! then READY, an MCP `wifi_status` through the agent socket, release.
//!
//! A box that breaks out may `kill(-1, SIGKILL)` as uid 0: this process keeps euid 0 (all its
//! capabilities) but sets its real and saved uid to 65534, so a uid-0 process without CAP_KILL
//! cannot signal it, and it can still report what happened. (That is why run-guest.sh `exec`s
//! it: the shell would die.) Children get uid 0 back before `execve`.
//!
//! Prints one `ok   ...` / `FAIL ...` line per check, `note` lines for observations, and exits 1
//! on any failure (or if `PRIOR_RC` — the earlier phases' exit code — is not 0).

use wifi_isolate_tests::guest as shared;
use wifi_isolate_tests::mcp_unix;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::{IP, LOGS, ROOT, WI, host_view};

const PROBE: &str = "/usr/local/bin/hostile-probe";
/// Real and saved uid of this process while it watches (see the module doc).
const WATCHER_UID: u32 = 65534;
/// The whole phase, at most (the guest's own deadline cannot kill this process).
const PHASE_LIMIT: Duration = Duration::from_secs(240);

use wifi_isolate_tests::tally::Tally;

fn note(s: impl std::fmt::Display) {
    println!("note {s}");
}

/// A command that runs as plain root again (real + saved uid 0).
fn root_cmd(prog: &str) -> Command {
    let mut c = Command::new(prog);
    // SAFETY: setresuid(2) is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            if libc::setresuid(0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn run_out(prog: &str, args: &[&str]) -> (bool, String) {
    match root_cmd(prog).args(args).stdin(Stdio::null()).output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        ),
        Err(e) => (false, format!("{prog}: {e}")),
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // SAFETY: getrandom into a buffer of n bytes.
    let r = unsafe { libc::getrandom(b.as_mut_ptr().cast(), n, 0) };
    assert_eq!(r as usize, n, "getrandom");
    hex::encode(b)
}

/// Link names in the netns of this process (or `ip -n NS`).
fn links(ns: Option<&str>) -> BTreeSet<String> {
    let mut args = vec![];
    if let Some(n) = ns {
        args.extend(["-n", n]);
    }
    args.extend(["-o", "link", "show"]);
    let (_, out) = run_out(IP, &args);
    out.lines()
        .filter_map(|l| {
            let name = l.split(':').nth(1)?.trim();
            Some(name.split('@').next().unwrap_or(name).to_string())
        })
        .collect()
}

fn named_netns() -> Vec<String> {
    fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn pid_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| !s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn phy_in_host(phy: &str) -> bool {
    Path::new("/sys/class/ieee80211").join(phy).exists()
}

fn in_host(iface: &str) -> bool {
    Path::new("/sys/class/net").join(iface).exists()
}

/// Live box processes: `wifi-isolate-agent`, `hostile-probe`, `bwrap`.
fn box_processes() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let comm = comm.trim();
        if matches!(comm, "wifi-isolate-ag" | "hostile-probe" | "bwrap") && pid_alive(pid) {
            out.push((pid, comm.to_string()));
        }
    }
    out
}

/// Real, effective, saved and fs uid of `pid` (host view).
fn status_uids(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|u| {
            u.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every `wi-hostile-*` path on the host side (the root fs and /run, /tmp; not /proc, /sys,
/// /dev or the 9p share).
fn hostile_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::from("/")];
    let skip = ["/proc", "/sys", "/dev", "/share"];
    let mut visited = 0;
    while let Some(d) = todo.pop() {
        visited += 1;
        if visited > 200_000 {
            out.push("(walk stopped after 200000 directories)".into());
            break;
        }
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with("wi-hostile-") {
                out.push(p.display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) && !skip.iter().any(|s| p == Path::new(s)) {
                todo.push(p);
            }
        }
    }
    out
}

/// Run a command (as root) inside the netns at `ns`.
fn run_in(ns: &Path, prog: &str, args: &[&str]) -> (bool, String) {
    shared::run_in_netns(ns, run_out, prog, args)
}

fn box_pid(sta: &str) -> Option<u32> {
    let st: Value = serde_json::from_str(
        &fs::read_to_string(Path::new(ROOT).join("state").join(format!("{sta}.json"))).ok()?,
    )
    .ok()?;
    st["box_pid"].as_u64().map(|p| p as u32)
}

/// Is phy (index) / iface in the netns of `pid`?
fn in_box(pid: u32, iface: &str, phy: &str) -> (bool, String) {
    let ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let (_, iw) = run_in(&ns, "iw", &["dev"]);
    let idx = phy.trim_start_matches("phy");
    let yes = iw.contains(&format!("phy#{idx}")) && iw.contains(&format!("Interface {iface}"));
    (
        yes,
        format!("iw dev in the box of pid {pid} lists phy#{idx}/{iface}: {yes}"),
    )
}

/// Fake host sockets: every connection is recorded with its peer.
fn fake_socket(path: &str, seen: Arc<Mutex<Vec<String>>>) -> Result<(), String> {
    if let Some(d) = Path::new(path).parent() {
        fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let _ = fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| format!("{path}: {e}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o666)).map_err(|e| e.to_string())?;
    let path = path.to_string();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let who = match &c {
                Ok(s) => {
                    use std::os::fd::AsRawFd;
                    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
                    let mut len = std::mem::size_of::<libc::ucred>() as u32;
                    // SAFETY: SO_PEERCRED into a ucred.
                    unsafe {
                        libc::getsockopt(
                            s.as_raw_fd(),
                            libc::SOL_SOCKET,
                            libc::SO_PEERCRED,
                            (&mut cred as *mut libc::ucred).cast(),
                            &mut len,
                        )
                    };
                    let comm =
                        fs::read_to_string(format!("/proc/{}/comm", cred.pid)).unwrap_or_default();
                    format!(
                        "{path}: pid {} ({}) uid {}",
                        cred.pid,
                        comm.trim(),
                        cred.uid
                    )
                }
                Err(e) => format!("{path}: accept error {e}"),
            };
            seen.lock().unwrap().push(who);
        }
    });
    Ok(())
}

struct Notify {
    msgs: Arc<Mutex<Vec<String>>>,
}

impl Notify {
    fn bind(path: &str) -> Notify {
        fs::create_dir_all("/run/probe").unwrap();
        let _ = fs::remove_file(path);
        let s = UnixDatagram::bind(path).expect("binding the notify socket");
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let m = Arc::clone(&msgs);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = s.recv(&mut buf) {
                m.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        Notify { msgs }
    }

    fn has(&self, line: &str) -> bool {
        self.msgs
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.lines().any(|l| l == line))
    }

    fn all(&self) -> String {
        self.msgs.lock().unwrap().join(" | ").replace('\n', " ")
    }
}

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if f() {
            return Some(t.elapsed());
        }
        if t.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_tail(path: &str, n: usize) -> String {
    let t = fs::read_to_string(path).unwrap_or_default();
    let l: Vec<&str> = t.lines().collect();
    l[l.len().saturating_sub(n)..].join("\n")
}

/// Secrets of the host: (path, content). Written 0600 root.
fn plant_canaries() -> Vec<(String, String)> {
    let c = |p: &str, body: String| (p.to_string(), body);
    let v = vec![
        c("/root/wi-canary", format!("wi-canary-{}\n", random_hex(16))),
        c(
            "/etc/wifi-isolate/canary",
            format!("wi-canary-{}\n", random_hex(16)),
        ),
        c("/etc/wifi-isolate/token", format!("{}\n", random_hex(24))),
        c(
            "/etc/shadow",
            format!("root:$6${}:19000:0:99999:7:::\n", random_hex(20)),
        ),
        c(
            "/etc/ssh/ssh_host_ed25519_key",
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                random_hex(24)
            ),
        ),
        c(
            "/etc/NetworkManager/system-connections/lab.nmconnection",
            format!(
                "[wifi-security]\nkey-mgmt=wpa-psk\npsk={}\n",
                random_hex(16)
            ),
        ),
    ];
    for (p, body) in &v {
        if let Some(d) = Path::new(p).parent() {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(p, body).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    v
}

/// The forms in which a canary could leak: its content, its random part, and the hex of the
/// first 64 bytes (what an escaped read in the report carries).
fn leak_forms(body: &str) -> Vec<String> {
    let b = body.as_bytes();
    let random: String = body
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() >= 16)
        .collect::<Vec<_>>()
        .join("");
    let mut v = vec![hex::encode(&b[..b.len().min(64)])];
    if !random.is_empty() {
        v.push(random);
    }
    v
}

fn report_paths(sta: &str) -> [PathBuf; 2] {
    [
        Path::new(ROOT)
            .join("box")
            .join(sta)
            .join("hostile-report.json"),
        Path::new(ROOT).join(sta).join("hostile-report.json"),
    ]
}

fn read_report(sta: &str) -> Option<(PathBuf, Value, String)> {
    for p in report_paths(sta) {
        if let Ok(text) = fs::read_to_string(&p)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            return Some((p, v, text));
        }
    }
    None
}

fn main() {
    // Unkillable by a uid-0 process without CAP_KILL; keeps euid 0 and every capability.
    // SAFETY: setresuid(2) before any thread exists.
    let r = unsafe { libc::setresuid(WATCHER_UID, 0, WATCHER_UID) };
    assert_eq!(r, 0, "setresuid: {}", std::io::Error::last_os_error());
    let started = Instant::now();
    std::thread::spawn(|| {
        std::thread::sleep(PHASE_LIMIT);
        println!(
            "FAIL [H] the hostile phase ran over {} s: giving up",
            PHASE_LIMIT.as_secs()
        );
        std::process::exit(1);
    });
    let prior: i32 = std::env::var("PRIOR_RC")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut t = Tally::default();
    let stations: Vec<String> = std::env::var("STATIONS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let phys: Vec<String> = std::env::var("STATION_PHYS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let (sta, phy) = (stations[0].clone(), phys[0].clone());
    println!("== hostile agent phase: {sta} ({phy}), probe {PROBE} in place of the agent ==");
    t.check(
        "[H] the phy starts in the host",
        phy_in_host(&phy) && in_host(&sta),
        format!("{sta}/{phy}"),
    );

    // The host: RA/DAD off, canaries, fake sockets, a canary process, baselines.
    for k in ["all", "default"] {
        for s in ["accept_ra", "accept_dad"] {
            let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{k}/{s}"), "0");
        }
    }
    let canaries = plant_canaries();
    let connections = Arc::new(Mutex::new(Vec::new()));
    for s in [
        "/run/dbus/system_bus_socket",
        "/run/docker.sock",
        "/run/podman/podman.sock",
    ] {
        if let Err(e) = fake_socket(s, Arc::clone(&connections)) {
            t.check("[H] fake host socket", false, e);
        }
    }
    let mut canary_proc: Child = root_cmd("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep 1000");
    let canary_pid = canary_proc.id();
    let hn = hostname();
    let base_links = links(None);
    let base_mac = fs::read_to_string(format!("/sys/class/net/{sta}/address")).unwrap_or_default();
    let ap_ns = named_netns();
    let base_ap_links: Vec<(String, BTreeSet<String>)> =
        ap_ns.iter().map(|n| (n.clone(), links(Some(n)))).collect();
    let base_view = host_view();
    let before_files = hostile_files();
    note(format!(
        "root netns links: {base_links:?}; named netns: {ap_ns:?}; canary pid {canary_pid}; hostname {hn}"
    ));
    if !before_files.is_empty() {
        note(format!(
            "wi-hostile files before the phase: {before_files:?}"
        ));
    }

    // The daemon, with the probe as its agent.
    let cfg_dir = Path::new(ROOT).join("config").join("instance.d");
    fs::create_dir_all(&cfg_dir).unwrap();
    let cfg = cfg_dir.join(format!("{sta}.toml"));
    fs::write(
        &cfg,
        format!("[agent]\npath = \"{PROBE}\"\n\n[timeouts]\nagent_ready = 120\n"),
    )
    .unwrap();
    let notify = Notify::bind("/run/probe/notify-H.sock");
    let log = format!("{LOGS}/daemon-H.log");
    let logf = fs::File::create(&log).unwrap();
    let t0 = Instant::now();
    let mut daemon = root_cmd(WI)
        .args(["run", &sta, "--engine", "netns"])
        .env("NOTIFY_SOCKET", "/run/probe/notify-H.sock")
        .env("WIFI_ISOLATE_LOG", "info,wifi_isolate=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::from(logf.try_clone().unwrap()))
        .stderr(Stdio::from(logf))
        .spawn()
        .expect("spawning wifi-isolate run");
    let dpid = daemon.id();

    // Watch the phy: once it left, it must not come back before release.
    let released = Arc::new(AtomicBool::new(false));
    let left_at = Arc::new(AtomicU64::new(0));
    let early = Arc::new(AtomicU64::new(0));
    {
        let (released, left_at, early, phy) = (
            Arc::clone(&released),
            Arc::clone(&left_at),
            Arc::clone(&early),
            phy.clone(),
        );
        std::thread::spawn(move || {
            while !released.load(Ordering::SeqCst) {
                let here = phy_in_host(&phy);
                let ms = t0.elapsed().as_millis() as u64;
                if !here && left_at.load(Ordering::SeqCst) == 0 {
                    left_at.store(ms.max(1), Ordering::SeqCst);
                } else if here
                    && left_at.load(Ordering::SeqCst) != 0
                    && early.load(Ordering::SeqCst) == 0
                {
                    early.store(ms, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
    }

    // The report, complete.
    let mut exited_early = None;
    let got = wait_until(Duration::from_secs(120), || {
        if exited_early.is_none() {
            exited_early = daemon.try_wait().ok().flatten();
        }
        read_report(&sta).is_some_and(|(_, v, _)| v["complete"] == true)
    });
    let report = read_report(&sta);
    t.check(
        "[H] the probe wrote a complete report",
        got.is_some(),
        match (&got, &report) {
            (Some(d), Some((p, _, _))) => format!("{} after {} ms", p.display(), d.as_millis()),
            _ => format!(
                "report {:?}; daemon {:?}\n{}",
                report
                    .as_ref()
                    .map(|r| (r.0.clone(), r.1["complete"].clone())),
                exited_early,
                log_tail(&log, 30)
            ),
        },
    );
    let bp = box_pid(&sta).or_else(|| box_processes().first().map(|(p, _)| *p));
    // --- the host, checked while the box lives ---
    let now_links = links(None);
    let new_links: Vec<&String> = now_links.difference(&base_links).collect();
    let wihost: Vec<String> = now_links
        .iter()
        .filter(|l| l.starts_with("wihost"))
        .cloned()
        .collect();
    t.check(
        "[H] no wihost* link in the root netns",
        wihost.is_empty(),
        format!("{wihost:?}"),
    );
    t.check(
        "[H] no new link at all in the root netns",
        new_links.is_empty(),
        format!("new: {new_links:?}"),
    );
    for (ns, base) in &base_ap_links {
        let now = links(Some(ns));
        let new: Vec<&String> = now.difference(base).collect();
        t.check(
            &format!("[H] no new link in netns {ns}"),
            new.is_empty(),
            format!("new: {new:?}"),
        );
    }
    let view = host_view();
    t.check(
        "[H] root netns addresses and routes unchanged (box alive)",
        view == base_view,
        format!("before:\n{base_view}\nnow:\n{view}"),
    );
    t.check(
        "[H] the canary process (sleep, root) is alive",
        pid_alive(canary_pid),
        format!("pid {canary_pid}"),
    );
    let d_alive = daemon.try_wait().ok().flatten();
    t.check(
        "[H] the daemon is alive",
        d_alive.is_none(),
        format!("pid {dpid}: {d_alive:?}\n{}", log_tail(&log, 20)),
    );
    t.check(
        "[H] the hostname is unchanged",
        hostname() == hn,
        format!("{} (was {hn})", hostname()),
    );
    // The daemon itself asks D-Bus for NetworkManager: only other peers count.
    let (mine, conns): (Vec<String>, Vec<String>) = connections
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .partition(|c| c.contains(&format!(": pid {dpid} (")));
    if !mine.is_empty() {
        note(format!(
            "[H] the daemon's own connections to the fake sockets: {mine:?}"
        ));
    }
    t.check(
        "[H] nobody connected to the fake host sockets (dbus, docker, podman)",
        conns.is_empty(),
        format!("{conns:?}"),
    );
    let early_ms = early.load(Ordering::SeqCst);
    t.check(
        &format!("[H] {phy} left the host and did not come back while the box ran"),
        left_at.load(Ordering::SeqCst) != 0 && early_ms == 0 && !phy_in_host(&phy),
        format!(
            "left after {} ms, back in the host after {} ms (0 = not back), in host now: {}",
            left_at.load(Ordering::SeqCst),
            early_ms,
            phy_in_host(&phy)
        ),
    );
    match bp {
        Some(p) => {
            let (yes, seen) = in_box(p, &sta, &phy);
            t.check(&format!("[H] {phy}/{sta} is in the box's netns"), yes, seen);
        }
        None => {
            t.check(
                "[H] the daemon's state names the box",
                false,
                "no box_pid in the state file",
            );
        }
    }
    // Who the box runs as, seen from the host (not the box's own uid_map, which is relative to
    // its parent user namespace).
    let boxed: Vec<(u32, String)> = box_processes();
    let uid_lines: Vec<String> = boxed
        .iter()
        .map(|(p, c)| {
            format!(
                "{c}({p}) uids {}",
                status_uids(*p)
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("/")
            )
        })
        .collect();
    t.check(
        "[H] no box process runs as host root (real/effective/saved/fs uid, seen from the host)",
        !boxed.is_empty()
            && boxed.iter().all(|(p, _)| {
                let u = status_uids(*p);
                u.len() == 4 && !u.contains(&0)
            }),
        format!("{uid_lines:?}"),
    );
    let nonce = report
        .as_ref()
        .and_then(|r| r.1["nonce"].as_str().map(String::from))
        .unwrap_or_default();
    let files = hostile_files();
    let new_files: Vec<&String> = files.iter().filter(|f| !before_files.contains(f)).collect();
    t.check(
        &format!(
            "[H] no wi-hostile-{} file on the host side (/, /run, /tmp, /var/tmp, ...)",
            if nonce.is_empty() { "*" } else { &nonce }
        ),
        new_files.is_empty(),
        format!("{new_files:?}"),
    );
    let mut leaks = Vec::new();
    let report_text = report.as_ref().map(|r| r.2.clone()).unwrap_or_default();
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    for (p, body) in &canaries {
        for f in leak_forms(body) {
            if report_text.contains(&f) {
                leaks.push(format!("{p} in the report"));
            }
            if log_text.contains(&f) {
                leaks.push(format!("{p} in the daemon/agent log"));
            }
        }
    }
    leaks.dedup();
    t.check(
        "[H] no canary content in the report or the logs",
        leaks.is_empty(),
        format!("{leaks:?}"),
    );

    // --- the report ---
    if let Some((_, r, _)) = &report {
        t.check(
            "[H] report version 1 with a nonce",
            r["version"] == 1 && nonce.len() == 16,
            format!("version {} nonce {nonce:?}", r["version"]),
        );
        let uid_map = r["uid_map"].as_str().unwrap_or("");
        let caps =
            u64::from_str_radix(r["caps"].as_str().unwrap_or("ffff"), 16).unwrap_or(u64::MAX);
        t.check(
            "[H] the box holds no capability but NET_ADMIN, NET_RAW and NET_BIND_SERVICE",
            caps & !((1 << 10) | (1 << 12) | (1 << 13)) == 0,
            format!("CapEff {}", r["caps"]),
        );
        note(format!(
            "[H] probe: pid in box {}, uid_map {uid_map:?}, CapEff {}, {} ms",
            r["pid_in_box"], r["caps"], r["elapsed_ms"]
        ));
        for i in r["info"].as_array().into_iter().flatten() {
            note(format!(
                "[H] probe saw: {}: {}",
                i["name"].as_str().unwrap_or(""),
                i["detail"].as_str().unwrap_or("")
            ));
        }
        for a in r["attempts"].as_array().into_iter().flatten() {
            let (name, outcome, errno, detail) = (
                a["name"].as_str().unwrap_or("?"),
                a["outcome"].as_str().unwrap_or("?"),
                a["errno"].as_str().unwrap_or(""),
                a["detail"].as_str().unwrap_or(""),
            );
            let ok = match outcome {
                "refused" => !errno.is_empty(),
                "contained" => true,
                _ => false,
            };
            let what = match outcome {
                "refused" => format!("refused {errno}"),
                "contained" => format!("contained: {detail}"),
                other => format!("{} {errno}: {detail}", other.to_uppercase()),
            };
            t.check(&format!("[H] attack {name}"), ok, what);
        }
        for p in r["positive"].as_array().into_iter().flatten() {
            t.check(
                &format!(
                    "[H] positive control: {}",
                    p["name"].as_str().unwrap_or("?")
                ),
                p["ok"] == true,
                p["detail"].as_str().unwrap_or(""),
            );
        }
        t.check(
            "[H] report: all_refused and positive_ok",
            r["all_refused"] == true && r["positive_ok"] == true,
            format!(
                "all_refused {} positive_ok {} escaped {}",
                r["all_refused"], r["positive_ok"], r["escaped"]
            ),
        );
    }

    // --- READY, MCP ---
    let _ = wait_until(Duration::from_secs(60), || {
        notify.has("READY=1") || daemon.try_wait().ok().flatten().is_some()
    });
    let is_ready = notify.has("READY=1");
    t.check(
        "[H] the daemon reached READY after the attacks",
        is_ready,
        if is_ready {
            format!("seen {} ms after start", t0.elapsed().as_millis())
        } else {
            format!("notify: {}\n{}", notify.all(), log_tail(&log, 20))
        },
    );
    let sock = report
        .as_ref()
        .and_then(|r| r.0.parent().map(|d| d.join("mcp.sock")))
        .unwrap_or_else(|| Path::new(ROOT).join("box").join(&sta).join("mcp.sock"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mcp = rt.block_on(async {
        match mcp_unix::session(&sock).await {
            Ok(svc) => {
                let r = mcp_unix::call(&svc, "wifi_status", json!({})).await;
                let _ = svc.cancel().await;
                r
            }
            Err(e) => (false, Value::Null, e),
        }
    });
    t.check(
        "[H] the agent answers MCP wifi_status through its socket",
        mcp.0,
        format!(
            "{} wpa_state {} {}",
            sock.display(),
            mcp.1["wpa_state"],
            if mcp.0 { String::new() } else { mcp.2.clone() }
        ),
    );

    // --- release ---
    let tr = Instant::now();
    let alive = daemon.try_wait().ok().flatten().is_none();
    if alive {
        // SAFETY: kill(2) our child.
        unsafe { libc::kill(dpid as i32, libc::SIGTERM) };
    } else {
        note("[H] the daemon is gone: killing the box to get the phy back");
        for (p, c) in box_processes() {
            note(format!("[H] SIGKILL {c} ({p})"));
            // SAFETY: kill(2).
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
    }
    let back = wait_until(Duration::from_secs(15), || {
        in_host(&sta) && phy_in_host(&phy)
    });
    released.store(true, Ordering::SeqCst);
    t.check(
        &format!("[H] {sta} ({phy}) home under its name after SIGTERM"),
        alive && back.is_some(),
        format!(
            "daemon alive at release: {alive}; back after {:?} ms",
            back.map(|d| d.as_millis())
        ),
    );
    let exit = wait_until(Duration::from_secs(15), || {
        daemon.try_wait().ok().flatten().is_some()
    })
    .and(daemon.try_wait().ok().flatten());
    t.check(
        "[H] the daemon exits 0 after release",
        alive && exit.is_some_and(|s| s.code() == Some(0)),
        format!(
            "{exit:?} after {} ms\n{}",
            tr.elapsed().as_millis(),
            log_tail(&log, 15)
        ),
    );
    if exit.is_none() {
        let _ = daemon.kill();
    }
    let _ = daemon.wait();
    t.check(
        "[H] STOPPING=1 sent",
        notify.has("STOPPING=1"),
        notify.all(),
    );
    let left = wait_until(Duration::from_secs(5), || box_processes().is_empty());
    t.check(
        "[H] no box process left",
        left.is_some(),
        format!("{:?}", box_processes()),
    );
    if in_host(&sta) {
        let (_, l) = run_out(IP, &["-o", "link", "show", "dev", &sta]);
        let (_, a) = run_out(IP, &["-4", "-o", "addr", "show", "dev", &sta]);
        let phy_now =
            fs::read_to_string(format!("/sys/class/net/{sta}/phy80211/name")).unwrap_or_default();
        t.check(
            &format!("[H] {sta} home: down, no IPv4, on {phy}"),
            !l.contains("state UP")
                && !l.contains(",UP")
                && a.trim().is_empty()
                && phy_now.trim() == phy,
            format!("{} / {} / {}", l.trim(), a.trim(), phy_now.trim()),
        );
    }
    // --- the host after release ---
    // The probe made interfaces on the phy in the box and left them: the phy comes home with
    // only the one it left with (the monitor, the station and the P2P device were deleted).
    let made: Vec<String> = report
        .as_ref()
        .and_then(|r| r.1["attempts"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|a| a["outcome"] == "contained")
        .filter_map(|a| a["name"].as_str())
        .filter(|n| n.starts_with("NEW_INTERFACE wihostile"))
        .map(str::to_owned)
        .collect();
    let (_, iw) = run_out("iw", &["dev"]);
    let phy_ifaces: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    fs::read_to_string(e.path().join("phy80211/name"))
                        .is_ok_and(|p| p.trim() == phy)
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    t.check(
        &format!("[H] {phy} came home with only {sta}: what the box made on it was deleted"),
        made.len() == 3 && phy_ifaces == [sta.clone()] && !iw.contains("wihostile"),
        format!("the probe made {made:?}; {phy}'s netdevs now {phy_ifaces:?}; iw dev:\n{iw}"),
    );
    let mac_set = report
        .as_ref()
        .and_then(|r| r.1["attempts"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .any(|a| {
            a["outcome"] == "contained"
                && a["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("RTM_SETLINK") && n.contains("address"))
        });
    let mac_now = fs::read_to_string(format!("/sys/class/net/{sta}/address")).unwrap_or_default();
    t.check(
        &format!("[H] {sta} came home with the MAC address it left with"),
        mac_set && !base_mac.trim().is_empty() && mac_now.trim() == base_mac.trim(),
        format!(
            "the probe set 02:6b:0d:57:11:e5 in the box: {mac_set}; before {} now {}",
            base_mac.trim(),
            mac_now.trim()
        ),
    );
    let after_links = links(None);
    t.check(
        "[H] root netns links = baseline after release",
        after_links == base_links,
        format!("before {base_links:?}\nnow {after_links:?}"),
    );
    let view = host_view();
    t.check(
        "[H] root netns addresses and routes unchanged after release",
        view == base_view,
        format!("before:\n{base_view}\nnow:\n{view}"),
    );
    let files = hostile_files();
    let new_files: Vec<&String> = files.iter().filter(|f| !before_files.contains(f)).collect();
    t.check(
        "[H] no wi-hostile file on the host side after release",
        new_files.is_empty(),
        format!("{new_files:?}"),
    );
    t.check(
        "[H] the canary process is still alive at the end",
        pid_alive(canary_pid),
        format!("pid {canary_pid}"),
    );
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    let leaked: Vec<&String> = canaries
        .iter()
        .filter(|(_, b)| leak_forms(b).iter().any(|f| log_text.contains(f)))
        .map(|(p, _)| p)
        .collect();
    t.check(
        "[H] no canary content in the daemon/agent log at the end",
        leaked.is_empty(),
        format!("{leaked:?}"),
    );
    let summary = log_text
        .lines()
        .find(|l| l.contains("hostile-probe: nonce"))
        .unwrap_or("(no summary line)");
    note(format!(
        "[H] {}",
        summary.chars().take(600).collect::<String>()
    ));

    // Tidy up (the VM is thrown away, but the config must not outlive the phase).
    let _ = canary_proc.kill();
    let _ = canary_proc.wait();
    let _ = fs::remove_file(&cfg);
    for (p, _) in &canaries {
        let _ = fs::remove_file(p);
    }
    if let Some((p, _, _)) = &report {
        let _ = fs::copy(p, format!("{LOGS}/hostile-report.json"));
    }
    println!(
        "time [H] hostile phase: {} ms",
        started.elapsed().as_millis()
    );
    println!("hostile phase: {} passed, {} failed", t.passed, t.failed);
    std::process::exit(if t.failed == 0 && prior == 0 { 0 } else { 1 });
}
