//! The systemd units as systemd reads them: `systemd-analyze verify` must find nothing to say
//! (the group exists? `SocketGroup=` is checked at start, not here), and `systemd-analyze
//! security` must rate the service's exposure at most [`MAX_EXPOSURE`] with a comment in the unit
//! for every item it still counts. Their runtime behaviour is proven in the full-system VM
//! (`tests/vm/story/ and tests/vm/faults/`).

use wifi_isolate_tests::env as common;

use std::path::Path;
use std::process::Command;

const TOOL: &str = "/usr/bin/systemd-analyze";

/// The bound for `systemd-analyze security wifi-isolate@x.service` (systemd 252: 4.0).
const MAX_EXPOSURE: f64 = 4.0;

/// The unit templates in a temporary unit directory, `ExecStart=` pointing at this build.
fn units_dir() -> tempfile::TempDir {
    assert!(
        Path::new(TOOL).exists(),
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
    dir
}

fn analyze(dir: &Path, args: &[&str], unit: &str) -> std::process::Output {
    Command::new(TOOL)
        .args(args)
        .arg(dir.join(unit))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .output()
        .expect("running systemd-analyze")
}

#[test]
fn units_verify_clean() {
    let dir = units_dir();
    for inst in ["wifi-isolate@wlan0.service", "wifi-isolate@wlan0.socket"] {
        let out = analyze(dir.path(), &["verify", "--man=no"], inst);
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

/// The number on `→ Overall exposure level for UNIT: 4.0 OK 🙂`.
fn overall_exposure(table: &str) -> Option<f64> {
    let line = table
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The setting each `✗` row is about: `CapabilityBoundingSet=~CAP_KILL` → `CapabilityBoundingSet`,
/// `User=/DynamicUser=` → `User`.
fn exposed_settings(table: &str) -> Vec<String> {
    table
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("✗ "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|name| name.split(['=', '/']).next().unwrap_or(name).to_string())
        .collect()
}

#[test]
fn exposure_is_at_most_4_and_each_remaining_item_is_explained() {
    let dir = units_dir();
    let out = analyze(
        dir.path(),
        &["security", "--offline=yes", "--no-pager"],
        "wifi-isolate@x.service",
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let exposure = overall_exposure(&table)
        .unwrap_or_else(|| panic!("no overall exposure in the output:\n{table}\n{err}"));
    println!("systemd-analyze security wifi-isolate@x.service: {exposure}");
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{table}"
    );
    // Every item still counted is named in the unit's "What remains exposed" comment.
    let unit = std::fs::read_to_string(dir.path().join("wifi-isolate@.service")).unwrap();
    let why = unit
        .split_once("# What remains exposed")
        .map(|(_, rest)| rest)
        .expect("the unit's \"# What remains exposed\" comment");
    let why: String = why.lines().filter(|l| l.starts_with('#')).collect();
    let unexplained: Vec<String> = exposed_settings(&table)
        .into_iter()
        .filter(|s| !why.contains(s.as_str()))
        .collect();
    assert!(
        unexplained.is_empty(),
        "exposed but not explained in the unit: {unexplained:?}\n{table}"
    );
}

#[test]
fn parses_the_security_table() {
    let table = "  NAME      DESCRIPTION     EXPOSURE\n\
                 ✗ User=/DynamicUser=   Service runs as root user    0.4\n\
                 ✓ NoNewPrivileges=     Service processes cannot acquire new privileges\n\
                 ✗ CapabilityBoundingSet=~CAP_SYS_ADMIN   Service has administrator privileges  0.3\n\
                 \n→ Overall exposure level for wifi-isolate@x.service: 4.0 OK 🙂\n";
    assert_eq!(overall_exposure(table), Some(4.0));
    assert_eq!(exposed_settings(table), ["User", "CapabilityBoundingSet"]);
    assert_eq!(overall_exposure("nothing"), None);
}
