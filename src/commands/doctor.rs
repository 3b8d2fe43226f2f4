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
