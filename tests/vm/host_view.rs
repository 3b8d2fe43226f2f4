//! Shared by the hwsim VM probes (included with `#[path]`): the VM root netns's view.

use std::process::Command;

/// iproute2 in the guest (busybox's `ip` applet has no netns support).
pub const IP: &str = "/usr/bin/ip";

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
