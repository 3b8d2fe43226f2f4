//! `wifi-isolate enable|disable IFACE [--now]`: the persistent opt-in of one adapter.
//!
//! Enable writes the adapter's local udev rule (see [`crate::host::udev`]), reloads udev and
//! re-runs the rules on the interface (NetworkManager leaves it alone from then on), and enables
//! `wifi-isolate@IFACE.socket`; `--now` also starts the instance. Disable undoes each step and
//! gives the adapter back to NetworkManager; `--now` stops the instance first.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::host::daemon::Paths;
use crate::host::nm::{NetworkManager, NmError};
use crate::host::udev::{self, Identity};
use crate::validate::IfaceName;

/// Arguments of `enable` and `disable`.
#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    /// The adapter's interface name in the host (wlp6s0).
    pub iface: String,
    /// Also start (enable) or stop (disable) the instance now.
    #[arg(long)]
    pub now: bool,
    /// Where the local udev rules live.
    #[arg(long, default_value = udev::RULES_DIR, value_name = "DIR", hide = true)]
    pub rules_dir: PathBuf,
    /// Runtime root of the instances (hold files).
    #[arg(
        long,
        default_value = "/run/wifi-isolate",
        value_name = "DIR",
        hide = true
    )]
    pub runtime_root: PathBuf,
}

impl EnableArgs {
    fn paths(&self) -> Paths {
        Paths {
            root: self.runtime_root.clone(),
            rules_dir: self.rules_dir.clone(),
            networks_dir: crate::networks::host_dir(),
        }
    }
}

/// A failed step, said the way a user can act on it.
type Step<T> = Result<T, String>;

/// Run a system tool; its stdout, or an error naming the command and quoting its stderr.
fn tool(program: &str, args: &[&str]) -> Step<String> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{program} not found: wifi-isolate enable/disable need systemd and udev")
        } else {
            format!("cannot run {program}: {e}")
        }
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn sys_net(iface: &IfaceName) -> PathBuf {
    Path::new("/sys/class/net").join(iface.as_str())
}

/// The identity of a wireless interface present in the host (read as
/// [`udev::current_identity`] does for `run`'s identity check).
fn identity_of(iface: &IfaceName, paths: &Paths) -> Step<Identity> {
    udev::current_identity(&udev::Adapters::system(), iface).map_err(|e| match e {
        udev::ReadError::NotInHost { .. } if paths.state_file(iface.as_str()).exists() => format!(
            "{iface} is isolated right now, so the host cannot read its identity: \
             stop it (systemctl stop wifi-isolate@{iface}.service) and enable it again"
        ),
        e => e.to_string(),
    })
}

/// Reload udev's rules and re-run them on the interface, if it is in the host.
fn retrigger(iface: &IfaceName) -> Step<()> {
    tool("udevadm", &["control", "--reload"])?;
    let dev = sys_net(iface);
    if dev.exists() {
        let dev = dev.display().to_string();
        tool("udevadm", &["trigger", "--action=change", "--settle", &dev])?;
    }
    Ok(())
}

fn unit(iface: &IfaceName, kind: &str) -> String {
    format!("wifi-isolate@{iface}.{kind}")
}

fn write_rule(file: &Path, text: &str) -> Step<()> {
    crate::host::files::write_atomic(file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}

fn enable(args: &EnableArgs, iface: &IfaceName) -> Step<()> {
    let paths = args.paths();
    let identity = identity_of(iface, &paths)?;
    let file = udev::rule_file(&paths.rules_dir, iface);
    let text = udev::rule_text(iface, &identity);
    let before = std::fs::read_to_string(&file).ok();
    write_rule(&file, &text)?;
    // Without --now the rule takes effect when the adapter next appears (boot, replug): a
    // re-run of the rules now could already start the instance through SYSTEMD_WANTS.
    // Nothing half-applied: a failure before the rule is live takes it back.
    let reload = if args.now {
        retrigger(iface)
    } else {
        tool("udevadm", &["control", "--reload"]).map(drop)
    };
    let applied = reload.and_then(|()| {
        if systemd_running() {
            tool("systemctl", &["enable", "--quiet", &unit(iface, "socket")]).map(drop)
        } else {
            Ok(())
        }
    });
    if let Err(e) = applied {
        let restored = match &before {
            Some(old) => std::fs::write(&file, old),
            None => std::fs::remove_file(&file),
        };
        let _ = restored.map(|()| retrigger(iface));
        return Err(e);
    }
    println!(
        "{iface}: enabled for isolation ({identity}); rule {}",
        file.display()
    );
    if !systemd_running() {
        println!(
            "systemd is not running: enable {} yourself",
            unit(iface, "socket")
        );
        return Ok(());
    }
    if !args.now {
        println!(
            "it is isolated the next time it appears (boot, replug), or now with: \
             wifi-isolate enable --now {iface}"
        );
        return Ok(());
    }
    paths.unhold(iface.as_str());
    let service = unit(iface, "service");
    tool("systemctl", &["start", &unit(iface, "socket"), &service]).map_err(|e| {
        format!(
            "{iface} stays enabled, but starting it failed: {e}\n\
             see: journalctl -u {service} -n 50"
        )
    })?;
    let status = tool(
        "systemctl",
        &["show", "--property=StatusText", "--value", &service],
    )?;
    println!("{}", status.trim());
    Ok(())
}

async fn disable(args: &EnableArgs, iface: &IfaceName) -> Step<()> {
    let paths = args.paths();
    let file = udev::rule_file(&paths.rules_dir, iface);
    if !file.exists() {
        let others: Vec<String> = udev::enabled(&paths.rules_dir)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let list = if others.is_empty() {
            "none".to_owned()
        } else {
            others.join(", ")
        };
        return Err(format!("{iface} is not enabled (enabled adapters: {list})"));
    }
    let service = unit(iface, "service");
    let socket = unit(iface, "socket");
    if args.now && systemd_running() {
        // The phy comes home under the still-present rule: NetworkManager keeps off it until
        // the rule is gone and the device is handed back below.
        tool("systemctl", &["stop", &service, &socket])?;
    }
    std::fs::remove_file(&file).map_err(|e| format!("cannot remove {}: {e}", file.display()))?;
    if systemd_running() {
        tool("systemctl", &["disable", "--quiet", &socket])?;
    }
    println!("{iface}: disabled (removed {})", file.display());
    let active = systemd_running()
        && Command::new("systemctl")
            .args(["is-active", "--quiet", &service])
            .status()
            .is_ok_and(|s| s.success());
    if active {
        retrigger(iface)?;
        println!(
            "{service} is still running: the adapter goes back to NetworkManager when it stops \
             (systemctl stop {service}, or disable --now)"
        );
        return Ok(());
    }
    paths.unhold(iface.as_str());
    retrigger(iface)?;
    if sys_net(iface).exists() {
        match crate::commands::run::MaybeNm::system()
            .await
            .set_managed(iface.as_str(), true)
            .await
        {
            Ok(()) => println!("{iface}: managed by NetworkManager again"),
            Err(NmError::NotRunning) => {}
            Err(e) => return Err(format!("giving {iface} back to NetworkManager: {e}")),
        }
    }
    Ok(())
}

fn finish(what: &str, result: Step<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wifi-isolate {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &EnableArgs) -> Step<IfaceName> {
    IfaceName::parse(&args.iface).map_err(|e| e.to_string())
}

/// `wifi-isolate enable`.
pub async fn exec_enable(args: EnableArgs) -> ExitCode {
    finish("enable", parse(&args).and_then(|i| enable(&args, &i)))
}

/// `wifi-isolate disable`.
pub async fn exec_disable(args: EnableArgs) -> ExitCode {
    let result = match parse(&args) {
        Ok(i) => disable(&args, &i).await,
        Err(e) => Err(e),
    };
    finish("disable", result)
}
