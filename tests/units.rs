//! The systemd units as systemd reads them: `systemd-analyze verify` must find nothing to say
//! (the group exists? `SocketGroup=` is checked at start, not here). Drafts for issue 5: their
//! runtime behaviour is proven in the full-system VM (issue 6).

mod common;

use std::process::Command;

#[test]
fn units_verify_clean() {
    let tool = "/usr/bin/systemd-analyze";
    assert!(
        std::path::Path::new(tool).exists(),
        "systemd-analyze missing: apt-get install systemd"
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = common::bin("wifi-isolate");
    for unit in ["wifi-isolate@.service", "wifi-isolate@.socket"] {
        let text = std::fs::read_to_string(common::repo().join("systemd").join(unit)).unwrap();
        // Point ExecStart at the binary this test run built.
        let text = text.replace("/usr/bin/wifi-isolate", &bin.display().to_string());
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    for inst in ["wifi-isolate@wlan0.service", "wifi-isolate@wlan0.socket"] {
        let out = Command::new(tool)
            .arg("verify")
            .arg("--man=no")
            .arg(dir.path().join(inst))
            .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
            .output()
            .expect("running systemd-analyze");
        let err = String::from_utf8_lossy(&out.stderr);
        // Lines about units other than ours (the host's own) are not ours to judge.
        let ours: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("wifi-isolate"))
            .filter(|l| !l.contains("Failed to prepare filename"))
            .collect();
        assert!(out.status.success() && ours.is_empty(), "{inst}:\n{err}");
    }
}
