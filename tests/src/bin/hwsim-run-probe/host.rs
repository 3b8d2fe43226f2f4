//! The host as seen from outside: links, phys, mounts, agents, state files, the box.

use super::*;

pub(crate) fn run_out(cmd: &str, args: &[&str]) -> (bool, String) {
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
pub(crate) fn iw_dev() -> String {
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

pub(crate) fn mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

pub(crate) fn in_host(iface: &str) -> bool {
    Path::new("/sys/class/net").join(iface).exists()
}

pub(crate) fn phy_in_host(phy: &str) -> bool {
    Path::new("/sys/class/ieee80211").join(phy).exists()
}

/// (is up, operstate)
pub(crate) fn link_state(iface: &str) -> (Option<bool>, String) {
    let flags = fs::read_to_string(format!("/sys/class/net/{iface}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .map(|f| f & 1 == 1);
    let oper = fs::read_to_string(format!("/sys/class/net/{iface}/operstate"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("? ({e})"));
    (flags, oper)
}

pub(crate) fn ipv4_of(iface: &str) -> String {
    run_out(IP, &["-4", "-o", "addr", "show", "dev", iface])
        .1
        .trim()
        .to_string()
}

/// Live `wifi-isolate-agent` processes (zombies listed apart).
pub(crate) fn agents() -> (Vec<u32>, Vec<u32>) {
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

pub(crate) fn pid_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Every path under `dir` (relative), for the record.
pub(crate) fn walk(dir: &Path) -> Vec<String> {
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

pub(crate) fn state_path(instance: &str) -> PathBuf {
    Path::new(ROOT)
        .join("state")
        .join(format!("{instance}.json"))
}

pub(crate) fn state(instance: &str) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(state_path(instance)).ok()?).ok()
}

pub(crate) fn netns_state_path(instance: &str) -> PathBuf {
    Path::new(ROOT)
        .join(".netns")
        .join(format!("{instance}.json"))
}

pub(crate) fn box_pid(instance: &str) -> Option<u32> {
    state(instance)?["box_pid"].as_u64().map(|p| p as u32)
}

/// Run a command inside the netns at `ns` (see [`shared::run_in_netns`]).
pub(crate) fn run_in(ns: &Path, cmd: &str, args: &[&str]) -> (bool, String) {
    shared::run_in_netns(ns, run_out, cmd, args)
}

/// Is `iface` (of `phy`) in the netns of `pid`? Returns (yes, what was seen).
pub(crate) fn in_box(pid: u32, iface: &str, phy: &str) -> (bool, String) {
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
