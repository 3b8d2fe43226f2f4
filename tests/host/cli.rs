//! The command-line surface on this host (a kernel without wireless support): help texts,
//! `status` and `doctor` output, and refusals that change nothing.

use wifi_isolate_tests::env as common;

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(common::bin(bin))
        .args(args)
        .env("WIFI_ISOLATE_LOG", "info")
        .output()
        .expect("running the binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_texts_document_commands_exit_codes_and_files() {
    let (code, out, _) = run("wifi-isolate", &["--help"]);
    assert_eq!(code, Some(0));
    for needle in [
        "run",
        "status",
        "doctor",
        "connect",
        "78",
        "journalctl",
        "/etc/wifi-isolate",
    ] {
        assert!(out.contains(needle), "--help lacks {needle:?}:\n{out}");
    }
    let (code, out, _) = run("wifi-isolate", &["run", "--help"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("--engine") && out.contains("--listen"),
        "{out}"
    );
    let (code, out, _) = run("wifi-isolate-agent", &["--help"]);
    assert_eq!(code, Some(0));
    for needle in [
        "wifi_connect",
        "--listen",
        "--stdio",
        "--country",
        "whole host",
    ] {
        assert!(
            out.contains(needle),
            "agent --help lacks {needle:?}:\n{out}"
        );
    }
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let (code, _, err) = run("wifi-isolate-agent", &["--listen", "tcp:0.0.0.0:80"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("unix:PATH"), "{err}");
    let (code, _, err) = run("wifi-isolate-agent", &["--stdio", "--country", "germany"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("upper-case ISO 3166-1 letters"), "{err}");
    let (code, _, err) = run(
        "wifi-isolate",
        &["run", "wlan0", "--listen", "tcp:0.0.0.0:8080"],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("not loopback"), "{err}");
}

#[test]
fn run_without_a_wireless_stack_exits_78_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    for iface in ["wlan0", "lo"] {
        let (code, _, err) = run(
            "wifi-isolate",
            &["run", iface, "--engine", "netns", "--runtime-root", r],
        );
        assert_eq!(code, Some(78), "{iface}: {err}");
        assert!(err.contains("no wireless support"), "{iface}: {err}");
        assert!(
            !root.path().join(format!("{iface}.sock")).exists(),
            "socket left behind"
        );
        assert!(
            !root
                .path()
                .join("state")
                .join(format!("{iface}.json"))
                .exists(),
            "state left behind"
        );
    }
    let (code, out, _) = run("wifi-isolate", &["status", "--runtime-root", r]);
    assert_eq!(code, Some(0));
    assert!(out.contains("no isolated adapters"), "{out}");
}

/// The signals are armed before the first step: a SIGTERM while `run` is still resolving
/// (held there by the test pause) is a clean stop — exit 0 at once, the hold written, nothing
/// else left. A malformed pause is refused with 78.
#[test]
fn a_stop_before_the_first_step_is_a_clean_stop() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let child = Command::new(common::bin("wifi-isolate"))
        .args(["run", "wlan0", "--engine", "netns", "--runtime-root", r])
        .env("WIFI_ISOLATE_LOG", "info")
        .env("WIFI_ISOLATE_PAUSE_AT", "resolve:60000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until the pause is reached (the runtime dir's lock exists by then).
    let lock = root.path().join("state/wlan0.lock");
    for _ in 0..500 {
        if lock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert!(err.contains("SIGTERM: releasing"), "{err}");
    assert!(err.contains("stopped before anything was changed"), "{err}");
    assert!(root.path().join("hold/wlan0").exists(), "held");
    assert!(!root.path().join("state/wlan0.json").exists(), "no state");
    assert!(
        !root.path().join("wlan0.sock").exists(),
        "own socket removed"
    );

    let out = Command::new(common::bin("wifi-isolate"))
        .args(["run", "wlan0", "--engine", "netns", "--runtime-root", r])
        .env("WIFI_ISOLATE_PAUSE_AT", "resolve:soon")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("WIFI_ISOLATE_PAUSE_AT"), "{err}");
}

#[test]
fn status_reports_an_instance_and_exits_3_for_an_unknown_one() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let (code, out, _) = run("wifi-isolate", &["status", "wlan9", "--runtime-root", r]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("not isolated"), "{out}");
    // A recorded isolation whose daemon is this test process and whose agent is not there.
    std::fs::create_dir_all(root.path().join("state")).unwrap();
    let iso = serde_json::json!({
        "instance": "wlan9", "daemon_pid": std::process::id(), "phy_index": 9, "phy_name": "phy9",
        "iface": "wlan9", "nm_previous": true, "box_engine": "netns", "box_id": "1:1",
        "box_name": "wifi-isolate-wlan9", "box_pid": 1, "box_netns": "/proc/1/ns/net", "moved": true
    });
    std::fs::write(root.path().join("state/wlan9.json"), iso.to_string()).unwrap();
    let (code, out, _) = run("wifi-isolate", &["status", "--runtime-root", r]);
    assert_eq!(code, Some(0));
    for needle in [
        "wlan9 (phy9)",
        "netns:wifi-isolate-wlan9",
        "phy inside",
        "running",
        "does not answer",
        "absent",
    ] {
        assert!(out.contains(needle), "status lacks {needle:?}:\n{out}");
    }
    let (code, out, _) = run(
        "wifi-isolate",
        &["status", "wlan9", "--json", "--runtime-root", r],
    );
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).expect("status --json is JSON");
    assert_eq!(v[0]["instance"], "wlan9");
    assert_eq!(v[0]["agent_answers"], false);
    assert_eq!(v[0]["host_has_interface"], false);
    assert_eq!(v[0]["isolation"]["phy_name"], "phy9");
}

#[test]
fn doctor_names_what_is_missing_and_how_to_fix_it() {
    let (code, out, _) = run("wifi-isolate", &["doctor"]);
    // This host's kernel has no wireless stack: doctor must say so, with the fix, and fail.
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  kernel nl80211"), "{out}");
    assert!(out.contains("fix: modprobe cfg80211"), "{out}");
    for needle in [
        "privileges",
        "NetworkManager",
        "engine podman",
        "engine docker",
        "agent",
        "systemd units",
        "udev rule",
        "group",
    ] {
        assert!(out.contains(needle), "doctor lacks {needle:?}:\n{out}");
    }
}

#[test]
fn enable_and_disable_refuse_what_is_not_an_enabled_wifi_adapter_and_write_nothing() {
    let rules = tempfile::tempdir().unwrap();
    let rt = tempfile::tempdir().unwrap();
    let dirs = [
        "--rules-dir",
        rules.path().to_str().unwrap(),
        "--runtime-root",
        rt.path().to_str().unwrap(),
    ];
    let cases: [(&str, &str, &str); 5] = [
        ("enable", "wl/an0", "not an interface name"),
        ("enable", "wlan0\"x", "not an interface name"),
        ("enable", "lo", "not a wireless interface"),
        (
            "enable",
            "wlnothere9",
            "no interface wlnothere9 in the host",
        ),
        (
            "disable",
            "wlan0",
            "wlan0 is not enabled (enabled adapters: none)",
        ),
    ];
    for (cmd, iface, needle) in cases {
        let mut args = vec![cmd, iface, "--now"];
        args.extend(dirs);
        let (code, out, err) = run("wifi-isolate", &args);
        assert_eq!(code, Some(1), "{cmd} {iface}: {out}{err}");
        assert!(err.contains(needle), "{cmd} {iface}: {err}");
        assert_eq!(std::fs::read_dir(rules.path()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(rt.path()).unwrap().count(), 0);
    }
    let (code, out, _) = run("wifi-isolate", &["enable", "--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("--now") && out.contains("PCI path"), "{out}");
}
