//! `wifi-isolate doctor`: check everything isolation needs, and say how to fix what is missing.

use std::path::Path;
use std::process::ExitCode;

use crate::host::config::Settings;
use crate::host::nm::{NetworkManager, NmError};
use crate::host::wiphy::{Nl80211, Wiphys};

struct Report {
    failures: u32,
}

impl Report {
    fn ok(&mut self, what: &str, detail: impl std::fmt::Display) {
        println!("ok    {what}: {detail}");
    }
    fn warn(&mut self, what: &str, detail: impl std::fmt::Display, fix: &str) {
        println!("warn  {what}: {detail}\n      fix: {fix}");
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display, fix: &str) {
        self.failures += 1;
        println!("FAIL  {what}: {detail}\n      fix: {fix}");
    }
}

fn first_existing<'a>(paths: &[&'a str]) -> Option<&'a str> {
    paths.iter().copied().find(|p| Path::new(p).exists())
}

/// The oldest bubblewrap the netns box is built for (`--add-seccomp-fd`, `--info-fd`,
/// `--as-pid-1`, `--remount-ro`; Debian 12 ships 0.8.0).
const BWRAP_MIN: (u32, u32) = (0, 8);

/// `bubblewrap 0.8.0` → `(0, 8)`.
fn bwrap_version(text: &str) -> Option<(u32, u32)> {
    let v = text.split_whitespace().nth(1)?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Who else already uses `uid` on this host: a user in /etc/passwd, a range in /etc/subuid.
fn box_uid_users(uid: u32, passwd: &str, subuid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for l in passwd.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 2 && f[2].parse() == Ok(uid) {
            found.push(format!("user {} (/etc/passwd)", f[0]));
        }
    }
    for l in subuid.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if let (Some(name), Some(Ok(start)), Some(Ok(count))) = (
            f.first(),
            f.get(1).map(|v| v.parse::<u64>()),
            f.get(2).map(|v| v.parse::<u64>()),
        ) && (start..start + count).contains(&u64::from(uid))
        {
            found.push(format!("{name}'s subordinate uids (/etc/subuid)"));
        }
    }
    found
}

/// The netns engine's sandbox: bubblewrap, a user namespace root can create, an unused box uid.
/// Failures count only when the configuration picks the netns engine (with `auto` it is the
/// fallback without podman/docker): otherwise they are warnings.
async fn netns_sandbox(r: &mut Report, settings: &Settings) {
    use crate::host::config::EngineChoice;
    let needed = settings.engine.kind == EngineChoice::Netns;
    let problem = |r: &mut Report, what: &str, detail: String, fix: &str| {
        if needed {
            r.fail(what, detail, fix)
        } else {
            r.warn(
                what,
                format!("{detail} (needed by the netns engine only)"),
                fix,
            )
        }
    };
    let install = "apt-get install bubblewrap (Debian/Ubuntu) or dnf install bubblewrap";
    match crate::host::engine::sandbox::find_bwrap() {
        Err(e) => problem(r, "bubblewrap", e.to_string(), install),
        Ok(bwrap) => {
            let out = tokio::process::Command::new(&bwrap)
                .arg("--version")
                .output()
                .await;
            let text = out
                .as_ref()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            match bwrap_version(&text) {
                Some(v) if v >= BWRAP_MIN => r.ok(
                    "bubblewrap",
                    format!("{} ({text}): the netns box runs in it", bwrap.display()),
                ),
                Some(_) => problem(
                    r,
                    "bubblewrap",
                    format!(
                        "{} is {text}; the netns box needs {}.{} or newer",
                        bwrap.display(),
                        BWRAP_MIN.0,
                        BWRAP_MIN.1
                    ),
                    install,
                ),
                None => problem(
                    r,
                    "bubblewrap",
                    format!(
                        "{} --version said {text:?} ({:?})",
                        bwrap.display(),
                        out.err()
                    ),
                    install,
                ),
            }
        }
    }
    let uid = settings.engine.box_uid;
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let sysctl_fix = "sysctl -w user.max_user_namespaces=15000 (and set it in /etc/sysctl.d/)";
    if max == Some(0) {
        problem(
            r,
            "user namespaces",
            "user.max_user_namespaces is 0: the netns box gets its own user namespace".into(),
            sysctl_fix,
        );
    } else if nix::unistd::Uid::effective().is_root() {
        // The real thing: the namespace the engine makes, box root mapped to the box uid.
        match tokio::task::spawn_blocking(move || crate::host::engine::sandbox::UserNs::create(uid))
            .await
        {
            Ok(Ok(_)) => r.ok(
                "user namespaces",
                format!(
                    "root can create the box's (box root = host uid {uid}, engine.box_uid); \
                     max_user_namespaces {}",
                    max.map_or("?".into(), |m| m.to_string())
                ),
            ),
            Ok(Err(e)) => problem(r, "user namespaces", e.to_string(), sysctl_fix),
            Err(e) => problem(r, "user namespaces", e.to_string(), sysctl_fix),
        }
    } else {
        r.warn(
            "user namespaces",
            format!(
                "not checked (not root); max_user_namespaces {}",
                max.map_or("?".into(), |m| m.to_string())
            ),
            "sudo wifi-isolate doctor",
        );
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let users = box_uid_users(uid, &passwd, &subuid);
    if users.is_empty() {
        r.ok(
            "box uid",
            format!("{uid} (engine.box_uid) belongs to no user or subordinate range"),
        );
    } else {
        r.warn(
            "box uid",
            format!(
                "{uid} (engine.box_uid) is also {}: a box could touch that user's files and processes",
                users.join(", ")
            ),
            "set engine.box_uid to an unused uid in /etc/wifi-isolate/config.toml",
        );
    }
}

/// Run every check; exit 1 if any failed.
pub async fn exec() -> ExitCode {
    let mut r = Report { failures: 0 };
    if nix::unistd::Uid::effective().is_root() {
        r.ok("privileges", "running as root");
    } else {
        r.warn(
            "privileges",
            "not root: some checks cannot see everything",
            "sudo wifi-isolate doctor",
        );
    }
    // Kernel wireless stack and adapters.
    let phys: Vec<String> = std::fs::read_dir("/sys/class/ieee80211")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    if !Path::new("/sys/class/ieee80211").exists() {
        r.fail(
            "kernel nl80211",
            "no /sys/class/ieee80211: this kernel has no wireless stack (cfg80211)",
            "modprobe cfg80211 (or use a kernel with wireless support)",
        );
    } else if phys.is_empty() {
        r.warn(
            "adapters",
            "no wireless adapter found",
            "plug in a WiFi card; for a lab: modprobe mac80211_hwsim radios=2",
        );
    }
    let wiphys = Nl80211::new();
    let mut sorted = phys.clone();
    sorted.sort();
    for phy in &sorted {
        match wiphys.resolve(phy).await {
            Ok(w) => {
                let ifaces: Vec<_> = w.ifaces.iter().map(|i| i.name.as_str()).collect();
                let detail = format!(
                    "{} interfaces {:?}, driver {}, {}",
                    w.name,
                    ifaces,
                    w.driver.as_deref().unwrap_or("?"),
                    w.pci_path.as_deref().unwrap_or("no device path")
                );
                if w.netns_ok {
                    r.ok(
                        &format!("adapter {phy}"),
                        format!("{detail}; can change namespace"),
                    );
                } else {
                    r.fail(
                        &format!("adapter {phy}"),
                        format!("{detail}; its driver cannot change network namespace"),
                        "this adapter cannot be isolated; use another card",
                    );
                }
                match crate::host::rfkill::state(phy) {
                    Some((_, true)) => r.fail(
                        &format!("rfkill {phy}"),
                        "hard-blocked",
                        "flip the hardware WiFi switch / check the BIOS",
                    ),
                    Some((true, false)) => r.warn(
                        &format!("rfkill {phy}"),
                        "soft-blocked (run unblocks it)",
                        &format!("rfkill unblock $(cat /sys/class/ieee80211/{phy}/rfkill*/index)"),
                    ),
                    _ => r.ok(&format!("rfkill {phy}"), "not blocked"),
                }
            }
            Err(e) => r.fail(
                &format!("adapter {phy}"),
                e,
                "check `iw phy` and the kernel log",
            ),
        }
    }
    // NetworkManager.
    let nm = super::run::MaybeNm::system().await;
    match nm.version().await {
        Ok(v) => r.ok("NetworkManager", format!("running, version {v}")),
        Err(NmError::NotRunning) => r.ok("NetworkManager", "not running (nothing to unmanage)"),
        Err(e) => r.warn("NetworkManager", e, "systemctl status NetworkManager"),
    }
    // Engines.
    let settings = match Settings::load("doctor") {
        Ok((s, files)) => {
            r.ok(
                "configuration",
                format!("{} file(s) {:?}", files.len(), files),
            );
            s
        }
        Err(e) => {
            r.fail("configuration", &e, "fix the file it names");
            Settings::default()
        }
    };
    for (name, sock, fix) in [
        (
            "podman",
            &settings.engine.podman_socket,
            "systemctl enable --now podman.socket",
        ),
        (
            "docker",
            &settings.engine.docker_socket,
            "systemctl enable --now docker.socket",
        ),
    ] {
        match crate::host::engine::select(
            name,
            &settings.engine.podman_socket,
            &settings.engine.docker_socket,
        )
        .await
        {
            Ok(_) => r.ok(
                &format!("engine {name}"),
                format!("answers on {}", sock.display()),
            ),
            Err(e) => r.warn(&format!("engine {name}"), e, fix),
        }
    }
    if settings.agent.path.is_file() {
        r.ok(
            "agent",
            format!(
                "{} (used by the netns engine)",
                settings.agent.path.display()
            ),
        );
    } else {
        r.fail(
            "agent",
            format!("{} missing", settings.agent.path.display()),
            "reinstall the wifi-isolate package",
        );
    }
    netns_sandbox(&mut r, &settings).await;
    for w in ["wpa_supplicant", "busybox"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(w).is_file()))
            .unwrap_or(false);
        if found {
            r.ok(w, "found (the netns engine runs it from the host)");
        } else {
            r.warn(
                w,
                "not found: the built-in netns engine needs it",
                &format!(
                    "apt-get install {}",
                    if w == "busybox" {
                        "busybox-static"
                    } else {
                        "wpasupplicant"
                    }
                ),
            );
        }
    }
    // Units, udev, group.
    match first_existing(&[
        "/usr/lib/systemd/system/wifi-isolate@.service",
        "/lib/systemd/system/wifi-isolate@.service",
        "/etc/systemd/system/wifi-isolate@.service",
    ]) {
        Some(p) => r.ok("systemd units", p),
        None => r.warn(
            "systemd units",
            "wifi-isolate@.service not installed",
            "install the wifi-isolate package",
        ),
    }
    match first_existing(&[
        "/usr/lib/udev/rules.d/82-wifi-isolate.rules",
        "/lib/udev/rules.d/82-wifi-isolate.rules",
        "/etc/udev/rules.d/82-wifi-isolate.rules",
    ]) {
        Some(p) => r.ok("udev rule", p),
        None => r.warn(
            "udev rule",
            "82-wifi-isolate.rules not installed",
            "install the wifi-isolate package",
        ),
    }
    let enabled: Vec<String> = crate::host::udev::enabled(Path::new(crate::host::udev::RULES_DIR))
        .into_iter()
        .map(|(iface, _)| iface)
        .collect();
    if enabled.is_empty() {
        r.ok(
            "enabled adapters",
            "none (wifi-isolate enable IFACE isolates one whenever it appears)",
        );
    } else {
        r.ok("enabled adapters", enabled.join(", "));
    }
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    if group.lines().any(|l| l.starts_with("wifi-isolate:")) {
        r.ok(
            "group",
            "wifi-isolate exists (members may use the MCP sockets)",
        );
    } else {
        r.warn(
            "group",
            "no wifi-isolate group",
            "systemd-sysusers (or: groupadd --system wifi-isolate)",
        );
    }
    println!("\n{} failure(s)", r.failures);
    if r.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bwrap_versions() {
        assert_eq!(bwrap_version("bubblewrap 0.8.0"), Some((0, 8)));
        assert_eq!(bwrap_version("bubblewrap 0.11.0\n"), Some((0, 11)));
        assert!(bwrap_version("bubblewrap 0.4.1").unwrap() < BWRAP_MIN);
        assert!(bwrap_version("bubblewrap 0.11.0").unwrap() >= BWRAP_MIN);
        assert_eq!(bwrap_version(""), None);
        assert_eq!(bwrap_version("bwrap: unknown option"), None);
    }

    #[test]
    fn finds_who_else_has_the_box_uid() {
        let passwd = "root:x:0:0::/root:/bin/sh\nodd:x:1878982656:100::/:/bin/sh\n";
        let subuid = "alice:100000:65536\nbig:1878900000:100000\n";
        let found = box_uid_users(1_878_982_656, passwd, subuid);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("user odd"), "{found:?}");
        assert!(found[1].contains("big"), "{found:?}");
        assert!(
            box_uid_users(
                1_878_982_656,
                "root:x:0:0::/root:/bin/sh\n",
                "alice:100000:65536\n"
            )
            .is_empty()
        );
        assert!(box_uid_users(5, "garbage\n::\n", "x:y:z\n").is_empty());
    }
}
