//! hwsim VM suite for `wifi-isolate run IFACE` with the built-in netns engine: the real daemon
//! binary on real kernel radios (mac80211_hwsim under QEMU) and a real WPA2 access point, driven
//! from the VM's root netns by `tests/vm/run_probe.rs` — readiness over a test `NOTIFY_SOCKET`,
//! MCP through the agent's socket, SIGTERM release timing, the box killed, the daemon killed and
//! restarted, an unplugged radio (HWSIM_CMD_DEL_RADIO), refusals, the station interface deleted
//! inside the box (the phy comes home with one re-created under its name). Then, in the same VM boot, the
//! hostile-agent phase (`tests/vm/hostile_host.rs`): the daemon starts `tests/vm/hostile_probe.rs`
//! in place of the agent (`[agent] path`), the probe attacks the host from inside the box, and the
//! host is checked from outside (canary files and process, links, routes, files, the phy) before
//! the report is judged, MCP answers and release brings the phy home. Needs root and QEMU
//! (installed by tests/deps.sh); fails, never skips, without them.

mod common;

#[test]
fn run_daemon_on_real_radios() {
    common::hwsim::run(
        "run",
        "wpa2",
        2,
        "tests/vm/run-guest.sh",
        &[
            common::bin("wifi-isolate"),
            common::bin("wifi-isolate-agent"),
            common::example("hwsim-run-probe"),
            common::example("hostile-probe"),
            common::example("hwsim-hostile-host"),
        ],
    );
}
