//! Network namespaces the host tests make for themselves (the agent flushes its interface's
//! addresses: it never runs in the host's own namespace), deleted when dropped.

use std::process::{Command, Stdio};

/// A named network namespace (`/run/netns/NAME`), deleted on drop.
pub struct Netns(pub String);

impl Netns {
    /// A fresh namespace `PREFIX-PID` holding a veth pair `iface` ↔ `peer`, both up, and `lo` up.
    pub fn with_veth(prefix: &str, iface: &str, peer: &str) -> Self {
        let ns = Netns(format!("{prefix}-{}", std::process::id()));
        run(&["ip", "netns", "add", &ns.0]);
        run(&[
            "ip", "-n", &ns.0, "link", "add", iface, "type", "veth", "peer", "name", peer,
        ]);
        for l in [iface, peer, "lo"] {
            run(&["ip", "-n", &ns.0, "link", "set", l, "up"]);
        }
        ns
    }

    /// The namespace's file, to `setns` a thread into.
    pub fn file(&self) -> std::fs::File {
        std::fs::File::open(format!("/run/netns/{}", self.0))
            .unwrap_or_else(|e| panic!("opening /run/netns/{}: {e}", self.0))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// Run a command that must succeed (iproute2 and the like), or panic saying which.
pub fn run(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e} (install iproute2)"));
    assert!(st.success(), "{args:?}: {st}");
}
