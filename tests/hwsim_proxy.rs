//! hwsim VM suite for the socket-activated MCP endpoint: `wifi-isolate run` started by
//! `systemd-socket-activate` on the first connection, proxying into the real agent on a real
//! radio; Origin and bearer-token rules, SSE streaming, a 0660 socket against another uid,
//! 100 clients × 100 calls, and the stdio bridge across a service restart.

mod common;

#[test]
fn endpoint_on_real_radios() {
    common::hwsim::run(
        "proxy",
        "wpa2",
        1,
        "tests/vm/proxy-guest.sh",
        &[
            common::bin("wifi-isolate"),
            common::bin("wifi-isolate-agent"),
            common::example("hwsim-proxy-probe"),
            "/usr/bin/systemd-socket-activate".into(),
        ],
    );
}
