//! hwsim VM suite for the socket-activated MCP endpoint: `wifi-isolate run` started by
//! `systemd-socket-activate` on the first connection, proxying into the real agent on a real
//! radio; Origin and bearer-token rules, SSE streaming, a 0660 socket against another uid,
//! 100 concurrent clients, the stdio bridge across a service restart (rmcp client), and the
//! official MCP Python SDK (from PyPI, in a venv under .cache/) through the stdio bridge.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The host's Python prefix and a venv with the official `mcp` SDK (created once, cached).
fn python_with_mcp_sdk() -> (PathBuf, PathBuf) {
    let venv = common::repo().join(".cache/pyvenv");
    let py = venv.join("bin/python");
    let has_sdk = |py: &Path| {
        Command::new(py)
            .args(["-c", "import mcp.client.stdio"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_sdk(&py) {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "mcp>=1.20,<2"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok && has_sdk(&py),
            "cannot set up the MCP Python SDK: needs python3 with venv + pip and PyPI (pip install mcp)"
        );
    }
    let out = Command::new(&py)
        .args(["-c", "import sys; print(sys.base_prefix)"])
        .output()
        .expect("python");
    let base = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (base, venv)
}

/// Extension modules whose shared-library dependencies the guest needs (the harness copies what
/// `ldd` lists for each `--bin`).
fn extension_modules(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "so") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn endpoint_on_real_radios() {
    common::require_root("the hwsim VM suite");
    let (base, venv) = python_with_mcp_sdk();
    let mut bins = vec![
        common::bin("wifi-isolate"),
        common::bin("wifi-isolate-agent"),
        common::example("hwsim-proxy-probe"),
        "/usr/bin/systemd-socket-activate".into(),
        base.join("bin/python3"),
    ];
    bins.extend(extension_modules(&[
        base.join("lib/python3.11/lib-dynload"),
        venv.join("lib"),
    ]));
    let extra = format!(
        "-virtfs local,path={},mount_tag=pybase,security_model=none,readonly=on \
         -virtfs local,path={},mount_tag=pyvenv,security_model=none,readonly=on",
        base.display(),
        venv.display()
    );
    let env = format!("PYBASE='{}'\nPYVENV='{}'\n", base.display(), venv.display());
    let client = std::fs::read(common::repo().join("tests/vm/mcp_sdk_client.py")).unwrap();
    common::hwsim::run_with(
        "proxy",
        "wpa2",
        1,
        "tests/vm/proxy-guest.sh",
        &bins,
        &extra,
        &[("py.env", env.into_bytes()), ("mcp_sdk_client.py", client)],
    );
}
