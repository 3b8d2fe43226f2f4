//! The scenarios A–F, each a function of the lab.

use super::*;

pub(crate) async fn scenario_mcp(lab: &mut Lab) {
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

pub(crate) async fn scenario_box_killed(lab: &mut Lab) {
    let (sta, phy) = (lab.sta1.clone(), lab.phy1.clone());
    let Some(mut d) = lab.start_up("B", &sta, &phy).await else {
        return;
    };
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

pub(crate) async fn scenario_daemon_killed(lab: &mut Lab) {
    let (sta, phy) = (lab.sta1.clone(), lab.phy1.clone());
    let Some(mut d) = lab.start_up("C1", &sta, &phy).await else {
        return;
    };
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

pub(crate) async fn scenario_unplug(lab: &mut Lab) {
    let (sta, phy) = (lab.sta2.clone(), lab.phy2.clone());
    let Some(mut d) = lab.start_up("D", &sta, &phy).await else {
        return;
    };
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
pub(crate) async fn refuse(args: &[&str]) -> (Option<i32>, String) {
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

pub(crate) async fn scenario_refusals(lab: &mut Lab) {
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
    let Some(mut d) = lab.start_up("E3", &sta, &phy).await else {
        return;
    };
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
pub(crate) fn delete_in_box(lab: &mut Lab, label: &str, bp: u32, sta: &str, phy: &str) -> bool {
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
pub(crate) fn check_recreated(
    lab: &mut Lab,
    label: &str,
    d: &Instance,
    sta: &str,
    phy: &str,
    how: &str,
) {
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
pub(crate) async fn scenario_iface_deleted_in_box(lab: &mut Lab) {
    let (sta, phy) = (lab.sta1.clone(), lab.phy1.clone());
    let Some(mut d) = lab.start_up("F", &sta, &phy).await else {
        return;
    };
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

    let Some(mut d) = lab.start_up("F2", &sta, &phy).await else {
        return;
    };
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
