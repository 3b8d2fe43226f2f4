//! What the probes inside the VMs share: the VM root netns's view, running a tool inside a netns,
//! a tool call's outcome.

use std::path::Path;
use std::process::Command;

/// iproute2 in the guest (busybox's `ip` applet has no netns support).
pub const IP: &str = "/usr/bin/ip";

/// The daemon binary installed in the guest image.
pub const WI: &str = "/usr/local/bin/wifi-isolate";

/// The daemon's runtime root (`state/`, the per-box runtime dirs).
pub const ROOT: &str = "/run/wifi-isolate";

/// The guest's log directory (shared with the host, kept after the run).
pub const LOGS: &str = "/share/logs";

/// The VM root netns's routes and addresses, without the counters that change on their own
/// (`valid_lft`, `expires`): equal strings mean the host's networking did not change.
pub fn host_view() -> String {
    let run = |args: &[&str]| {
        let out = Command::new(IP).args(args).output().expect("running ip");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .take_while(|w| *w != "valid_lft" && *w != "expires")
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "{}\n{}\n{}\n{}",
        run(&["-4", "route", "show", "table", "all"]),
        run(&["-6", "route", "show", "table", "all"]),
        run(&["-4", "-o", "addr"]),
        run(&["-6", "-o", "addr"])
    )
}

/// Run `run(prog, args)` inside the netns at `ns`: a dedicated OS thread `setns`es, the forked
/// child inherits the thread's namespace. (`/sys` of the child would still be the root netns's
/// sysfs mount, so the checks use netlink tools, not sysfs.)
pub fn run_in_netns(
    ns: &Path,
    run: fn(&str, &[&str]) -> (bool, String),
    prog: &str,
    args: &[&str],
) -> (bool, String) {
    let ns = ns.to_owned();
    let prog = prog.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        let file = match std::fs::File::open(&ns) {
            Ok(f) => f,
            Err(e) => return (false, format!("{}: {e}", ns.display())),
        };
        if let Err(e) = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET) {
            return (false, format!("setns: {e}"));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&prog, &a)
    })
    .join()
    .unwrap_or((false, "thread panicked".into()))
}

/// A tool call's outcome as (succeeded, structured content, text content).
pub fn tool_outcome(
    r: Result<rmcp::model::ServerResult, rmcp::ServiceError>,
) -> (bool, serde_json::Value, String) {
    use rmcp::model::ServerResult;
    use serde_json::Value;
    match r {
        Ok(ServerResult::CallToolResult(r)) => {
            let text = r
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect::<Vec<_>>()
                .join("\n");
            (
                r.is_error != Some(true),
                r.structured_content.unwrap_or(Value::Null),
                text,
            )
        }
        Ok(other) => (false, Value::Null, format!("unexpected result {other:?}")),
        Err(e) => (false, Value::Null, format!("protocol error: {e}")),
    }
}

/// A child's stdout/stderr as a file `name` in the guest's RAM-backed log dir (`HWSIM_RUN_LOGS`,
/// else `HWSIM_LOGS`, else /tmp; copied out at the end — writing to the 9p share is slow), or
/// nowhere if it cannot be made.
pub fn logfile(name: &str) -> std::process::Stdio {
    let dir = std::env::var("HWSIM_RUN_LOGS")
        .or_else(|_| std::env::var("HWSIM_LOGS"))
        .unwrap_or_else(|_| "/tmp".into());
    std::fs::File::create(std::path::PathBuf::from(dir).join(name))
        .map(std::process::Stdio::from)
        .unwrap_or(std::process::Stdio::null())
}
